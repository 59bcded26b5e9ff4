from curate.analysis.imagestats import ORIENTATIONS, readable_images
from curate.engine.rule import Rule


class KL103(Rule):
    """Image relies on an EXIF orientation tag to display upright.

    Why: phones store the sensor's pixels and a tag saying "rotate 90°". Viewers honour the
    tag; several training data loaders open the raw pixels and ignore it, so the LoRA learns
    a sideways or upside-down face that you never saw in your file browser.

    Example: `IMG_2041.jpg` with EXIF Orientation = 6 (pixels stored rotated 90° clockwise).

    Use instead: re-save the pixels upright and drop the tag (`exiftran -ai *.jpg`,
    `mogrify -auto-orient`, or "export" in any photo editor).

    Fix safety: no fix; klint never rewrites images. Severity: error for every tag that
    rotates or flips vertically (3-8); warning for a pure left-right mirror (2), which keeps
    the face upright but swaps asymmetric features such as a parting or a mole.

    Options: none.
    """

    code = "KL103"
    name = "image.exif-rotation"
    groups = ("all", "image")
    severity = "error"
    needs = ("image",)

    def check(self, ctx, opts):
        for item, rec in readable_images(ctx):
            o = int(rec.get("exif_orientation") or 1)
            if o == 1:
                continue
            msg = (f"EXIF orientation {o} (stored {ORIENTATIONS.get(o, 'transformed')}): loaders that ignore EXIF "
                   f"train it {'mirrored' if o == 2 else 'sideways or upside down'}; re-save it upright")
            yield self.diag(ctx, item.rel_image, msg, severity="warning" if o == 2 else "error", value=o, threshold=1)
