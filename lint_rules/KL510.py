import re

from curate.engine.diagnostic import Fix, WriteText
from curate.engine.rule import Rule


def insert_framing(text: str, trigger: str, phrase: str) -> tuple[str, int] | None:
    """Caption with `phrase` added where a person would write it, and the insert offset.

    Tags ("jane_doe, smiling"): right after the trigger. Prose ("a photo of jane_doe smiling in
    a park. She..."): a sentence must not be split, so the phrase goes where the trigger's clause
    ends - before its first comma, or at the end of its sentence - as a trailing tag.
    """
    m = re.search(r"(?<![\w-])" + re.escape(trigger) + r"(?![\w-])", text, re.IGNORECASE)
    if m is None:
        return None
    rest = text[m.end():]
    if not rest.strip() or rest[0] in ",.;:!?\n":
        return f"{text[:m.end()]}, {phrase}{rest}", m.end()
    stop = re.search(r"[,;:\n]|[.!?](?=\s|$)", rest)
    at = m.end() + (stop.start() if stop else len(rest.rstrip()))
    return f"{text[:at]}, {phrase}{text[at:]}", at


class KL510(Rule):
    """Caption does not name the shot's framing.

    Why: the seed's composition fix has two halves, a 1/3 mix of framings and captions that say
    which one each photo is ("close portrait", "half body", "full body shot"). Named framing
    lets the LoRA separate shot size from identity, which counters the big-heads problem.

    Example: `jane_doe, standing in a park` for a full-body photo.

    Use instead: `jane_doe, full body shot, standing in a park`.

    Fix safety: safe; inserts the seed's phrase for the detected framing right after the
    trigger word. No fix when the trigger is missing from the caption or the framing is unknown.

    Options: none.
    """

    code = "KL510"
    name = "caption.framing-missing"
    groups = ("all", "caption")
    severity = "warning"
    fix_availability = "sometimes"
    needs = ("framing", "caption")

    def check(self, ctx, opts):
        from curate.analysis.framing import SEED_PHRASE, caption_framing_terms

        trigger = ctx.config.trigger
        for item in ctx.dataset.captioned:
            if not item.caption_text.strip() or caption_framing_terms(ctx, item):
                continue
            fr = ctx.result("framing", item) or {}
            framing = fr.get("framing")
            fix = None
            msg = "caption names no framing"
            if framing in SEED_PHRASE:
                phrase = SEED_PHRASE[framing]
                msg += f"; the image looks like a {framing} shot: add \"{phrase}\""
                got = insert_framing(item.caption_text, trigger, phrase) if trigger else None
                if got is not None:
                    fix = Fix(f"insert \"{phrase}\"",
                              (WriteText(str(ctx.dataset.abspath(item.rel_caption)), got[0]),), "safe")
            yield self.diag(ctx, item.rel_caption, msg, fix=fix, value=framing)
