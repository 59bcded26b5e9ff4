from __future__ import annotations

from pathlib import Path

import pytest

from curate.testing import make_dataset

# Labelled by eye (they agree with tests/data/framing_labels.csv).
PHOTOS = {
    "lecun.jpg": ("pulid-example-inputs/lecun.jpg", "close"),
    "lifeifei.jpg": ("pulid-example-inputs/lifeifei.jpg", "close"),
    "indoor_029.png": ("mmpose-tests-data/300w/indoor_029.png", "close"),
    "signing.jpg": ("mmpose-tests-data/panoptic/ex2_2.flv_000040_l.jpg", "half"),
    "truck.jpg": ("mmpose-tests-data/mpii/004645041.jpg", "half"),
    "dress.jpg": ("mmpose-tests-data/fld/img_00000128.jpg", "full"),
    "skier.jpg": ("mmpose-tests-data/coco/000000000785.jpg", "full"),
    "greeting.jpg": ("mmpose-tests-data/h36m/S7/S7_Greeting.55011271/S7_Greeting.55011271_000396.jpg", "full"),
}
EVIL = 'jdoe, close portrait <script>document.title="pwned"</script><img src=x onerror="document.title=1"> & smiling'
CAPTIONS = {
    "lecun.txt": "jdoe, close portrait, glasses, plain grey backdrop",
    "lifeifei.txt": EVIL,
    # indoor_029 deliberately has no caption: KL501 caption.missing on that card
    "signing.txt": "jdoe, half body, purple shirt, studio wall",
    "truck.txt": "jdoe, half body, standing by a white truck",
    "dress.txt": "jdoe, full body, floral dress, white background",
    "skier.txt": "jdoe, full body, skiing on snow",
    "greeting.txt": "jdoe, full body, indoor lab, red carpet",
    "stray.txt": "jdoe, a caption whose image is gone",  # KL503 caption.orphan: dataset-level
}


@pytest.fixture(scope="session")
def report_ds(photos, tmp_path_factory) -> Path:
    files: dict[str, str | Path] = {name: photos / src for name, (src, _) in PHOTOS.items()}
    files.update(CAPTIONS)
    return make_dataset(tmp_path_factory.mktemp("report") / "jdoe", files, config='trigger = "jdoe"\n')


def labelled_records() -> list[dict]:
    """Hand-made inspect records: framing by eye, made-up lighting/background clusters."""
    light = {"lecun.jpg": "studio", "lifeifei.jpg": "studio", "indoor_029.png": "low-key", "signing.jpg": "studio",
             "truck.jpg": "daylight", "dress.jpg": "studio", "skier.jpg": "daylight", "greeting.jpg": "studio"}
    bg = {"lecun.jpg": 0, "lifeifei.jpg": 1, "indoor_029.png": 0, "signing.jpg": 0, "truck.jpg": 2,
          "dress.jpg": 0, "skier.jpg": 2, "greeting.jpg": 1}
    return [{"rel": rel, "framing": framing, "framing_confidence": 0.9, "people": 1,
             "lighting": {"bucket": light[rel]}, "background": {"cluster": bg[rel]}}
            for rel, (_, framing) in PHOTOS.items()]
