from curate.analysis.imagestats import readable_images
from curate.engine.rule import Rule


class KL104(Rule):
    """Image has an alpha (transparency) channel.

    Why: trainers flatten transparency differently: some composite on black, some on white,
    some drop the channel and expose whatever colour the transparent pixels hold. A cut-out
    subject then trains against an arbitrary background that can bleed into the identity.

    Example: `portrait.png` in RGBA with the background removed (60% of pixels transparent).

    Use instead: flatten onto the background you want the model to see and save as RGB
    (or keep the original photo with its real background).

    Fix safety: no fix; klint never rewrites images. Severity: warning when more than
    `min_transparent` of the pixels are not fully opaque; info when the channel exists but is
    (practically) unused, which is harmless.

    Options: `min_transparent` (fraction of pixels with alpha < 255, default 0.001).
    """

    code = "KL104"
    name = "image.alpha"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"min_transparent": 0.001}

    def check(self, ctx, opts):
        limit = float(opts["min_transparent"])
        for item, rec in readable_images(ctx):
            if not rec.get("has_alpha"):
                continue
            used = float(rec.get("alpha_used") or 0.0)
            if used > limit:
                msg = (f"{used:.1%} of pixels are transparent: trainers composite them on black, white or garbage; "
                       f"flatten onto a real background and save as RGB")
                yield self.diag(ctx, item.rel_image, msg, value=round(used, 4), threshold=limit)
            else:
                yield self.diag(ctx, item.rel_image, f"has an alpha channel but it is (almost) fully opaque "
                                f"({used:.2%} transparent); harmless, RGB is simpler", severity="info",
                                value=round(used, 4), threshold=limit)
