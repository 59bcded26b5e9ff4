from curate.engine.rule import Rule


class KL503(Rule):
    """Caption file has no image.

    Why: a stray `.txt` usually means an image was renamed or deleted; some trainers error on it,
    others silently drop it, and the caption you wrote is not being used.

    Example: `img_07.txt` with no `img_07.jpg/.jpeg/.png/.webp`.

    Use instead: restore or rename the image, or delete the caption.

    Fix safety: no fix; klint never deletes files.

    Options: none.
    """

    code = "KL503"
    name = "caption.orphan"
    groups = ("all", "caption")
    severity = "warning"

    def check(self, ctx, opts):
        for item in ctx.dataset.items:
            if item.caption is not None and item.image is None:
                yield self.diag(ctx, item.rel_caption, "caption has no image with the same name")
