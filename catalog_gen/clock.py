"""The run's clock: 'now' is read once per run, in the catalog's zone, or pinned with --now.

Nothing else in catalog-gen reads the machine's clock or zone for dates; everything that needs
'today' receives this value. A build machine in UTC and a laptop in Oslo therefore agree.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from catalog_gen.dates import parse_moment


def run_now(timezone: str, pinned: str | None = None) -> datetime:
    """The moment this run happens, as an aware datetime in ``timezone``.

    ``pinned`` is an ISO 8601 date or date-time; without an offset it is read in ``timezone``
    (so ``--now 2026-03-29T02:30`` means Oslo wall-clock time, as a provider would mean it).
    """
    zone = ZoneInfo(timezone)
    if pinned is None:
        return datetime.now(zone)
    moment = parse_moment(pinned, zone)
    if moment is None:
        raise ValueError(f"not an ISO 8601 date or date-time, nor epoch seconds: {pinned!r}")
    return moment
