"""Walk a dataset folder and pair images with same-stem captions."""

from __future__ import annotations

import os
from pathlib import Path

from curate.dataset.model import CACHE_DIR, CAPTION_EXT, IMAGE_EXTS, Dataset, Item
from curate.errors import KlintError

# files that are never part of a dataset
_SKIP_NAMES = {"klint.toml", "pyproject.toml", "README.txt", "readme.txt", "LICENSE.txt", "requirements.txt",
               "SOURCES.txt", "robots.txt"}
_LFS_HEAD = b"version https://git-lfs.github.com/spec/v1"


def _walk(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        # hidden folders (.git, .klint_cache, ...) are never dataset content
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != CACHE_DIR and d != "__pycache__")
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def read_caption(path: Path, overlay: dict[Path, str] | None = None) -> tuple[str | None, str | None]:
    """(text, problem). Overlay lets `--diff` lint captions that were fixed only in memory.

    Trainers read captions as plain UTF-8: a byte-order mark becomes part of the first tag (so the
    trigger is no longer first) and UTF-16 or Latin-1 text arrives garbled. The text is still
    decoded as well as possible so the other caption rules can run; the problem is reported by
    caption.encoding.
    """
    if overlay is not None and path in overlay:
        return overlay[path], None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16"), "UTF-16 encoded"
        except UnicodeDecodeError:
            pass
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "not valid UTF-8 (read as Latin-1)"
    if text.startswith("\ufeff"):
        return text[1:], "starts with a UTF-8 byte-order mark"
    return text, None


def scan(root: Path | str, overlay: dict[Path, str] | None = None) -> Dataset:
    display_root = str(root)
    root = Path(root)
    if not root.exists():
        raise KlintError(f"{display_root}: no such file or directory")
    if not root.is_dir():
        raise KlintError(f"{display_root}: not a directory")
    try:
        os.listdir(root)
    except OSError as exc:
        raise KlintError(f"{display_root}: cannot read directory: {exc.strerror}") from None
    root = root.resolve()
    items: dict[str, Item] = {}
    lfs: list[str] = []
    for path in _walk(root):
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        key = rel[: -len(path.suffix)] if path.suffix else rel
        if suffix in IMAGE_EXTS:
            try:
                if path.stat().st_size < 200 and path.read_bytes().startswith(_LFS_HEAD):
                    lfs.append(rel)
            except OSError:
                pass
            item = items.setdefault(key, Item(key=key))
            if item.image is not None:
                # a.jpg and a.png would share a.txt; keep both as separate samples
                alt = f"{key}{path.suffix}"
                item = items.setdefault(alt, Item(key=key))
            item.image = path
        elif suffix == CAPTION_EXT and path.name not in _SKIP_NAMES:
            item = items.setdefault(key, Item(key=key))
            item.caption = path
    for item in items.values():
        if item.caption is None and item.image is not None:
            cap = item.image.with_suffix(CAPTION_EXT)
            if cap.exists():
                item.caption = cap
        if item.caption is not None:
            item.caption_text, item.caption_error = read_caption(item.caption, overlay)
    ordered = sorted(items.values(), key=lambda it: (it.key, str(it.image)))
    return Dataset(root=root, display_root=display_root, items=ordered, lfs_pointers=lfs)
