from curate.engine.diagnostic import Diagnostic, Fix, WriteBytes, WriteText
from curate.engine.rule import Rule

__all__ = ["Diagnostic", "Fix", "Rule", "WriteBytes", "WriteText"]
