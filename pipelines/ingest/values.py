"""Cells as people write them in Excel or WPS, turned into the values the checks expect.

Numbers may come with full-width digits (１２３), thousands separators (1,234.5) or a percent sign;
answers may be written as their labels (满意) instead of their codes (1), with words the
questionnaire lists as synonyms; a dash or 无 may stand for "no value". Nothing here guesses: a
label that is unknown or could mean two answers of one item is reported, never mapped.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection

import polars as pl

from pipelines.scheme.definitions import Item

# what people write for "no value" (after NFKC: the full-width hyphen "－" becomes "-")
MISSING_MARKS = ("-", "--", "—", "——", "–", "―", "/", "无", "空", "…")
_THOUSANDS = r"^[+-]?\d{1,3}(,\d{3})+(\.\d+)?%?$"
_SCIENTIFIC = r"^[+-]?\d+(\.\d+)?[eE]\+?\d+$"
_EXCEL_DIGITS = 15    # Excel keeps 15 significant digits of a number


def plain_text(cells: pl.Series) -> pl.Series:
    """NFKC (full-width digits, letters and punctuation → half-width), trimmed; only computed
    when some cell holds a character NFKC changes (a million plain cells stay as they are)."""
    if cells.dtype != pl.String or not cells.str.contains(r"[^\x00-\x7f]").any():
        return cells
    return cells.str.normalize("NFKC").str.strip_chars()


def numbers(cells: pl.Series, *, percent: bool = False, units: tuple[str, ...] = ()) -> pl.Series:
    """Float64 of each cell; a cell that is not a number is null. Full-width digits and
    thousands separators are read (1,234 → 1234); with `percent`, a trailing % is dropped
    (85.3% → 85.3), and so is any of `units` (45岁 → 45). The plain cast runs first: the
    clean-up only for files that need it."""
    if cells.dtype != pl.String:
        return cells.cast(pl.Float64, strict=False)
    fast = cells.cast(pl.Float64, strict=False)
    if fast.null_count() == cells.null_count():
        return fast
    text = plain_text(cells)
    if percent:
        text = text.str.strip_suffix("%")
    for unit in units:
        text = text.str.strip_suffix(unit)
    text = pl.select(pl.when(text.str.contains(_THOUSANDS))
                     .then(text.str.replace_all(",", "", literal=True))
                     .otherwise(text)).to_series()
    return text.cast(pl.Float64, strict=False)


def missing_marks(cells: pl.Series, keep: Collection[str] = ()) -> pl.Series:
    """Whether each cell is a "no value" mark (—, /, －, 无 …); marks in `keep` are values."""
    if cells.dtype != pl.String:
        return pl.Series([False] * cells.len())
    marks = [m for m in MISSING_MARKS if m not in keep]
    return plain_text(cells).is_in(marks).fill_null(False)


def _key(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text)).casefold()


class AnswerReader:
    """One item's answer cells → codes: a code (1, 1.0, １), a label or synonym (满意, 很满意),
    or a code with its label (1=满意, 1.满意, 满意(1)) whose two halves agree. Each distinct
    spelling is read once; `problem` says why one cannot be."""

    def __init__(self, item: Item, synonyms: dict[str, tuple[str, ...]]) -> None:
        self.item = item
        self.allowed = "、".join(f"{a.code}={a.label}" for a in item.answers)
        exact = {_key(a.label): a.code for a in item.answers}
        words: dict[str, set[int]] = {}
        for answer in item.answers:
            for word in (*answer.synonyms, *synonyms.get(answer.label, ())):
                words.setdefault(_key(word), set()).add(answer.code)
        self.codes: dict[str, set[int]] = {w: c for w, c in words.items() if w not in exact}
        self.codes |= {w: {c} for w, c in exact.items()}
        self.labels_read: dict[str, int] = {}    # cells written as words → their codes

    def note(self) -> str | None:
        """What the analyst should see: which words were read as which codes."""
        if not self.labels_read:
            return None
        shown = "、".join(f"{cell}→{code}" for cell, code in sorted(
            self.labels_read.items(), key=lambda pair: (pair[1], pair[0])))
        return f"题目“{self.item.label}”的答案写的是选项文字，已按问卷换成代码：{shown}"

    def read(self, cell: str) -> tuple[int | None, str | None]:
        """(code, None) or (None, the problem in Chinese)."""
        text = _key(cell)
        try:
            number = float(text)
        except ValueError:
            return self._label(cell, text)
        if number % 1 != 0:
            return None, f"答案“{cell}”不是整数代码"
        if int(number) not in self.item.codes:
            return None, f"答案代码 {cell} 不在问卷规定的代码中（{self.allowed}）"
        return int(number), None

    def _label(self, cell: str, text: str) -> tuple[int | None, str | None]:
        code, problem = self._word(cell, text)
        if code is not None:
            self.labels_read[cell] = code
        return code, problem

    def _word(self, cell: str, text: str) -> tuple[int | None, str | None]:
        codes = self.codes.get(text)
        if codes is None and (both := re.fullmatch(
                r"[(（]?(\d+)[)）]?[.、=:：\-]?(\D+)|(\D+?)[(（](\d+)[)）]", text)):
            code, label = (both[1], both[2]) if both[1] else (both[4], both[3])
            named = self.codes.get(label)
            if named == {int(code)}:
                return int(code), None
            if named is not None and len(named) == 1:
                return None, (f"答案“{cell}”中的代码 {code} 与文字“{label}”不一致"
                              f"（题目“{self.item.label}”：{self.allowed}）")
        if codes is None:
            return None, (f"答案“{cell}”不是题目“{self.item.label}”的选项（{self.allowed}）：请填写"
                          "答案代码或选项文字；如是某个选项的另一种说法，请在问卷定义"
                          "（surveys/questionnaire.toml）的 answer_synonyms 中加入")
        if len(codes) > 1:
            options = "、".join(f"{a.code}={a.label}" for a in self.item.answers
                                if a.code in codes)
            return None, (f"答案“{cell}”在题目“{self.item.label}”中可对应多个选项（{options}），"
                          "无法确定：请改为答案代码，或在问卷定义中调整同义词")
        return next(iter(codes)), None


def read_per_distinct(cells: pl.Series, read: Callable[[str], tuple[object, str | None]],
                      dtype: pl.DataType) -> tuple[pl.Series, dict[str, str]]:
    """`read` of each distinct cell: the values (null where it gave a problem) and the problem
    of each cell that has one (a coded column of a million cells holds a handful of spellings)."""
    values: dict[str, object] = {}
    problems: dict[str, str] = {}
    for cell in cells.drop_nulls().unique().to_list():
        value, problem = read(cell)
        values[cell] = value
        if problem is not None:
            problems[cell] = problem
    return cells.replace_strict(values, default=None, return_dtype=dtype), problems


def mangled_id_problem(cells: pl.Series) -> str | None:
    """Why a respondent-id column has lost its ids to Excel, or None: ids of more than 15 digits
    whose digits past the 15th are all zeros (Excel keeps 15 significant digits of a number)."""
    text = cells.drop_nulls().cast(pl.String)
    long = text.filter(text.str.contains(rf"^\d{{{_EXCEL_DIGITS + 1},}}$"))
    if long.len() < 2 or long.len() < 0.5 * text.len():
        return None
    if not long.str.slice(_EXCEL_DIGITS).str.contains("^0+$").all():
        return None
    return (f"受访者编号有 {long.len()} 个超过15位、且第15位之后全是0（如“{long[0]}”）：Excel 把编号"
            "当作数字，只保留了15位有效数字，编号末尾几位已丢失精度，无法还原。请在原始系统中把编号列"
            "设为“文本”格式后重新导出（不要在 Excel 中打开后另存）")


def scientific_ids(column: str) -> pl.Expr:
    """Ids Excel turned into scientific notation (1.23457E+17): the id is gone."""
    return pl.col(column).cast(pl.String).str.contains(_SCIENTIFIC).fill_null(False)


SCIENTIFIC_ID = ("受访者编号“{}”是科学计数法：Excel 把编号当作数字，变成了科学计数法，编号已丢失精度，"
                 "无法还原。请在原始系统中把编号列设为“文本”格式后重新导出（不要在 Excel 中打开后另存）")
