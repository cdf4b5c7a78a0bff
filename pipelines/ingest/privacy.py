"""Personal data screening: phone numbers, ID-card numbers and names are never stored.

A column is dropped when its header says what it is (电话, 手机号, 身份证, 姓名 …) or when most of its
filled cells look like a mobile/landline number or an ID-card number. Dropping is reported as a
warning; the archived copy of the file has those columns removed too.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from pipelines.core.headers import normalise_header

_HEADER_WORDS = {
    "电话号码": ("电话", "手机号", "手机号码", "联系电话", "联系方式", "固话号码", "号码", "phone",
             "mobile", "tel", "telephone", "phonenumber", "cell"),
    "身份证号": ("身份证", "身份证号", "身份证号码", "证件号", "证件号码", "idcard", "idnumber"),
    "姓名": ("姓名", "受访者姓名", "名字", "name", "fullname"),
}
_VALUE_PATTERNS = {
    "电话号码": r"^(\+?86[- ]?)?1[3-9]\d{9}$|^0\d{2,3}-?\d{7,8}$",
    "身份证号": r"^\d{17}[\dXx]$",
}
# a personal name: a common surname then one or two more Chinese characters (对象：无表头的姓名列)
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
             "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚"
             "邵万钱严覃武戴莫孔向汤")
_NAME_PATTERN = rf"^[{_SURNAMES}][\u4e00-\u9fff]{{1,2}}$"
_NAME_DISTINCT_SHARE = 0.3   # names vary from row to row; a column of place names repeats
_SHARE_THRESHOLD = 0.5


def personal_data_columns(frame: pl.DataFrame, keep: set[str]) -> dict[str, str]:
    """Columns holding personal data → what they hold. Columns in `keep` are mapped ones that
    passed their own type checks (a respondent id is not a phone number) and are not screened by
    name, only by value."""
    found: dict[str, str] = {}
    # one random sample of rows serves every column's quick screen (sampling each column on its
    # own walked a million cells per column)
    rows = _sample_rows(frame) if frame.height > 5 * _SCREEN_SAMPLE else None
    for column in frame.columns:
        key = normalise_header(column)
        if column not in keep:
            for kind, words in _HEADER_WORDS.items():
                if any(key == w or (len(w) > 1 and w in key and kind != "姓名") for w in words):
                    found[column] = kind
                    break
        if column in found:
            continue
        column_values = frame.get_column(column)
        if column_values.dtype != pl.String or column_values.null_count() == column_values.len():
            continue   # a column read as small integers holds no phone or ID-card number
        sample = None if rows is None else rows.get_column(column).drop_nulls()
        if sample is not None and sample.len() < _SCREEN_SAMPLE // 2:
            sample = None        # a mostly empty column: sample its filled cells instead
        if sample is None:
            values = column_values.drop_nulls()
            sample = values.sample(min(values.len(), _SCREEN_SAMPLE), seed=0)
        cells = _Cells(column_values, sample)
        for kind, pattern in _VALUE_PATTERNS.items():
            if cells.share(pattern) >= _SHARE_THRESHOLD:
                found[column] = kind
                break
        if column not in found and column not in keep and _looks_like_names(cells.sample):
            found[column] = "姓名"
    return found


def _sample_rows(frame: pl.DataFrame) -> pl.DataFrame:
    """A fixed random sample of the text columns' rows (Polars' `sample` shuffled a million row
    numbers to pick 20,000)."""
    rows = np.random.default_rng(0).choice(frame.height, _SCREEN_SAMPLE, replace=False)
    return frame.select(pl.col(pl.String)).gather(np.sort(rows))


def _looks_like_names(sample: pl.Series) -> bool:
    """Most cells (of a sample of filled cells, white space removed) are surname + 1–2
    characters and they rarely repeat (a name per respondent)."""
    return (_share(sample, _NAME_PATTERN) >= _SHARE_THRESHOLD
            and sample.n_unique() >= _NAME_DISTINCT_SHARE * sample.len())


_SCREEN_SAMPLE = 20_000
_CLEARLY_BELOW = 0.3


def _share(cells: pl.Series, pattern: str) -> float:
    return float(cells.str.contains(pattern).mean() or 0.0)


def _without_spaces(cells: pl.Series) -> pl.Series:
    return cells.str.replace_all(r"\s", "")


class _Cells:
    """A column's filled cells with white space removed, for the share of cells matching a
    pattern. A large column is screened on a random sample of its filled cells first: a sample
    share under 0.3 (the threshold is 0.5; 10,000–20,000 cells put the sample within ±0.015)
    clears it without scanning a million cells; anything closer is counted exactly. Each form is
    cleaned once, whatever the number of patterns."""

    def __init__(self, values: pl.Series, sample: pl.Series) -> None:
        self.values, self.large = values, values.len() > 5 * _SCREEN_SAMPLE
        self.sample = _without_spaces(sample)
        self._all: pl.Series | None = None

    def share(self, pattern: str) -> float:
        if self.large and _share(self.sample, pattern) < _CLEARLY_BELOW:
            return 0.0
        if self._all is None:
            self._all = _without_spaces(self.values.drop_nulls())
        return _share(self._all, pattern)
