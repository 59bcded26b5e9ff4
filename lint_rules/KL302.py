from curate.engine.rule import Rule


class KL302(Rule):
    """Another person is large enough to be confused with the character.

    Why: a LoRA cannot tell which face the trigger belongs to; a second prominent person bleeds
    their features into the identity. Small bystanders are harmless and are ignored.

    Example: a photo of the character hugging a friend of similar size.

    Use instead: crop the photo to the character alone, or leave it out.

    Fix safety: no automatic fix; which person is the character is your call.

    Options: `min_area_ratio` (another person's box area relative to the main subject's that
    counts as prominent, default 0.25).
    """

    code = "KL302"
    name = "subject.multiple"
    groups = ("all", "subject")
    severity = "warning"
    needs = ("framing",)
    options = {"min_area_ratio": 0.25}

    def check(self, ctx, opts):
        thr = float(opts["min_area_ratio"])
        for item in ctx.dataset.images:
            fr = ctx.result("framing", item)
            if not fr or fr.get("framing") == "none":
                continue
            big = [o for o in fr.get("others", []) if o["area_ratio"] >= thr]
            if big:
                top = max(o["area_ratio"] for o in big)
                n = len(big)
                yield self.diag(ctx, item.rel_image,
                                f"{n} other {'person is' if n == 1 else 'people are'} prominent (largest at "
                                f"{100 * top:.0f}% of the subject's size); crop to the character alone",
                                value=round(top, 3), threshold=thr)
