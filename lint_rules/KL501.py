from curate.engine.rule import Rule


class KL501(Rule):
    """Image has no caption file.

    Why: trainers pair `photo.jpg` with `photo.txt`; without it the image trains on an empty or
    default caption and the trigger word never binds to it.

    Example: `img_03.jpg` with no `img_03.txt` beside it.

    Use instead: write `img_03.txt` starting with the trigger word, then scene, lighting, framing.

    Fix safety: no automatic fix; a caption must describe the photo.

    Options: none.
    """

    code = "KL501"
    name = "caption.missing"
    groups = ("all", "caption")
    severity = "error"

    def check(self, ctx, opts):
        for item in ctx.dataset.items:
            if item.image is not None and item.caption is None and not (
                    item.rel_caption in ctx.dataset.special or item.rel_caption in ctx.dataset.outside_links):
                yield self.diag(ctx, item.rel_image, f"no caption: expected {item.key}.txt beside the image")
