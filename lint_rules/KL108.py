from curate.analysis.image import WORK_SIDE
from curate.analysis.imagestats import badly_exposed, low_contrast, readable_images
from curate.engine.rule import Rule


class KL108(Rule):
    """Image is blurry.

    Why: out-of-focus or motion-blurred photos teach softness as part of the identity; the
    LoRA's faces come out smeared and detail such as eyes and skin texture is lost.

    Example: a phone snapshot with camera shake; a frame grab from a video.

    Use instead: a sharp photo of the same kind (same framing and lighting) or drop it.

    Fix safety: no fix. Severity: warning. Score: variance of the 4-neighbour Laplacian of
    the grey image scaled to a 512 px long side, taken on the sharpest cell of a 4x4 grid, so
    a sharp face against a plain or bokeh background still counts as sharp (whole-image
    scores misfire there). Calibration (`python benchmarks/image_calibration.py`): the 68
    real test photos scored 44-12,800 (the softest an upscaled crowd crop), none flagged; a
    Gaussian blur of 0.8% of the long side scored 3-17 on all 64 photos of 300 px or more
    (all flagged), a 0.4% blur 5-175 (48 of 64 flagged). Images under 512 px are scored at
    their own size (KL102 reports their size). Images KL107 finds too dark or blown out are
    left to it: without tonal range there are no edges to measure. So are the ones KL111 finds
    low in contrast: the Laplacian variance falls with the square of the contrast, so a flat,
    near-blank frame reads as blurry whatever its focus (on the benchmark's near-blank frames,
    `benchmarks/image_qa_eval.py`, KL108 named all 4 blurry beside KL111's low-contrast).

    Options: `threshold` (default 25).
    """

    code = "KL108"
    name = "image.blur"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"threshold": 25.0}

    def check(self, ctx, opts):
        limit = float(opts["threshold"])
        for item, rec in readable_images(ctx):
            score = rec.get("lap_var_max")
            if score is None or score >= limit or badly_exposed(rec) or low_contrast(rec):
                continue
            msg = (f"blurry: sharpness {score:.1f} < {limit:g} (Laplacian variance of the sharpest region at "
                   f"{WORK_SIDE} px); use a sharper photo")
            yield self.diag(ctx, item.rel_image, msg, value=score, threshold=limit)
