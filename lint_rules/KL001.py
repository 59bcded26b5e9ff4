from curate.engine.rule import Rule


class KL001(Rule):
    """Dataset has too few images to learn an identity.

    Why: the seed recipe needs 8-12 well-curated photos at minimum; below 8 a character LoRA
    memorises the few poses it sees. Between 8 and 12 it works if every photo is good; more
    varied photos (up to ~40) help.

    Example: a folder with 5 images.

    Use instead: add photos until there are at least 8 (ideally 12 or more), in the 1/3
    close / half-body / full-body mix.

    Fix safety: no fix; klint cannot make photos.

    Options: `min` (error below, default 8), `recommended` (warning below, default 12).
    """

    code = "KL001"
    name = "dataset.size"
    groups = ("all", "dataset")
    severity = "error"
    options = {"min": 8, "recommended": 12}

    def check(self, ctx, opts):
        n = len(ctx.dataset.images)
        lo, rec = int(opts["min"]), int(opts["recommended"])
        if n < lo:
            yield self.diag(ctx, "", f"only {n} image{'s' if n != 1 else ''}; at least {lo} are needed "
                            f"(the seed's minimum is 8-12 well-curated photos)", value=n, threshold=lo)
        elif n < rec:
            yield self.diag(ctx, "", f"{n} images is the seed's bare minimum (8-12); {rec}+ varied photos "
                            f"train a sturdier identity", severity="warning", value=n, threshold=rec)
