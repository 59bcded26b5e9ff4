"""The per-dataset result cache: `.klint_cache/` at the dataset root, ignored by git.

Files are identified by content (blake2b), found again cheaply by (size, mtime): an
unchanged dataset is re-linted without reading a single image.

The cache travels with the dataset (zipped, shared, cloned), so what it holds is as untrusted as
the images: a forged record could crash a rule or hide a problem. Each file is therefore sealed
with a keyed hash under a key that never leaves the user's machine
(`$XDG_CACHE_HOME/klint/cache.key`, default `~/.cache/klint/cache.key`, created 0600 on first
use). A cache this user's klint did not write is not read: everything is recomputed and the
file replaced. The shape checks below stay as a second line, for a file damaged on disk.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from curate.dataset.model import CACHE_DIR

CACHE_FILE = "cache-v1.json"
# bumped when the file layout changes; a file with another schema is ignored (everything recomputed)
SCHEMA = 3
SEAL_MAGIC = b"klint-cache-sealed "
KEY_BYTES = 32
MAX_DEPTH = 24  # deepest real result: analysis -> persons -> person -> kp -> point
STALE_TMP_S = 600  # a temp file this old belongs to no live run
_DIGEST = re.compile(r"^[0-9a-f]{32}$")
# analyses whose results must hold these keys; anything else is treated as a miss
REQUIRED: dict[str, tuple[str, ...]] = {"image": ("readable",), "pose": ("width", "height", "persons")}


def valid_entry(analysis: str, value: Any) -> bool:
    """A cached result as klint writes it: a non-empty JSON object, not absurdly deep."""
    if not isinstance(value, dict) or not value:
        return False
    if any(k not in value for k in REQUIRED.get(analysis, ())):
        return False
    if analysis == "face":
        # rules index face boxes and compare scores: the record's whole shape is checked
        from curate.analysis.face import valid_record

        if not valid_record(value):
            return False
    stack = [(value, 0)]
    while stack:
        v, d = stack.pop()
        if d > MAX_DEPTH:
            return False
        if isinstance(v, dict):
            stack.extend((x, d + 1) for x in v.values() if isinstance(x, (dict, list)))
        elif isinstance(v, list):
            stack.extend((x, d + 1) for x in v if isinstance(x, (dict, list)))
    return True


def file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


def key_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "klint" / "cache.key"


_KEY: list[bytes | None] = []


def _read_key(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        # another user's (or a planted) key would let them forge caches this user trusts
        if not (stat.S_ISREG(st.st_mode) and st.st_size == KEY_BYTES
                and (not hasattr(os, "getuid") or st.st_uid == os.getuid())):
            return None
        data = os.read(fd, KEY_BYTES + 1)
        return data if len(data) == KEY_BYTES else None
    finally:
        os.close(fd)


def user_key() -> bytes | None:
    """This user's sealing key, made on first use; None where it can be neither read nor made."""
    if _KEY:
        return _KEY[0]
    path = key_path()
    key = _read_key(path)
    if key is None and not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(KEY_BYTES))
        except FileExistsError:
            pass  # another klint made it first: read theirs
        except OSError:
            pass
        key = _read_key(path)
    _KEY.append(key)
    return key


def _mac(key: bytes, body: bytes) -> bytes:
    return hashlib.blake2b(body, key=key, digest_size=32).hexdigest().encode("ascii")


def seal(body: bytes, key: bytes | None = None) -> bytes | None:
    """The cache file's bytes: one header line with the body's keyed hash, then the JSON body."""
    key = key if key is not None else user_key()
    if key is None:
        return None
    return SEAL_MAGIC + _mac(key, body) + b"\n" + body


def unseal(raw: bytes, key: bytes | None = None) -> bytes | None:
    """The JSON body if this user's klint wrote the file, else None."""
    key = key if key is not None else user_key()
    if key is None or not raw.startswith(SEAL_MAGIC):
        return None
    head, sep, body = raw[len(SEAL_MAGIC):].partition(b"\n")
    if not sep or not hmac.compare_digest(head, _mac(key, body)):
        return None
    return body


class Cache:
    def __init__(self, root: Path, enabled: bool = True):
        self.dir = root / CACHE_DIR
        self.enabled = enabled
        self.stat: dict[str, list] = {}
        self.results: dict[str, dict[str, Any]] = {}
        self._used: dict[str, set[str]] = {}
        self._dirty = False
        if enabled:
            self._load()

    def _load(self) -> None:
        """Read the cache file; anything not as klint wrote it is dropped (and so recomputed)."""
        from curate.dataset.safeio import MAX_JSON_BYTES, read_regular

        try:
            body = unseal(read_regular(self.dir / CACHE_FILE, MAX_JSON_BYTES))
            if body is None:
                return
            data = json.loads(body.decode("utf-8"))
        except (OSError, ValueError, RecursionError):
            return
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            return
        stat, results = data.get("stat"), data.get("results")
        if isinstance(stat, dict):
            self.stat = stat
        if isinstance(results, dict):
            self.results = {k: v for k, v in results.items() if isinstance(v, dict)}

    def digest(self, rel: str, path: Path) -> str:
        """Content hash of a file, recomputed only when its size or mtime changed."""
        try:
            st = path.stat()
        except OSError:
            return "missing"
        entry = self.stat.get(rel)
        if (isinstance(entry, list) and len(entry) == 3 and entry[0] == st.st_size and entry[1] == st.st_mtime_ns
                and isinstance(entry[2], str) and _DIGEST.match(entry[2])):
            return entry[2]
        digest = file_digest(path)
        self.stat[rel] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def get(self, analysis: str, key: str) -> Any:
        self._used.setdefault(analysis, set()).add(key)
        table = self.results.get(analysis, {})
        value = table.get(key)
        if value is not None and not valid_entry(analysis, value):
            del table[key]
            self._dirty = True
            return None
        return value

    def put(self, analysis: str, key: str, value: Any) -> None:
        self._used.setdefault(analysis, set()).add(key)
        self.results.setdefault(analysis, {})[key] = value
        self._dirty = True

    def save(self, live_rels: set[str]) -> None:
        if not self.enabled:
            return
        stale = [r for r in self.stat if r not in live_rels]
        for r in stale:
            del self.stat[r]
        if stale:
            self._dirty = True
        # keep results still referenced by this run; others belong to deleted/changed files
        for name, table in self.results.items():
            used = self._used.get(name)
            if used is not None and len(table) > len(used):
                for key in [k for k in table if k not in used]:
                    del table[key]
                self._dirty = True
        self._remove_stale_temps()
        if not self._dirty:
            return
        try:
            sealed = seal(json.dumps({"schema": SCHEMA, "stat": self.stat, "results": self.results},
                                     separators=(",", ":")).encode("utf-8"))
        except (ValueError, RecursionError):
            return
        if sealed is None:
            return  # no key (an unwritable home): lint works, nothing is cached
        try:
            self.dir.mkdir(exist_ok=True)
            ignore = self.dir / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# created by klint\n*\n")
            tag = self.dir / "CACHEDIR.TAG"
            if not tag.exists():
                tag.write_text("Signature: 8a477f597d28d172789f06886806bc55\n# klint cache\n")
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".cache-", suffix=".tmp")
        except OSError:
            # a read-only dataset still lints; it just is not cached
            return
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(sealed)
            os.replace(tmp, self.dir / CACHE_FILE)
        except (OSError, ValueError, RecursionError):
            # a full disk: not cached this time, and no empty temp file left behind
            try:
                os.unlink(tmp)
            except OSError:
                pass

    def _remove_stale_temps(self) -> None:
        """Temp files of runs that died mid-save (killed, or the disk was full)."""
        now = time.time()
        try:
            names = [n for n in os.listdir(self.dir) if n.startswith(".cache-") and n.endswith(".tmp")]
        except OSError:
            return
        for p in (self.dir / n for n in names):
            try:
                if p.is_file() and not p.is_symlink() and now - p.stat().st_mtime > STALE_TMP_S:
                    p.unlink()
            except OSError:
                pass
