"""Computed results kept on disk beside the warehouse, so a restarted dashboard paints at once.

Scoring every wave and the 10,000-draw risk table take seconds for a province and most of a minute
nationally; they depend only on the warehouse's content version, the wave, the draws and the code
and scheme that computed them. Each result is a folder `<kind>-<key>/` under `<warehouse>.results/`
whose name is a digest of all of those, so a publish, a scheme edit or a code change simply misses
and recomputes. The folder holds JSON and Arrow IPC files (pipelines/store/result_codec.py), never
pickles: nothing in it can run code, and any other file there (a planted `.pkl`, say) is ignored.
A folder is written under a temporary name and renamed: a reader never sees half a result. It holds
derived data only (county-level results, no respondents) and can be deleted at any time.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines.scheme.definitions import SURVEYS_DIR
from pipelines.store import result_codec

T = TypeVar("T")
PACKAGE = Path(__file__).resolve().parents[1]   # the whole pipelines package
KEEP = 24


@functools.cache
def code_fingerprint() -> str:
    """Digest of the pipeline code and the scheme/questionnaire definitions."""
    digest = hashlib.sha256()
    for path in sorted([*PACKAGE.rglob("*.py"), *SURVEYS_DIR.glob("*.toml")]):
        digest.update(str(path.relative_to(PACKAGE.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def store_dir(db: Path) -> Path:
    return Path(db).with_name(Path(db).name + ".results")


def _folder(db: Path, kind: str, parts: tuple) -> Path:
    key = hashlib.sha256(repr((kind, parts, code_fingerprint())).encode()).hexdigest()[:24]
    return store_dir(db) / f"{kind}-{key}"


def cached(db: Path, kind: str, parts: tuple, compute: Callable[[], T]) -> T:
    """The stored result for (kind, parts), else compute, store and return it. A damaged,
    unreadable or foreign folder is recomputed; a store that cannot be written is skipped."""
    folder = _folder(db, kind, parts)
    try:
        return result_codec.decode(folder)      # type: ignore[return-value]
    except result_codec.NotAResult:
        pass
    result = compute()
    try:
        _store(folder, result)
    except (OSError, TypeError):
        pass
    return result


def _store(folder: Path, result: object) -> None:
    folder.parent.mkdir(exist_ok=True)
    partial = folder.with_name(f".{folder.name}.{os.getpid()}-{threading.get_ident()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        result_codec.write(partial, result)
        if folder.exists():              # damaged, or another process stored it meanwhile
            shutil.rmtree(folder, ignore_errors=True)
        partial.rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    _prune(folder.parent)


def _prune(folder: Path) -> None:
    """Keep the most recent KEEP results (older data versions are never asked for again); files
    this code did not write (pickles of older versions, planted files) are removed."""
    results = []
    for path in folder.iterdir():
        if path.is_dir() and not path.name.startswith("."):
            results.append(path)
        elif path.suffix == ".pkl":
            path.unlink(missing_ok=True)
    results.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    for old in results[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
