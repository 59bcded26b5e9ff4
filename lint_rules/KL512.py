from curate.engine import Fix, WriteText
from curate.engine.rule import Rule


class KL512(Rule):
    """Caption file is not plain UTF-8 (or cannot be read).

    Why: trainers read `.txt` captions as UTF-8. A byte-order mark is glued to the first tag, so
    `jane_doe` is no longer the first token the trigger rules and `keep_tokens` expect; UTF-16 or
    Latin-1 files arrive as garbled text that the model learns from.

    Example: a caption saved by Notepad as "UTF-16 LE", or with "UTF-8 with BOM".

    Use instead: save captions as UTF-8 without a byte-order mark.

    Fix safety: re-encoding a BOM or UTF-16 file is safe (the text is known exactly); re-encoding a
    Latin-1 guess is unsafe (the original encoding was guessed). Unreadable files have no fix.

    Options: none.
    """

    code = "KL512"
    name = "caption.encoding"
    groups = ("all", "caption")
    severity = "error"
    fix_availability = "sometimes"

    def check(self, ctx, opts):
        for item in ctx.dataset.items:
            problem = item.caption_error
            if item.caption is None or problem is None:
                continue
            fix = None
            if item.caption_text is not None:
                unsafe = "Latin-1" in problem
                fix = Fix("rewrite as UTF-8 without a byte-order mark",
                          (WriteText(str(item.caption), item.caption_text),), "unsafe" if unsafe else "safe")
            yield self.diag(ctx, item.rel_caption, f"caption file {problem}; trainers read plain UTF-8", fix=fix,
                            value=problem)
