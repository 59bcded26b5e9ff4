from curate.analysis.framing import TINY_HEAD_PX
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

    Options: `min_head_px` (head height at the training resolution, default 48: three of Klein's
    16 px latent tokens). Below it the photo's framing is `none`: `dataset.composition`, `inspect`
    and the report do not count it as a close, half or full sample.

    How: the framing analysis makes the cut on the pose head height (and says `tiny`); where the
    face analysis found the subject's face, its measured height (brow-to-chin box x 1.45 = crown
    to chin) is a second witness, so a sharp full-body shot whose face comes out small is flagged
    too. Both are scaled to the training resolution the way bucketing trainers resize (pixel area
    near resolution squared).
    """

    code = "KL303"
    name = "subject.small"
    groups = ("all", "subject")
    severity = "warning"
    needs = ("framing", "pose", "face")
    options = {"min_head_px": TINY_HEAD_PX}

    def check(self, ctx, opts):
        from curate.analysis.face_framing import subject_head_px

        res = ctx.config.resolution
        thr = float(opts["min_head_px"])
        for item in ctx.dataset.images:
            fr = ctx.result("framing", item)
            # the framing analysis made the cut (same threshold, same head_px_at); this rule says why
            if fr and fr.get("framing_reason") == "tiny" and fr.get("head_px_train") is not None:
                head = fr["head_px_train"]
                body = {"close": "close-up", "half": "half-body", "full": "full-body"}.get(fr.get("framing_body"), "")
                yield self.diag(ctx, item.rel_image,
                                f"subject's head is about {head:.0f} px high at {res} px training size "
                                f"(needs {thr:.0f}+): too small to learn a face from, so this {body} photo is "
                                f"not counted in the framing mix; crop closer or use a closer photo".replace("  ", " "),
                                value=round(head, 1), threshold=thr)
                continue
            head, source = subject_head_px(ctx, item)
            if head is not None and head < thr and source == "face":
                yield self.diag(ctx, item.rel_image,
                                f"subject's face is about {head:.0f} px high at {res} px training size "
                                f"(needs {thr:.0f}+ px of head); crop closer or use a closer photo",
                                value=round(head, 1), threshold=thr)
