"""Two analysts publishing the same new wave at once: one is published, the other is refused in
Chinese, and nothing is replaced or audited as 替换 that nobody chose to replace."""

from __future__ import annotations

import threading

import polars as pl

from pipelines.ingest.load import ingest_bytes
from pipelines.store.warehouse import Warehouse, WarehouseError
from tests.conftest import PARTIAL, csv_bytes, sample_wave


def _two_at_once(wh: Warehouse, defs, files: list[bytes], monkeypatch, replace=False):
    """Both publishes pass every check made before writing, then both write."""
    barrier = threading.Barrier(len(files), timeout=60)
    original = Warehouse.write_load

    def write_load(self, *args, **kwargs):
        barrier.wait()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Warehouse, write_load.__name__, write_load)
    outcomes: list[object] = [None] * len(files)

    def publish(n: int) -> None:
        try:
            outcomes[n] = ingest_bytes(wh, defs, files[n], f"分析员{n}.csv", "2026",
                                       loaded_by=f"分析员{n}", replace=replace, confirmed=PARTIAL)
        except Exception as exc:  # noqa: BLE001  (the test inspects whatever happened)
            outcomes[n] = exc

    threads = [threading.Thread(target=publish, args=(n,)) for n in range(len(files))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def _files():
    first = sample_wave("2025", counties=6).with_columns(pl.lit("2026").alias("调查期次"))
    second = sample_wave("2024", counties=6).with_columns(pl.lit("2026").alias("调查期次"))
    return [csv_bytes(first), csv_bytes(second)]


def test_two_publishes_of_one_new_wave(wh, defs, monkeypatch):
    outcomes = _two_at_once(wh, defs, _files(), monkeypatch)
    published = [o for o in outcomes if not isinstance(o, Exception)]
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(published) == 1 and published[0].status == "loaded"
    assert len(refused) == 1 and isinstance(refused[0], WarehouseError), refused
    message = str(refused[0])
    assert "刚刚已由" in message and "未写入" in message and "替换" in message
    winner = f"分析员{outcomes.index(published[0])}"
    assert winner in message
    loads = wh.loads("2026")
    assert loads.height == 1 and loads["status"].to_list() == ["active"]
    assert wh.active_load("2026", "survey") == published[0].load_id
    audit = wh.audit_log().filter(pl.col("wave") == "2026")
    assert audit["action"].to_list() == ["发布调查数据"]
    assert audit["by_user"].to_list() == [winner]


def test_the_same_file_twice_at_once(wh, defs, monkeypatch):
    data = _files()[0]
    outcomes = _two_at_once(wh, defs, [data, data], monkeypatch)
    refused = [o for o in outcomes if isinstance(o, Exception)]
    assert len(refused) == 1 and "同一文件" in str(refused[0]) and "未做任何更改" in str(refused[0])
    assert wh.loads("2026").height == 1


def test_two_replacements_of_one_version(wh, defs, monkeypatch):
    """Both chose to replace version X: the second would replace the first's new version,
    which nobody chose; it is refused."""
    base = sample_wave("2023", counties=6).with_columns(pl.lit("2026").alias("调查期次"))
    ingest_bytes(wh, defs, csv_bytes(base), "原版.csv", "2026", loaded_by="分析员", confirmed=PARTIAL)
    outcomes = _two_at_once(wh, defs, _files(), monkeypatch, replace=True)
    assert sum(isinstance(o, WarehouseError) for o in outcomes) == 1
    audit = wh.audit_log().filter(pl.col("wave") == "2026")["action"].to_list()
    assert audit == ["替换调查数据", "发布调查数据"]
