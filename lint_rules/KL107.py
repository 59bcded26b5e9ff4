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

    Blown-out is also judged on the subject, the centre region (middle 60% wide, 70% high,
    where the subject sits in a training photo): flagged when at least `subject_clip` of it is
    clipped white while the border is not a white background (under half clipped), or when
    at least `subject_clip_bright` of it is clipped and the median of the rest is above
    `subject_rest`. A white-background studio shot clips most of its pixels, border included,
    but its subject's own pixels are mid-tones, so it passes. Calibration (185 real photos,
    `python benchmarks/image_qa_eval.py`): no clean photo flagged (the white-background
    acrobat: centre 0.69 clipped, border 0.97, rest median 0.57; the brightest other centre
    0.39); 17/62 x1.6 and 25/62 x2.2 gain copies caught.

    Options: `dark` (default 0.32), `light` (default 0.05), `subject_clip` (default 0.4),
    `subject_clip_bright` (default 0.2), `subject_rest` (default 0.6).
    """

    code = "KL107"
    name = "image.exposure"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"dark": DARK_P99, "light": LIGHT_1_MINUS_P5, "subject_clip": 0.4, "subject_clip_bright": 0.2,
               "subject_rest": 0.6}

    def check(self, ctx, opts):
        dark, light = float(opts["dark"]), float(opts["light"])
        s_clip, s_bright, s_rest = (float(opts[k]) for k in ("subject_clip", "subject_clip_bright", "subject_rest"))
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
            elif _subject_blown(rec, s_clip, s_bright, s_rest):
                clip = rec["centre_clip"]
                msg = (f"blown out on the subject: {clip:.0%} of the centre region is clipped white "
                       f"(not a white background); use a better-exposed photo")
                yield self.diag(ctx, item.rel_image, msg, value=clip, threshold=s_clip)


def _subject_blown(rec, s_clip: float, s_bright: float, s_rest: float) -> bool:
    clip = rec.get("centre_clip") or 0.0
    if clip >= s_clip and (rec.get("border_clip") or 0.0) < 0.5:
        return True
    return clip >= s_bright and (rec.get("centre_rest_p50") or 0.0) >= s_rest
