from curate.engine.rule import Rule


class KL502(Rule):
    """Caption file is empty or whitespace only.

    Why: an empty caption trains the image on no text at all, so the trigger word never binds to it
    and the image teaches the model an unconditional face instead of your identity.

    Example: `img_04.txt` containing nothing, or only spaces and newlines.

    Use instead: `jane_doe, sitting on a park bench, overcast daylight, half body`.

    Fix safety: no fix; a caption must describe the photo.

    Options: none.
    """

    code = "KL502"
    name = "caption.empty"
    groups = ("all", "caption")
    severity = "error"

    def check(self, ctx, opts):
        for item in ctx.dataset.items:
            if item.caption is not None and item.caption_text is not None and not item.caption_text.strip():
                yield self.diag(ctx, item.rel_caption, "caption is empty")
