"""The default theme's colours meet WCAG AA contrast (4.5:1 for text) in light and dark mode.

The pairs are the ones style.css actually puts together (text on page, on the header/footer
band and in table heads; links; buttons; status colours), read from the stylesheet itself, so
editing a colour re-checks it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CSS = (Path(__file__).resolve().parent.parent / "themes/default/static/style.css").read_text()

PAIRS = [
    ("ink", "paper"), ("ink", "band"), ("muted", "paper"), ("muted", "band"),
    ("accent", "paper"), ("accent", "band"), ("accent-ink", "accent"),
    ("warn", "paper"), ("bad", "paper"), ("ok", "paper"), ("warn", "band"), ("bad", "band"),
]  # fmt: skip


def palette(block: str) -> dict[str, str]:
    return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", block))


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


LIGHT = palette(CSS.split("@media (prefers-color-scheme: dark)")[0])
DARK = {**LIGHT, **palette(CSS.split("@media (prefers-color-scheme: dark)")[1].split("}")[0])}


def test_the_palettes_were_found():
    assert len(LIGHT) >= 10 and DARK != LIGHT


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize(("text", "background"), PAIRS)
def test_text_contrast_is_at_least_aa(scheme, text, background):
    colours = LIGHT if scheme == "light" else DARK
    ratio = contrast(colours[text], colours[background])
    assert ratio >= 4.5, f"{scheme}: --{text} on --{background} is {ratio:.2f}:1"


def test_the_contrast_formula():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
