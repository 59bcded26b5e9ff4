"""Same-person vs different-person face distances on the shared identity photos.

    python benchmarks/face_identity.py [--threshold 0.6] [--json out.json]

Groups: every folder under photos/identities/ and the one-person folders in photos/pool/
(sadtalker same_woman_A/B, simswap actors, deepface people, sapiens reels). Each image's
largest face is embedded with the default dlib back-end (curate.analysis.face.embed_images);
every pair is scored. Prints the two distributions and the pairs on the wrong side of the
threshold (same person above it, different people below it).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.analysis.face import DLIB_THRESHOLD, distance, embed_images  # noqa: E402

PHOTOS = Path(os.environ.get("KLINT_TEST_PHOTOS", ROOT.parent / "shared" / "photos"))
POOL_GROUPS = ("sadtalker/same_woman_A", "sadtalker/same_woman_B", "simswap/andy_lau", "simswap/chow_yun_fat",
               "simswap/jay_chou", "deepface/angelina_jolie", "deepface/elon_musk", "deepface/jack_dorsey",
               "deepface/leonardo_dicaprio", "deepface/mark_zuckerberg", "deepface/matt_damon",
               "sapiens/face_reel_woman", "sapiens/reel2_man_chess")
EXT = {".jpg", ".jpeg", ".png", ".webp"}


def groups() -> dict[str, list[Path]]:
    out = {}
    for d in sorted((PHOTOS / "identities").iterdir()):
        if d.is_dir():
            out[f"identities/{d.name}"] = sorted(p for p in d.iterdir() if p.suffix.lower() in EXT)
    for g in POOL_GROUPS:
        d = PHOTOS / "pool" / g
        if d.is_dir():
            out[f"pool/{g}"] = sorted(p for p in d.iterdir() if p.suffix.lower() in EXT)
    return out


def quantiles(vals: list[float]) -> str:
    s = sorted(vals)
    q = lambda f: s[min(len(s) - 1, int(f * len(s)))]  # noqa: E731
    return (f"n={len(s)} min {s[0]:.3f} p05 {q(0.05):.3f} median {statistics.median(s):.3f} "
            f"p95 {q(0.95):.3f} max {s[-1]:.3f}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threshold", type=float, default=DLIB_THRESHOLD)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    gs = groups()
    paths = [p for ps in gs.values() for p in ps]
    t = time.perf_counter()
    embs = embed_images(paths)
    print(f"embedded {len(paths)} photos in {time.perf_counter() - t:.1f} s; "
          f"no face in {sum(e is None for e in embs)}: "
          f"{[str(p.relative_to(PHOTOS)) for p, e in zip(paths, embs) if e is None]}")
    owner = {p: g for g, ps in gs.items() for p in ps}
    emb = {p: e for p, e in zip(paths, embs) if e is not None}
    same, diff, wrong = [], [], []
    for a, b in itertools.combinations(sorted(emb), 2):
        d = distance(emb[a], emb[b])
        is_same = owner[a] == owner[b]
        (same if is_same else diff).append(d)
        if (is_same and d >= args.threshold) or (not is_same and d < args.threshold):
            wrong.append((d, "same" if is_same else "different", str(a.relative_to(PHOTOS)), str(b.relative_to(PHOTOS))))
    print(f"groups: {len(gs)}; same-person pairs {len(same)}, different-person pairs {len(diff)}")
    print("same person:      " + quantiles(same))
    print("different people: " + quantiles(diff))
    for thr in sorted({0.5, 0.55, args.threshold, 0.65}):
        ws = sum(d >= thr for d in same)
        wd = sum(d < thr for d in diff)
        print(f"threshold {thr:.2f}: same-person pairs above {ws}/{len(same)}, different-person pairs below {wd}/{len(diff)}")
    print(f"wrong side of {args.threshold:.2f}:")
    for row in sorted(wrong):
        print(f"  {row[0]:.3f} {row[1]:9s} {row[2]}  <->  {row[3]}")
    if args.json:
        args.json.write_text(json.dumps({"same": same, "different": diff, "wrong": wrong}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
