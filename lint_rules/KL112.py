from curate.analysis.image import WORK_SIDE
from curate.analysis.imagestats import badly_exposed, readable_images
from curate.engine.rule import Rule


class KL112(Rule):
    """Image shows motion blur (camera shake or a moving subject).

    Why: motion blur smears detail along one direction; the LoRA learns the streaks and
    doubled edges as part of the face. Motion blur often keeps enough edges across the
    streak to pass the plain sharpness check (KL108), so it needs its own test.

    Example: a handheld snapshot in dim light; a frame grab of someone turning their head.

    Use instead: a sharp photo of the same kind, or drop it.

    Fix safety: no fix. Severity: warning. Score: energy of the second difference along four
    directions (0, 45, 90, 135 degrees) over the four sharpest cells of a 4x4 grid at 512 px,
    weakest / strongest. Motion blur averages along its streak, so that direction's second
    difference nearly vanishes. Flagged when the ratio < `max_ratio` and sharpness (KL108's
    score) is below `max_sharpness` but not below KL108's own limit (those are KL108's).
    Calibration (`python benchmarks/image_qa_eval.py` and the 185 real photos): clean photos
    with sharpness under 400 scored >= 0.10 (the lowest two soft film stills, 0.10 and 0.105);
    linear motion blurs of 2-4% of the long side scored 0.026-0.065; Gaussian (mild) blurs
    0.2-0.38, so they stay KL108's. KL108's threshold is unchanged.

    Options: `max_ratio` (default 0.08), `max_sharpness` (default 400).
    """

    code = "KL112"
    name = "image.motion-blur"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"max_ratio": 0.08, "max_sharpness": 400.0}

    def check(self, ctx, opts):
        from lint_rules.KL108 import KL108

        iso_limit, sharp_cap = float(opts["max_ratio"]), float(opts["max_sharpness"])
        blur_limit = float(ctx.config.options_for(KL108)["threshold"])
        for item, rec in readable_images(ctx):
            iso, sharp = rec.get("direction_ratio"), rec.get("lap_var_max")
            if iso is None or sharp is None or badly_exposed(rec):
                continue
            if iso < iso_limit and blur_limit <= sharp < sharp_cap:
                msg = (f"motion blur: detail is smeared along one direction (ratio {iso:.3f} < {iso_limit:g}, "
                       f"sharpness {sharp:.0f} at {WORK_SIDE} px); use a sharp photo")
                yield self.diag(ctx, item.rel_image, msg, value=iso, threshold=iso_limit)
