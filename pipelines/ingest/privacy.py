"""Personal data screening: phone numbers, ID-card numbers and names are never stored.

A column is dropped when its header says what it is (电话, 手机号, 身份证, 姓名 …) or when most of its
filled cells look like a mobile/landline number or an ID-card number. Dropping is reported as a
warning; the archived copy of the file has those columns removed too.

Columns the questionnaire keeps are never dropped: the respondent id is checked on its own (a real
ID-card number passes the GB 11643 check digit and holds a plausible birth date; a 12- or 18-digit
survey id almost never does), and other kept text cells are screened for a phone or ID-card number
written inside them (`numbers_in_text`).
"""

from __future__ import annotations

from datetime import date

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
    """Columns holding personal data → what they hold. Columns in `keep` (those the
    questionnaire maps) are never dropped here: see `id_column_problem` and `numbers_in_text`."""
    found: dict[str, str] = {}
    # one random sample of rows serves every column's quick screen (sampling each column on its
    # own walked a million cells per column)
    rows = _sample_rows(frame) if frame.height > 5 * _SCREEN_SAMPLE else None
    for column in frame.columns:
        if column in keep:
            continue
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


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_MOBILE = r"^(\+?86[- ]?)?1[3-9]\d{9}$"
# a landline by its area-code form: 010, 02x or 0[3-9]xx, then a local number of 7–8 digits that
# does not start with 0 or 1 (an id with leading zeros, 000123…, has no area code)
_LANDLINE = r"^(\+?86-?)?0(10|2\d|[3-9]\d{2})-?[2-9]\d{6,7}$"
# free text: a mobile, an area-code landline (010/02x/0[3-9]xx, local number not starting 0/1) or
# an 18-character ID-card form, not inside a longer run of digits
_IN_TEXT = (r"(^|[^\d])(1[3-9]\d{9}|0(10|2\d|[3-9]\d{2})-?[2-9]\d{6,7}|\d{17}[\dXx])($|[^\dXx])")


def valid_id_cards(cells: pl.Series) -> pl.Series:
    """Whether each cell is a real resident ID-card number: 17 digits and a GB 11643 check
    character, with a birth date (characters 7–14) between 1900 and today."""
    text = cells.cast(pl.String).str.strip_chars().str.to_uppercase()
    shaped = text.str.contains(r"^\d{17}[\dX]$").fill_null(False)
    frame = pl.DataFrame({"t": text.set(~shaped, None)})
    total = pl.sum_horizontal(pl.col("t").str.slice(i, 1).cast(pl.Int32) * w
                              for i, w in enumerate(_ID_WEIGHTS))
    expected = pl.lit(_ID_CHECK).str.slice(total % 11, 1)
    birth = pl.col("t").str.slice(6, 8).str.to_date("%Y%m%d", strict=False)
    today = date.today()
    valid = (expected == pl.col("t").str.slice(17, 1)) & birth.is_not_null() \
        & (birth >= date(1900, 1, 1)) & (birth <= today)
    return frame.select(valid.fill_null(False)).to_series()


def id_column_problem(cells: pl.Series) -> str | None:
    """Why a respondent-id column cannot be stored, or None. Most filled cells being real ID-card
    numbers, mobile numbers or landlines (by area-code form) means the column is personal data,
    not a survey id."""
    values = cells.drop_nulls().cast(pl.String)
    if values.len() == 0:
        return None
    if values.len() > _SCREEN_SAMPLE:
        values = values.sample(_SCREEN_SAMPLE, seed=0)
    if float(valid_id_cards(values).mean() or 0.0) >= _SHARE_THRESHOLD:
        return ("受访者编号列中多数是真实的身份证号码（校验位与出生日期均有效），个人信息不能导入："
                "请改用调查机构的样本编号后重新导出")
    if _share(_without_spaces(values), _MOBILE) >= _SHARE_THRESHOLD:
        return "受访者编号列中多数是手机号码，个人信息不能导入：请改用调查机构的样本编号后重新导出"
    if _share(_without_spaces(values), _LANDLINE) >= _SHARE_THRESHOLD:
        return ("受访者编号列中多数是固定电话号码（区号加号码，如 0871-65123456），个人信息不能导入："
                "请改用调查机构的样本编号后重新导出")
    return None


def numbers_in_text(cells: pl.Series) -> pl.Series:
    """Whether each text cell holds a phone or ID-card number somewhere inside it (null → False);
    an 18-character number counts only when it is a real ID-card number."""
    text = cells.cast(pl.String).str.replace_all(r"[\s\u3000]", "")
    found = text.str.extract(_IN_TEXT, 2)
    is_id = found.str.len_chars() == 18
    real = valid_id_cards(found.set(~is_id.fill_null(False), None))
    return (found.is_not_null() & (~is_id.fill_null(False) | real)).fill_null(False)
