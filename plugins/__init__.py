"""Built-in backends. Registered by import string only: nothing heavy is imported here."""

from __future__ import annotations

from curate.plugin import hookimpl


@hookimpl
def klint_register_backends(registry):
    # each backend package adds itself here, as a third-party plugin would in its own hook
    pass
