from curate.analysis.text import find_trigger
from curate.engine.diagnostic import Fix, WriteText
from curate.engine.rule import Rule


class KL506(Rule):
    """Caption spells the trigger differently from the configured trigger.

    Why: "Jane Doe", "janedoe" or "JANE-DOE" tokenise differently from `jane_doe`; the identity is
    split across several spellings and the one you prompt with at inference gets only part of it.

    Example: `Jane Doe, sitting at a cafe` with `trigger = "jane_doe"`.

    Use instead: `jane_doe, sitting at a cafe`.

    Fix safety: safe; replaces each variant with the exact trigger (case, separators, joined form and
    a plural "s"). Words that merely contain part of the trigger ("jane" alone) are never touched.

    Options: none.
    """

    code = "KL506"
    name = "caption.trigger-variant"
    groups = ("all", "caption", "trigger")
    severity = "error"
    fix_availability = "always"

    def check(self, ctx, opts):
        trigger = ctx.config.trigger
        if not trigger:
            return
        for item in ctx.dataset.items:
            text = item.caption_text
            if not text:
                continue
            _, variants = find_trigger(text, trigger)
            if not variants:
                continue
            new, pos = [], 0
            for a, b, _ in variants:
                new.append(text[pos:a])
                new.append(trigger)
                pos = b
            new.append(text[pos:])
            fix = Fix(f"spell the trigger exactly \"{trigger}\"",
                      (WriteText(str(ctx.dataset.abspath(item.rel_caption)), "".join(new)),))
            for a, b, found in variants:
                line = text.count("\n", 0, a) + 1
                col = a - (text.rfind("\n", 0, a) + 1) + 1
                yield self.diag(ctx, item.rel_caption, f"\"{found}\" is a variant of the trigger \"{trigger}\"",
                                fix=fix, line=line, col=col, end_col=col + (b - a))
