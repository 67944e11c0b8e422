"""A content-addressed cache for derived arrays (windows, encoded corpora, cleaned tables).

Layout: ``cache_dir()/<name>/<digest>.arrow``, one file per key. The digest covers
``CODE_VERSION``, the cache name and the key; ``Path`` values inside the key stand for the *bytes*
of that file (their sha256), so editing a source file, changing a parameter or bumping
``CODE_VERSION`` each give a new file. Log the returned digest with the run: it names exactly the
data the run saw.

Size: the cache holds at most ``$ORCHESTRATOR_CACHE_MAX_MB`` (default 4096; 0: no bound). After
each write the least recently used files go first (a hit refreshes its file's modification time)
until the total fits; the file just written stays. Removing a file another process has mapped is
safe (its mapping stays valid), and one that vanishes before it is read is rebuilt.
``orchestrator cache`` lists the cache and ``orchestrator cache clear`` empties it.

File format: an uncompressed Arrow IPC file (Feather v2) of one row, read memory-mapped; each
array is one ``large_list`` column holding the flattened values, and the schema metadata (key
``orchestrator``) records every array's dtype and shape, so dtype, shape and values round-trip
exactly (NaN payloads and -0.0 included). Arrow IPC, uncompressed, rather than Parquet: reading it
maps the file's pages (no decoding, no copy), so a warm run gets its encoded corpus in about
0.02 s instead of 0.08-0.1 s from the same Parquet (docs/performance.md has the figures). The
arrays are read-only views of the mapping; a cache file is only ever replaced whole
(``os.replace``), never changed in place, so a mapping stays valid while a run holds it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orchestrator.data.errors import DataError

# Bump when a loader's output changes for the same inputs: every cached file becomes stale.
CODE_VERSION = "1"

_META_KEY = b"orchestrator"
SUFFIX = ".arrow"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SUPPORTED_KINDS = "biufUS"  # what Arrow stores natively and numpy rebuilds exactly
MAX_MB_VARIABLE = "ORCHESTRATOR_CACHE_MAX_MB"
DEFAULT_MAX_MB = 4096
_file_digests: dict[tuple, str] = {}
log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """$ORCHESTRATOR_CACHE_DIR, else $XDG_CACHE_HOME/orchestrator, else ~/.cache/orchestrator."""
    if os.environ.get("ORCHESTRATOR_CACHE_DIR"):
        return Path(os.environ["ORCHESTRATOR_CACHE_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "orchestrator"
    return Path.home() / ".cache" / "orchestrator"


def max_mb_problem(text: str | None) -> str | None:
    """Why a value of $ORCHESTRATOR_CACHE_MAX_MB is not usable, in one line (None if it is)."""
    if text is None or not text.strip():
        return None
    if not text.strip().isdecimal():  # not isdigit: int() refuses '²', which isdigit takes
        return (f"{setting(MAX_MB_VARIABLE, text)}: must be a whole number of megabytes >= 0 "
                "(0: no bound; unset: 4096)")
    return None


def setting(name: str, text: str) -> str:
    """``NAME='value'`` of an environment variable for a message, the value cut to 40
    characters (then ``...``): a variable can hold megabytes."""
    shown = text if len(text) <= 40 else text[:40] + "..."
    return f"{name}={shown!r}"


def max_bytes() -> int | None:
    """The cache's bound in bytes; None when unbounded. A bad value (refused up front by the
    training commands) falls back to the default here: caching never fails a run."""
    text = os.environ.get(MAX_MB_VARIABLE)
    mb = int(text) if text and text.strip() and max_mb_problem(text) is None else DEFAULT_MAX_MB
    return None if mb == 0 else mb * 2**20


@dataclass(frozen=True)
class Entry:
    """One cached file: its cache name, path, size in bytes and last use (a timestamp)."""

    name: str
    path: Path
    size: int
    used: float


def entries() -> list[Entry]:
    """Every cached file, by name then path (files removed meanwhile are skipped)."""
    root = cache_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        for path in sorted(folder.glob(f"*{SUFFIX}")):
            try:
                st = path.stat()
            except OSError:
                continue
            found.append(Entry(folder.name, path, st.st_size, st.st_mtime))
    return found


def _remove(chosen: list[Entry]) -> list[Entry]:
    removed = []
    for entry in chosen:
        try:
            entry.path.unlink()
        except FileNotFoundError:
            continue  # another process removed it first
        except OSError as exc:
            log.warning("cache %s not removed (%s)", entry.path, exc)
            continue
        removed.append(entry)
    return removed


def evict(limit: int | None, keep: Path | None = None) -> list[Entry]:
    """Remove the least recently used files until the cache holds at most ``limit`` bytes
    (None: nothing to do), never ``keep``. Returns what was removed."""
    if limit is None:
        return []
    files = sorted(entries(), key=lambda e: e.used)
    excess = sum(e.size for e in files) - limit
    chosen = []
    for entry in files:
        if excess <= 0:
            break
        if entry.path != keep:
            chosen.append(entry)
            excess -= entry.size
    return _remove(chosen)


def clear(names: Sequence[str] = ()) -> list[Entry]:
    """Remove every cached file, or those of the given cache names. Returns what was removed."""
    return _remove([e for e in entries() if not names or e.name in names])


def file_digest(path: str | Path) -> str:
    """sha256 (hex) of a file's bytes; memoised per (path, size, mtime, inode) within the
    process and across processes in ``cache_dir()/file-digests.json`` (as git's index does: a
    file whose size and modification time are unchanged is not read again)."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise DataError(f"data.path: {p}: cannot read file to digest it ({exc.strerror})") from None
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if memo not in _file_digests:
        stored = _stored_digests()
        name = "|".join(map(str, memo))
        if name not in stored:
            h = hashlib.sha256()
            with p.open("rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            stored[name] = h.hexdigest()
            _store_digests(stored)
        _file_digests[memo] = stored[name]
    return _file_digests[memo]


_MAX_STORED_DIGESTS = 1000


def _stored_digests() -> dict[str, str]:
    try:
        stored = json.loads((cache_dir() / "file-digests.json").read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stored, dict):
        return {}
    return {k: v for k, v in stored.items() if isinstance(k, str) and isinstance(v, str)
            and re.fullmatch(r"[0-9a-f]{64}", v)}


def _store_digests(stored: dict[str, str]) -> None:
    """Atomically, the newest entries only; never fails a run (a read-only disk: logged)."""
    path = cache_dir() / "file-digests.json"
    keep = dict(list(stored.items())[-_MAX_STORED_DIGESTS:])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".file-digests.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(keep, f)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError as exc:
        log.warning("file digests not stored in %s (%s)", path, exc)


def _canonical(obj: object) -> object:
    # json.dumps calls this for what it cannot serialise: files and bytes enter by content.
    if isinstance(obj, Path):
        return {"file_sha256": file_digest(obj)}
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return {"bytes_sha256": hashlib.sha256(bytes(obj)).hexdigest()}
    if isinstance(obj, np.ndarray):
        data = np.ascontiguousarray(obj).tobytes()
        return {"array": [obj.dtype.str, list(obj.shape), hashlib.sha256(data).hexdigest()]}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    raise TypeError(f"cache key: cannot digest {type(obj).__name__} {obj!r}; use JSON values, "
                    "bytes, numpy arrays or pathlib.Path (for a file's content)")


def digest(*parts: object) -> str:
    """First 16 hex characters of sha256 over a canonical JSON of ``parts``.

    JSON values are taken as they are (dict keys sorted); ``Path`` is replaced by the sha256 of the
    file's bytes, ``bytes`` and numpy arrays by the sha256 of their content.
    """
    text = json.dumps(list(parts), sort_keys=True, separators=(",", ":"), default=_canonical)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cached_arrays(name: str, key: Mapping[str, object],
                  build: Callable[[], Mapping[str, np.ndarray]]
                  ) -> tuple[dict[str, np.ndarray], str]:
    """The arrays for ``key`` (from the cache, else from ``build()``, then stored) and their digest.

    A cache file that cannot be read back is rebuilt; a cache that cannot be written (read-only
    disk) is logged and the built arrays are returned anyway: caching never fails a run.
    """
    if not _SAFE_NAME.match(name):
        raise DataError(f"cache name '{name}': use letters, digits, '_', '.' or '-' only")
    key_digest = digest(CODE_VERSION, name, dict(key))
    path = cache_dir() / name / f"{key_digest}{SUFFIX}"
    if path.exists():
        try:
            arrays = _read(path)
        except FileNotFoundError:
            pass  # evicted by another process between the check and the read
        except Exception as exc:  # corrupt or foreign file: pyarrow raises many types
            log.warning("cache %s unreadable (%s); rebuilding it", path, exc)
        else:
            _touch(path)
            return arrays, key_digest
    arrays = dict(build())
    for k, v in arrays.items():
        if not isinstance(v, np.ndarray) or v.dtype.kind not in _SUPPORTED_KINDS:
            raise TypeError(f"cache '{name}': build() returned {k!r} of "
                            f"{getattr(v, 'dtype', type(v).__name__)}; expected a numpy array of "
                            "bool, integer, float or str")
    try:
        _write_atomic(path, arrays, {"code_version": CODE_VERSION, "name": name,
                                     "key": json.loads(json.dumps(dict(key), default=str))})
    except OSError as exc:
        log.warning("cache %s not written (%s); continuing without it", path, exc)
    else:
        evict(max_bytes(), keep=path)
    return arrays, key_digest


def _touch(path: Path) -> None:
    """Mark a hit as a use, for eviction (a read-only cache just keeps its old times)."""
    try:
        os.utime(path)
    except OSError:
        pass


def _write_atomic(path: Path, arrays: Mapping[str, np.ndarray], info: dict) -> None:
    import pyarrow as pa

    columns, shapes = {}, {}
    for k, arr in arrays.items():
        native = arr.astype(arr.dtype.newbyteorder("="), copy=False)  # Arrow wants native order
        values = pa.array(np.ascontiguousarray(native).reshape(-1))
        columns[k] = pa.LargeListArray.from_arrays(pa.array([0, len(values)], pa.int64()), values)
        shapes[k] = {"dtype": arr.dtype.str, "shape": list(arr.shape)}
    meta = json.dumps({**info, "arrays": shapes}).encode()
    table = pa.table(columns).replace_schema_metadata({_META_KEY: meta})
    path.parent.mkdir(parents=True, exist_ok=True)
    # Temp file in the same folder, then os.replace: readers see the old file or the whole new one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    os.close(fd)
    try:
        _write_file(table, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _write_file(table, where: str) -> None:
    import pyarrow as pa

    with pa.OSFile(where, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _read(path: Path) -> dict[str, np.ndarray]:
    import pyarrow as pa

    with pa.memory_map(str(path), "r") as source:
        table = pa.ipc.open_file(source).read_all()
    meta = json.loads((table.schema.metadata or {})[_META_KEY])
    specs = meta["arrays"]
    if sorted(specs) != sorted(table.column_names):
        raise ValueError(f"columns {table.column_names} do not match metadata {sorted(specs)}")
    out = {}
    for k, spec in specs.items():
        flat = table.column(k).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        out[k] = flat.astype(np.dtype(spec["dtype"]), copy=False).reshape(spec["shape"])
    return out
