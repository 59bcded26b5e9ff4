from curate.engine.rule import Rule


class KL303(Rule):
    """Subject is too small to learn a face from.

    Why: trainers resize each image to the training resolution; a person whose head ends up a
    few dozen pixels high gives the LoRA almost no facial detail, so the identity learnt from
    that photo is mostly clothing and silhouette.

    Example: a wide holiday shot where the character is a small figure in the landscape.

    Use instead: crop closer around the person (keeping the crop at least the training
    resolution), or use a photo where the person fills more of the frame.

    Fix safety: no automatic fix; `klint fix --rebalance` can derive tighter crops when the
    source is large enough.

    Options: `min_head_px` (head height at the training resolution, default 48).
    """

    code = "KL303"
    name = "subject.small"
    groups = ("all", "subject")
    severity = "warning"
    needs = ("framing", "pose")
    options = {"min_head_px": 48}

    def check(self, ctx, opts):
        res = ctx.config.resolution
        thr = float(opts["min_head_px"])
        for item in ctx.dataset.images:
            fr = ctx.result("framing", item)
            pose = ctx.result("pose", item)
            if not fr or not pose or fr.get("framing") == "none" or not fr.get("head_height_px"):
                continue
            # bucketing trainers keep the pixel area near resolution^2
            scale = res / (pose["width"] * pose["height"]) ** 0.5
            head = fr["head_height_px"] * scale
            if head < thr:
                yield self.diag(ctx, item.rel_image,
                                f"subject's head is about {head:.0f} px high at {res} px training size "
                                f"(needs {thr:.0f}+); crop closer or use a closer photo",
                                value=round(head, 1), threshold=thr)
