"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations


class KlintError(Exception):
    """Bad input, bad config or a missing resource: reported in one line, exit code 2."""

    exit_code = 2


class ConfigError(KlintError):
    pass


class MissingDependency(KlintError):
    """An optional extra is not installed; the message names the install command."""


def os_error(exc: OSError, path, doing: str = "cannot write") -> KlintError:
    """An OSError while writing a dataset as the one line a user can act on."""
    import errno

    hint = {
        errno.ENOSPC: "no space left on device; free some space and run again",
        errno.EROFS: "read-only file system; copy the dataset somewhere writable",
        errno.EDQUOT: "disk quota exceeded",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
    }.get(exc.errno or 0, exc.strerror or str(exc))
    where = exc.filename or path
    return KlintError(f"{where}: {doing}: {hint}")
