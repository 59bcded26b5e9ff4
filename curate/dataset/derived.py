"""Provenance of files klint derives (rebalance crops), from `_klint/derived/manifest.json`.

Manifest format (version 1):
    {"version": 1, "items": [{"path": "_klint/derived/img__close.png", "source": "img.jpg",
      "box": [x0, y0, x1, y1], "framing": "close", "reason": "..."}]}
Paths are dataset-relative posix paths. Rules use this so a crop is never reported as a
near-duplicate of its own source nor counted as new variety.

An entry with `"kind": "text-crop"` is a clean copy of its source with a burned-in text
overlay cut away (`klint fix --unsafe-fixes`, rule image.text-overlay); it *replaces* its
source: the source stays untouched on disk but is no longer a training sample.
"""

from __future__ import annotations

import json
from pathlib import Path

MANIFEST = "_klint/derived/manifest.json"


def load_manifest(root: Path) -> list[dict]:
    try:
        data = json.loads((root / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        return []
    items = data.get("items", []) if isinstance(data, dict) else []
    return [i for i in items if isinstance(i, dict) and "path" in i and "source" in i]


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
