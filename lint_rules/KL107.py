from curate.analysis.imagestats import DARK_P99, LIGHT_1_MINUS_P5, readable_images
from curate.engine.rule import Rule


class KL107(Rule):
    """Image is far too dark or blown out.

    Why: in a very dark or washed-out photo the face has little tonal detail; the LoRA learns
    the exposure along with the identity (murky or overexposed generations) and the face
    itself poorly.

    Example: a night shot where even the brightest 1% of pixels is below 32% brightness; a
    flash-blown photo where 95% of pixels are near white.

    Use instead: a well-exposed photo, or fix the exposure in an editor first.

    Fix safety: no fix. Severity: warning. Scores are cleanvision's, on perceived
    brightness sqrt(.241R²+.691G²+.068B²): dark when the 99th percentile < `dark`, light
    when 1 - the 5th percentile < `light`. On the 68 real test photos the lowest p99 was
    0.69 and the highest p5 0.49 (a white-background studio shot), far from both limits.

    Options: `dark` (default 0.32), `light` (default 0.05).
    """

    code = "KL107"
    name = "image.exposure"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"dark": DARK_P99, "light": LIGHT_1_MINUS_P5}

    def check(self, ctx, opts):
        dark, light = float(opts["dark"]), float(opts["light"])
        for item, rec in readable_images(ctx):
            b = rec.get("brightness") or {}
            if "p99" not in b:
                continue
            if b["p99"] < dark:
                msg = (f"too dark: even the brightest 1% of pixels is below {b['p99']:.0%} brightness "
                       f"(score {b['p99']:.2f} < {dark:g})")
                yield self.diag(ctx, item.rel_image, msg, value=b["p99"], threshold=dark)
            elif 1.0 - b["p5"] < light:
                score = round(1.0 - b["p5"], 4)
                msg = (f"blown out: 95% of pixels are above {b['p5']:.0%} brightness "
                       f"(score {score:.2f} < {light:g})")
                yield self.diag(ctx, item.rel_image, msg, value=score, threshold=light)
