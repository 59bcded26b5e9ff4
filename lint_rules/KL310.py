import math

from curate.engine.rule import Rule

LABEL = {"close": "close-up", "half": "half-body", "full": "full-body"}


class KL310(Rule):
    """Framing mix is far from 1/3 close-up, 1/3 half-body, 1/3 full-body.

    Why: the seed's "big heads" fix. A dataset of mostly headshots ties the trigger to
    headshots and the LoRA draws oversized heads on full figures (Klein's distilled variant
    already leans that way); the cure is an even mix of framings, named in the captions.

    Example: 14 close-ups, 3 half-body and 1 full-body photo.

    Use instead: add photos of the missing framings, or let `klint fix --rebalance` set
    per-image repeats (and derive crops) so each framing carries about a third.

    Fix safety: no fix here; `klint fix --rebalance` writes repeats, which this rule counts
    (`repeats` in klint.toml: an image with 3 repeats counts 3 times).

    What counts: only photos framed close, half or full. A photo framed `none` is not a sample
    of any framing: no person (subject.none), or a person too small to learn a face from - a
    figure in a wide street, park, beach or sports scene. That cut is made on the subject's head
    height at the training resolution (the photo scaled to `resolution`^2 pixels, as bucketing
    trainers do), below subject.small's `min_head_px` (default 48 px, three of Klein's 16 px
    latent tokens); such a photo would otherwise pass for a full-body shot while teaching no face.

    Options: `tolerance` (how far below a third a framing's share may fall, default 0.13, so
    each framing needs at least 20%), `min_images` (skip smaller datasets, default 3).
    """

    code = "KL310"
    name = "dataset.composition"
    groups = ("all", "dataset")
    severity = "warning"
    needs = ("framing",)
    options = {"tolerance": 0.13, "min_images": 3}

    def check(self, ctx, opts):
        counts = {"close": 0, "half": 0, "full": 0}
        eff = {"close": 0, "half": 0, "full": 0}
        repeats = ctx.config.repeats or {}
        for item in ctx.dataset.images:
            fr = ctx.result("framing", item)
            f = (fr or {}).get("framing")
            if f in counts:
                counts[f] += 1
                eff[f] += int(repeats.get(item.rel_image, 1))
        n = sum(counts.values())
        total = sum(eff.values())
        if n < int(opts["min_images"]) or total == 0:
            return
        floor = 1 / 3 - float(opts["tolerance"])
        shares = {k: v / total for k, v in eff.items()}
        short = [k for k in counts if shares[k] < floor - 1e-9]
        if not short:
            return
        weighted = total != n
        mix = " / ".join(f"{counts[k]} {k}" for k in counts)
        if weighted:
            mix += " (" + " / ".join(f"{100 * shares[k]:.0f}%" for k in counts) + " with repeats)"
        asks = []
        for k in short:
            # new photos count once each: smallest k with (eff+k)/(total+k) >= floor
            need = max(1, math.ceil((floor * total - eff[k]) / (1 - floor) - 1e-9))
            asks.append(f"{need} {LABEL[k]} photo{'s' if need != 1 else ''}")
        yield self.diag(ctx, "", f"framing mix is {mix}; each framing needs at least {100 * floor:.0f}%: add "
                        f"{' and '.join(asks)} (or run `klint fix --rebalance`)",
                        value={k: round(v, 3) for k, v in shares.items()}, threshold=round(floor, 3))
