"""EVA02-CLIP-L-14-336 face features for the IDFormer (timm trunk of open_clip's `EVA02-L-14-336`).

Outputs per face: the pooled, L2-normalised CLIP embedding (768) and the tokens that enter
ViT blocks 4, 8, 12, 16, 20 with the CLS token first (5 x (577, 1024)). `--model tiny` builds
the same timm architecture at width 32 / 56 px with random weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from curate.errors import KlintError, MissingDependency

from .encoders import VIT_LEVELS

TIMM_NAME = "eva02_large_patch14_clip_336"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
# FFHQ 512 five-point template (eyes, nose tip, mouth corners) used by facexlib's alignment
FFHQ_512 = np.array([[192.98138, 239.94708], [318.90277, 240.1936], [256.63416, 314.01935],
                     [201.26117, 371.41043], [313.08905, 371.15118]], dtype=np.float32)
ALIGN_BORDER = (135, 133, 132)


class EvaFaceEncoder(torch.nn.Module):
    def __init__(self, trunk: torch.nn.Module, img_size: int):
        super().__init__()
        self.trunk = trunk.eval()
        self.img_size = img_size

    @property
    def pooled_dim(self) -> int:
        return int(self.trunk.num_classes)

    @property
    def width(self) -> int:
        return int(self.trunk.embed_dim)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """`x` (B, 3, S, S) CLIP-normalised -> pooled (B, D) unit vectors, 5 x (B, 1 + L, W)."""
        final, inter = self.trunk.forward_intermediates(
            x, indices=list(VIT_LEVELS), norm=False, output_fmt="NLC", return_prefix_tokens=True)
        pooled = torch.nn.functional.normalize(self.trunk.forward_head(final), dim=-1)
        hidden = [torch.cat([prefix, spatial], dim=1) for spatial, prefix in inter]
        return pooled, hidden

    def preprocess(self, features: torch.Tensor) -> torch.Tensor:
        """PuLID's face image (1, 3, H, W) in [0, 1] (see parsing.face_features) -> bicubic to
        `img_size`, CLIP mean/std: the EVA input."""
        x = torch.nn.functional.interpolate(features.float(), size=(self.img_size, self.img_size), mode="bicubic",
                                            align_corners=False, antialias=True)
        mean = torch.tensor(CLIP_MEAN)[:, None, None]
        std = torch.tensor(CLIP_STD)[:, None, None]
        return (x - mean) / std


def align_face(bgr: np.ndarray, kps: np.ndarray | None, bbox: np.ndarray, size: int = 512) -> np.ndarray:
    """Warp the face to the FFHQ-512 template by its 5 landmarks (bbox crop when none); RGB out."""
    import cv2

    if kps is not None and len(kps) == 5:
        m, _ = cv2.estimateAffinePartial2D(kps.astype(np.float32), FFHQ_512 * (size / 512), method=cv2.LMEDS)
    else:
        m = None
    if m is None:
        x1, y1, x2, y2 = bbox
        s = max(x2 - x1, y2 - y1) * 1.3 / size
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        m = np.array([[1 / s, 0, size / 2 - cx / s], [0, 1 / s, size / 2 - cy / s]], dtype=np.float32)
    out = cv2.warpAffine(bgr, m, (size, size), borderMode=cv2.BORDER_CONSTANT, borderValue=ALIGN_BORDER)
    return np.ascontiguousarray(out[:, :, ::-1])


def _timm():
    try:
        import timm
    except ImportError:
        raise MissingDependency('the EVA-CLIP face encoder needs timm: pip install -e ".[infer]"') from None
    return timm


def build_tiny_encoder(seed: int = 0) -> EvaFaceEncoder:
    """The real EVA02 architecture (rope, SwiGLU, 20+ blocks) shrunk to width 32 at 56 px."""
    torch.manual_seed(seed)
    trunk = _timm().create_model(TIMM_NAME, pretrained=False, num_classes=24, img_size=56, embed_dim=32,
                                 depth=20, num_heads=2)
    return EvaFaceEncoder(trunk, 56)


def load_eva_encoder(weights: str | Path, *, device: str = "cpu", dtype=torch.bfloat16) -> EvaFaceEncoder:
    """EVA02-L-14-336 from an open_clip checkpoint (`visual.trunk.*` keys) or a bare timm one."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise KlintError(f"{weights}: EVA-CLIP weights not found (expected open_clip's EVA02-L-14-336 "
                         f"checkpoint, e.g. open_clip_model.safetensors from "
                         f"timm/eva02_large_patch14_clip_336.merged2b_s6b_b61k)")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    for prefix in ("visual.trunk.", "trunk.", ""):
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)} if prefix else state
        if "patch_embed.proj.weight" in sub:
            break
    else:
        raise KlintError(f"{weights}: not an EVA02 vision checkpoint (no patch_embed.proj.weight)")
    trunk = _timm().create_model(TIMM_NAME, pretrained=False, num_classes=768)
    wanted = set(trunk.state_dict())
    try:
        trunk.load_state_dict({k: v for k, v in sub.items() if k in wanted}, strict=True)
    except RuntimeError as exc:
        raise KlintError(f"{weights}: EVA02-L-14-336 weights do not fit: {str(exc).splitlines()[0]}") from None
    return EvaFaceEncoder(trunk.to(device, dtype), 336)
