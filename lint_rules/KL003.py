from curate.engine.rule import Rule


class KL003(Rule):
    """Caption is a link leading outside the dataset.

    Why: trainers follow the link and train on whatever file it names, which travels with no
    copy of the dataset; and a link to a private file (`~/.ssh/...`) would put its text into
    klint's messages and reports. klint neither reads nor writes it.

    Example: `img_03.txt -> ../../notes/private.txt`.

    Use instead: copy the caption into the dataset (`cp --remove-destination "$(readlink -f
    img_03.txt)" img_03.txt`).

    Fix safety: no fix; klint never writes outside the dataset.

    Options: none.
    """

    code = "KL003"
    name = "dataset.outside-link"
    groups = ("all", "dataset")
    severity = "error"

    def check(self, ctx, opts):
        for rel in ctx.dataset.outside_links:
            yield self.diag(ctx, rel, "caption is a link leading outside the dataset; not read")
