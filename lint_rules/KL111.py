from curate.analysis.imagestats import badly_exposed, low_contrast, readable_images
from curate.engine.rule import Rule


class KL111(Rule):
    """Image has little tonal range (low contrast, washed out or hazy).

    Why: a flat, grey photo teaches the trigger a hazy, faded look; skin tones and the shape
    of the face (which the LoRA reads from light and shadow) come out muddy.

    Example: a photo shot through a dirty window or fog; an over-compressed scan with lifted
    blacks and dimmed whites.

    Use instead: a photo with real blacks and highlights, or restore the levels in an editor.

    Fix safety: no fix. Severity: warning. Score: perceived brightness spread between the
    5th and 99th percentiles (0..1) at 512 px. Calibration (`python
    benchmarks/image_qa_eval.py`): the 185 real photos scored 0.28-1.00 and only one below the
    limit, a murky dark film still (andy_lau/ljm.jpg, also flagged blurry); contrast x0.35
    and x0.2 copies scored 0.08-0.35 (caught), a mild x0.5 copy 0.20-0.49 (about a third
    caught). Images KL107 finds too dark or blown out are left to it; KL105 leaves low-contrast
    images to this rule (a flat colour photo has little colour spread too).

    Options: `min_spread` (default 0.33).
    """

    code = "KL111"
    name = "image.low-contrast"
    groups = ("all", "image")
    severity = "warning"
    needs = ("image",)
    options = {"min_spread": 0.33}

    def check(self, ctx, opts):
        limit = float(opts["min_spread"])
        for item, rec in readable_images(ctx):
            if badly_exposed(rec) or not low_contrast(rec, limit):
                continue
            b = rec["brightness"]
            spread = round(b["p99"] - b["p5"], 4)
            msg = (f"low contrast: brightness spans only {b['p5']:.0%}-{b['p99']:.0%} (spread {spread:.2f} < "
                   f"{limit:g}); use a photo with real blacks and highlights")
            yield self.diag(ctx, item.rel_image, msg, value=spread, threshold=limit)
