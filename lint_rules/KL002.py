from curate.engine.rule import Rule


class KL002(Rule):
    """Image or caption name is not a regular file (a FIFO, a device, or a link to one).

    Why: a trainer that opens a FIFO waits forever, and a link to `/dev/zero` reads without end
    until memory runs out; neither is a photo or a caption. klint does not open it.

    Example: `img_03.png -> /dev/zero`, or `img_03.txt` made with `mkfifo`.

    Use instead: replace it with the real image or caption file, or remove it.

    Fix safety: no fix; klint never deletes files.

    Options: none.
    """

    code = "KL002"
    name = "dataset.special-file"
    groups = ("all", "dataset")
    severity = "error"

    def check(self, ctx, opts):
        for rel, kind in sorted(ctx.dataset.special.items()):
            yield self.diag(ctx, rel, f"not a regular file ({kind}); not read")
