"""The per-dataset result cache: `.klint_cache/` at the dataset root, ignored by git.

Files are identified by content (blake2b), found again cheaply by (size, mtime): an
unchanged dataset is re-linted without reading a single image.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from curate.dataset.model import CACHE_DIR

CACHE_FILE = "cache-v1.json"
# bumped when the file layout changes; a file with another schema is ignored (everything recomputed)
SCHEMA = 2
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
            data = json.loads(read_regular(self.dir / CACHE_FILE, MAX_JSON_BYTES).decode("utf-8"))
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
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"schema": SCHEMA, "stat": self.stat, "results": self.results}, fh, separators=(",", ":"))
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
