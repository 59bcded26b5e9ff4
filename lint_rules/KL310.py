from curate.composition import TOLERANCE
from curate.engine.rule import Rule


class KL310(Rule):
    """Framing mix is far from 1/3 close-up, 1/3 half-body, 1/3 full-body.

    Why: the seed's "big heads" fix. A dataset of mostly headshots ties the trigger to
    headshots and the LoRA draws oversized heads on full figures (Klein's distilled variant
    already leans that way); the cure is an even mix of framings, named in the captions.

    Example: 14 close-ups, 3 half-body and 1 full-body photo.

    Use instead: add photos of the missing framings, or let `klint fix --rebalance` set
    per-image repeats (and derive crops) so each framing carries about a third.

    Fix safety: no fix here; `klint fix --rebalance` writes repeats, which this rule counts
    (`repeats` in klint.toml: an image with 3 repeats counts 3 times).

    What counts: only photos framed close, half or full. A photo framed `none` is not a sample
    of any framing: no person (subject.none), or a person too small to learn a face from - a
    figure in a wide street, park, beach or sports scene. That cut is made on the subject's head
    height at the training resolution (the photo scaled to `resolution`^2 pixels, as bucketing
    trainers do), below subject.small's `min_head_px` (default 48 px, three of Klein's 16 px
    latent tokens); such a photo would otherwise pass for a full-body shot while teaching no face.

    How a photo's framing is judged (curate/analysis/framing.py, from pose keypoints, with the
    face scan as second witness): ankles in frame, or knees with room below them for most of
    the shin, is full; knees cut off is half. With the hips out of frame - or at its edge, where
    pose gives them confidences near 0 - the frame's reach below the shoulder line decides,
    counted in head-heights of the subject's own head: at least 1.5 (the waist, canon navel
    line) is a waist-up half shot, less is close (chest up, head and shoulders). The head unit is
    the largest of eye spacing / 0.32, ear spacing / 0.76 and eye-to-shoulder / 1.1 (proportions
    measured on clean standing figures, one head = eye-to-ankle / 7); a turned or bowed head
    only shrinks these, so the largest is the best. A person but no head or shoulders to
    measure from falls back to the frame's extent below the crown (3.3 heads). Pose finding no
    person while the face scan finds a face at least a fifth of the frame high is close.

    The numbers come from `curate.composition`, which `klint inspect`, `klint report` and
    `klint fix --rebalance` share: a framing's share is its images' repeats over all framed
    images' repeats; photos framed `none` (no person, or a subject too small to judge) are left
    out. "add N" counts new photos at x1 that lift the share over the threshold; the number in
    brackets is what a full third takes.

    Options: `tolerance` (how far below its target a framing's share may fall, default 0.13, so
    with the 1/3 targets each framing needs at least 1/3 - 0.13 = 20.3%), `min_images` (skip
    datasets with fewer framed images, default 3). Targets are thirds unless `[rebalance]
    targets` in klint.toml says otherwise.
    """

    code = "KL310"
    name = "dataset.composition"
    groups = ("all", "dataset")
    severity = "warning"
    needs = ("framing",)
    options = {"tolerance": TOLERANCE, "min_images": 3}

    def check(self, ctx, opts):
        from curate.composition import advice, for_dataset, mix_text, pct

        from curate.dataset.derived import replacements

        repeats = ctx.config.repeats or {}
        replaced = replacements(ctx.dataset.root)  # a clean text crop trains in its source's place
        comp = for_dataset(ctx.config, (((ctx.result("framing", item) or {}).get("framing"),
                                         int(repeats.get(item.rel_image, 1))) for item in ctx.dataset.images
                                        if item.rel_image not in replaced),
                           tolerance=float(opts["tolerance"]))
        if comp.framed_images < int(opts["min_images"]) or comp.framed_weight == 0:
            return
        short = comp.short
        if not short:
            return
        floors = {pct(comp.floor(g)) for g in short}
        need = (f"each framing needs at least {floors.pop()}" if len(floors) == 1 else
                "below its share: " + ", ".join(f"{g} needs {pct(comp.floor(g))}" for g in short))
        yield self.diag(ctx, "", f"framing mix is {mix_text(comp)}; {need}: "
                        f"{' and '.join(advice(comp, g) for g in short)} (or run `klint fix --rebalance`)",
                        value={g: round(v, 3) for g, v in comp.shares.items()},
                        threshold=round(min(comp.floor(g) for g in short), 4))
