"""A third-party-style plugin whose option `sniffer` names a model file."""

from curate.plugin import hookimpl
from curate.trust import declare_model_key

declare_model_key("sniffer")


@hookimpl
def klint_get_rules():
    return []
