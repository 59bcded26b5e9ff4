import re

from curate.analysis.text import cut, find_trigger, trigger_regex
from curate.engine.diagnostic import Fix, WriteText
from curate.engine.rule import Rule


class KL507(Rule):
    """Caption describes the face (eyes, face shape, skin tone, facial hair, hair...).

    Why: the seed rule for identity LoRAs is "describe scene and pose, never the face". The model
    binds whatever the caption does NOT say to the trigger; words like "brown eyes" or "sharp
    cheekbones" anchor those features to text tokens, so the LoRA only reproduces the face when the
    prompt repeats them.

    Example: `jane_doe, brown eyes, oval face, sharp cheekbones, dark wavy hair, smiling`.

    Use instead: `jane_doe, smiling, studio lighting, half body`. Expressions, gaze and pose
    ("eyes closed", "raised eyebrows", "chin resting on hand"), makeup and accessories ("red
    lipstick", "sunglasses") and light on the face are fine.

    Fix safety: unsafe; removes the phrases (a whole tag, a "with freckles" / "has green eyes"
    clause, or just the describing words before a noun the sentence needs) and repairs commas and
    "and". It never removes the trigger. Read the diff: the caption meaning changes.

    What counts: eyes, face shape, nose, lips, cheekbones, jaw and chin, skin tone and complexion,
    freckles, moles, dimples, scars, wrinkles, eyebrows, hair colour / texture / length, facial
    hair ("no beard" and "clean-shaven" describe the face too) and baldness - also misspelt
    ("greeen eyes", one edit from a lexicon word the dictionary does not know), in comparatives
    ("shorter hair", "darker skin"), in any letter case and inside prompt weighting ((term:1.3),
    ((term)), [term], term::1.2). Only the subject's features count: the trigger, she/he, and
    "the woman"/"a man with..." when that is the caption's subject; "a cat with green eyes",
    "her father with a grey beard" and "beside a red-haired man" describe someone else.

    Age words ("middle-aged", "elderly", "in her twenties", "40 years old") are not flagged by
    default. Decision and reason: age is a coarse class word like "woman", not a facial feature
    the LoRA could learn from the caption instead of the face; the visible signs of age that are
    identity (wrinkles, grey hair) are flagged on their own. And a dataset that spans years
    (childhood photos, old photos) needs its age words, or the trigger averages the ages.
    Turn on `age` to flag them anyway.

    Options: `hair` (flag hair colour, length, texture and cut, default true; such hits are
    warnings), `age` (flag age words, default false), `extra-terms` (more words or phrases to
    flag, default []).
    """

    code = "KL507"
    name = "caption.face-description"
    groups = ("all", "caption")
    severity = "error"
    fix_availability = "sometimes"
    needs = ("caption",)
    options = {"hair": True, "age": False, "extra-terms": []}

    def check(self, ctx, opts):
        from curate.analysis.caption import _whole_chunk, reported_spans

        hair = bool(opts.get("hair", True))
        age = bool(opts.get("age", False))
        extra = [str(t).strip() for t in opts.get("extra-terms") or [] if str(t).strip()]
        extra_re = re.compile(r"(?<![^\W_])(" + "|".join(re.escape(t).replace(r"\ ", r"[\s_]+") for t in extra)
                              + r")(?![^\W_])", re.IGNORECASE) if extra else None
        trigger = ctx.config.trigger
        for item in ctx.dataset.items:
            text = item.caption_text
            res = ctx.result("caption", item)
            if not text or res is None:
                continue
            spans = reported_spans(res.get("face_spans", []), hair=hair, age=age)
            if extra_re is not None:
                for m in extra_re.finditer(text):
                    if any(s["start"] < m.end() and m.start() < s["end"] for s in spans):
                        continue
                    whole = _whole_chunk(text, m.start(), m.end())
                    spans.append({"start": m.start(), "end": m.end(), "text": m.group(0), "feature": "extra term",
                                  "fix": [list(whole or (m.start(), m.end()))]})
            if not spans:
                continue
            fix = self._fix(ctx, item, text, spans, trigger)
            for s in sorted(spans, key=lambda s: s["start"]):
                a = s["start"]
                line = text.count("\n", 0, a) + 1
                col = a - (text.rfind("\n", 0, a) + 1) + 1
                is_hair = s["feature"] == "hair"
                why = ("; hair is only a warning: it is styling that changes between photos, so naming it "
                       "can be deliberate (rule option `hair = false` turns these off)") if is_hair else ""
                yield self.diag(ctx, item.rel_caption,
                                f"face description \"{s['text']}\" ({s['feature']}): describe scene and pose, "
                                f"not the face{why}", fix=fix, severity="warning" if is_hair else None,
                                line=line, col=col,
                                end_col=col + (s["end"] - a), value=s["text"])

    def _fix(self, ctx, item, text, spans, trigger):
        protected = [(m.start(), m.end()) for m in trigger_regex(trigger).finditer(text)] if trigger else []
        ranges = []
        for s in spans:
            for a, b in s.get("fix") or [[s["start"], s["end"]]]:
                if any(p < b and a < q for p, q in protected):
                    a, b = s["start"], s["end"]  # fall back to the bare phrase
                    if any(p < b and a < q for p, q in protected):
                        continue
                ranges.append((a, b))
        if not ranges:
            return None
        new = cut(text, ranges)
        if trigger and len(find_trigger(new, trigger)[0]) < len(find_trigger(text, trigger)[0]):
            return None
        if new == text:
            return None
        n = len(spans)
        return Fix(f"remove {n} face description{'s' if n != 1 else ''}",
                   (WriteText(str(ctx.dataset.abspath(item.rel_caption)), new),), applicability="unsafe")
