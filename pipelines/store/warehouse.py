"""The DuckDB warehouse: schema, the process's single read-write connection, and loads.

Every load (a survey wave or an indicator sheet) gets a row in `loads` (audit: who, when, file
name, SHA-256, row counts, dropped personal-data columns) and keeps its rows under its own
`load_id`; a wave points at its active survey and indicator loads. Replacing a wave therefore only
moves a pointer, and the previous version stays recoverable (`rollback_wave`). Every write is one
transaction; readers see a wave completely or not at all.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from pipelines.core.waves import wave_display
from pipelines.scheme.definitions import Questionnaire

REPO_DIR = Path(__file__).resolve().parents[2]
DEFAULT_DB = REPO_DIR / "warehouse.duckdb"
SCHEMA_VERSION = 1

_SCHEMA = """
create table if not exists meta (key varchar primary key, value varchar not null);
create table if not exists cities (
    city_code varchar primary key, city_name varchar not null);
create table if not exists counties (
    county_code varchar primary key, county_name varchar not null,
    city_code varchar not null references cities (city_code),
    population bigint, urban_share double);
create table if not exists margins (
    county_code varchar not null references counties (county_code), age_group varchar not null,
    sex varchar not null, urban_rural varchar not null, population bigint not null,
    primary key (county_code, age_group, sex, urban_rural));
create sequence if not exists load_ids start 1;
create table if not exists raw_files (
    sha256 varchar primary key, size_bytes bigint not null, content blob not null,
    sanitized boolean not null, codec varchar);
create table if not exists loads (
    load_id integer primary key, kind varchar not null, wave varchar not null,
    source_name varchar not null, source_sha256 varchar not null,
    archive_sha256 varchar not null references raw_files (sha256),
    file_format varchar, encoding varchar, n_rows integer not null, n_columns integer not null,
    dropped_columns varchar, warnings varchar, loaded_by varchar not null,
    loaded_at timestamptz not null, status varchar not null, replaces_load_id integer);
create table if not exists waves (
    wave varchar primary key, survey_load_id integer, indicators_load_id integer,
    updated_at timestamptz not null);
create table if not exists responses (
    load_id integer not null, wave varchar not null, respondent_id varchar not null,
    county_code varchar not null, stratum varchar, psu varchar, weight double not null,
    age smallint, sex varchar, urban_rural varchar, township varchar, mode varchar,
    ssu varchar, psu_population double, ssu_population double);
create table if not exists indicators (
    load_id integer not null, wave varchar not null, county_code varchar not null,
    indicator_id varchar not null, value double);
create table if not exists decisions (
    county_code varchar not null, wave varchar not null, level varchar not null,
    action varchar not null, decided_on date, document varchar, recorded_by varchar not null,
    recorded_at timestamptz not null);
create table if not exists inspections (
    county_code varchar not null, wave varchar not null, inspected_on date,
    passed boolean not null, note varchar, recorded_by varchar not null,
    recorded_at timestamptz not null);
create table if not exists header_maps (
    source varchar not null, kind varchar not null, header varchar not null, target varchar,
    primary key (source, kind, header));
create or replace view current_indicators as
    select i.* from indicators i join waves w on i.load_id = w.indicators_load_id;
"""

LOAD_KINDS = {"survey": "survey_load_id", "indicators": "indicators_load_id"}
KIND_LABELS = {"survey": "调查数据", "indicators": "工作指标表"}
# also run when a read-write connection opens: warehouses built before auditing gain the table,
# and those built before archives were compressed gain raw_files.codec (null: stored as received)
AUDIT_DDL = ("create table if not exists audit (changed_at timestamptz not null, "
             "by_user varchar not null, action varchar not null, wave varchar, detail varchar, "
             "sha256 varchar); "
             "alter table if exists raw_files add column if not exists codec varchar")
# Arrow's Zstandard codec, level 1: a national wave's 113 MB CSV becomes 12 MB in about 0.2 s,
# on a background thread. LZ4 (used before; its archives still read back, the codec is stored
# per file) was faster but left 24 MB that DuckDB compressed once more at its next checkpoint,
# for 0.3 s; what Zstandard leaves DuckDB stores as it is.
ARCHIVE_CODEC = "zstd"
# official decisions gained dated periods, deadlines and notes (issue 22); older warehouses gain
# the columns when a read-write connection opens (null: not recorded)
DECISION_COLUMNS = ("period_start", "period_end", "deadline", "note")
DECISION_INSERT = "county_code, wave, level, action, decided_on, document, recorded_by, recorded_at"
DECISIONS_DDL = "; ".join(
    f"alter table if exists decisions add column if not exists {column} "
    f"{'varchar' if column == 'note' else 'date'}" for column in DECISION_COLUMNS)


def pack_archive(data: bytes) -> bytes:
    """The stored form of an archived file (see ARCHIVE_CODEC): writing 113 MB of a national
    wave into the warehouse took longer than compressing it and writing a tenth of it."""
    import pyarrow as pa  # not at import: the dashboard's start does not need it

    return pa.compress(data, codec=ARCHIVE_CODEC, asbytes=True)


def unpack_archive(content: bytes, codec: str | None, size: int) -> bytes:
    if codec is None:
        return bytes(content)
    import pyarrow as pa

    return pa.decompress(content, decompressed_size=size, codec=codec, asbytes=True)



RELEASES_DDL = (
    "create table if not exists releases (release_id integer not null, wave varchar not null, "
    "released_at timestamptz not null, released_by varchar not null, scheme_fingerprint varchar, "
    "survey_load_id integer, indicators_load_id integer, digest varchar, results blob, "
    "note varchar)")
MIGRATED_NOTE = "本功能启用前已有的期次，视为已发布"


def _migrate_releases(con: duckdb.DuckDBPyConnection, note: str = MIGRATED_NOTE) -> None:
    """The first read-write open after publication records were introduced: every wave that then
    had survey data counts as released (leaders saw it before), so an existing warehouse opens
    as it did. A warehouse built from surveys/ is migrated the same way at the end of its build
    (`mark_existing_released`): the files it was built from are the published record."""
    tables = {row[0] for row in con.sql("select table_name from information_schema.tables")
              .fetchall()}
    if "releases" in tables or "waves" not in tables:
        return
    columns = {row[0] for row in con.sql("select column_name from information_schema.columns "
                                         "where table_name = 'waves'").fetchall()}
    if "survey_load_id" not in columns:
        return
    indicators = "indicators_load_id" if "indicators_load_id" in columns else "null"
    con.sql(RELEASES_DDL)
    con.execute("insert into releases select row_number() over (order by wave), wave, ?, "
                f"'系统迁移', null, survey_load_id, {indicators}, null, null, ? from waves "
                "where survey_load_id is not null", [now(), note])


def _current_responses_view(cur: duckdb.DuckDBPyConnection) -> None:
    # `r.*` expands when the view is created: create it after the item columns exist
    cur.sql("create or replace view current_responses as select r.* from responses r "
            "join waves w on r.load_id = w.survey_load_id")


def _add_design_columns(con: duckdb.DuckDBPyConnection) -> None:
    """Warehouses built before two-stage designs were stored gain the second-stage and finite
    population columns (null: a one-stage design without fpc), and the view that lists them."""
    present = con.sql("select column_name from information_schema.columns "
                      "where table_name = 'responses'").fetchall()
    if not present or ("ssu",) in present:
        return
    con.sql("alter table responses add column ssu varchar; "
            "alter table responses add column psu_population double; "
            "alter table responses add column ssu_population double")
    _current_responses_view(con.cursor())


def _first(result: duckdb.DuckDBPyConnection) -> tuple | None:
    """First row of an executed query. DuckDB 2.0 wants every result drained before the cursor
    does anything else, so fetch all (these queries return a row or none)."""
    rows = result.fetchall()
    return rows[0] if rows else None


def _audit(cur: duckdb.DuckDBPyConnection, by: str, action: str, wave: str | None,
           detail: str | None, sha256: str | None = None) -> None:
    """One audit row, inside the caller's transaction when there is one."""
    cur.execute("insert into audit values (?, ?, ?, ?, ?, ?)",
                [now(), by, action, wave, detail, sha256])


class WarehouseError(RuntimeError):
    """A warehouse problem worded for the user (Chinese)."""

DISK_FULL_MARKERS = ("no space left on device", "disk is full", "disk full", "not enough space")


def is_disk_full(exc: BaseException) -> bool:
    """Whether an error is the disk (or a quota) running out, however DuckDB or the OS words it."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, duckdb.Error | OSError) and any(
        marker in str(exc).lower() for marker in DISK_FULL_MARKERS)


def disk_full_message(path: Path) -> str:
    return (f"磁盘空间不足：数据仓库 {path} 所在的磁盘已满，本次更改没有写入，数据仓库保持原样。"
            "请清理该磁盘（或把数据仓库移到空间更大的磁盘，用 --db 指定）后重试；"
            "导入一期数据通常需要约为文件大小两倍的空闲空间。")


@contextlib.contextmanager
def _transaction(cur: duckdb.DuckDBPyConnection, path: Path) -> Iterator[None]:
    """One write transaction. DuckDB rolls an IO-failed transaction back itself, so a second
    rollback would fail ("no transaction is active") and hide the real cause: a full disk is
    reported as such, in Chinese, and any other error passes through unchanged."""
    cur.sql("begin transaction")
    try:
        yield
        cur.sql("commit")
    except BaseException as exc:
        with contextlib.suppress(duckdb.Error):
            cur.sql("rollback")
        if is_disk_full(exc):
            raise WarehouseError(disk_full_message(path)) from exc
        raise



def now() -> datetime:
    return datetime.now(timezone.utc)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


@dataclass(frozen=True)
class LoadRecord:
    """What `write_load` needs to know about a validated file."""

    kind: str
    wave: str
    source_name: str
    source_sha256: str
    archive_sha256: str     # of the archived file itself, as `archived_file` returns it
    archive_bytes: bytes    # as stored: compressed with `archive_codec` (None: as is)
    archive_size: int       # bytes of the archived file itself
    archive_codec: str | None
    sanitized: bool
    file_format: str
    encoding: str | None
    n_columns: int
    dropped_columns: str
    warnings: str
    loaded_by: str


class Warehouse:
    """The process's read-write connection; use `cursor()` in each thread."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, path: Path):
        self._con = connection
        self.path = path
        self._read_only = False
        self._write_lock = threading.Lock()
        self._memo: dict[tuple, tuple[int, object]] = {}  # (what, args) → (data version, value)

    @classmethod
    def open(cls, path: Path | str = DEFAULT_DB, *, read_only: bool = False) -> "Warehouse":
        path = Path(path)
        if read_only and not path.exists():
            raise WarehouseError(f"数据仓库 {path} 不存在：请先运行 python -m pipelines build")
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise WarehouseError(
                    f"数据仓库 {path} 正被另一个程序（例如正在运行的看板）使用。"
                    "请在看板的“数据管理”页上传，或先关闭看板，或用 --db 指定另一个文件。") from None
            if "permission denied" in str(exc).lower():
                raise WarehouseError(
                    f"没有权限{'读取' if read_only else '修改'}数据仓库 {path}：修改数据须由有写入"
                    "权限的账户（通常是运行看板的服务账户）进行，或由分析人员在看板的“数据管理”页"
                    "上传。") from None
            raise WarehouseError(f"无法打开数据仓库 {path}：{exc}") from None
        except duckdb.Error as exc:
            raise WarehouseError(f"数据仓库 {path} 无法打开，文件可能已损坏：{exc}") from None
        if not read_only:
            con.sql(AUDIT_DDL)
            con.sql(DECISIONS_DDL)
            _add_design_columns(con)
            _migrate_releases(con)
        warehouse = cls(con, path)
        warehouse._read_only = read_only
        return warehouse

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> "Warehouse":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared across threads)."""
        return self._con.cursor()

    # -- schema -------------------------------------------------------------------------------

    def is_initialised(self) -> bool:
        cur = self.cursor()
        exists = _first(cur.execute("select count(*) from information_schema.tables "
                                     "where table_name = 'meta'"))[0]
        return bool(exists) and _first(cur.execute(
            "select count(*) from meta where key = 'province'"))[0] > 0

    def create_schema(self, questionnaire: Questionnaire) -> None:
        """Create tables and one answer column per questionnaire item (idempotent)."""
        cur = self.cursor()
        cur.sql(_SCHEMA)
        cur.sql(AUDIT_DDL)
        cur.sql(DECISIONS_DDL)
        for item in questionnaire.items:
            cur.sql(f'alter table responses add column if not exists "{item.column}" smallint')
        _current_responses_view(cur)
        cur.execute("insert or replace into meta values ('schema_version', ?)",
                    [str(SCHEMA_VERSION)])

    def meta(self, key: str) -> str | None:
        row = _first(self.cursor().execute("select value from meta where key = ?", [key]))
        return row[0] if row else None

    def data_version(self) -> int:
        """Bumped by every write: page caches key on it."""
        return int(self.meta("data_version") or 0)

    # -- reads ----------------------------------------------------------------------------------

    def _memoised(self, key: tuple, compute):
        """`compute()` once per data version: every page view asks for the wave list and cache
        keys, and a national wave list counts 11 million rows."""
        version = self.data_version()
        hit = self._memo.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = compute()
        self._memo[key] = (version, value)
        return value

    def content_version(self, wave: str) -> str:
        """What results for `wave` depend on, as a digest: the loads of every wave up to it (the
        order the scored history uses) and the official decisions, inspections and counties.
        Publishing a later wave leaves it unchanged, so earlier results stay cached. A load is
        named by its id *and* its time and file digest: a restore rewinds the id sequence, so the
        next publish reuses an id, and a key made of ids alone served the undone publish's
        results (issue 19)."""
        return self._memoised(("content_version", wave), lambda: self._content_version(wave))

    def _content_version(self, wave: str) -> str:
        import hashlib

        cur = self.cursor()
        parts = []
        for column in LOAD_KINDS.values():
            parts.append(cur.execute(
                f"select w.wave, l.load_id, cast(l.loaded_at as varchar), l.archive_sha256, "
                f"l.n_rows from waves w join loads l on l.load_id = w.{column} "
                "where w.wave <= ? order by w.wave", [wave]).fetchall())
        for table in ("decisions", "inspections", "counties"):
            # as text: timestamps with a time zone would need pytz in Python
            parts.append(cur.sql(f"select cast(columns(*) as varchar) from {table} "
                                 "order by all").fetchall())
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]

    def counties(self) -> pl.DataFrame:
        return self.cursor().sql(
            "select c.county_code, c.county_name, c.city_code, t.city_name, c.population, "
            "c.urban_share from counties c join cities t using (city_code) "
            "order by c.county_code").pl()

    def responses(self, wave: str, county: str | None = None) -> pl.DataFrame:
        """The active survey rows of a wave (empty when the wave has none), or of one county."""
        where, params = ("wave = ?", [wave]) if county is None else \
            ("wave = ? and county_code = ?", [wave, county])
        # one chunk per column: DuckDB hands over a chunk per row group, and a frame whose new
        # columns are chunked differently re-aligns every column on each later select
        return self.cursor().sql(f"select * exclude (load_id) from current_responses where {where} "
                                 "order by county_code, respondent_id", params=params).pl() \
            .rechunk()

    def indicators(self, wave: str) -> pl.DataFrame:
        """The active indicator rows of a wave, long: county_code, indicator_id, value."""
        return self.cursor().sql("select county_code, indicator_id, value from current_indicators "
                                 "where wave = ? order by county_code, indicator_id",
                                 params=[wave]).pl()

    def decisions(self) -> pl.DataFrame:
        """Official decisions recorded by analysts (挂牌/摘帽, 通报批评, 督办, 约谈 …), with their
        dated period and deadline where recorded (null in a warehouse opened read-only from
        before those columns)."""
        frame = self.cursor().sql("select * from decisions "
                                  "order by wave, county_code, recorded_at").pl()
        missing = [c for c in DECISION_COLUMNS if c not in frame.columns]
        frame = frame.with_columns(pl.lit(None, pl.String if c == "note" else pl.Date).alias(c)
                                   for c in missing)
        return frame.select("county_code", "wave", "level", "action", "decided_on", "document",
                            *DECISION_COLUMNS, "recorded_by", "recorded_at")

    def inspections(self) -> pl.DataFrame:
        """Inspection (验收) results recorded by analysts; the latest per county and wave counts."""
        return self.cursor().sql(
            "select county_code, wave, inspected_on, passed, note from inspections "
            "qualify row_number() over (partition by county_code, wave "
            "order by recorded_at desc) = 1 order by wave, county_code").pl()

    def margins(self) -> pl.DataFrame:
        return self.cursor().sql("select * from margins order by all").pl()

    def waves(self) -> pl.DataFrame:
        """One row per wave: respondents, counties covered, indicator rows, last change."""
        return self._memoised(("waves",), self._waves)

    def _waves(self) -> pl.DataFrame:
        return self.cursor().sql("""
            select w.wave,
                   (select count(*) from responses r where r.load_id = w.survey_load_id)
                       as respondents,
                   (select count(distinct county_code) from responses r
                     where r.load_id = w.survey_load_id) as counties,
                   (select count(*) from indicators i where i.load_id = w.indicators_load_id)
                       as indicator_values,
                   w.survey_load_id, w.indicators_load_id, w.updated_at
            from waves w order by w.wave""").pl()

    def releases(self) -> pl.DataFrame:
        """Publication records (对领导发布), newest first, without the frozen result tables. A
        warehouse not yet migrated (opened read-only) counts every wave with survey data."""
        return self._memoised(("releases",), self._releases)

    def _releases(self) -> pl.DataFrame:
        cur = self.cursor()
        try:
            return cur.sql("select release_id, wave, released_at, released_by, scheme_fingerprint, "
                           "survey_load_id, indicators_load_id, digest, note, "
                           "results is not null as frozen from releases "
                           "order by released_at desc, release_id desc").pl()
        except duckdb.CatalogException:       # read-only, before the migration has run
            return cur.sql("select row_number() over (order by wave) as release_id, wave, "
                               "updated_at as released_at, '系统迁移' as released_by, "
                               "null::varchar as scheme_fingerprint, survey_load_id, "
                               "indicators_load_id, null::varchar as digest, ? as note, "
                           "false as frozen from waves where survey_load_id is not null",
                           params=[MIGRATED_NOTE]).pl()

    def mark_existing_released(self, note: str) -> None:
        """Count every wave now in the warehouse as released (a build from published files)."""
        with self._write_lock:
            _migrate_releases(self.cursor(), note)

    def released_waves(self) -> list[str]:
        """Waves leaders (查看者) may see, oldest first."""
        return sorted(set(self.releases()["wave"].to_list()))

    def released_result(self, wave: str) -> pl.DataFrame | None:
        """The result table frozen by the latest release of `wave` (None: none was frozen)."""
        try:
            row = _first(self.cursor().execute(
                "select results from releases where wave = ? order by released_at desc, "
                "release_id desc limit 1", [wave]))
        except duckdb.CatalogException:
            return None
        if row is None or row[0] is None:
            return None
        import io

        return pl.read_ipc(io.BytesIO(bytes(row[0])))

    def record_release(self, wave: str, by: str, *, scheme_fingerprint: str, digest: str,
                       results: pl.DataFrame, loads: tuple[int, int]) -> int:
        """Store an official publication of `wave` (one transaction, audited): who, when, the
        scheme and data versions, the digest and the frozen results. `loads` are the survey and
        indicator loads the results were computed from; a wave changed since is refused."""
        import io

        buffer = io.BytesIO()
        results.write_ipc(buffer, compression="zstd")
        with self._write_lock:
            cur = self.cursor()
            _migrate_releases(cur)
            with _transaction(cur, self.path):
                row = _first(cur.execute("select survey_load_id, indicators_load_id from waves "
                                         "where wave = ?", [wave]))
                if row is None or row[0] is None or row[1] is None:
                    raise WarehouseError(f"{wave_display(wave)}的调查数据或工作指标表尚未导入，"
                                         "数据不完整，不能对领导发布。")
                if tuple(row) != tuple(loads):
                    raise WarehouseError(f"{wave_display(wave)}的数据刚刚有变动，未发布。请重新核对"
                                         "后再发布。")
                release_id = _first(cur.execute("select coalesce(max(release_id), 0) + 1 "
                                                "from releases"))[0]
                cur.execute("insert into releases values (?, ?, ?, ?, ?, ?, ?, ?, ?, null)",
                            [release_id, wave, now(), by, scheme_fingerprint, row[0], row[1],
                             digest, buffer.getvalue()])
                _audit(cur, by, "对领导发布", wave,
                       f"发布编号 {release_id}：调查导入编号 {row[0]}，指标导入编号 {row[1]}，"
                       f"方案 {scheme_fingerprint}，结果摘要 {digest[:16]}", digest)
                cur.sql("insert into meta values ('data_version', '1') on conflict (key) do update "
                        "set value = cast(cast(meta.value as integer) + 1 as varchar)")
            return release_id

    def loads(self, wave: str | None = None) -> pl.DataFrame:
        sql = ("select load_id, kind, wave, source_name, source_sha256, n_rows, status, "
               "loaded_by, loaded_at, replaces_load_id, dropped_columns, warnings from loads")
        if wave is None:
            return self.cursor().sql(sql + " order by load_id").pl()
        return self.cursor().sql(sql + " where wave = ? order by load_id", params=[wave]).pl()

    def active_load(self, wave: str, kind: str) -> int | None:
        row = _first(self.cursor().execute(f"select {LOAD_KINDS[kind]} from waves where wave = ?",
                                            [wave]))
        return row[0] if row else None

    def find_load(self, source_sha256: str, wave: str, kind: str) -> int | None:
        row = _first(self.cursor().execute(
            "select load_id from loads where source_sha256 = ? and wave = ? and kind = ? "
            "and status = 'active'", [source_sha256, wave, kind]))
        return row[0] if row else None

    # -- writes ---------------------------------------------------------------------------------

    def write_load(self, record: LoadRecord, rows: pl.DataFrame, *,
                   replaces: int | None = None) -> int:
        """Store a validated file in one transaction: archive, audit row, rows, wave pointer.

        `replaces` is the active load the caller chose to replace (None: the wave must have no
        active load of this kind). It is checked inside the transaction, so of two analysts
        publishing the same new wave at once the second is refused, and nothing is ever
        replaced (or audited as 替换) that nobody chose to replace."""
        with self._write_lock:
            cur = self.cursor()
            with _transaction(cur, self.path):
                previous = _first(cur.execute(f"select {LOAD_KINDS[record.kind]} from waves "
                                               "where wave = ?", [record.wave]))
                previous_id = previous[0] if previous else None
                if previous_id != replaces:
                    raise WarehouseError(self._publish_conflict(cur, record, previous_id))
                load_id = _first(cur.execute("select nextval('load_ids')"))[0]
                # looked up first: a 24 MB parameter in `insert … select … where not exists`
                # costs DuckDB six times as long as in `insert … values`
                if _first(cur.execute("select 1 from raw_files where sha256 = ?",
                                      [record.archive_sha256])) is None:
                    cur.execute("insert into raw_files (sha256, size_bytes, content, sanitized, "
                                "codec) values (?, ?, ?, ?, ?)",
                                [record.archive_sha256, record.archive_size, record.archive_bytes,
                                 record.sanitized, record.archive_codec])
                cur.execute(
                    "insert into loads values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                    "'active', ?)",
                    [load_id, record.kind, record.wave, record.source_name, record.source_sha256,
                     record.archive_sha256, record.file_format, record.encoding, rows.height,
                     record.n_columns, record.dropped_columns, record.warnings, record.loaded_by,
                     now(), previous_id])
                staged = rows.with_columns(pl.lit(load_id, dtype=pl.Int32).alias("load_id"))
                cur.register("staged_rows", staged)
                table = "responses" if record.kind == "survey" else "indicators"
                # rows written in parallel, in any order (every read of them has an ORDER BY):
                # kept in order, DuckDB re-writes a large insert at the next checkpoint, which
                # took longer than the insert itself for a national wave
                cur.sql("set preserve_insertion_order = false")
                try:
                    cur.sql(f"insert into {table} by name select * from staged_rows")
                finally:
                    cur.sql("reset preserve_insertion_order")
                cur.unregister("staged_rows")
                if previous_id is not None:
                    cur.execute("update loads set status = 'superseded' where load_id = ?",
                                [previous_id])
                self._point_wave(cur, record.wave, record.kind, load_id)
                _audit(cur, record.loaded_by,
                       ("替换" if previous_id is not None else "发布") + KIND_LABELS[record.kind],
                       record.wave, f"{record.source_name}：{rows.height} 行，导入编号 {load_id}"
                       + (f"（替换导入编号 {previous_id}）" if previous_id is not None else ""),
                       record.source_sha256)
            return load_id

    @staticmethod
    def _publish_conflict(cur: duckdb.DuckDBPyConnection, record: LoadRecord,
                          active: int | None) -> str:
        """Why a publish was refused: the wave changed since the analyst looked at it."""
        what = f"{wave_display(record.wave)}的{KIND_LABELS[record.kind]}"
        if active is None:
            return (f"{what}已被撤回或回滚，与您预览时不同，未做更改。请重新上传并核对后再发布。")
        row = _first(cur.execute("select loaded_by, strftime(loaded_at, '%Y-%m-%d %H:%M:%S'), "
                                 "source_name, source_sha256 from loads where load_id = ?",
                                 [active]))
        by, at, name, sha = row if row else ("他人", "", "", "")
        if sha == record.source_sha256:
            return (f"同一文件“{name}”刚刚已由 {by} 于 {at} 发布为{what}（导入编号 {active}），"
                    "本次未做任何更改。")
        return (f"{what}刚刚已由 {by} 于 {at} 发布（文件“{name}”，导入编号 {active}），"
                "本次发布未写入，以免覆盖。请先在“导入记录”中核对该版本；确需以本文件替换，"
                "请重新上传并勾选“替换”（命令行加 --replace），原版本会保留，可以恢复。")

    def rollback_wave(self, wave: str, kind: str = "survey", *, by: str | None = None) -> int:
        """Re-activate the load that the active one replaced; returns its id."""
        with self._write_lock:
            cur = self.cursor()
            row = _first(cur.execute("select l.load_id, l.replaces_load_id from loads l join waves w "
                                      f"on l.load_id = w.{LOAD_KINDS[kind]} where w.wave = ?",
                                      [wave]))
            if row is None or row[1] is None:
                raise WarehouseError(f"期次 {wave} 没有可恢复的上一版本")
            current, previous = row
            with _transaction(cur, self.path):
                cur.execute("update loads set status = 'rolled_back' where load_id = ?", [current])
                cur.execute("update loads set status = 'active' where load_id = ?", [previous])
                self._point_wave(cur, wave, kind, previous)
                _audit(cur, by or current_user(), f"回滚{KIND_LABELS[kind]}", wave,
                       f"导入编号 {current} → {previous}")
            return previous

    def withdraw_wave(self, wave: str, kind: str = "survey", *, reason: str,
                      by: str | None = None) -> int:
        """撤回: take a wave's published load out of use without a backup restore. The wave then
        shows no data of this kind; the load, its rows and its archived file stay in history
        (status 'withdrawn'), audited with the reason. Publishing the wave again starts afresh.
        Returns the withdrawn load's id."""
        if not reason.strip():
            raise WarehouseError("撤回须写明原因（会记入操作记录）")
        with self._write_lock:
            cur = self.cursor()
            with _transaction(cur, self.path):
                row = _first(cur.execute(f"select {LOAD_KINDS[kind]} from waves where wave = ?",
                                         [wave]))
                if row is None or row[0] is None:
                    raise WarehouseError(f"{wave_display(wave)}没有已发布的{KIND_LABELS[kind]}，"
                                         "无可撤回")
                load_id = row[0]
                cur.execute("update loads set status = 'withdrawn' where load_id = ?", [load_id])
                self._point_wave(cur, wave, kind, None)
                _audit(cur, by or current_user(), f"撤回{KIND_LABELS[kind]}", wave,
                       f"导入编号 {load_id}；原因：{reason.strip()}")
            return load_id

    def _point_wave(self, cur: duckdb.DuckDBPyConnection, wave: str, kind: str,
                    load_id: int | None) -> None:
        column = LOAD_KINDS[kind]
        cur.execute(f"insert into waves (wave, {column}, updated_at) values (?, ?, ?) "
                    f"on conflict (wave) do update set {column} = excluded.{column}, "
                    "updated_at = excluded.updated_at", [wave, load_id, now()])
        cur.sql("insert into meta values ('data_version', '1') on conflict (key) do update "
                "set value = cast(cast(meta.value as integer) + 1 as varchar)")

    def header_map(self, source: str, kind: str) -> dict[str, str | None]:
        """The column mapping an analyst chose for files from `source` (file header → field)."""
        try:
            rows = self.cursor().execute("select header, target from header_maps where source = ? "
                                         "and kind = ?", [source, kind]).fetchall()
        except duckdb.CatalogException:  # a warehouse built before mappings were remembered
            return {}
        return dict(rows)

    def save_header_map(self, source: str, kind: str, mapping: dict[str, str | None],
                        by: str | None = None) -> None:
        with self._write_lock:
            cur = self.cursor()
            cur.sql("create table if not exists header_maps (source varchar not null, "
                    "kind varchar not null, header varchar not null, target varchar, "
                    "primary key (source, kind, header))")
            with _transaction(cur, self.path):
                for header, target in mapping.items():
                    cur.execute("insert or replace into header_maps values (?, ?, ?, ?)",
                                [source, kind, header, target])
                _audit(cur, by or current_user(), "保存列对应关系", None,
                       f"来源“{source}”（{KIND_LABELS.get(kind, kind)}）：{len(mapping)} 列")

    def layout_choice(self, source: str, kind: str) -> tuple[list[str], int | None]:
        """The sheets and header row an analyst chose for files from `source` ([] and None:
        found automatically), remembered like the column mapping."""
        try:
            row = self.cursor().execute("select sheets, header_row from layout_choices where "
                                        "source = ? and kind = ?", [source, kind]).fetchone()
        except duckdb.CatalogException:  # nothing remembered yet
            return [], None
        if row is None:
            return [], None
        return [name for name in (row[0] or "").split("\n") if name], row[1]

    def save_layout_choice(self, source: str, kind: str, sheets: list[str],
                           header_row: int | None, by: str | None = None) -> None:
        with self._write_lock:
            cur = self.cursor()
            cur.sql("create table if not exists layout_choices (source varchar not null, "
                    "kind varchar not null, sheets varchar, header_row integer, "
                    "primary key (source, kind))")
            with _transaction(cur, self.path):
                cur.execute("insert or replace into layout_choices values (?, ?, ?, ?)",
                            [source, kind, "\n".join(sheets), header_row])
                shown = "、".join(sheets) or "全部工作表"
                row = f"表头第{header_row}行" if header_row else "表头自动识别"
                _audit(cur, by or current_user(), "保存导入版式", None,
                       f"来源“{source}”（{KIND_LABELS.get(kind, kind)}）：{shown}，{row}")

    def record_decision(self, county_code: str, wave: str, level: str, action: str,
                        decided_on: str | None, document: str | None, by: str) -> None:
        """An official 挂牌/摘帽 decision entered by an analyst (one transaction, audited)."""
        self._record(f"insert into decisions ({DECISION_INSERT}) values (?, ?, ?, ?, ?, ?, ?, ?)",
                     [county_code, wave, level, action, decided_on or None, document or None, by,
                      now()], by, "录入正式决定", wave,
                     f"{county_code} {level}{action}" + (f"（{document}）" if document else ""))

    def record_decisions(self, rows: pl.DataFrame, by: str, file_name: str) -> int:
        """Imported decisions (validated by pipelines/ingest/decisions.py), all in one
        transaction and one audit entry; returns how many."""
        columns = ["county_code", "wave", "level", "action", "decided_on", "document",
                   *DECISION_COLUMNS]
        stamp = now()
        with self._write_lock:
            cur = self.cursor()
            with _transaction(cur, self.path):
                for row in rows.select(columns).iter_rows():
                    cur.execute(f"insert into decisions ({', '.join(columns)}, recorded_by, "
                                f"recorded_at) values ({', '.join(['?'] * (len(columns) + 2))})",
                                [*row, by, stamp])
                _audit(cur, by, "导入正式决定", None, f"文件“{file_name}”：{rows.height} 条")
                cur.sql("insert into meta values ('data_version', '1') on conflict (key) do update "
                        "set value = cast(cast(meta.value as integer) + 1 as varchar)")
        return rows.height

    def record_inspection(self, county_code: str, wave: str, passed: bool, inspected_on: str | None,
                          note: str | None, by: str) -> None:
        """An inspection (验收) result entered by an analyst; the latest per county and wave counts."""
        self._record("insert into inspections values (?, ?, ?, ?, ?, ?, ?)",
                     [county_code, wave, inspected_on or None, passed, note or None, by, now()],
                     by, "录入验收结果", wave, f"{county_code} {'合格' if passed else '不合格'}")

    def record_audit(self, action: str, by: str, *, wave: str | None = None,
                     detail: str | None = None, sha256: str | None = None) -> None:
        """An audit entry for a change made outside the methods above (e.g. a restore)."""
        with self._write_lock:
            _audit(self.cursor(), by, action, wave, detail, sha256)

    def audit_log(self) -> pl.DataFrame:
        """Every data change, newest first: when, who, what, which wave, details, file SHA-256."""
        cur = self.cursor()
        try:
            return cur.sql("select changed_at as at, by_user, action, wave, detail, sha256 from audit "
                           "order by changed_at desc").pl()
        except duckdb.CatalogException:       # a read-only warehouse built before auditing
            return pl.DataFrame(schema={"at": pl.Datetime("us", "UTC"), "by_user": pl.String,
                                        "action": pl.String, "wave": pl.String,
                                        "detail": pl.String, "sha256": pl.String})

    def _record(self, sql: str, values: list, by: str, action: str, wave: str,
                detail: str) -> None:
        with self._write_lock:
            cur = self.cursor()
            with _transaction(cur, self.path):
                cur.execute(sql, values)
                _audit(cur, by, action, wave, detail)
                cur.sql("insert into meta values ('data_version', '1') on conflict (key) do update "
                        "set value = cast(cast(meta.value as integer) + 1 as varchar)")

    def archived_file(self, load_id: int) -> tuple[str, bytes]:
        """The archived bytes of a load's file (sanitized when personal data was dropped)."""
        result = self.cursor().execute(
            "select l.source_name, f.* from loads l join raw_files f "
            "on f.sha256 = l.archive_sha256 where l.load_id = ?", [load_id])
        names = [column[0] for column in result.description]
        row = _first(result)
        if row is None:
            raise WarehouseError(f"没有编号为 {load_id} 的导入记录")
        found = dict(zip(names, row, strict=False))   # no codec: from before compression, opened read-only
        return found["source_name"], unpack_archive(found["content"], found.get("codec"),
                                                    found["size_bytes"])
