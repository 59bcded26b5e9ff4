from curate.engine.rule import Rule


class KL401(Rule):
    """Too few distinct lighting setups.

    Why: the seed requires at least 3 different lighting setups. Whatever is constant across
    the dataset is learnt as part of the identity: one lighting everywhere and the trigger
    brings that lighting with it.

    Example: every photo taken indoors under the same warm ceiling light.

    Use instead: add photos in other light: daylight outdoors, a dim or low-key scene, side
    light from a window, cool or warm colour.

    Fix safety: no fix; klint cannot relight photos.

    Options: `min_setups` (distinct lighting buckets needed, default 3), `max_share` (largest
    bucket's share of the images, default 0.7). Buckets combine key (low/normal/high), key-light
    side (left/front/right) and colour temperature (warm/neutral/cool).

    `klint inspect` and `klint report` show the number of setups with an "effective number of
    distinct setups": exp(entropy) of the bucket sizes. It equals the number of setups when
    they are equally common and falls towards 1 as one dominates (buckets of 8, 1 and 1 photos:
    3 setups, effective number 1.9), so it tells a varied set from one with a couple of strays.
    """

    code = "KL401"
    name = "dataset.lighting-variety"
    groups = ("all", "dataset", "variety")
    severity = "warning"
    needs = ("scene",)
    options = {"min_setups": 3, "max_share": 0.7}

    def check(self, ctx, opts):
        from curate.analysis.variety import dataset_variety

        li = dataset_variety(ctx)["lighting"]
        n = li["n"]
        if n < 2:
            return
        need = min(int(opts["min_setups"]), n)
        if li["distinct"] < need:
            yield self.diag(ctx, "", f"{li['distinct']} lighting setup{'s' if li['distinct'] != 1 else ''} across "
                            f"{n} images ({', '.join(f'{k}: {v}' for k, v in li['buckets'].items())}); "
                            f"need at least {need}", value=li["distinct"], threshold=need)
        elif li["largest_share"] > float(opts["max_share"]):
            yield self.diag(ctx, "", f"{100 * li['largest_share']:.0f}% of images share one lighting "
                            f"({li['largest']}); vary the light", value=li["largest_share"],
                            threshold=float(opts["max_share"]))
