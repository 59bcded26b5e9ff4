"""Head-to-body ratio on the labelled real photos: distribution of full-body statures, exclusions
by reason, and the measurement against statures read by eye (tests/data/stature_by_eye.csv).

Run: KLINT_TEST_PHOTOS=/work/shared/photos python benchmarks/eval_proportions.py
"""
import collections
import csv
import os
import time
from pathlib import Path

from curate.analysis.proportions import detect_poses, measure_poses, summary

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
root = Path(os.environ.get("KLINT_TEST_PHOTOS", "../shared/photos"))
rows = [r for r in csv.DictReader(open(DATA / "framing_labels.csv")) if r["framing"] in ("full", "half")]
t0, c0 = time.time(), time.process_time()
res = dict(zip((r["path"] for r in rows), measure_poses(detect_poses([root / r["path"] for r in rows]))))
print(f"{len(rows)} photos in {time.time() - t0:.1f} s wall, {time.process_time() - c0:.1f} s CPU")
for r in rows:
    m = res[r["path"]]
    print(f"{r['framing']:4} {r['split']:7} {m['heads'] or '-':>5} {m['reason'] or '':<48} "
          f"{r['path'][-44:]:44} | {r['notes'][:40]}")
for split in ("untuned", "tuned", None):
    full = [r for r in rows if r["framing"] == "full" and (split is None or r["split"] == split)]
    heads = [res[r["path"]]["heads"] for r in full]
    why = collections.Counter(res[r["path"]]["reason"] for r in full if res[r["path"]]["heads"] is None)
    print(f"full-body, split {split or 'all'}: {len(full)} photos, measured {summary(heads)}, "
          f"excluded {sum(why.values())}: {dict(why.most_common())}")
print("half-body photos measured:", sum(1 for r in rows if r["framing"] == "half" and res[r["path"]]["heads"]))
eye = list(csv.DictReader(open(DATA / "stature_by_eye.csv")))
got = measure_poses(detect_poses([root / r["path"] for r in eye]))
print("by eye (crown, chin, sole in pixels) vs measured:")
for r, m in zip(eye, got):
    head = float(r["chin_y"]) - float(r["crown_y"])
    true = (float(r["sole_y"]) - float(r["crown_y"])) / head
    print(f"  {r['path'][-40:]:40} by eye {true:.2f} (head {head:.0f} px)  measured {m['heads']} "
          f"(head {m['head_px']} px)")
