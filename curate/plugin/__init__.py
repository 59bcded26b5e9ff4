"""The marker plugins use: `from curate.plugin import hookimpl`."""

import pluggy

hookimpl = pluggy.HookimplMarker("klint")

__all__ = ["hookimpl"]
