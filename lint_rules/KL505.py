import re

from curate.analysis.text import cut, find_trigger, prefix_trigger, trigger_is_first
from curate.engine.diagnostic import Fix, WriteText
from curate.engine.rule import Rule


class KL505(Rule):
    """Trigger word is in the caption but not first.

    Why: the seed recipe puts the trigger first; kohya's `keep_tokens=1` with `shuffle_caption` pins
    only the first tag, so a trigger elsewhere gets shuffled and diluted.

    Example: `standing in a garden, jane_doe, white blouse` or `1girl, jane_doe, smiling`.

    Use instead: `jane_doe, standing in a garden, white blouse`; prose may start with an allowed
    prefix: `a photo of jane_doe standing in a garden`.

    Fix safety: safe; moves the trigger to the front and repairs the commas left behind.

    Options: `prefixes` (openings allowed before the trigger, default ["photo of", "a photo of"]).
    """

    code = "KL505"
    name = "caption.trigger-not-first"
    groups = ("all", "caption", "trigger")
    severity = "warning"
    fix_availability = "always"
    options = {"prefixes": ["photo of", "a photo of"]}

    def check(self, ctx, opts):
        trigger = ctx.config.trigger
        if not trigger:
            return
        prefixes = [str(p) for p in opts.get("prefixes") or []]
        for item in ctx.dataset.items:
            text = item.caption_text
            if not text or not text.strip():
                continue
            exact, _ = find_trigger(text, trigger)
            if not exact or trigger_is_first(text, trigger, prefixes):
                continue
            a, b = exact[0]
            if text[b:b + 2] in ("'s", "’s"):
                b += 2
            rest = cut(text, [(a, b)])
            new = prefix_trigger(trigger, rest)
            new = re.sub(r"^(\S+), ([,.;])", r"\1\2", new)
            line = text.count("\n", 0, a) + 1
            col = a - (text.rfind("\n", 0, a) + 1) + 1
            fix = Fix(f"move \"{trigger}\" to the front", (WriteText(str(ctx.dataset.abspath(item.rel_caption)), new),))
            yield self.diag(ctx, item.rel_caption, f"trigger \"{trigger}\" is not first", fix=fix,
                            line=line, col=col, end_col=col + (exact[0][1] - a))
