"""The ID adapter: IDFormer + one cross-attention per Klein slot; loading, saving, ID tokens.

Files understood:
- the official `pulid_flux_v0.9.1.safetensors` (FLUX.1-dev): the encoder loads as-is; its 3072-wide
  cross-attentions load on klein-4B only, reused by relative depth (an experiment: never trained
  on Klein); klein-9B (4096 wide) cannot use them.
- klint's own format: the same key names plus `__metadata__["klint_format"] = "pulid-klein-1"` and
  a JSON `config` giving module sizes and the slot list, so any Klein width loads with strict=True.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from curate.errors import KlintError

from .encoders import (OFFICIAL_CA, OFFICIAL_ENCODER, OFFICIAL_NUM_CA, IDFormer, PerceiverAttentionCA,
                       official_ca_for_slot, split_prefix)
from .hooks import transformer_slots

KLINT_FORMAT = "pulid-klein-1"
# the official IDFormer was trained on antelopev2's glintr100 embeddings (PuLID's pipeline_flux.py)
OFFICIAL_RECOGNITION = {"file": "glintr100.onnx", "pack": "antelopev2"}
# key prefixes of the ComfyUI "PuLID for FLUX.2" node (iFayens/ComfyUI-PuLID-Flux2, Fayens/Pulid-Flux2)
COMFY_FLUX2_PREFIXES = ("id_former.", "double_ca.", "single_ca.")
COMFY_FLUX2_REFUSAL = (
    "is the ComfyUI 'PuLID for FLUX.2' node's format (id_former/double_ca/single_ca keys), not PuLID: a "
    "different, 4-token ID former on pooled CLIP only, and its released tensors do not match its own module "
    "names, so its loader (strict=False) leaves the cross-attentions random. klint does not load it; use "
    "--mode reference (Klein's trained native references) instead")
NO_KLEIN_ADAPTER = ("no PuLID adapter trained for FLUX.2 [klein] exists; pass --pulid-weights with the official "
                    "pulid_flux_v0.9.1.safetensors (klein-4B only, experimental: its cross-attentions were "
                    "trained on FLUX.1-dev) or a klint-format adapter, or use --mode reference")


def transformer_width(transformer: nn.Module) -> int:
    c = transformer.config
    return int(c.num_attention_heads * c.attention_head_dim)


class PulidAdapter(nn.Module):
    def __init__(self, encoder_cfg: dict[str, Any], ca_cfg: dict[str, Any], slots: list[tuple[str, int]]):
        super().__init__()
        self.encoder_cfg, self.ca_cfg, self.slots = dict(encoder_cfg), dict(ca_cfg), list(slots)
        self.pulid_encoder = IDFormer(**encoder_cfg)
        self.pulid_ca = nn.ModuleList(PerceiverAttentionCA(**ca_cfg) for _ in slots)
        self.source = "random"
        self.recognition: dict[str, Any] | None = None  # the face recognition model it was trained with

    @property
    def id_dim(self) -> int:
        return int(self.encoder_cfg["id_dim"])

    def save(self, path: str | Path, *, recognition: dict[str, Any] | None = None) -> None:
        """`recognition`: the face model whose embeddings trained it (file name + sha256), checked on use."""
        from safetensors.torch import save_file

        meta = {"klint_format": KLINT_FORMAT,
                "config": json.dumps({"encoder": self.encoder_cfg, "ca": self.ca_cfg, "slots": self.slots})}
        rec = recognition if recognition is not None else self.recognition
        if rec:
            meta["recognition"] = json.dumps({"file": rec.get("file"), "sha256": rec.get("sha256")})
        save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(path), metadata=meta)

    @torch.no_grad()
    def id_tokens(self, id_cond: torch.Tensor, vit_hidden: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(conditional tokens, the negative call's tokens).

        The negative is IDFormer of zeros for ONE reference, whatever R is (PuLID v1.1): R zero
        references would weigh R x the zero ID tokens and ViT tokens in every attention and give a
        negative that drifts with the number of references."""
        cond = self.pulid_encoder(id_cond, vit_hidden)
        refs = id_cond.shape[1] if id_cond.ndim == 3 else 1
        one = torch.zeros_like(id_cond[:, :1] if id_cond.ndim == 3 else id_cond)
        uncond = self.pulid_encoder(one, [torch.zeros_like(h[:, :h.shape[1] // refs]) for h in vit_hidden])
        return cond, uncond


def build_tiny_adapter(transformer: nn.Module, *, id_dim: int, vit_dim: int, seed: int = 0) -> PulidAdapter:
    torch.manual_seed(seed)
    enc = dict(dim=32, depth=5, dim_head=8, heads=2, num_id_token=2, num_queries=4, output_dim=16, ff_mult=2,
               id_dim=id_dim, vit_dim=vit_dim, hidden=32)
    ca = dict(dim=transformer_width(transformer), dim_head=8, heads=2, kv_dim=16)
    return PulidAdapter(enc, ca, transformer_slots(transformer)).eval()


def _strict(module: nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0]
        raise KlintError(f"{path}: {what} does not fit ({first})") from None


def load_adapter(path: str | Path, transformer: nn.Module) -> PulidAdapter:
    from safetensors import safe_open

    path = Path(path).expanduser()
    if not path.is_file():
        raise KlintError(f"{path}: PuLID weights not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # safetensors raises its own error types for a bad header
        raise KlintError(f"{path}: not a safetensors file ({exc.__class__.__name__})") from None
    slots = transformer_slots(transformer)
    width = transformer_width(transformer)
    if meta.get("klint_format") == KLINT_FORMAT:
        cfg = json.loads(meta["config"])
        saved = [tuple(s) for s in cfg["slots"]]
        if saved != slots or cfg["ca"]["dim"] != width:
            raise KlintError(f"{path}: adapter was made for {len(saved)} slots at width {cfg['ca']['dim']}; "
                             f"this transformer has {len(slots)} slots at width {width}")
        adapter = PulidAdapter(cfg["encoder"], cfg["ca"], saved)
        _strict(adapter, {k: v.float() for k, v in state.items()}, "adapter", path)
        adapter.source = f"klint adapter {path.name}"
        if meta.get("recognition"):
            try:
                rec = json.loads(meta["recognition"])
            except ValueError:
                raise KlintError(f"{path}: bad recognition metadata") from None
            adapter.recognition = {"file": str(rec.get("file")), "sha256": rec.get("sha256")}
        return adapter.eval()
    if any(k.startswith(COMFY_FLUX2_PREFIXES) for k in state):
        raise KlintError(f"{path}: {COMFY_FLUX2_REFUSAL}")
    if "pulid_encoder.latents" not in state:
        raise KlintError(f"{path}: neither the official PuLID-FLUX file nor a klint adapter "
                         f"(no pulid_encoder.latents)")
    if width != OFFICIAL_CA["dim"]:
        raise KlintError(f"{path}: the official PuLID-FLUX cross-attentions are {OFFICIAL_CA['dim']} wide "
                         f"(FLUX.1-dev); this transformer is {width} wide (klein-9B?): no PuLID adapter "
                         f"trained for FLUX.2 [klein] exists")
    adapter = PulidAdapter(OFFICIAL_ENCODER, OFFICIAL_CA, slots)
    _strict(adapter.pulid_encoder, {k: v.float() for k, v in split_prefix(state, "pulid_encoder").items()},
            "pulid_encoder", path)
    for ca, k in zip(adapter.pulid_ca, official_ca_indices(transformer)):
        if k >= OFFICIAL_NUM_CA:
            raise KlintError(f"{path}: official file has no pulid_ca.{k}")
        _strict(ca, {n: v.float() for n, v in split_prefix(state, f"pulid_ca.{k}").items()}, f"pulid_ca.{k}", path)
    warnings.warn("PuLID-FLUX v0.9.1 cross-attentions were trained on FLUX.1-dev, not Klein: reused by "
                  "relative depth as an experiment; expect weak or broken identity transfer", stacklevel=2)
    adapter.source = f"official PuLID-FLUX {path.name} (FLUX.1-dev CAs reused on Klein)"
    adapter.recognition = dict(OFFICIAL_RECOGNITION)
    return adapter.eval()


def official_ca_indices(transformer: nn.Module) -> list[int]:
    """For each Klein slot, the index of the v0.9.1 `pulid_ca.k` that load_adapter puts there."""
    n_double = len(transformer.transformer_blocks)
    n_single = len(transformer.single_transformer_blocks)
    return [official_ca_for_slot(kind, idx, n_double if kind == "double" else n_single)
            for kind, idx in transformer_slots(transformer)]


def check_recognition(adapter: PulidAdapter, actual: dict[str, Any]) -> None:
    """Refuse a face recognition model other than the one the adapter's encoder was trained on.

    Any 512-d recogniser fits the shapes (buffalo_l's w600k_r50 as well as glintr100), but the
    embeddings live in different spaces: the encoder would read another model's features as noise."""
    want = adapter.recognition
    if not want or actual.get("file") == "tiny":
        return
    if want.get("sha256") and actual.get("sha256"):
        if want["sha256"] == actual["sha256"]:
            return
        raise KlintError(f"--face-model: recognition model {actual.get('file')} (sha256 {actual['sha256'][:12]}) "
                         f"is not the one this adapter was trained with ({want.get('file')}, sha256 "
                         f"{want['sha256'][:12]})")
    if actual.get("file") != want.get("file"):
        pack = f" ({want['pack']})" if want.get("pack") else ""
        raise KlintError(f"--face-model: recognition model {actual.get('file')} is not {want.get('file')}{pack}, "
                         f"the model {adapter.source} was trained with; its embeddings are another feature "
                         f"space. Point --face-model at an antelopev2 folder")


def encode_references(face_model: Any, eva: Any, refs: list[Path], *, device: str = "cpu",
                      dtype=torch.float32, parser: Any = None) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """(id_cond (1, R, face+pooled), 5 x (1, R*L, W)) for R reference photos (largest face each).

    `parser`: a BiSeNet face parser (parsing.py); None greys the whole aligned crop."""
    from .faces import load_image_bgr
    from .parsing import face_features
    from .vision import align_face

    conds, hiddens = [], []
    for r in refs:
        bgr = load_image_bgr(r)
        face = face_model.largest(bgr)
        if face is None:
            raise KlintError(f"{r}: no face detected in the reference image")
        x = eva.preprocess(face_features(align_face(bgr, face.kps, face.bbox), parser)).to(device, dtype)
        pooled, hidden = eva(x)
        # PuLID feeds the raw (unnormalised) recognition embedding next to the unit CLIP vector
        arc = torch.from_numpy(np.asarray(face.embedding, dtype=np.float32)).to(device, dtype)[None]
        conds.append(torch.cat([arc, pooled.to(dtype)], dim=-1))
        hiddens.append(hidden)
    id_cond = torch.stack(conds, dim=1)
    vit = [torch.cat([h[i] for h in hiddens], dim=1) for i in range(len(hiddens[0]))]
    return id_cond, vit
