"""Loading one file (a survey wave or an indicator sheet) into the warehouse, all or nothing.

Order matters: read → map headers → drop personal data → validate every row → only then one write
transaction (archive + audit + rows + wave pointer). A rejected file leaves the warehouse file
byte-for-byte as it was. Loading the same file again for the same wave is a no-op that says so.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
from tqdm import tqdm

from pipelines.core.limits import safe_file_name
from pipelines.core.parallel import in_background
from pipelines.core.problems import IngestError, Problem
from pipelines.core.waves import wave_display, wave_error
from pipelines.ingest.completeness import (
    missing_counties,
    missing_counties_message,
    repeated_wave,
    repeated_wave_message,
)
from pipelines.ingest.readers import IntegerColumns, RawTable, read_table
from pipelines.ingest.sheets import AUTOMATIC, LayoutChoice
from pipelines.ingest.validation import (
    NOTHING_CONFIRMED,
    Confirmations,
    Validated,
    validate_indicators,
    validate_survey,
)
from pipelines.scheme.definitions import Definitions
from pipelines.store.warehouse import ARCHIVE_CODEC, LoadRecord, Warehouse, current_user, pack_archive

KINDS = {"survey": "调查数据", "indicators": "工作指标"}


@dataclass
class LoadResult:
    status: str  # loaded | replaced | unchanged
    wave: str
    kind: str
    load_id: int
    rows: int
    seconds: float
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        what = f"{wave_display(self.wave)}{KINDS[self.kind]}"
        if self.status == "unchanged":
            return f"该文件已导入过{what}（导入编号 {self.load_id}），未做任何更改。"
        verb = "已替换" if self.status == "replaced" else "已导入"
        return f"{verb}{what}：{self.rows} 行，用时 {self.seconds:.2f} 秒（导入编号 {self.load_id}）。"


def ingest_bytes(wh: Warehouse, defs: Definitions, data: bytes, file_name: str, wave: str,
                 kind: str = "survey", *, replace: bool = False, loaded_by: str | None = None,
                 progress: bool = False, renames: dict[str, str] | None = None,
                 confirmed: Confirmations = NOTHING_CONFIRMED,
                 layout: LayoutChoice = AUTOMATIC) -> LoadResult:
    """Validate and load `data` (the content of `file_name`) as `kind` for `wave`; `confirmed`
    holds what the analyst confirmed (equal weights, missing counties, a repeated wave), `layout`
    the sheets and header row they chose."""
    started = time.perf_counter()
    file_name = safe_file_name(file_name)
    if kind not in KINDS:
        raise IngestError(file_name, [Problem(file_name, None, None,
                                              f"未知的数据类型“{kind}”（应为 survey 或 indicators）")])
    if message := wave_error(wave):
        raise IngestError(file_name, [Problem(file_name, None, None, message)])
    # the usual archive, compressed on another core from here on: while this one hashes the
    # file, and then reads it (left unused when the file turns out to be loaded already)
    packed = in_background(pack_archive, data)
    sha256 = hashlib.sha256(data).hexdigest()
    if (existing := wh.find_load(sha256, wave, kind)) is not None:
        return LoadResult("unchanged", wave, kind, existing, 0, time.perf_counter() - started)
    active = wh.active_load(wave, kind)
    if active is not None and not replace:
        raise IngestError(file_name, [Problem(
            file_name, None, None,
            f"{wave_display(wave)}的{KINDS[kind]}已存在（导入编号 {active}）。如需替换，请使用"
            "“替换”（命令行加 --replace）；原版本会保留，可以恢复。")])

    steps = tqdm(total=3, desc=f"导入 {file_name}", unit="步", disable=not progress, leave=False)
    steps.set_postfix_str("读取与校验")
    raw, validated = _read_and_validate(wh, defs, data, file_name, wave, kind, renames, confirmed,
                                        layout)
    steps.update(2)
    steps.set_postfix_str("写入")
    archive, sanitized = _archive_bytes(
        data, raw, validated, lambda: _read_as_text(data, file_name, renames, defs, kind, layout))
    record = LoadRecord(
        kind=kind, wave=wave, source_name=file_name, source_sha256=sha256,
        archive_sha256=sha256 if archive is data else hashlib.sha256(archive).hexdigest(),
        archive_bytes=packed.result() if archive is data else pack_archive(archive),
        archive_size=len(archive), archive_codec=ARCHIVE_CODEC,
        sanitized=sanitized, file_format=raw.file_format, encoding=raw.encoding,
        n_columns=len(raw.frame.columns),
        dropped_columns="、".join(f"{h}（{k}）" for h, k in validated.dropped_columns.items()),
        warnings="\n".join(validated.warnings), loaded_by=loaded_by or current_user())
    # the active load seen above is checked again inside the write transaction: another
    # analyst may have published this wave meanwhile
    load_id = wh.write_load(record, validated.frame, replaces=active if replace else None)
    steps.update()
    steps.close()
    return LoadResult("replaced" if active is not None else "loaded", wave, kind, load_id,
                      validated.frame.height, time.perf_counter() - started, validated.warnings)


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed validation and has not been written (the page's preview step)."""

    file_name: str
    wave: str
    kind: str
    rows: pl.DataFrame              # validated rows, warehouse layout
    warnings: list[str]
    dropped_columns: dict[str, str]
    already_loaded: int | None      # load id when this very file is already in for the wave
    replaces: int | None            # the active load it would replace


def column_mapping(defs: Definitions, kind: str, headers: list[str],
                   remembered: dict[str, str] | None = None) -> pl.DataFrame:
    """For each file header: the field it is taken as (an analyst's remembered choice first, else
    the aliases), with the field's Chinese name; `target` is null for a column that is not used."""
    from pipelines.core.headers import build_alias_index, match_headers
    from pipelines.ingest.validation import header_targets, target_label

    auto, _, _ = match_headers(headers, build_alias_index(header_targets(defs, kind)))
    remembered = remembered or {}
    rows = []
    for header in headers:
        target = remembered.get(header, auto.get(header))
        how = "已记住" if header in remembered else ("自动识别" if header in auto else "未使用")
        rows.append((header, target, target_label(defs, target) if target else None, how))
    return pl.DataFrame(rows, schema=["header", "target", "label", "how"], orient="row")


def _apply_renames(raw: RawTable, renames: dict[str, str] | None) -> RawTable:
    """Rename file headers to canonical field names chosen by the analyst (a field name matches
    itself); headers mapped to nothing are dropped from the check."""
    if not renames:
        return raw
    keep, dropped = _renamed_headers(raw.frame.columns, renames)
    return dataclasses.replace(raw, frame=raw.frame.drop(dropped).rename(keep))


def _renamed_headers(headers: list[str], renames: dict[str, str]) -> tuple[dict[str, str],
                                                                          list[str]]:
    """(header → the field the analyst chose, headers left out: mapped to nothing, or clashing
    with a chosen field's name)."""
    keep = {h: t for h, t in renames.items() if h in headers and t}
    unused = [h for h, t in renames.items() if h in headers and not t]
    taken = set(keep.values())
    return keep, unused + [h for h in headers if h not in keep and h in taken]


def _integer_headers(defs: Definitions, renames: dict[str, str] | None) -> IntegerColumns:
    """The headers of a survey file that the check will take as answer codes or ages (the same
    mapping as `validate_survey`'s, after the analyst's renames): see `IntegerColumns`."""
    from pipelines.core.headers import build_alias_index, match_headers
    from pipelines.ingest.validation import header_targets, integer_fields

    index = build_alias_index(header_targets(defs, "survey"))
    wanted = integer_fields(defs)

    def pick(headers: list[str]) -> list[str]:
        keep, dropped = _renamed_headers(headers, renames or {})
        named = {keep.get(h, h): h for h in headers if h not in dropped}
        mapped, _, _ = match_headers(list(named), index)
        return [named[h] for h, target in mapped.items() if target in wanted]

    return pick


def check_bytes(wh: Warehouse, defs: Definitions, data: bytes, file_name: str, wave: str,
                kind: str = "survey", *, renames: dict[str, str] | None = None,
                confirmed: Confirmations = NOTHING_CONFIRMED,
                layout: LayoutChoice = AUTOMATIC) -> CheckedFile:
    """Read and validate without writing; raises IngestError with every problem."""
    file_name = safe_file_name(file_name)
    if kind not in KINDS:
        raise IngestError(file_name, [Problem(file_name, None, None, f"未知的数据类型“{kind}”")])
    if message := wave_error(wave):
        raise IngestError(file_name, [Problem(file_name, None, None, message)])
    raw, validated = _read_and_validate(wh, defs, data, file_name, wave, kind, renames, confirmed,
                                        layout)
    sha256 = hashlib.sha256(data).hexdigest()
    return CheckedFile(file_name, wave, kind, validated.frame,
                       list(validated.warnings), dict(validated.dropped_columns),
                       wh.find_load(sha256, wave, kind), wh.active_load(wave, kind))


def _read_and_validate(wh: Warehouse, defs: Definitions, data: bytes, file_name: str, wave: str,
                       kind: str, renames: dict[str, str] | None = None,
                       confirmed: Confirmations = NOTHING_CONFIRMED,
                       layout: LayoutChoice = AUTOMATIC) -> tuple[RawTable, Validated]:
    """A survey file's answer and age columns are read as integers when they all are; a file
    that fails a check is read again as text, so every problem quotes its cell as written. What
    the reader detected (sheets, header row, skipped rows) leads the warnings."""
    integers = _integer_headers(defs, renames) if kind == "survey" else None
    index = _header_index(defs, kind, renames)
    raw = _apply_renames(read_table(data, file_name, integers, index, layout), renames)
    try:
        validated = _validate(wh, defs, raw, file_name, wave, kind, confirmed)
    except IngestError:
        if _all_text(raw):
            raise
        raw = _read_as_text(data, file_name, renames, defs, kind, layout)
        validated = _validate(wh, defs, raw, file_name, wave, kind, confirmed)
    if kind == "survey":
        _check_completeness(wh, defs, validated, file_name, wave, confirmed)
    validated.warnings[:0] = list(raw.notes)
    return raw, validated


def _check_completeness(wh: Warehouse, defs: Definitions, validated: Validated, file_name: str,
                        wave: str, confirmed: Confirmations) -> None:
    """Counties missing from the wave, or a stored wave repeated: refused unless confirmed,
    reported either way (see completeness.py)."""
    problems = []
    missing = missing_counties(validated.frame, wh.counties())
    if missing.height:
        message = missing_counties_message(missing, confirmed.allow_missing_counties)
        (validated.warnings if confirmed.allow_missing_counties else problems).append(message)
    items = [item.column for item in defs.questionnaire.items]
    if (repeat := repeated_wave(wh, validated.frame, wave, items)) is not None:
        message = repeated_wave_message(*repeat, validated.frame.height, confirmed.allow_repeat)
        (validated.warnings if confirmed.allow_repeat else problems).append(message)
    if problems:
        raise IngestError(file_name, [Problem(file_name, None, None, p) for p in problems])


def _validate(wh: Warehouse, defs: Definitions, raw: RawTable, file_name: str, wave: str,
              kind: str, confirmed: Confirmations) -> Validated:
    if kind == "survey":
        return validate_survey(raw, file_name, wave, defs, wh.counties(), confirmed)
    return validate_indicators(raw, file_name, wave, defs, wh.counties(),
                               history=_indicator_history(wh, wave))


def _indicator_history(wh: Warehouse, wave: str) -> pl.DataFrame:
    """indicator_id → median value over earlier waves (the scale a new sheet should have)."""
    frames = [wh.indicators(w) for w in wh.waves().get_column("wave").to_list() if w < wave]
    frames = [f for f in frames if f.height]
    if not frames:
        return pl.DataFrame(schema={"indicator_id": pl.String, "median": pl.Float64})
    return pl.concat([f.select("indicator_id", "value") for f in frames]).group_by(
        "indicator_id").agg(pl.col("value").median().alias("median"))


def _header_index(defs: Definitions, kind: str, renames: dict[str, str] | None,
                  ) -> dict[str, str]:
    """Normalised alias → field, with the analyst's chosen headers, to find a sheet's header."""
    from pipelines.core.headers import build_alias_index, normalise_header
    from pipelines.ingest.validation import header_targets

    index = build_alias_index(header_targets(defs, kind))
    for header, target in (renames or {}).items():
        if target:
            index[normalise_header(header)] = target
    return index


def _read_as_text(data: bytes, file_name: str, renames: dict[str, str] | None,
                  defs: Definitions | None = None, kind: str = "survey",
                  layout: LayoutChoice = AUTOMATIC) -> RawTable:
    """Every cell as text, with the analyst's renames."""
    index = _header_index(defs, kind, renames) if defs is not None else None
    return _apply_renames(read_table(data, file_name, header_index=index, choice=layout), renames)


def detect_layout(defs: Definitions, kind: str, data: bytes, file_name: str,
                  renames: dict[str, str] | None = None, layout: LayoutChoice = AUTOMATIC,
                  ) -> RawTable:
    """The file as the import assistant shows it before any check: its headers (found by the
    aliases and the analyst's mapping, or in the row they chose) and what the reader detected
    (sheets and their rows, header row, skipped rows, filled county cells, percent cells)."""
    file_name = safe_file_name(file_name)
    return read_table(data, file_name, header_index=_header_index(defs, kind, renames),
                      choice=layout)


def sheet_names(data: bytes, file_name: str) -> list[str]:
    """The sheets of a workbook (none for a text file or a web page), for the page's sheet
    choice; only the workbook's directory is read, not its sheets."""
    from pipelines.ingest.readers import SPREADSHEETS, is_workbook

    suffix = Path(file_name.lower()).suffix
    if suffix not in SPREADSHEETS or not is_workbook(data):
        return []
    import fastexcel

    try:
        return list(fastexcel.read_excel(data).sheet_names)
    except Exception:   # a broken workbook: the check reports it in Chinese
        return []


def _all_text(raw: RawTable) -> bool:
    return all(dtype == pl.String for dtype in raw.frame.schema.values())


def ingest_file(wh: Warehouse, defs: Definitions, path: Path, wave: str, kind: str = "survey",
                **options) -> LoadResult:
    """`ingest_bytes` for a file on disk."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(path.name, [Problem(path.name, None, None,
                                              f"无法读取文件：{exc.strerror or exc}")]) from None
    return ingest_bytes(wh, defs, data, path.name, wave, kind, **options)


def _archive_bytes(data: bytes, raw: RawTable, validated: Validated,
                   as_text: Callable[[], RawTable]) -> tuple[bytes, bool]:
    """The raw file as received, unless it holds columns the definitions do not keep (personal
    data, free text such as 备注) or is a workbook laid out for reading: then a UTF-8 CSV of the
    kept columns, as read (nothing that is not stored may be kept in the archive either)."""
    left_out = list(validated.dropped_columns) + list(validated.ignored_columns)
    if not left_out and raw.row_numbers is None:
        return data, False
    if not _all_text(raw):
        raw = as_text()   # the cells as written ("03", not 3)
    kept = raw.frame.drop([c for c in left_out if c in raw.frame.columns])
    return kept.write_csv(line_terminator="\n").encode("utf-8"), True


def read_counties_file(path: Path) -> pl.DataFrame:
    """The province's county list (区县代码, 区县名称, 市州代码, 市州名称, 常住人口, 城镇人口比例)."""
    frame = pl.read_csv(path, infer_schema=False)
    return frame.select(
        pl.col("区县代码").alias("county_code"), pl.col("区县名称").alias("county_name"),
        pl.col("市州代码").alias("city_code"), pl.col("市州名称").alias("city_name"),
        pl.col("常住人口").cast(pl.Int64).alias("population"),
        pl.col("城镇人口比例").cast(pl.Float64).alias("urban_share"))
