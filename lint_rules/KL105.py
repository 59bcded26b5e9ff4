from curate.analysis.imagestats import badly_exposed, low_contrast, readable_images
from curate.engine.rule import Rule


class KL105(Rule):
    """Image is black-and-white.

    Why: every image is captioned with the trigger word, so a black-and-white photo teaches
    that the trigger means "monochrome"; with a few of them, colour generations come out
    desaturated or wrong-toned (skin, hair and eye colour are part of the identity).

    Example: a mode `L` scan, or an RGB JPEG whose three channels are (nearly) equal.

    Use instead: the colour original; if you must keep it, caption it "black and white
    photo" so the look binds to those words instead of the trigger.

    Fix safety: no fix. Severity: warning. Detection: mode L/LA/I, or per-pixel channel
    spread with mean <= 6 and 99th percentile <= 24 levels (a palette B&W scan measured 4.9
    and 14; the least colourful colour photo in the test set 5.0 and 70). Images KL107 finds
    too dark or blown out are left to it: they have no colour left to judge; RGB images
    KL111 finds low in contrast are left to it (a flat colour photo has little spread).

    Options: none.
    """

    code = "KL105"
    name = "image.grayscale"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)

    def check(self, ctx, opts):
        for item, rec in readable_images(ctx):
            if not rec.get("grayscale") or badly_exposed(rec) or (low_contrast(rec) and not _stored_gray(rec)):
                continue
            mode = rec.get("mode")
            if mode in ("1", "L", "LA", "I", "I;16", "F"):
                how = f"grayscale image (mode {mode})"
            else:
                how = f"black-and-white photo stored as {mode} (colour spread {rec.get('chroma_mean', 0):g} levels)"
            yield self.diag(ctx, item.rel_image, f"{how}: the trigger learns \"monochrome\"; use the colour "
                            f"original or caption it \"black and white photo\"")


def _stored_gray(rec) -> bool:
    return rec.get("mode") in ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "F")
