"""Wave labels: `2025` (annual), `2025H1`/`2025H2` (half-year), `2025Q1`…`2025Q4` (quarterly).

Labels sort in time order as text, and read in Chinese as 2025年度 / 2025年上半年 / 2025年第4季度.
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"^(?P<year>20\d{2})(?:(?P<half>H[12])|(?P<quarter>Q[1-4]))?$")


def is_valid_wave(label: str) -> bool:
    return bool(_LABEL.match(label or ""))


def wave_error(label: str) -> str | None:
    """Chinese message for an invalid label, None when it is valid."""
    if is_valid_wave(label):
        return None
    return (f"期次“{label}”格式不对：年度写作 2025，半年写作 2025H1/2025H2，"
            "季度写作 2025Q1…2025Q4")


def wave_display(label: str) -> str:
    """2025 → 2025年度; 2025H1 → 2025年上半年; 2025Q4 → 2025年第4季度."""
    match = _LABEL.match(label)
    if not match:
        return label
    year = match["year"]
    if match["half"]:
        return f"{year}年{'上' if match['half'] == 'H1' else '下'}半年"
    if match["quarter"]:
        return f"{year}年第{match['quarter'][1]}季度"
    return f"{year}年度"


def normalise_wave_cell(value: str) -> str:
    """Cells in a file's wave column may read 2025年 / 2025年度 / 2025年第4季度: map to labels."""
    text = value.strip().replace(" ", "")
    if match := re.fullmatch(r"(20\d{2})年度?", text):
        return match[1]
    if match := re.fullmatch(r"(20\d{2})年第?([1-4一二三四])季度", text):
        quarter = "一二三四".find(match[2]) + 1 or int(match[2])
        return f"{match[1]}Q{quarter}"
    if match := re.fullmatch(r"(20\d{2})年([上下])半年", text):
        return f"{match[1]}H{1 if match[2] == '上' else 2}"
    return text.upper()


def next_wave(label: str) -> str:
    """The wave after `label` at the same frequency: 2025 → 2026, 2025H2 → 2026H1, 2025Q4 → 2026Q1."""
    match = _LABEL.match(label)
    if not match:
        return label
    year = int(match["year"])
    if match["half"]:
        return f"{year}H2" if match["half"] == "H1" else f"{year + 1}H1"
    if match["quarter"]:
        quarter = int(match["quarter"][1])
        return f"{year}Q{quarter + 1}" if quarter < 4 else f"{year + 1}Q1"
    return str(year + 1)


def wave_display_expr(column: str):
    """`wave_display` as a Polars expression on a column of labels. Pages must not run per-row
    Python functions (`map_elements`): one script thread holding the GIL inside Polars while
    another converts a frame to pandas deadlocked the server (issue 19)."""
    import polars as pl

    text = pl.col(column)
    year = text.str.slice(0, 4)
    quarter = text.str.slice(5, 1)
    return (pl.when(text.str.contains(r"^20\d{2}$")).then(year + "年度")
            .when(text.str.contains(r"^20\d{2}H1$")).then(year + "年上半年")
            .when(text.str.contains(r"^20\d{2}H2$")).then(year + "年下半年")
            .when(text.str.contains(r"^20\d{2}Q[1-4]$")).then(year + "年第" + quarter + "季度")
            .otherwise(text).alias(column))


def wave_year(label: str) -> int:
    """The calendar year of a wave: rules that speak of years (连续两年) count these, so the
    two half-year waves 2025H1 and 2025H2 are one year."""
    match = _LABEL.match(label or "")
    if not match:
        raise ValueError(f"not a wave label: {label!r}")
    return int(match["year"])


def wave_months(label: str) -> tuple[int, int]:
    """First and last month of a wave as year·12 + month: 2025 → whole year, 2025H2 → Jul–Dec.
    Text order of labels puts 2025 before 2025H1, so in-force checks compare these instead."""
    match = _LABEL.match(label or "")
    if not match:
        raise ValueError(f"not a wave label: {label!r}")
    base = int(match["year"]) * 12
    if match["half"]:
        first = 1 if match["half"] == "H1" else 7
        return base + first, base + first + 5
    if match["quarter"]:
        first = 3 * (int(match["quarter"][1]) - 1) + 1
        return base + first, base + first + 2
    return base + 1, base + 12


def in_force(wave: str, from_wave: str | None, until_wave: str | None) -> bool:
    """Whether a rule valid from `from_wave` to `until_wave` (both inclusive, None = open)
    applies to `wave`: a rule adopted "from 2024" covers 2024, 2024H1 and later, never 2023."""
    first, last = wave_months(wave)
    if from_wave is not None and first < wave_months(from_wave)[0]:
        return False
    return until_wave is None or last <= wave_months(until_wave)[1]
