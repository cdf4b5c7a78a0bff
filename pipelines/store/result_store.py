"""Computed results kept on disk beside the warehouse, so a restarted dashboard paints at once.

Scoring every wave and the 10,000-draw risk table take seconds for a province and most of a minute
nationally; they depend only on the warehouse's data version, the wave, the draws and the code and
scheme that computed them. Each result is pickled under `<warehouse>.results/` with a name made of
a digest of all of those, so a publish, a scheme edit or a code change simply misses and recomputes.
Files are written to a temporary name and renamed: a reader never sees half a result. The folder
holds derived data only (county-level results, no respondents) and can be deleted at any time.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from pipelines.scheme.definitions import SURVEYS_DIR

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


def _file(db: Path, kind: str, parts: tuple) -> Path:
    key = hashlib.sha256(repr((kind, parts, code_fingerprint())).encode()).hexdigest()[:24]
    return store_dir(db) / f"{kind}-{key}.pkl"


def cached(db: Path, kind: str, parts: tuple, compute: Callable[[], T]) -> T:
    """The stored result for (kind, parts), else compute, store and return it. A damaged or
    unreadable file is recomputed; a store that cannot be written is skipped (results only)."""
    path = _file(db, kind, parts)
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError, TypeError):
        pass
    result = compute()
    try:
        path.parent.mkdir(exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        with partial.open("wb") as handle:
            pickle.dump(result, handle, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)
        _prune(path.parent)
    except OSError:
        pass
    return result


def _prune(folder: Path) -> None:
    """Keep the most recent KEEP results (older data versions are never asked for again)."""
    files = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in files[KEEP:]:
        old.unlink(missing_ok=True)
