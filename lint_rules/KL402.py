from curate.engine.rule import Rule


class KL402(Rule):
    """One background dominates, or too few distinct backgrounds.

    Why: a background that appears in most photos is learnt with the identity, and the LoRA
    keeps painting that wall or room behind the character. Varied places help it generalise.

    Example: 15 of 20 photos in front of the same grey studio backdrop.

    Use instead: add photos in other places (outdoors, other rooms, plain and busy scenes).

    Fix safety: no fix.

    Options: `min_backgrounds` (distinct background clusters needed, default 3), `max_share`
    (largest cluster's share of the images, default 0.6). Backgrounds are compared by colour
    histogram with the people masked out.

    The "effective number" that lint, `klint inspect` and `klint report` show beside the count
    of backgrounds is exp(entropy) of the cluster sizes: it equals the number of backgrounds
    when they are equally common and falls towards 1 as one dominates (clusters of 8, 1 and 1
    photos: 3 backgrounds, effective number 1.9).
    """

    code = "KL402"
    name = "dataset.background-variety"
    groups = ("all", "dataset", "variety")
    severity = "warning"
    needs = ("scene",)
    options = {"min_backgrounds": 3, "max_share": 0.6}

    def check(self, ctx, opts):
        from curate.analysis.variety import dataset_variety, effective_number

        bg = dataset_variety(ctx)["background"]
        n = bg["n"]
        if n < 2:
            return
        need = min(int(opts["min_backgrounds"]), n)
        if bg["clusters"] < need:
            yield self.diag(ctx, "", f"{bg['clusters']} distinct background{'s' if bg['clusters'] != 1 else ''} "
                            f"across {n} images (effective number {effective_number(bg['sizes'])}); "
                            f"need at least {need}",
                            value=bg["clusters"], threshold=need)
        elif bg["largest_share"] > float(opts["max_share"]):
            yield self.diag(ctx, "", f"one background is in {bg['sizes'][0]} of {n} images "
                            f"({100 * bg['largest_share']:.0f}%); add photos in other places",
                            value=bg["largest_share"], threshold=float(opts["max_share"]))
