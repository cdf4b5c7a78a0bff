"""Problems found in an input file, worded in Chinese with file, row and column.

All problems are collected before anything is written, so an analyst fixes a file in one pass; the
report lists the first `PROBLEM_CAP` and counts the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

PROBLEM_CAP = 200


@dataclass(frozen=True)
class Problem:
    file: str
    row: int | None  # row as seen in Excel / a text editor (header = 1); None = whole file
    column: str | None  # the column's header as written in the file
    message: str
    sheet: str | None = None  # the workbook sheet of `row`, when several were read

    def describe(self) -> str:
        where = [f"文件“{self.file}”"]
        if self.sheet is not None:
            where.append(f"工作表“{self.sheet}”")
        if self.row is not None:
            where.append(f"第{self.row}行")
        if self.column is not None:
            where.append(f"“{self.column}”列")
        return "，".join(where) + f"：{self.message}"


class IngestError(Exception):
    """A file was rejected; nothing was written. `problems` says why, `total` counts all of them."""

    def __init__(self, file: str, problems: list[Problem], total: int | None = None):
        self.file = file
        self.problems = problems[:PROBLEM_CAP]
        self.total = total if total is not None else len(problems)
        super().__init__(self.report())

    def report(self) -> str:
        lines = [f"文件“{self.file}”未导入，共发现 {self.total} 个问题，数据仓库未做任何更改："]
        lines += [f"  {i}. {p.describe()}" for i, p in enumerate(self.problems, start=1)]
        if self.total > len(self.problems):
            lines.append(f"  ……另有 {self.total - len(self.problems)} 个问题未列出")
        return "\n".join(lines)


class ProblemList:
    """Collects problems up to the cap while still counting every one."""

    def __init__(self, file: str):
        self.file = file
        self.items: list[Problem] = []
        self.total = 0

    def add(self, message: str, row: int | None = None, column: str | None = None,
            sheet: str | None = None) -> None:
        self.total += 1
        if len(self.items) < PROBLEM_CAP:
            self.items.append(Problem(self.file, row, column, message, sheet))

    def add_rows(self, rows: list[int], column: str | None, message: str, count: int) -> None:
        """Add one problem per offending row (rows are the first few; count is how many in all)."""
        for row in rows:
            self.add(message, row=row, column=column)
        self.total += max(0, count - len(rows))

    def raise_if_any(self) -> None:
        if self.total:
            raise IngestError(self.file, self.items, self.total)
