from curate.analysis.imagestats import readable_images
from curate.engine.rule import Rule


class KL106(Rule):
    """Image has an extreme aspect ratio.

    Why: trainers bucket images to a limited set of aspect ratios (typically up to about
    1:2 or 1:2.5 at 1024 px); a very tall or wide image is cropped hard (losing head or feet)
    or lands in a tiny, rarely-filled bucket.

    Example: a 600x2000 full-length phone screenshot (ratio 0.30).

    Use instead: crop to between 1:2 and 2:1 around the subject, keeping the whole person
    for full-body shots.

    Fix safety: no fix. Severity: warning. Score and default follow cleanvision's
    odd-aspect-ratio check: min(w/h, h/w) below 0.35.

    Options: `min_ratio` (default 0.35).
    """

    code = "KL106"
    name = "image.aspect"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"min_ratio": 0.35}

    def check(self, ctx, opts):
        limit = float(opts["min_ratio"])
        for item, rec in readable_images(ctx):
            w, h = int(rec["width"]), int(rec["height"])
            if not w or not h:
                continue
            ratio = min(w / h, h / w)
            if ratio < limit:
                msg = (f"{w}x{h} is 1:{1 / ratio:.1f} (ratio {ratio:.2f} < {limit:g}): trainers crop it hard or "
                       f"put it in a tiny bucket; crop it nearer 1:2")
                yield self.diag(ctx, item.rel_image, msg, value=round(ratio, 3), threshold=limit)
