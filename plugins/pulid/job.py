"""What `klint infer` asks a backend to do (no heavy imports: the CLI builds it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

MODES = ("pulid", "reference", "none")


@dataclasses.dataclass
class InferJob:
    prompt: str
    model: str  # "tiny", a local diffusers folder, or a hub id
    out: Path
    mode: str = "none"
    refs: list[Path] = dataclasses.field(default_factory=list)
    lora: Path | None = None
    lora_scale: float = 1.0
    id_weight: float = 1.0
    id_start: float = 0.0
    steps: int = 4
    cfg: float = 1.0
    seed: int = 0
    width: int = 1024
    height: int = 1024
    num_images: int = 1
    face_model: str | None = None  # insightface pack folder used for conditioning
    eva_weights: Path | None = None
    pulid_weights: Path | None = None
    parsing_weights: Path | None = None  # facexlib BiSeNet parsing_bisenet.pth (or .safetensors)
    with_reference: bool = False  # pulid: also pass the references natively
    ref_cache: str = "auto"  # reference K/V computed once (auto|on|off)
    eval_face_model: str | None = None  # a different recognition model, for --eval
    device: str | None = None
