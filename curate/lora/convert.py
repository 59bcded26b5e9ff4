"""`klint lora convert`: exact BFL (fused q/k/v) <-> diffusers (split) conversion, checked by merged deltas.

Split -> fused: A = [A_q; A_k; A_v], B = block_diag(B_q, B_k, B_v): B @ A stacks the three deltas by rows.
Fused -> split: a block-diagonal B splits back into rank-r pairs; any other B keeps A whole and splits B by
rows ([B_q 0 0] @ A = B_q A_q), exact either way. Alpha is kept as `.alpha` tensors for ComfyUI (which
reads them) or baked into B (diffusers' PEFT path has no alpha); fused alpha is 3x so alpha/rank stays.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from curate.errors import KlintError
from curate.lora import st
from curate.lora.model import DOUBLE, EXTRA, FUSED, SINGLE
from curate.lora.report import Report, analyse

_TOL = {"F64": 1e-6, "F32": 1e-6, "F16": 2e-3, "BF16": 1.6e-2}
_DT = {"keep": None, "bf16": "BF16", "fp16": "F16", "fp32": "F32"}


@dataclasses.dataclass
class Part:
    """The factors of one diffusers target: delta = scale * B @ A."""

    A: np.ndarray
    B: np.ndarray
    scale: float
    alpha: float | None
    dtype: str


def parts(rep: Report) -> dict[str, Part]:
    out: dict[str, Part] = {}
    for s in rep.stats.values():
        m = s.module
        A, B = rep.file.array(m.down), rep.file.array(m.up)
        rows = B.shape[0] // len(m.targets)
        r3 = A.shape[0] // len(m.targets)
        blockdiag = m.fused and A.shape[0] % 3 == 0 and all(
            not np.any(B[i * rows:(i + 1) * rows, :j * r3]) and not np.any(B[i * rows:(i + 1) * rows, (j + 1) * r3:])
            for i, j in zip(range(3), range(3)))
        for i, t in enumerate(m.targets):
            if not m.fused:
                a, b = A, B
            elif blockdiag:
                a, b = A[i * r3:(i + 1) * r3], B[i * rows:(i + 1) * rows, i * r3:(i + 1) * r3]
            else:
                a, b = A, B[i * rows:(i + 1) * rows]
            out[t] = Part(a, b, s.scale, s.alpha if not m.fused or blockdiag else None, s.dtype)
    return out


def _bfl_name(target: str) -> tuple[str, int | None]:
    """diffusers target -> (BFL module, index in a fused qkv or None)."""
    if target in EXTRA:
        return EXTRA[target], None
    kind, i, rest = target.split(".", 2)
    if kind == "single_transformer_blocks":
        return f"single_blocks.{i}.{SINGLE[rest]}", None
    b = DOUBLE[rest]
    return f"double_blocks.{i}.{b}", (FUSED[b].index(rest) if b in FUSED else None)


def to_diffusers(ps: dict[str, Part], dtype: str | None) -> dict[str, tuple[np.ndarray, str]]:
    out = {}
    for t, p in ps.items():
        dt = dtype or p.dtype
        out[f"transformer.{t}.lora_A.weight"] = (p.A, dt)
        out[f"transformer.{t}.lora_B.weight"] = (p.B * np.float32(p.scale) if p.scale != 1 else p.B, dt)
    return out


def to_comfyui(ps: dict[str, Part], dtype: str | None, keep_alpha: bool) -> dict[str, tuple[np.ndarray, str]]:
    out = {}
    groups: dict[str, dict[int | None, tuple[str, Part]]] = {}
    for t, p in ps.items():
        b, idx = _bfl_name(t)
        groups.setdefault(b, {})[idx] = (t, p)
    for b, members in groups.items():
        key = f"diffusion_model.{b}"
        first = next(iter(members.values()))[1]
        dt = dtype or first.dtype
        if None in members:
            p = members[None][1]
            keep = keep_alpha and p.alpha is not None
            out[f"{key}.lora_A.weight"] = (p.A, dt)
            out[f"{key}.lora_B.weight"] = (p.B if keep or p.scale == 1 else p.B * np.float32(p.scale), dt)
            if keep:
                out[f"{key}.alpha"] = (np.array(p.alpha, dtype=np.float32), "F32")
            continue
        ps3 = [members.get(i, (None, None))[1] for i in range(3)]
        present = [p for p in ps3 if p is not None]
        alphas = {(p.alpha, p.A.shape[0]) for p in present}
        keep = keep_alpha and len(alphas) == 1 and present[0].alpha is not None and len(present) == 3
        rows = present[0].B.shape[0]
        As, cols = [], 0
        for p in present:
            As.append(p.A)
            cols += p.A.shape[0]
        B = np.zeros((3 * rows, cols), dtype=np.float32)
        c = 0
        for i, p in enumerate(ps3):
            if p is None:
                continue
            r = p.A.shape[0]
            B[i * rows:(i + 1) * rows, c:c + r] = p.B if keep or p.scale == 1 else p.B * np.float32(p.scale)
            c += r
        out[f"{key}.lora_A.weight"] = (np.concatenate(As, 0), dt)
        out[f"{key}.lora_B.weight"] = (B, dt)
        if keep:
            out[f"{key}.alpha"] = (np.array(present[0].alpha * 3, dtype=np.float32), "F32")
    return out


def compare(a: dict[str, Part], b: dict[str, Part]) -> float:
    """Largest ||delta_a - delta_b||_F / ||delta_a||_F over the targets; inf if the target sets differ.

    delta_a - delta_b = [s_a B_a, -s_b B_b] @ [A_a; A_b], so its norm comes from two small Gram
    matrices in float64 (resolution ~1e-8 relative) without forming any out x in matrix.
    """
    if set(a) != set(b):
        return float("inf")
    worst = 0.0
    for t, pa in a.items():
        pb = b[t]
        if pa.A.shape[1] != pb.A.shape[1] or pa.B.shape[0] != pb.B.shape[0]:
            return float("inf")
        Bs = np.concatenate([pa.B.astype(np.float64) * pa.scale, -pb.B.astype(np.float64) * pb.scale], 1)
        As = np.concatenate([pa.A.astype(np.float64), pb.A.astype(np.float64)], 0)
        diff = float(np.sum((Bs.T @ Bs) * (As @ As.T)))
        Ba, Aa = Bs[:, :pa.A.shape[0]], As[:pa.A.shape[0]]
        norm = float(np.sum((Ba.T @ Ba) * (Aa @ Aa.T)))
        rel = np.sqrt(max(diff, 0.0)) / np.sqrt(norm) if norm > 0 else np.sqrt(max(diff, 0.0))
        worst = max(worst, float(rel))
    return worst


@dataclasses.dataclass
class ConvertResult:
    out: Path
    keys: int
    error: float
    tolerance: float


def convert(src: Path | str, out: Path | str, to: str, *, alpha: str = "auto", dtype: str = "keep") -> ConvertResult:
    src, out = Path(src), Path(out)
    if to not in ("comfyui", "diffusers"):
        raise KlintError(f"--to must be comfyui or diffusers, not {to!r}")
    if out.exists() and out.resolve() == src.resolve():
        raise KlintError(f"{out}: the output must not be the input file")
    rep = analyse(src)
    if rep.error:
        raise KlintError(f"{src}: {rep.error}")
    if rep.parsed.unknown and not rep.parsed.modules:
        raise KlintError(f"{src}: no key follows a known Klein LoRA naming")
    if rep.shape_errors:
        raise KlintError(f"{src}: {rep.shape_errors[0]}")
    if any(not s.finite for s in rep.stats.values()):
        raise KlintError(f"{src}: holds NaN/Inf values; refusing to convert")
    ps = parts(rep)
    dt = _DT[dtype]
    if to == "diffusers":
        tensors = to_diffusers(ps, dt)
    else:
        tensors = to_comfyui(ps, dt, keep_alpha=alpha in ("auto", "keep"))
    meta = {k: v for k, v in rep.file.metadata.items()}
    meta.update({"format": "pt", "klint.converted_from": rep.parsed.family or "unknown", "klint.converted_to": to})
    if not any(k.endswith(".alpha") for k in tensors):
        # the scale is in B now: a recorded alpha would make diffusers (lora_adapter_metadata) apply it twice
        if rep.meta_alpha is not None:
            meta["klint.alpha"] = f"{rep.meta_alpha:g}"
        for k in ("ss_network_alpha", "lora_adapter_metadata", "transformer.lora_adapter_metadata"):
            meta.pop(k, None)
        meta["klint.alpha_baked"] = "true"
    elif "klint.alpha" in meta:
        meta["klint.alpha_baked"] = "false"
    staged = out.with_name(f".{out.name}.klint-check")
    st.write(staged, tensors, meta, protect=src)
    try:
        err = compare(ps, parts(analyse(staged)))
        tol = max(_TOL.get(d, 1e-6) for _, d in tensors.values())
        if not err <= tol:
            raise KlintError(f"conversion check failed: merged deltas differ by {err:.3g} (relative) > {tol:g}; "
                             f"nothing written")
        os.replace(staged, out)
    finally:
        staged.unlink(missing_ok=True)
    return ConvertResult(out, len(tensors), err, tol)
