"""Times as users read them: 北京时间 (UTC+8, no daylight saving), whatever the server's zone.
The warehouse stores instants with their zone (timestamptz); only display converts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import polars as pl

BEIJING = timezone(timedelta(hours=8), "北京时间")
BEIJING_ZONE = "Asia/Shanghai"
STAMP = "%Y-%m-%d %H:%M"


def beijing_now() -> datetime:
    return datetime.now(BEIJING)


def beijing(moment: datetime) -> datetime:
    """An instant in Beijing time; a naive datetime is taken as UTC (DuckDB's and ours)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(BEIJING)


def beijing_text(moment: datetime | None, fmt: str = STAMP) -> str:
    return "" if moment is None else beijing(moment).strftime(fmt)


def beijing_expr(column: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> pl.Expr:
    """A zoned timestamp column (DuckDB's timestamptz) as Beijing-time text."""
    return pl.col(column).dt.convert_time_zone(BEIJING_ZONE).dt.strftime(fmt)
