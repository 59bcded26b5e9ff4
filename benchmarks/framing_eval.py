"""Framing accuracy on the hand-labelled photos (tests/data/framing_labels.csv).

    python benchmarks/framing_eval.py [--keep DIR] [--resolution 1024] [--json OUT] [--misses]

Every labelled photo is copied into one dataset folder (DIR, default a fixed folder under the
system temp dir so its `.klint_cache/` survives between runs: YOLO runs once, later runs after
a change to curate/analysis/framing.py only redo the pure-Python classification). The framing
is the linter's own: pose, then the face scan as second witness (face_framing.py), recomputed
from the cached pose and faces on every run; `--pose-only` leaves the face witness out.

A prediction counts as right when it equals the label, or the label's `borderline` column (an
adjacent label a careful person would also accept for that photo). The strict figure ignores
`borderline`. Printed for all photos, the `tuned` split (looked at while changing the code) and
the `untuned` split (drawn at random with a fixed seed before any change, never tuned on) and
the `fresh` split (the identities/ photos, labelled in session 2 before the code saw them).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parents[1]
LABELS = ROOT / "tests" / "data" / "framing_labels.csv"
CLASSES = ("close", "half", "full", "none")


def flat(rel: str) -> str:
    return rel.replace("/", "__")


def load_labels(path: Path = LABELS) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def photos_dir() -> Path:
    env = os.environ.get("KLINT_TEST_PHOTOS")
    return Path(env) if env else ROOT.parent / "shared" / "photos"


def predict(rows: list[dict[str, str]], keep: Path, resolution: int = 1024, pose_only: bool = False,
            src: Path | None = None) -> dict[str, dict]:
    """{label path: framing record} from klint's real analyses: pose, the face scan (the
    second witness the linter uses), then the framing classification. `pose_only` leaves the
    face witness out, to show what it adds."""
    from curate.analysis.cache import Cache
    from curate.analysis.face_framing import FaceAwareFramingAnalysis
    from curate.analysis.framing import FramingAnalysis
    from curate.config import load_config
    from curate.dataset.scan import scan
    from curate.engine.runner import LintContext, run_analyses

    src = src or photos_dir()
    keep.mkdir(parents=True, exist_ok=True)
    for r in rows:
        dest = keep / flat(r["path"])
        if not dest.exists():
            shutil.copy2(src / r["path"], dest)
    (keep / "klint.toml").write_text(f'trigger = "jane_doe"\nresolution = {resolution}\n', encoding="utf-8")
    cfg = load_config(keep)
    ds = scan(keep)
    cache = Cache(ds.root)
    ctx = LintContext(dataset=ds, config=cfg, cache=cache)
    run_analyses(ctx, {"pose"} if pose_only else {"pose", "face"}, cache)
    cache.save({it.rel_image for it in ds.items if it.image is not None})
    images = [it for it in ds.items if it.image is not None]
    framing = FramingAnalysis() if pose_only else FaceAwareFramingAnalysis()
    recs = framing.run_batch(images, ctx, lambda n=1: None)
    by_rel = {it.rel_image: rec for it, rec in zip(images, recs)}
    return {r["path"]: by_rel.get(flat(r["path"])) or {"framing": "none"} for r in rows}


def score(rows, preds, lenient: bool = True) -> tuple[float, dict[str, dict[str, int]], list[dict]]:
    cm = {t: {p: 0 for p in CLASSES} for t in CLASSES}
    misses = []
    ok = 0
    for r in rows:
        p = preds[r["path"]]["framing"]
        cm[r["framing"]][p] += 1
        accept = {r["framing"]} | ({r.get("borderline")} if lenient and r.get("borderline") else set())
        if p in accept:
            ok += 1
        else:
            misses.append({"path": r["path"], "label": r["framing"], "borderline": r.get("borderline") or "",
                           "pred": p, "notes": r.get("notes", "")})
    return (ok / len(rows) if rows else 0.0), cm, misses


def table(cm) -> str:
    head = "true\\pred " + " ".join(f"{p:>5}" for p in CLASSES)
    return "\n".join([head] + [f"{t:>9} " + " ".join(f"{cm[t][p]:>5}" for p in CLASSES) for t in CLASSES])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--keep", type=Path, default=Path(tempfile.gettempdir()) / "klint-framing-eval")
    ap.add_argument("--resolution", type=int, default=1024)
    ap.add_argument("--json", type=Path, help="write predictions and scores here")
    ap.add_argument("--misses", action="store_true", help="list every miss")
    ap.add_argument("--pose-only", action="store_true", help="leave out the face witness the linter uses")
    args = ap.parse_args(argv)
    rows = load_labels()
    preds = predict(rows, args.keep, args.resolution, pose_only=args.pose_only)
    report = {}
    for name, sub in (("all", rows), ("tuned", [r for r in rows if r.get("split") == "tuned"]),
                      ("untuned", [r for r in rows if r.get("split") == "untuned"]),
                      ("fresh", [r for r in rows if r.get("split") == "fresh"])):
        acc, cm, misses = score(sub, preds)
        strict, _, _ = score(sub, preds, lenient=False)
        report[name] = {"n": len(sub), "accuracy": round(acc, 4), "strict": round(strict, 4), "confusion": cm,
                        "misses": misses}
        print(f"\n== {name}: {len(sub)} photos  accuracy {acc:.3f} (borderline accepted)  strict {strict:.3f}")
        print(table(cm))
        if args.misses or name in ("untuned", "fresh"):
            for m in misses:
                print(f"  miss {m['path']}: label {m['label']}"
                      f"{'/' + m['borderline'] if m['borderline'] else ''} -> {m['pred']}  ({m['notes']})")
    if args.json:
        report["predictions"] = {k: {"framing": v.get("framing"), "head_px_train": v.get("head_px_train"),
                                     "head_height_px": v.get("head_height_px")} for k, v in preds.items()}
        args.json.write_text(json.dumps(report, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
