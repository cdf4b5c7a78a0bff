"""Shared fixtures: the sample warehouse is built once per session and copied for each test."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import polars as pl
import pytest

from pipelines.core.allocator import keep_freed_memory
from pipelines.ingest.build import build_warehouse
from pipelines.ingest.readers import read_table
from pipelines.ingest.validation import Confirmations
from pipelines.scheme.definitions import Definitions, load_definitions
from pipelines.store.warehouse import Warehouse
from pipelines.synth.sample import SAMPLE_DIR

keep_freed_memory()     # as every entry point does (CLI, server, benchmarks)

# most test waves are a few of the sample province's 88 counties, taken from the stored 2025
# wave and relabelled: what an analyst confirms for such a file (tests/test_ingest_values.py
# checks both refusals without it)
PARTIAL = Confirmations(allow_missing_counties=True, allow_repeat=True)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="session")
def defs() -> Definitions:
    return load_definitions()


@pytest.fixture(scope="session")
def built_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("warehouse") / "sample.duckdb"
    build_warehouse(path)
    return path


@pytest.fixture
def db_copy(built_db, tmp_path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    shutil.copy(built_db, path)
    return path


@pytest.fixture(scope="session")
def counties(built_db) -> pl.DataFrame:
    """The sample province's counties (read once: no test changes the geography)."""
    with Warehouse.open(built_db, read_only=True) as warehouse:
        return warehouse.counties()


@pytest.fixture
def wh(db_copy):
    warehouse = Warehouse.open(db_copy)
    yield warehouse
    warehouse.close()


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sample_wave(wave: str = "2025", counties: int | None = None) -> pl.DataFrame:
    """A bundled survey wave as text columns with its Chinese headers."""
    path = SAMPLE_DIR / f"survey_{wave}.csv.gz"
    frame = read_table(path.read_bytes(), path.name).frame  # older waves are GBK
    older_spellings = {"样本编号": "受访者编号", "县区代码": "区县代码", "设计权重": "权重",
                       "乡镇街道": "乡镇(街道)"}
    frame = frame.rename({k: v for k, v in older_spellings.items() if k in frame.columns})
    if counties is not None:
        keep = frame["区县代码"].unique(maintain_order=True).head(counties)
        frame = frame.filter(pl.col("区县代码").is_in(keep.to_list()))
    return frame


def sample_indicators(wave: str = "2025") -> pl.DataFrame:
    return pl.read_csv(SAMPLE_DIR / f"indicators_{wave}.csv", infer_schema=False)


def csv_bytes(frame: pl.DataFrame, encoding: str = "utf-8") -> bytes:
    return frame.write_csv(line_terminator="\n").encode(encoding)
