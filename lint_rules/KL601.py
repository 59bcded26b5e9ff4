from curate.engine.rule import Rule


class KL601(Rule):
    """Training plan gives too few effective samples for the number of images.

    Why: the seed's repeats math is 90-120 repeats per image: with 10 images that is 900-1200
    effective samples per epoch. Fewer than 50 per image undertrains the identity even at 3K
    steps. After `klint fix --rebalance` the x1 images get `base` repeats each and heavier
    groups more; the base must stay above 50 too.

    Example: `[train] repeats = 30` with 10 images (300 samples per epoch).

    Use instead: `[train] repeats = 100` (the standard recipe), or drop the key to use the
    recipe's value; add photos to small framing groups instead of repeating them harder.

    Fix safety: no fix; the repeats are a training choice.

    Options: `min` (error below, default 50), `recommended` (warning below, default 90).
    """

    code = "KL601"
    name = "train.repeats"
    groups = ("all", "train")
    severity = "error"
    options = {"min": 50, "recommended": 90}

    def check(self, ctx, opts):
        from curate.fix.rebalance import base_repeats
        from curate.fix.trainplan import config_location, train_settings

        if not ctx.config.train:
            return
        n = len(ctx.dataset.images)
        if not n:
            return
        s = train_settings(ctx.config)
        rel, line = config_location(ctx.config, ctx.dataset.root, "train", "repeats")
        if not isinstance(s.repeats, int) or isinstance(s.repeats, bool) or s.repeats < 1:
            yield self.diag(ctx, rel, f"[train] repeats must be a positive integer, got {s.repeats!r}", line=line)
            return
        lo, rec = int(opts["min"]), int(opts["recommended"])
        mult = [int(ctx.config.repeats.get(it.rel_image, 1)) for it in ctx.dataset.images]
        base = base_repeats(s.repeats, n, sum(mult))
        samples = base * sum(mult)
        per = samples / n
        where = f"{samples} effective samples per epoch for {n} image{'s' if n != 1 else ''} ({per:.0f} per image)"
        if per < lo:
            yield self.diag(ctx, rel, f"{where}: below {lo} per image undertrains even at 3K steps; the seed's "
                            f"math is 90-120 repeats per image", line=line, value=round(per, 1), threshold=lo)
        elif per < rec:
            yield self.diag(ctx, rel, f"{where}: the seed recommends 90-120 repeats per image "
                            f"({90 * n}-{120 * n} samples)", severity="warning", line=line,
                            value=round(per, 1), threshold=rec)
        elif base * min(mult) < lo:
            yield self.diag(ctx, rel, f"the rebalance plan leaves its x1 images at {base * min(mult)} repeats "
                            f"(< {lo}); add photos to the small framing groups instead of repeating them "
                            f"{max(mult)}x", severity="warning", line=line, value=base * min(mult), threshold=lo)
