"""Cold analysis time per image with and without the face analysis.

    python benchmarks/face_cost.py [N]

N (default 60) real photos from ../shared/photos, cache off, models loaded before the clock
starts. "without" = pose + scene (+ pose-only framing, pure arithmetic); "with" adds the face
analysis (head crop or full scan, HOG detection, 5 landmarks, ResNet descriptor, chip sharpness)
and the face-aware framing. Goal: the face analysis adds at most 30 %.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("YOLO_OFFLINE", "1")


def main() -> None:
    from curate.analysis import face
    from curate.analysis.cache import Cache
    from curate.analysis.framing import describe
    from curate.analysis.pose import default_model_path, load_model
    from curate.config import Config
    from curate.dataset.scan import scan
    from curate.engine.runner import LintContext, run_analyses
    from curate.testing import bench_photos

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    tmp = bench_photos(n, "klint-face-bench-")
    load_model(default_model_path())
    face._dlib()  # model load is a one-off per process, not per image
    base_t, face_t, found = [], [], 0
    for _ in range(2):
        ds = scan(tmp)
        ctx = LintContext(dataset=ds, config=Config())
        cache = Cache(tmp, enabled=False)
        t = time.perf_counter()
        run_analyses(ctx, {"pose", "scene"}, cache)
        for rel, pose in ctx.results["pose"].items():
            describe(pose)
        base_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        run_analyses(ctx, {"face", "framing"}, cache)
        face_t.append(time.perf_counter() - t)
        found = sum(bool((r or {}).get("subject")) for r in ctx.results["face"].values())
        heads = sum((r or {}).get("scan") == "head" for r in ctx.results["face"].values())
    b, f = min(base_t), min(face_t)
    m = len(list(tmp.iterdir()))
    print(f"images: {m}; subject face found in {found}; head-crop scans {heads}, full scans {m - heads}")
    print(f"without face: {1000 * b / m:6.1f} ms/image  runs {[round(x, 1) for x in base_t]} s")
    print(f"face adds   : {1000 * f / m:6.1f} ms/image  runs {[round(x, 1) for x in face_t]} s")
    print(f"with face / without: {(b + f) / b:.2f}  (goal <= 1.30)")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
