"""Errors that reach the user as one line and exit code 2."""

from __future__ import annotations


class KlintError(Exception):
    """Bad input, bad config or a missing resource: reported in one line, exit code 2."""

    exit_code = 2


class ConfigError(KlintError):
    pass


class MissingDependency(KlintError):
    """An optional extra is not installed; the message names the install command."""
