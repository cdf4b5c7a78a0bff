"""Results as data that cannot execute: a JSON tree plus Arrow IPC files, checked by digest.

The result store used to pickle results, and unpickling runs whatever a file says: a file planted
in the results folder ran a command as the server's user on the first page load (issue 19). Here a
result is a JSON tree whose nodes are plain values, tuples, dicts, Polars frames and NumPy arrays
(each in its own Arrow IPC file, named by the tree) and the few result dataclasses listed in
`_classes` (rebuilt field by field; any other name is refused). Reading verifies every part's
SHA-256 against the manifest before parsing it, so a damaged part is a miss, never a wrong number.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import io
import json
import re
from pathlib import Path

import numpy as np
import polars as pl

FORMAT = 1
MANIFEST = "manifest.json"
_PART = re.compile(r"p\d{1,6}\.arrow")      # the only part names a manifest may refer to
_DTYPES = {"float64", "float32", "int64", "int32", "int16", "int8", "bool", "uint8", "uint32",
           "uint64"}


class NotAResult(ValueError):
    """The stored files are not a result this code wrote (damaged, planted or from elsewhere)."""


@functools.cache
def _classes() -> dict[str, type]:
    """The result types a stored tree may name: nothing else is ever constructed."""
    from pipelines.ranking.listing import ListingResult
    from pipelines.scheme.definitions import Component
    from pipelines.stats.model import ScoreModel
    from pipelines.stats.wave_scores import WaveScores

    return {cls.__name__: cls for cls in (WaveScores, ScoreModel, Component, ListingResult)}


def _frame_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    return buffer.getvalue()


def encode(value: object) -> tuple[dict, dict[str, bytes]]:
    """The manifest (JSON-able) and the part files of `value`."""
    parts: dict[str, bytes] = {}

    def part(data: bytes) -> str:
        name = f"p{len(parts)}.arrow"
        parts[name] = data
        return name

    def enc(v: object) -> object:
        if v is None or isinstance(v, bool | str):
            return v
        if isinstance(v, int | float):
            return v
        if isinstance(v, np.generic):
            return enc(v.item())
        if isinstance(v, list):
            return [enc(x) for x in v]
        if isinstance(v, tuple):
            return {"t": "tuple", "v": [enc(x) for x in v]}
        if isinstance(v, dict):
            return {"t": "dict", "v": [[enc(k), enc(x)] for k, x in v.items()]}
        if isinstance(v, pl.DataFrame):
            return {"t": "frame", "file": part(_frame_bytes(v))}
        if isinstance(v, np.ndarray):
            if v.dtype.name not in _DTYPES:
                raise TypeError(f"array of {v.dtype} cannot be stored")
            flat = pl.DataFrame({"v": np.ascontiguousarray(v).reshape(-1)})
            return {"t": "array", "dtype": v.dtype.name, "shape": list(v.shape),
                    "file": part(_frame_bytes(flat))}
        if dataclasses.is_dataclass(v) and type(v).__name__ in _classes() \
                and _classes()[type(v).__name__] is type(v):
            return {"t": "obj", "cls": type(v).__name__,
                    "f": {f.name: enc(getattr(v, f.name)) for f in dataclasses.fields(v)}}
        raise TypeError(f"{type(v).__name__} cannot be stored as a result")

    tree = enc(value)
    manifest = {"format": FORMAT, "tree": tree,
                "digests": {name: hashlib.sha256(data).hexdigest() for name, data in parts.items()}}
    return manifest, parts


def decode(folder: Path) -> object:
    """The result stored in `folder` (written by `write`); NotAResult when anything is off."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotAResult(str(exc)) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("digests"), dict):
        raise NotAResult("unknown manifest")
    digests: dict = manifest["digests"]

    def read_part(name: object) -> pl.DataFrame:
        if not isinstance(name, str) or not _PART.fullmatch(name) or name not in digests:
            raise NotAResult(f"part {name!r}")
        try:
            data = (folder / name).read_bytes()
        except OSError as exc:
            raise NotAResult(str(exc)) from None
        if hashlib.sha256(data).hexdigest() != digests[name]:
            raise NotAResult(f"digest of {name}")
        return pl.read_ipc(io.BytesIO(data))

    def dec(v: object) -> object:
        if v is None or isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, list):
            return [dec(x) for x in v]
        if not isinstance(v, dict):
            raise NotAResult("node")
        tag = v.get("t")
        if tag == "tuple":
            return tuple(dec(x) for x in v["v"])
        if tag == "dict":
            return {dec(k): dec(x) for k, x in v["v"]}
        if tag == "frame":
            return read_part(v["file"])
        if tag == "array":
            if v.get("dtype") not in _DTYPES:
                raise NotAResult("array type")
            flat = read_part(v["file"])["v"].to_numpy()
            return flat.astype(v["dtype"], copy=False).reshape([int(n) for n in v["shape"]])
        if tag == "obj":
            cls = _classes().get(v.get("cls"))
            fields = v.get("f")
            if cls is None or not isinstance(fields, dict) \
                    or set(fields) != {f.name for f in dataclasses.fields(cls)}:
                raise NotAResult(f"class {v.get('cls')!r}")
            return cls(**{name: dec(x) for name, x in fields.items()})
        raise NotAResult(f"tag {tag!r}")

    try:
        return dec(manifest.get("tree"))
    except NotAResult:
        raise
    except (KeyError, TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise NotAResult(str(exc)) from None


def write(folder: Path, value: object) -> None:
    """Write `value` into the new folder `folder` (parts first, the manifest last)."""
    manifest, parts = encode(value)
    folder.mkdir()
    for name, data in parts.items():
        (folder / name).write_bytes(data)
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
