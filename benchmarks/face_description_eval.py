"""Precision/recall of caption.face-description on tests/data/face_captions.jsonl.

Run: python benchmarks/face_description_eval.py [DATA.jsonl]
Caption-level: a caption is positive when any face span is found. Phrase recall: a labelled phrase counts
as found when a detected span overlaps it. Printed for all captions, the `tuned` split (looked at while
changing the code) and the `untuned` split (drawn at random with a fixed seed before any change).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from curate.analysis.caption import analyse_texts, load_nlp, reported_spans  # noqa: E402

DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "tests" / "data" / "face_captions.jsonl"


def evaluate(rows, results):
    tp = fp = fn = tn = 0
    misses, false_alarms, phrase_hit, phrase_total = [], [], 0, 0
    for row, res in zip(rows, results):
        spans = reported_spans(res["face_spans"])  # the rule's defaults
        got = bool(spans)
        if row["face"] and got:
            tp += 1
        elif row["face"]:
            fn += 1
            misses.append(row["caption"])
        elif got:
            fp += 1
            false_alarms.append((row["caption"], [s["text"] for s in spans]))
        else:
            tn += 1
        cap = row["caption"].lower()
        for ph in row["phrases"]:
            phrase_total += 1
            i = cap.find(ph.lower())
            if i >= 0 and any(s["start"] < i + len(ph) and i < s["end"] for s in spans):
                phrase_hit += 1
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "precision": precision, "recall": recall, "f1": f1,
            "phrase_recall": phrase_hit / phrase_total if phrase_total else 1.0,
            "misses": misses, "false_alarms": false_alarms}


def main() -> int:
    rows = [json.loads(line) for line in DATA.read_text("utf-8").splitlines() if line.strip()]
    t0 = time.perf_counter()
    load_nlp()
    t1 = time.perf_counter()
    results = analyse_texts([r["caption"] for r in rows], trigger="jane_doe")
    t2 = time.perf_counter()
    print(f"spaCy load {t1 - t0:.2f}s, analysis {t2 - t1:.2f}s ({1000 * (t2 - t1) / len(rows):.1f} ms/caption)")
    for name in ("all", "tuned", "untuned"):
        pick = [i for i, r in enumerate(rows) if name == "all" or r.get("split", "tuned") == name]
        if not pick:
            continue
        m = evaluate([rows[i] for i in pick], [results[i] for i in pick])
        sub = [rows[i] for i in pick]
        print(f"\n== {name}: {len(sub)} captions ({sum(r['face'] for r in sub)} with face descriptions)")
        print(f"precision {m['precision']:.3f}  recall {m['recall']:.3f}  F1 {m['f1']:.3f}  "
              f"(tp {m['tp']} fp {m['fp']} fn {m['fn']} tn {m['tn']})")
        print(f"phrase recall {m['phrase_recall']:.3f}")
        if name == "all":
            continue
        for c in m["misses"]:
            print(f"MISS  {c}")
        for c, found in m["false_alarms"]:
            print(f"FALSE {c}  -> {found}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
