from curate.engine.rule import Rule


class KL403(Rule):
    """All or nearly all faces look the same way (e.g. every photo straight into the camera).

    Why: the LoRA learns the face from the views it is shown. A set of only frontal faces gives
    it no idea of the nose line, jaw and ears from the side, so three-quarter and profile
    generations drift to another person or snap back to frontal.

    How: each subject face's yaw class comes from where the nose sits between the eyes on the
    5 face landmarks (frontal: nose within 0.09 eye-distances of the eye midpoint;
    three-quarter: up to 0.3; profile beyond, or pose shows the nose and one eye only). Faces
    the detector did not find are not counted.

    Example: 20 passport-style portraits, all frontal.

    Use instead: add photos of the face turned about 45 degrees (three-quarter) and from the
    side (profile), in both directions.

    Fix safety: no fix.

    Options: `max_share` (largest view's share of the faces, default 0.8), `min_share` (share
    each other view should reach, default 0.1: below it the view is named as missing),
    `min_faces` (faces needed to judge, default 6).
    """

    code = "KL403"
    name = "dataset.angle-variety"
    groups = ("all", "dataset", "variety")
    severity = "warning"
    needs = ("face", "framing")
    options = {"max_share": 0.8, "min_share": 0.1, "min_faces": 6}

    def check(self, ctx, opts):
        from curate.analysis.face import YAW_CLASSES, yaw_class

        counts = dict.fromkeys(YAW_CLASSES, 0)
        for item in ctx.dataset.images:
            y = yaw_class(ctx, item)
            if y in counts:
                counts[y] += 1
        n = sum(counts.values())
        if n < int(opts["min_faces"]):
            return
        top = max(counts, key=counts.get)
        share = counts[top] / n
        if share <= float(opts["max_share"]):
            return
        missing = [k for k in YAW_CLASSES if k != top and counts[k] / n < float(opts["min_share"])]
        add = " and ".join(missing) or "other"
        yield self.diag(ctx, "", f"{counts[top]} of {n} faces are {top} ({100 * share:.0f}%; "
                        + ", ".join(f"{k}: {v}" for k, v in counts.items()) + f"); add {add} views",
                        value=round(share, 3), threshold=float(opts["max_share"]))
