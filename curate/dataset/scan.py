"""Walk a dataset folder and pair images with same-stem captions."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from curate.dataset.model import CACHE_DIR, CAPTION_EXT, IMAGE_EXTS, Dataset, Item
from curate.dataset.safeio import MAX_CAPTION_BYTES, NotRegular, TooLarge, kind_of, read_regular
from curate.errors import KlintError

# what curate.fix.apply.atomic_write names its temp files: `.<name>.<random>.klint-tmp`
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]+\.klint-tmp$")

# files that are never part of a dataset
_SKIP_NAMES = {"klint.toml", "pyproject.toml", "README.txt", "readme.txt", "LICENSE.txt", "requirements.txt",
               "SOURCES.txt", "robots.txt"}
_LFS_HEAD = b"version https://git-lfs.github.com/spec/v1"


def _walk(root: Path, leftovers: list[Path] | None = None):
    for dirpath, dirnames, filenames in os.walk(root):
        # hidden folders (.git, .klint_cache, ...) are never dataset content
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != CACHE_DIR and d != "__pycache__")
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name
            elif leftovers is not None and TEMP_NAME.match(name):
                leftovers.append(Path(dirpath) / name)


def classify(path: Path, root: Path) -> str:
    """"regular", "outside" (a link resolving outside root), "missing", or the special kind."""
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    if not stat.S_ISREG(st.st_mode):
        return kind_of(st.st_mode)
    if not os.path.realpath(path).startswith(str(root).rstrip("/") + "/"):
        return "outside"
    return "regular"


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
        raw = read_regular(path, MAX_CAPTION_BYTES)
    except (NotRegular, TooLarge) as exc:
        return None, f"cannot read: {exc.strerror}"
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    return decode_caption(raw)


def decode_caption(raw: bytes) -> tuple[str, str | None]:
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
    special: dict[str, str] = {}
    outside: list[str] = []
    leftovers: list[Path] = []
    for path in _walk(root, leftovers):
        rel = path.relative_to(root).as_posix()
        suffix = path.suffix.lower()
        key = rel[: -len(path.suffix)] if path.suffix else rel
        if suffix in IMAGE_EXTS or (suffix == CAPTION_EXT and path.name not in _SKIP_NAMES):
            kind = classify(path, root)
            if kind not in ("regular", "outside", "missing"):
                special[rel] = kind
                continue
            if kind == "outside" and suffix == CAPTION_EXT:
                # a caption linked to ~/.ssh/... would reach messages and reports: never read it
                outside.append(rel)
                continue
        if suffix in IMAGE_EXTS:
            try:
                if path.stat().st_size < 200 and read_regular(path, 200).startswith(_LFS_HEAD):
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
    skipped = set(special) | set(outside)
    for item in items.values():
        if item.caption is None and item.image is not None:
            cap = item.image.with_suffix(CAPTION_EXT)
            if cap.relative_to(root).as_posix() not in skipped and classify(cap, root) == "regular":
                item.caption = cap
        if item.caption is not None:
            if overlay is not None and item.caption in overlay:
                item.caption_text, item.caption_error = overlay[item.caption], None
                continue
            try:
                item.caption_raw = read_regular(item.caption, MAX_CAPTION_BYTES)
            except (NotRegular, TooLarge) as exc:
                item.caption_error = f"cannot read: {exc.strerror}"
            except OSError as exc:
                item.caption_error = f"cannot read: {exc.strerror or exc}"
            else:
                item.caption_text, item.caption_error = decode_caption(item.caption_raw)
    ordered = sorted(items.values(), key=lambda it: (it.key, str(it.image)))
    return Dataset(root=root, display_root=display_root, items=ordered, lfs_pointers=lfs, special=special,
                   outside_links=sorted(outside), leftovers=leftovers)
