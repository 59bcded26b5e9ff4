"""`klint eval`'s identity score on real photos: each photo of a person against the rest of that
person's photos (same) and against every other person's photos (other), leave-one-out.

    KLINT_TEST_PHOTOS=/work/shared/photos python benchmarks/eval_identity.py

The groups are benchmarks/face_identity.py's; the score is curate.eval_job.similarity (1 - mean
dlib distance to a reference set), the function `klint eval` uses for every generated image.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from face_identity import PHOTOS, groups, quantiles  # noqa: E402

from curate.analysis.face import embed_images  # noqa: E402
from curate.eval_job import IDENTITY_THRESHOLD, similarity  # noqa: E402


def main() -> int:
    gs = groups()
    paths = [p for ps in gs.values() for p in ps]
    t, c = time.perf_counter(), time.process_time()
    embs = dict(zip(paths, embed_images(paths)))
    print(f"embedded {len(paths)} photos: {time.perf_counter() - t:.1f} s wall, {time.process_time() - c:.1f} s CPU")
    faces = {g: [p for p in ps if embs[p] is not None] for g, ps in gs.items()}
    same, other, ranked, close = [], [], 0, []
    probes = 0
    for g, ps in faces.items():
        if len(ps) < 2:
            continue
        for p in ps:
            own = similarity(embs[p], [embs[q] for q in ps if q != p])
            named = [(similarity(embs[p], [embs[q] for q in qs]), h) for h, qs in faces.items() if h != g and qs]
            rivals = [s for s, _ in named]
            close.extend((s, str(p.relative_to(PHOTOS)), h) for s, h in named if s >= IDENTITY_THRESHOLD)
            same.append(own)
            other.extend(rivals)
            probes += 1
            ranked += own > max(rivals)
    print(f"{probes} probes in {sum(len(v) >= 2 for v in faces.values())} people with 2+ faced photos")
    print("same person:  " + quantiles(same))
    print("other people: " + quantiles(other))
    print(f"own set scores highest for {ranked}/{probes} probes")
    for thr in sorted({0.40, IDENTITY_THRESHOLD, 0.50}):
        print(f"threshold {thr:.2f}: same below {sum(s < thr for s in same)}/{len(same)}, "
              f"other at or above {sum(s >= thr for s in other)}/{len(other)}")
    for s, p, h in sorted(close, reverse=True):
        print(f"  other person at or above {IDENTITY_THRESHOLD}: {s:.3f} {p} vs {h}")
    print(f"mean same {statistics.mean(same):.3f}, mean other {statistics.mean(other):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
