import re

from curate.engine.rule import Rule


class KL508(Rule):
    """The same term appears in most captions.

    Why: whatever is constant across the captions carries no information for the text side, so the
    trigger absorbs it: if "studio lighting" is in 90% of captions, `jane_doe` starts to mean "jane
    in a studio" and the LoRA fights you when you prompt a beach (SimpleTuner warns above 50%).

    Example: "black turtleneck" in 9 of 12 captions.

    Use instead: vary the photos (and so the captions), or drop the constant term where it is
    not what the photo is about. Class words ("woman"), boilerplate ("photo of") and framing words
    are not counted, nor is the trigger (with no trigger set, the word caption.trigger-missing
    names as the likely trigger).

    Fix safety: no fix; the dataset needs variety, not deletion.

    Options: `threshold` (share of captions above which a term is reported, default 0.5),
    `min-captions` (fewest captions to judge, default 4), `strong` (share for stronger wording, 0.8).
    """

    code = "KL508"
    name = "caption.common-term"
    groups = ("all", "caption", "variety")
    severity = "warning"
    needs = ("caption",)
    options = {"threshold": 0.5, "min-captions": 4, "strong": 0.8}

    def check(self, ctx, opts):
        threshold = float(opts.get("threshold", 0.5))
        strong = float(opts.get("strong", 0.8))
        captions = []
        for item in ctx.dataset.items:
            res = ctx.result("caption", item)
            if item.caption_text and item.caption_text.strip() and res is not None:
                captions.append((item, set(res.get("terms", []))))
        n = len(captions)
        if n < int(opts.get("min-captions", 4)):
            return
        # with no trigger set the analysis cannot mask it; leave out the word KL504 names as the likely one
        skip: set[str] = set()
        if not ctx.config.trigger:
            from curate.analysis.text import guess_trigger

            guess = guess_trigger([item.caption_text for item, _ in captions])
            if guess:
                skip = {p for p in re.split(r"[\s_\-.]+", guess.lower()) if p}
        where: dict[str, list[str]] = {}
        for item, terms in captions:
            for t in terms:
                if skip and skip & set(t.split()):
                    continue
                where.setdefault(t, []).append(item.rel_caption)
        common = [(t, rels) for t, rels in where.items() if len(rels) / n > threshold]
        # longest phrases first; a word is only reported when it is not covered by a reported phrase
        common.sort(key=lambda x: (-len(x[1]), -len(x[0].split()), x[0]))
        reported: list[tuple[str, int]] = []
        for term, rels in sorted(common, key=lambda x: (-len(x[0].split()), -len(x[1]), x[0])):
            words = set(term.split())
            if any(words < set(p.split()) and c >= len(rels) for p, c in reported):
                continue
            reported.append((term, len(rels)))
        keep = {t for t, _ in reported}
        for term, rels in common:
            if term not in keep:
                continue
            share = len(rels) / n
            if share > strong:
                msg = (f"\"{term}\" is in nearly every caption ({len(rels)}/{n}, {share:.0%}): the trigger "
                       f"will absorb it into the identity; vary it or drop it")
            else:
                msg = (f"\"{term}\" is in {len(rels)}/{n} captions ({share:.0%}): the trigger may absorb it "
                       f"into the identity")
            yield self.diag(ctx, "", msg, value=round(share, 3), threshold=threshold, related=rels[:3])
