"""The few named failures of catalog-gen, each with the exit code the CLI uses for it.

Library code raises these; only the CLI turns them into a one-line message and an exit code.
Exit codes are part of the interface (cron and CI read them):

    0  success
    1  the run failed: API, network, snapshot, template or build failure
    2  usage or configuration error (fix the command or catalog.toml)
    3  refused by a guard (shrink guard, a run already holding the lock)
"""

from __future__ import annotations


class CatalogGenError(Exception):
    """Base class: a failure with a message meant for the person running catalog-gen."""

    exit_code = 1


class ConfigError(CatalogGenError):
    """catalog.toml or the environment is wrong; the message names the key and the file."""

    exit_code = 2


class ApiError(CatalogGenError):
    """Frontcore could not be used: network failure, 5xx, bad JSON or an error body."""

    def __init__(self, message: str, *, status: int | None = None, path: str | None = None):
        super().__init__(message)
        self.status = status
        self.path = path


class AuthError(ApiError):
    """The API key was refused. Never retried: retrying a bad key only burns the rate limit."""


class RateLimited(ApiError):
    """Frontcore answered 429. Carries the server's ``Retry-After`` when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, path: str | None = None):
        super().__init__(message, status=429, path=path)
        self.retry_after = retry_after


class TransientApiError(ApiError):
    """A failure worth retrying: 5xx, timeout, dropped connection, truncated or invalid JSON."""


class LimitExceeded(ApiError):
    """An answer went past a bound on what one answer may cost: bytes received, bytes after
    decompression, time until complete, or records in a list. The message names the path, the
    limit and the setting that raises it.

    Never retried. The server that sent 500 MB, or a byte every two seconds, will most likely
    do so again, and five retries would make one bad answer cost six times the bound: what a
    run may cost in total matters more than a second chance for an answer no catalog needs.
    Like any API error it ends the fetch with the last good snapshot untouched, and
    ``build --offline-on-error`` renders that snapshot instead.
    """


class SnapshotError(CatalogGenError):
    """A snapshot on disk is missing, unreadable or from an incompatible schema."""


class BuildError(CatalogGenError):
    """The site could not be built: a bad content file, an unusable output folder."""


class TemplateError(BuildError):
    """A template failed to load or render; the message names the template file and line."""


class TimedOut(CatalogGenError):
    """The run hit its --timeout; like any failed run it leaves snapshot and site as they were."""


class GuardRefused(CatalogGenError):
    """A safety guard refused the run (shrink guard, lock held by another run)."""

    exit_code = 3
