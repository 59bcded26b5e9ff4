"""Reading files a dataset holds without hanging or exhausting memory.

A name in a dataset can be a FIFO (opening it blocks forever), a device (`/dev/zero` never
ends), or a link to either. klint reads only regular files, opens them non-blocking, checks
what it opened (not what the name pointed at a moment before), and never reads more than a
limit.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_CAPTION_BYTES = 1 << 20  # a caption of 1 MiB is already ~200x what any trainer reads
MAX_CONFIG_BYTES = 4 << 20
MAX_JSON_BYTES = 256 << 20  # the result cache of a very large dataset


class NotRegular(OSError):
    """The name is a FIFO, a device, a socket or a folder, not a regular file."""


class TooLarge(OSError):
    pass


def kind_of(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "regular"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "folder"
    return "special file"


def read_regular(path: Path | str, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes; NotRegular / TooLarge otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotRegular(0, f"not a regular file ({kind_of(st.st_mode)})", str(path))
        if st.st_size > limit:
            raise TooLarge(0, f"larger than {limit >> 10} KiB", str(path))
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:  # grew while read
            raise TooLarge(0, f"larger than {limit >> 10} KiB", str(path))
        return data
    finally:
        os.close(fd)


def inside(root: Path, path: Path) -> bool:
    """Does `path`, links resolved, stay inside `root` (itself resolved)?"""
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(root))
        return True
    except ValueError:
        return False
