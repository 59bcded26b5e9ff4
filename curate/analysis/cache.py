"""The per-dataset result cache: `.klint_cache/` at the dataset root, ignored by git.

Files are identified by content (blake2b), found again cheaply by (size, mtime): an
unchanged dataset is re-linted without reading a single image.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from curate.dataset.model import CACHE_DIR

CACHE_FILE = "cache-v1.json"


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
        try:
            data = json.loads((self.dir / CACHE_FILE).read_text("utf-8"))
        except (OSError, ValueError):
            return
        if isinstance(data, dict):
            self.stat = data.get("stat", {}) or {}
            self.results = data.get("results", {}) or {}

    def digest(self, rel: str, path: Path) -> str:
        """Content hash of a file, recomputed only when its size or mtime changed."""
        try:
            st = path.stat()
        except OSError:
            return "missing"
        entry = self.stat.get(rel)
        if entry and entry[0] == st.st_size and entry[1] == st.st_mtime_ns:
            return entry[2]
        digest = file_digest(path)
        self.stat[rel] = [st.st_size, st.st_mtime_ns, digest]
        self._dirty = True
        return digest

    def get(self, analysis: str, key: str) -> Any:
        self._used.setdefault(analysis, set()).add(key)
        return self.results.get(analysis, {}).get(key)

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
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump({"stat": self.stat, "results": self.results}, fh, separators=(",", ":"))
            os.replace(tmp, self.dir / CACHE_FILE)
        except OSError:
            # a read-only dataset still lints; it just is not cached
            pass
