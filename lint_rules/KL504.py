from curate.analysis.text import find_trigger, guess_trigger, prefix_trigger
from curate.engine.diagnostic import Fix, WriteText
from curate.engine.rule import Rule


class KL504(Rule):
    """Caption does not contain the trigger word.

    Why: the LoRA binds the identity to the trigger only in captions that contain it; a caption
    without it teaches the face to the bare prompt, and at inference the trigger is weaker.
    When no trigger is configured at all, klint cannot check triggers and says so once (a
    warning), naming the likely trigger: a made-up word (underscore or digit, or opening most
    captions) found in most captions. caption.common-term uses the same guess to leave it out.

    Example: `standing in a sunlit garden, white blouse` with `trigger = "jane_doe"`.

    Use instead: `jane_doe, standing in a sunlit garden, white blouse`.

    Fix safety: safe; prepends `<trigger>, ` and changes nothing else. A caption holding a spelling
    variant ("Jane Doe") is left to caption.trigger-variant instead.

    Options: none. Set the trigger with `trigger = "jane_doe"` in klint.toml or `--trigger`.
    """

    code = "KL504"
    name = "caption.trigger-missing"
    groups = ("all", "caption", "trigger")
    severity = "error"
    fix_availability = "always"

    def check(self, ctx, opts):
        trigger = ctx.config.trigger
        captions = [it for it in ctx.dataset.items if it.caption_text is not None and it.caption_text.strip()]
        if not trigger:
            if captions:
                texts = [it.caption_text for it in captions]
                guess = guess_trigger(texts)
                if guess:
                    hits = sum(1 for t in texts if find_trigger(t, guess)[0] or find_trigger(t, guess)[1])
                    msg = (f"no trigger word is set, so trigger checks are skipped; \"{guess}\" is in "
                           f"{hits}/{len(texts)} captions and looks like the trigger: add "
                           f"`trigger = \"{guess}\"` to klint.toml or pass --trigger {guess}")
                else:
                    msg = ("no trigger word is set, so trigger checks are skipped: add "
                           "`trigger = \"jane_doe\"` (your word) to klint.toml or pass --trigger")
                # only a warning: nothing is known to be wrong yet, the checks just cannot run
                yield self.diag(ctx, "", msg, severity="warning", value=guess)
            return
        for item in captions:
            text = item.caption_text
            exact, variants = find_trigger(text, trigger)
            if exact or variants:
                continue
            new = prefix_trigger(trigger, text)
            fix = Fix(f"prepend \"{trigger}, \"", (WriteText(str(ctx.dataset.abspath(item.rel_caption)), new),))
            yield self.diag(ctx, item.rel_caption, f"trigger \"{trigger}\" is missing", fix=fix)
