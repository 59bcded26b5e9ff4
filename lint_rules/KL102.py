from curate.analysis.imagestats import readable_images, short_side
from curate.engine.rule import Rule


class KL102(Rule):
    """Image is smaller than the training resolution.

    Why: FLUX.2 [klein] character LoRAs train at 1024 px. A smaller photo either trains in a
    smaller bucket (the model learns the face at a size you will not generate at) or is
    upscaled by the trainer and teaches blur and upscaling artefacts as part of the identity.
    Upscaling it yourself does not add detail either.

    Example: a 640x480 crop in a dataset with `resolution = 1024`.

    Use instead: the original, larger photo (short side >= `resolution`), or a different photo.

    Fix safety: no fix; klint never upscales. Severity: error when the short side is below
    `error_below` x resolution (default 0.5, i.e. 512 px at 1024: at that size most of the
    face detail the LoRA should learn is not there), warning otherwise.

    Options: `min_side` (short side in px; default: the config `resolution`), `error_below`
    (fraction of `min_side`, default 0.5).
    """

    code = "KL102"
    name = "image.resolution"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"min_side": None, "error_below": 0.5}

    def check(self, ctx, opts):
        target = int(opts.get("min_side") or ctx.config.resolution)
        floor = float(opts["error_below"]) * target
        for item, rec in readable_images(ctx):
            side = short_side(rec)
            if side >= target:
                continue
            size = f"{rec['width']}x{rec['height']}"
            if side < floor:
                msg = (f"{size}: short side {side} px is under {floor:.0f} px ({opts['error_below']:g}x the "
                       f"{target} px training resolution); it trains blurry or tiny. Use a larger original")
                yield self.diag(ctx, item.rel_image, msg, severity="error", value=side, threshold=target)
            else:
                msg = (f"{size}: short side {side} px is below the {target} px training resolution; it trains "
                       f"in a smaller bucket or is upscaled (soft). Use a larger original if you have one")
                yield self.diag(ctx, item.rel_image, msg, value=side, threshold=target)
