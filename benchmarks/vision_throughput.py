"""Cold vision analysis (pose + framing + scene) vs the bare YOLO predict loop on the same photos.

    python benchmarks/vision_throughput.py [N]

Uses N (default 60) real photos from ../shared/photos. Both sides load the model before the
clock starts, so the numbers are per-image work: decoding, inference, keypoint maths,
lighting/background descriptors. The bare loop (file paths straight into `model.predict`,
same imgsz, batch and device) is the floor; klint should stay within 1.3x of it.
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
    from curate.analysis.cache import Cache
    from curate.analysis.pose import BATCH, DET_CONF, IMGSZ, default_model_path, load_model
    from curate.config import Config
    from curate.dataset.scan import scan
    from curate.engine.runner import LintContext, run_analyses
    from curate.testing import bench_photos

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 60
    tmp = bench_photos(n, "klint-bench-")
    paths = sorted(str(p) for p in tmp.iterdir())

    model = load_model(default_model_path())
    model.predict(paths[:2], imgsz=IMGSZ, device="cpu", verbose=False)  # warm-up (lazy init, threads)

    def floor() -> float:
        t = time.perf_counter()
        for s in range(0, len(paths), BATCH):
            model.predict(paths[s:s + BATCH], imgsz=IMGSZ, conf=DET_CONF, device="cpu", verbose=False,
                          batch=BATCH, classes=[0])
        return time.perf_counter() - t

    def klint() -> float:
        ds = scan(tmp)
        ctx = LintContext(dataset=ds, config=Config())
        t = time.perf_counter()
        run_analyses(ctx, {"pose", "framing", "scene"}, Cache(tmp, enabled=False))
        return time.perf_counter() - t

    # alternate and keep the best of each: the box is shared, so take the least-disturbed run
    f_times, k_times = [], []
    for _ in range(2):
        f_times.append(floor())
        k_times.append(klint())
    f, k = min(f_times), min(k_times)
    print(f"images: {len(paths)} (torch threads {__import__('torch').get_num_threads()})")
    print(f"bare YOLO predict loop : {len(paths) / f:6.2f} images/s  ({f:.1f} s)  runs {[round(x, 1) for x in f_times]}")
    print(f"klint cold analysis    : {len(paths) / k:6.2f} images/s  ({k:.1f} s)  runs {[round(x, 1) for x in k_times]}")
    print(f"ratio klint / floor    : {k / f:.2f}")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
