"""One writer per dataset: `klint fix`, `fix --rebalance`, `lint --fix` and trainers writing caches.

The lock is `flock` on `.klint_cache/lock`: the kernel drops it when the holder exits, however it
exits (a kill included), so a crashed run never leaves a dataset locked. The file holds who has
it (pid, command, start time) for the message the second writer gets.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

from curate.dataset.model import CACHE_DIR
from curate.errors import KlintError, os_error

LOCK_FILE = "lock"
_held: dict[str, int] = {}  # resolved root -> depth, so nested writers in one process share the lock


def _holder(path: Path) -> str:
    try:
        text = path.read_text("utf-8", errors="replace")[:200].split("\n")
        pid, command, since = (text + ["", "", ""])[:3]
        return f" (pid {pid}, `{command}`, since {since})" if pid.isdigit() else ""
    except OSError:
        return ""


@contextlib.contextmanager
def dataset_lock(root: Path | str, command: str):
    import fcntl

    root = Path(root).resolve()
    key = str(root)
    if _held.get(key):
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    cache = root / CACHE_DIR
    path = cache / LOCK_FILE
    try:
        if cache.is_symlink():
            raise KlintError(f"{cache}: is a link; klint keeps its cache and backups only in a real folder")
        cache.mkdir(exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o644)
    except OSError as exc:
        raise os_error(exc, root, "cannot lock the dataset for writing") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise KlintError(f"another klint{_holder(path)} is writing to {root}; try again when it has "
                             f"finished") from None
        try:  # who holds it, for the next one's message; a full disk only loses the detail
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n{command}\n{time.strftime('%H:%M:%S')}\n".encode())
        except OSError:
            pass
        _held[key] = 1
        try:
            yield
        finally:
            _held.pop(key, None)
    finally:
        os.close(fd)


def remove_leftovers(paths) -> list[Path]:
    """Delete klint's own temp files a killed run left; call only while holding the lock."""
    removed = []
    for p in paths:
        try:
            if p.is_file() and not p.is_symlink():
                p.unlink()
                removed.append(p)
        except OSError:
            pass
    return removed
