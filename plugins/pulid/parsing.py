"""Face parsing before EVA-CLIP: PuLID keeps only the face, in grey, on white.

PuLID (pipeline_flux.get_id_embedding) runs facexlib's BiSeNet (19 CelebAMask-HQ classes) on the
aligned 512 crop, whitens the labels below (background, ears, earring, neck, necklace, cloth, hat)
and turns the rest (skin, brows, eyes, nose, mouth, hair) grey. The ID encoder was trained on
such inputs, so without parsing it sees a picture unlike its training data.

The network here follows facexlib's `BiSeNet(num_class=19)` layout (ResNet-18 context path,
attention refinement on /16 and /32, feature fusion on /8), so its `parsing_bisenet.pth` loads
with strict=True. `width` shrinks every channel count for in-process tests; 64 is the real model.
Weights are user-supplied: a `.safetensors` file, or the released `.pth`, which is a pickle and is
only ever read with `torch.load(weights_only=True)` (tensors only; no code runs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from curate.errors import KlintError

EXPECTED_FILE = "parsing_bisenet.pth"
NUM_CLASSES = 19
# labels PuLID whitens: background, l/r ear, earring, neck, necklace, cloth, hat
WHITENED_LABELS = (0, 7, 8, 9, 14, 15, 16, 18)
PARSING_SIZE = 512
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NO_PARSING_NOTE = ("no face parsing (--parsing-weights not given): EVA-CLIP sees the whole aligned crop in "
                   "grey, background, neck and clothes included, unlike PuLID's training input; expect "
                   f"weaker identity. Pass facexlib's {EXPECTED_FILE} to match PuLID")


class _ConvBNReLU(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, k: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, k, 1, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)


class _BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class _ResNet18(nn.Module):
    def __init__(self, w: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        chans = [w, w, 2 * w, 4 * w, 8 * w]
        for i in range(1, 5):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(_BasicBlock(chans[i - 1], chans[i], stride),
                                                     _BasicBlock(chans[i], chans[i], 1)))

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        f8 = self.layer2(self.layer1(x))
        f16 = self.layer3(f8)
        return f8, f16, self.layer4(f16)


class _Refine(nn.Module):
    """Attention refinement: a conv, then a channel gate from its global mean."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = _ConvBNReLU(c_in, c_out)
        self.conv_atten = nn.Conv2d(c_out, c_out, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(c_out)

    def forward(self, x):
        f = self.conv(x)
        return f * torch.sigmoid(self.bn_atten(self.conv_atten(f.mean(dim=(2, 3), keepdim=True))))


class _ContextPath(nn.Module):
    def __init__(self, w: int):
        super().__init__()
        self.resnet = _ResNet18(w)
        mid = 2 * w
        self.arm16 = _Refine(4 * w, mid)
        self.arm32 = _Refine(8 * w, mid)
        self.conv_head32 = _ConvBNReLU(mid, mid)
        self.conv_head16 = _ConvBNReLU(mid, mid)
        self.conv_avg = _ConvBNReLU(8 * w, mid, k=1)

    def forward(self, x):
        f8, f16, f32 = self.resnet(x)
        glob = self.conv_avg(f32.mean(dim=(2, 3), keepdim=True))
        up32 = self.conv_head32(F.interpolate(self.arm32(f32) + glob, size=f16.shape[2:], mode="nearest"))
        up16 = self.conv_head16(F.interpolate(self.arm16(f16) + up32, size=f8.shape[2:], mode="nearest"))
        return f8, up16, up32


class _Fusion(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.convblk = _ConvBNReLU(c_in, c_out, k=1)
        self.conv1 = nn.Conv2d(c_out, c_out // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(c_out // 4, c_out, 1, bias=False)

    def forward(self, a, b):
        f = self.convblk(torch.cat([a, b], dim=1))
        gate = torch.sigmoid(self.conv2(F.relu(self.conv1(f.mean(dim=(2, 3), keepdim=True)))))
        return f + f * gate


class _Head(nn.Module):
    def __init__(self, c_in: int, c_mid: int, n: int):
        super().__init__()
        self.conv = _ConvBNReLU(c_in, c_mid)
        self.conv_out = nn.Conv2d(c_mid, n, 1, bias=False)

    def forward(self, x):
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    def __init__(self, num_class: int = NUM_CLASSES, width: int = 64):
        super().__init__()
        self.cp = _ContextPath(width)
        self.ffm = _Fusion(4 * width, 4 * width)
        self.conv_out = _Head(4 * width, 4 * width, num_class)
        self.conv_out16 = _Head(2 * width, width, num_class)
        self.conv_out32 = _Head(2 * width, width, num_class)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel class logits at the input size (the main head; the two auxiliary heads only
        exist so the released file loads strictly)."""
        f8, cp8, _ = self.cp(x)
        return F.interpolate(self.conv_out(self.ffm(f8, cp8)), size=x.shape[2:], mode="bilinear",
                             align_corners=True)


def build_tiny_parser(seed: int = 0) -> BiSeNet:
    torch.manual_seed(seed)
    return BiSeNet(width=8).eval()


def load_parser(path: str | Path) -> BiSeNet:
    p = Path(path).expanduser()
    if not p.is_file():
        raise KlintError(f"{path}: face parsing weights not found (expected facexlib's {EXPECTED_FILE}, "
                         "BiSeNet with 19 classes, or the same tensors as .safetensors)")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(p))
        else:
            # a .pth is a pickle: weights_only refuses anything but tensors and plain containers
            state = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # torch/safetensors raise many types for a bad or hostile file
        raise KlintError(f"{path}: cannot read face parsing weights ({exc.__class__.__name__}); expected "
                         f"{EXPECTED_FILE} or .safetensors") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not isinstance(state.get("cp.resnet.conv1.weight"), torch.Tensor):
        raise KlintError(f"{path}: not facexlib BiSeNet weights (no cp.resnet.conv1.weight); expected {EXPECTED_FILE}")
    width = int(state["cp.resnet.conv1.weight"].shape[0])
    try:
        model = BiSeNet(width=width)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()}, strict=True)
    except (RuntimeError, AttributeError, ValueError) as exc:
        raise KlintError(f"{path}: BiSeNet weights do not fit ({str(exc).splitlines()[0][:160]})") from None
    return model.eval()


def to_grey(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> the same shape, luma in all three channels (PuLID's weights)."""
    y = 0.299 * rgb[:, 0:1] + 0.587 * rgb[:, 1:2] + 0.114 * rgb[:, 2:3]
    return y.repeat(1, 3, 1, 1)


@torch.no_grad()
def face_features(aligned_rgb: np.ndarray, parser: BiSeNet | None) -> torch.Tensor:
    """Aligned face (H, W, 3) uint8 RGB -> (1, 3, H, W) float in [0, 1]: grey face on white.

    With no parser, the whole crop is grey (the documented fallback, see NO_PARSING_NOTE)."""
    x = torch.from_numpy(np.ascontiguousarray(aligned_rgb)).permute(2, 0, 1)[None].float() / 255.0
    grey = to_grey(x)
    if parser is None:
        return grey
    p = next(parser.parameters())
    mean = torch.tensor(IMAGENET_MEAN)[:, None, None]
    std = torch.tensor(IMAGENET_STD)[:, None, None]
    inp = ((x - mean) / std).to(p.device, p.dtype)
    if inp.shape[-1] != PARSING_SIZE or inp.shape[-2] != PARSING_SIZE:
        inp = F.interpolate(inp, size=(PARSING_SIZE, PARSING_SIZE), mode="bilinear", align_corners=False)
    labels = parser(inp).argmax(dim=1, keepdim=True).cpu()
    if labels.shape[-2:] != x.shape[-2:]:
        labels = F.interpolate(labels.float(), size=x.shape[-2:], mode="nearest").long()
    drop = torch.zeros_like(labels, dtype=torch.bool)
    for lab in WHITENED_LABELS:
        drop |= labels == lab
    return torch.where(drop, torch.ones_like(grey), grey)
