"""Provenance of files klint derives (rebalance crops), from `_klint/derived/manifest.json`.

Manifest format (version 1):
    {"version": 1, "items": [{"path": "_klint/derived/img__close.png", "source": "img.jpg",
      "box": [x0, y0, x1, y1], "framing": "close", "reason": "...",
      "caption": "_klint/derived/img__close.txt", "sha256": "...", "caption_sha256": "..."}]}
Paths are dataset-relative posix paths. Rules use this so a crop is never reported as a
near-duplicate of its own source nor counted as new variety.

An entry with `"kind": "text-crop"` is a clean copy of its source with a burned-in text
overlay cut away (`klint fix --unsafe-fixes`, rule image.text-overlay); it *replaces* its
source: the source stays untouched on disk but is no longer a training sample.

The manifest is a file in the dataset, so anyone can edit it: an entry counts only if its
paths are plain relative paths inside the dataset (no `..`, not absolute, no link on the way)
naming a file klint derives (`<name>__close.png` / `__half.png` / `__clean.png` and its `.txt`). The hashes
say what klint wrote; a file that no longer matches is not klint's to move or overwrite.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

MANIFEST = "_klint/derived/manifest.json"
DERIVED_FILE = re.compile(r"__(close|half|clean)\.(png|txt)$")
MAX_MANIFEST_BYTES = 16 << 20


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plain_rel(root: Path, rel: object) -> bool:
    """A dataset-relative posix path that stays inside the dataset with no link on the way."""
    if not isinstance(rel, str) or not rel or len(rel) > 4096 or "\\" in rel or "\x00" in rel:
        return False
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel):
        return False
    parts = rel.split("/")
    if any(p in ("", ".", "..") for p in parts):
        return False
    here = root
    for part in parts:
        here = here / part
        if os.path.islink(here):
            return False
    return True


def _entry_ok(root: Path, e: object) -> bool:
    if not isinstance(e, dict):
        return False
    path, source, caption = e.get("path"), e.get("source"), e.get("caption")
    if not (plain_rel(root, path) and DERIVED_FILE.search(path) and path.endswith(".png")):
        return False
    if not plain_rel(root, source):
        return False
    if caption is not None and not (plain_rel(root, caption) and caption.endswith(".txt")
                                    and DERIVED_FILE.search(caption)):
        return False
    return all(isinstance(e.get(k), str) or e.get(k) is None for k in ("sha256", "caption_sha256"))


def load_manifest(root: Path, problems: list[str] | None = None) -> list[dict]:
    """The manifest's valid entries; each rejected one is described in `problems`."""
    from curate.dataset.safeio import read_regular

    try:
        data = json.loads(read_regular(root / MANIFEST, MAX_MANIFEST_BYTES).decode("utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError, RecursionError) as exc:
        if problems is not None:
            problems.append(f"{MANIFEST} cannot be read ({type(exc).__name__}); ignored")
        return []
    items = data.get("items", []) if isinstance(data, dict) else []
    if not isinstance(items, list):
        items = []
    good = []
    for e in items:
        if _entry_ok(root, e):
            good.append(e)
        elif problems is not None:
            shown = e.get("path") if isinstance(e, dict) else e
            problems.append(f"ignored manifest entry {str(shown)[:120]!r}: not a file klint derives inside the "
                            f"dataset")
    return good


def derived_sources(root: Path) -> dict[str, str]:
    """Derived file (dataset-relative) -> its source file."""
    return {i["path"]: i["source"] for i in load_manifest(root)}


TEXT_CROP = "text-crop"


def replacements(root: Path) -> dict[str, str]:
    """Source file -> the clean crop that replaces it in training (text-crop entries)."""
    return {i["source"]: i["path"] for i in load_manifest(root) if i.get("kind") == TEXT_CROP}


def rebalance_entries(root: Path) -> list[dict]:
    """The manifest entries that `klint fix --rebalance` owns (every kind but text crops)."""
    return [i for i in load_manifest(root) if i.get("kind") != TEXT_CROP]
