"""Checkpoints: NumPy .npz archives, read without pickle, written atomically, verified.

``save(path, arrays, meta)`` writes every array plus a manifest (name, shape, dtype and
SHA-256 of each array's bytes) and a JSON ``meta`` dict to a temporary file in the same
directory, flushes it to disk, then renames it over ``path``: a reader sees the old file
or the new one, never half of one, and an interrupted save loses nothing.

``load(path)`` reads with ``allow_pickle=False`` (an archive that needs pickle is refused)
and checks the manifest: every array present, with its shape, dtype and checksum. A
truncated, corrupted or foreign file raises ``CheckpointError`` (a ValueError) naming
what is wrong, never a silently wrong model.

Models: ``model.save(path)`` and ``model.load(path)`` on any rnncore layer, cell, head or
Sequential.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile

import numpy as np

FORMAT = "rnncore-checkpoint-1"
_MANIFEST = "__manifest__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be trusted: unreadable, truncated, corrupted, or not ours."""


def _digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def save(path, arrays, meta=None):
    """Write arrays (name -> numeric array) and meta (JSON-serialisable) to path."""
    path = os.fspath(path)
    arrays = {str(k): np.asarray(v) for k, v in arrays.items()}
    for name, a in arrays.items():
        if name == _MANIFEST:
            raise ValueError(f"arrays: {_MANIFEST!r} is a reserved name")
        if a.dtype.hasobject:
            raise TypeError(f"arrays[{name!r}]: object arrays would need pickle")
    manifest = {"format": FORMAT, "meta": meta or {},
                "arrays": {k: {"shape": list(a.shape), "dtype": a.dtype.str, "sha256": _digest(a)}
                           for k, a in arrays.items()}}
    payload = dict(arrays)
    payload[_MANIFEST] = np.array(json.dumps(manifest))
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".npz", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load(path):
    """Read and verify a checkpoint. Returns (arrays, meta)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as f:  # fh: closed even if np.load fails
            files = set(f.files)
            if _MANIFEST not in files:
                raise CheckpointError(f"{path}: not an rnncore checkpoint (no manifest)")
            manifest = json.loads(str(f[_MANIFEST]))
            if manifest.get("format") != FORMAT:
                raise CheckpointError(f"{path}: unknown checkpoint format {manifest.get('format')!r}")
            arrays = {}
            for name, info in manifest["arrays"].items():
                if name not in files:
                    raise CheckpointError(f"{path}: array {name!r} listed in the manifest is missing")
                a = f[name]
                if list(a.shape) != info["shape"] or a.dtype.str != info["dtype"]:
                    raise CheckpointError(f"{path}: array {name!r} is {a.dtype.str}{list(a.shape)}, the manifest "
                                          f"says {info['dtype']}{info['shape']}")
                if _digest(a) != info["sha256"]:
                    raise CheckpointError(f"{path}: array {name!r} fails its checksum (the file is corrupted)")
                arrays[name] = a
            extra = files - set(manifest["arrays"]) - {_MANIFEST}
            if extra:
                raise CheckpointError(f"{path}: arrays not in the manifest: {sorted(extra)}")
            return arrays, manifest.get("meta", {})
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: unreadable or corrupted checkpoint ({type(exc).__name__}: {exc})") from exc
