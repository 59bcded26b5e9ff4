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

    Fix safety: no fix. Severity: warning. Score: the isotropy of the gradients (smaller
    eigenvalue / larger of the structure tensor) averaged over the sharpest quarter of a 4x4
    grid at 512 px; what edges motion blur leaves all run along the streak, so isotropy falls
    toward 0. Flagged when isotropy < `max_isotropy` and sharpness (KL108's score) is below
    `max_sharpness` but not below KL108's own limit (those are KL108's). Calibration (`python
    benchmarks/image_qa_eval.py`): no clean photo among the 185 real ones flagged (strongly
    striped, soft film stills score 0.06-0.2 on isotropy, so the sharpness cap is what keeps
    them out; the lowest clean score with sharpness under 400 was 0.11); of linear motion blurs
    of 2% / 3% of the long side, 4/62 and 7/62 caught here (more are caught by KL108): a weak
    detector, kept strict so that it raises no false alarm.
    KL108's threshold is unchanged.

    Options: `max_isotropy` (default 0.11), `max_sharpness` (default 400).
    """

    code = "KL112"
    name = "image.motion-blur"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"max_isotropy": 0.11, "max_sharpness": 400.0}

    def check(self, ctx, opts):
        from lint_rules.KL108 import KL108

        iso_limit, sharp_cap = float(opts["max_isotropy"]), float(opts["max_sharpness"])
        blur_limit = float(ctx.config.options_for(KL108)["threshold"])
        for item, rec in readable_images(ctx):
            iso, sharp = rec.get("grad_isotropy"), rec.get("lap_var_max")
            if iso is None or sharp is None or badly_exposed(rec):
                continue
            if iso < iso_limit and blur_limit <= sharp < sharp_cap:
                msg = (f"motion blur: the remaining edges all run one way (isotropy {iso:.2f} < {iso_limit:g}, "
                       f"sharpness {sharp:.0f} at {WORK_SIDE} px); use a sharp photo")
                yield self.diag(ctx, item.rel_image, msg, value=iso, threshold=iso_limit)
