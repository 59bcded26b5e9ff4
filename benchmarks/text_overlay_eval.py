"""Precision / recall of image.text-overlay (KL109) on real photos with planted overlays.

    python benchmarks/text_overlay_eval.py [--photos DIR] [--bases N] [--json OUT]

Builds, in a temp folder, (a) the clean real photos listed in tests/data/text_labels.csv —
including hard negatives: shop signs, printed clothing, book covers, marked `scene` — and (b)
planted copies of a few base photos: a corner watermark at 3 sizes x 3 opacities, a centred
tiled watermark at 2 opacities, a date stamp, a subtitle band and a signature at 2 sizes each.
Every image is linted by the real rule (real PP-OCR). A photo counts as flagged when KL109
reports a warning or an error on it; info lines (text in the scene) are not flags.
Prints per-kind recall, precision over everything flagged, the clean photos flagged, and the
cold cost per image of the OCR analysis.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.testing import plant_text, shared_photos  # noqa: E402

LABELS = ROOT / "tests" / "data" / "text_labels.csv"
BASES = ("pool/rembg/girl-2.jpg", "pool/icon/003883.jpg", "identities/obama/obama.jpg", "pool/sadtalker/people_0.png",
         "pool/deepface/couple.jpg", "identities/biden/biden.jpg", "pool/icon/028009.jpg", "pool/rembg/girl-3.jpg")
PLANTS = ([("corner-watermark", h, o, c) for h in (0.02, 0.035, 0.05) for o, c in ((0.35, "br"), (0.6, "tl"), (1.0, "bl"))]
          + [("tiled-watermark", 0.04, o, "br") for o in (0.3, 0.5)]
          + [("date-stamp", h, 1.0, "br") for h in (0.025, 0.04)]
          + [("subtitle", h, 1.0, "br") for h in (0.03, 0.045)]
          + [("signature", h, o, c) for h, o, c in ((0.025, 0.7, "br"), (0.04, 0.9, "bl"))])


def labelled(photos: Path) -> list[tuple[str, str]]:
    with LABELS.open() as fh:
        return [(r["path"], r["label"]) for r in csv.DictReader(fh) if (photos / r["path"]).is_file()]


def is_positive(kind: str, label: str) -> bool:
    """Planted overlays and real ones found in the photos are what the rule should flag."""
    return kind != "clean" or label == "overlay"


def build(photos: Path, out: Path, n_bases: int) -> dict[str, tuple[str, str]]:
    from PIL import Image

    truth: dict[str, tuple[str, str]] = {}
    for rel, label in labelled(photos):
        name = "clean__" + rel.replace("/", "__")
        (out / name).write_bytes((photos / rel).read_bytes())
        truth[name] = ("clean", label)
    bases = [b for b in BASES if (photos / b).is_file()][:n_bases]
    for b in bases:
        with Image.open(photos / b) as im:
            im = im.convert("RGB")
            for kind, h, o, corner in PLANTS:
                planted, _ = plant_text(im, kind, height=h, opacity=o, corner=corner)
                name = f"plant__{kind}__{h}__{o}__{corner}__{Path(b).stem}.png"
                planted.save(out / name)
                truth[name] = (kind, f"h{h} o{o}")
    return truth


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=Path, default=None)
    ap.add_argument("--bases", type=int, default=6)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None,
                    help="build the folder here and keep it (and its OCR cache) for fast re-runs")
    args = ap.parse_args()
    photos = args.photos or shared_photos()
    if photos is None:
        print("no photos: set KLINT_TEST_PHOTOS or put ../shared/photos beside the checkout")
        return 2
    from curate.config import Config
    from curate.engine.registry import all_rules, select_rules
    from curate.engine.runner import lint_dataset

    with tempfile.TemporaryDirectory() as tmp:
        ds = args.keep or Path(tmp) / "ds"
        ds.mkdir(parents=True, exist_ok=True)
        truth = build(photos, ds, args.bases)
        rules = select_rules(all_rules(), ["KL109"], [])
        t0 = time.perf_counter()
        result = lint_dataset(ds, Config(), use_cache=args.keep is not None, rules=rules)
        dt = time.perf_counter() - t0
    flagged = {d.rel: d for d in result.diagnostics if d.code == "KL109" and d.severity in ("error", "warning")}
    infos = {d.rel for d in result.diagnostics if d.code == "KL109" and d.severity == "info"}
    rows: dict[str, list[int]] = {}  # group -> [flagged, total]
    tp = fp = fn = 0
    for name, (kind, label) in truth.items():
        group = kind if kind != "clean" else {"overlay": "real overlay", "scene": "scene text (hard neg.)"}.get(
            label, "clean")
        hit = name in flagged
        rows.setdefault(group, [0, 0])
        rows[group][0] += hit
        rows[group][1] += 1
        pos = is_positive(kind, label)
        tp += hit and pos
        fp += hit and not pos
        fn += pos and not hit
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(f"{len(truth)} images; OCR + rule {dt:.1f} s = {dt / len(truth):.2f} s/image "
          f"({'cached' if args.keep and dt < len(truth) * 0.2 else 'cold'})")
    print(f"{'group':<24}{'flagged':>8}{'of':>5}{'rate':>7}")
    order = ("corner-watermark", "tiled-watermark", "date-stamp", "subtitle", "signature", "real overlay",
             "clean", "scene text (hard neg.)")
    for group in order:
        if group in rows:
            h, n = rows[group]
            print(f"{group:<24}{h:>8}{n:>5}{h / n:>7.2f}")
    print(f"precision {precision:.3f}  recall {recall:.3f}  (tp {tp}, fp {fp}, fn {fn}); "
          f"{sum(1 for n in infos if truth[n][0] == 'clean')} real photos got an info line only")
    for n in sorted(flagged):
        if not is_positive(*truth[n]):
            print(f"  false alarm: {n}: {flagged[n].message}")
    for name, (kind, how) in sorted(truth.items()):
        if is_positive(kind, how) and name not in flagged:
            print(f"  missed: {kind} {how} {name}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "precision": precision, "recall": recall,
                                         "seconds_per_image": dt / len(truth)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
