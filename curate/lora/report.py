"""One pass over a LoRA file: naming, loaders, coverage, model fit, per-module numbers.

Everything `klint lora`, its rules, `--format full`, the comparison and `klint train`'s summary show comes
from `analyse`, so a number is computed in one place.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from curate.lora import loaders as L
from curate.lora import st
from curate.lora.model import DOUBLE, SINGLE, SPECS, bfl_modules, diffusers_modules
from curate.lora.naming import Module, Parsed, metadata_alpha, parse, peft_alpha


@dataclasses.dataclass
class ModuleStats:
    module: Module
    rank: int
    alpha: float | None  # from an .alpha tensor
    scale: float  # what ComfyUI / diffusers apply: alpha/rank with an alpha tensor, else 1
    dtype: str
    delta_norm: float | None  # ||B A||_F * scale
    a_norm: float | None
    b_max: float | None
    finite: bool = True
    bad: list[str] = dataclasses.field(default_factory=list)  # keys holding NaN/Inf


@dataclasses.dataclass
class Report:
    path: Path
    file: st.SafeTensors | None = None
    error: str | None = None  # not a readable safetensors file
    parsed: Parsed | None = None
    stats: dict[str, ModuleStats] = dataclasses.field(default_factory=dict)
    loads: dict[str, L.LoadResult] = dataclasses.field(default_factory=dict)
    fits: dict[str, list[str]] = dataclasses.field(default_factory=dict)  # spec -> shape problems
    spec: str | None = None  # the model the checks ran against
    requested: str = "auto"
    meta_alpha: float | None = None
    alpha_baked: bool = False
    shape_errors: list[str] = dataclasses.field(default_factory=list)  # A/B halves that disagree

    @property
    def keys(self) -> list[str]:
        return list(self.file.tensors) if self.file else []

    def covered(self) -> set[str]:
        return {t for s in self.stats.values() for t in s.module.targets if s.module.up and s.module.down}

    def summary(self) -> str:
        """One line: naming, model, rank, keys that load per loader."""
        if self.error:
            return f"{self.path}: {self.error}"
        ranks = sorted({s.rank for s in self.stats.values()})
        rank = "rank " + ("/".join(map(str, ranks[:4])) if ranks else "-")
        loads = ", ".join(f"{r.loader} " + ("refuses it" if r.fatal else f"{len(r.loaded)}/{r.total}")
                          for r in self.loads.values())
        model = self.spec or "no Klein model"
        return (f"{self.path}: {self.parsed.label if self.parsed else 'unknown'}, {model}, {rank}, "
                f"{len(self.keys)} keys; load: {loads}")

    def to_json(self) -> dict:
        return {
            "path": str(self.path), "error": self.error,
            "naming": self.parsed.family if self.parsed else None,
            "source": self.parsed.source if self.parsed else None, "model": self.spec,
            "keys": len(self.keys),
            "load": {n: {"loaded": len(r.loaded), "total": r.total, "fatal": r.fatal, "ignored": r.ignored}
                     for n, r in self.loads.items()},
            "modules": [{"module": s.module.prefix, "rank": s.rank, "alpha": s.alpha, "scale": s.scale,
                         "dtype": s.dtype, "delta_norm": s.delta_norm} for s in self.stats.values()],
        }


def _grams(A: np.ndarray, B: np.ndarray) -> tuple[float, float, bool]:
    """(||B @ A||_F, ||A||_F, finite) from two r x r Gram matrices, no in x out product.

    A NaN/Inf anywhere in A or B reaches the Grams' diagonals, so no separate pass over the values.
    """
    ga = A @ A.T
    gb = B.T @ B
    finite = bool(np.isfinite(np.diagonal(ga)).all() and np.isfinite(np.diagonal(gb)).all())
    if not finite:
        return float("nan"), float("nan"), False
    d2 = float(np.sum(ga.astype(np.float64) * gb.astype(np.float64)))
    return float(np.sqrt(max(d2, 0.0))), float(np.sqrt(max(float(np.trace(ga.astype(np.float64))), 0.0))), True


def _fits(parsed: Parsed, f: st.SafeTensors, spec: str) -> list[str]:
    dmods = diffusers_modules(spec)
    problems = []
    for m in parsed.modules.values():
        missing = [t for t in m.targets if t not in dmods]
        if missing:
            problems.append(f"{m.prefix}: {spec} has no {missing[0]}")
            continue
        ins = {dmods[t][0] for t in m.targets}
        out = sum(dmods[t][1] for t in m.targets)
        if m.down and len(f.tensors[m.down].shape) == 2 and f.tensors[m.down].shape[1] not in ins:
            problems.append(f"{m.prefix}: A has {f.tensors[m.down].shape[1]} inputs, {spec} expects {min(ins)}")
        elif m.up and len(f.tensors[m.up].shape) == 2 and f.tensors[m.up].shape[0] != out:
            problems.append(f"{m.prefix}: B has {f.tensors[m.up].shape[0]} outputs, {spec} expects {out}")
    return problems


def analyse(path: Path | str, model: str = "auto", *, values: bool = True) -> Report:
    rep = Report(Path(path), requested=model)
    try:
        f = st.read(path)
    except st.LoraFileError as exc:
        rep.error = str(exc)
        return rep
    rep.file = f
    rep.parsed = parsed = parse(f.tensors, f.metadata)
    rep.meta_alpha, rep.alpha_baked = metadata_alpha(f.metadata)
    peft = peft_alpha(f.metadata)
    for spec in SPECS:
        rep.fits[spec] = _fits(parsed, f, spec) if parsed.modules else ["no LoRA module"]
    fitting = [s for s, p in rep.fits.items() if not p]
    rep.spec = model if model != "auto" else (fitting[0] if fitting else None)
    for name, fn in L.LOADERS.items():
        rep.loads[name] = fn(list(f.tensors), rep.spec or "klein-9b")
    for prefix, m in parsed.modules.items():
        if not (m.down and m.up):
            rep.shape_errors.append(f"{prefix}: has {'A' if m.down else 'B'} but no {'B' if m.down else 'A'}")
            continue
        ta, tb = f.tensors[m.down], f.tensors[m.up]
        if len(ta.shape) != 2 or len(tb.shape) != 2 or ta.shape[0] != tb.shape[1]:
            rep.shape_errors.append(f"{prefix}: A {list(ta.shape)} and B {list(tb.shape)} do not multiply")
            continue
        rank = ta.shape[0]
        if rank > st.MAX_RANK or max(ta.nbytes, tb.nbytes) > st.MAX_TENSOR_BYTES:
            rep.shape_errors.append(f"{prefix}: rank {rank}, {max(ta.nbytes, tb.nbytes) / 2**20:.0f} MiB: "
                                    f"too large for a LoRA factor, not read")
            continue
        alpha = None
        if m.alpha is not None and f.tensors[m.alpha].dtype in st.FLOATS | {"I64", "I32"} \
                and len(f.tensors[m.alpha].shape) <= 1 and np.prod(f.tensors[m.alpha].shape) == 1:
            alpha = float(f.array(m.alpha).reshape(-1)[0]) if values else None
        scale = (alpha / rank) if alpha is not None and rank else 1.0
        if alpha is None and m.family == "diffusers" and peft is not None and rank:
            scale = peft / rank  # diffusers applies lora_adapter_metadata's alpha
        s = ModuleStats(m, rank, alpha, scale, ta.dtype if ta.dtype == tb.dtype else f"{ta.dtype}/{tb.dtype}",
                        None, None, None)
        if values and ta.dtype in st.FLOATS and tb.dtype in st.FLOATS:
            A, B = f.array(m.down), f.array(m.up)
            dn, an, ok = _grams(A, B)
            if not ok or (alpha is not None and not np.isfinite(alpha)):
                s.finite = False
                s.bad = [k for k, arr in ((m.down, A), (m.up, B)) if not np.isfinite(arr).all()]
                if alpha is not None and not np.isfinite(alpha):
                    s.bad.append(m.alpha)
            else:
                s.delta_norm = dn * abs(scale)
                s.a_norm = an
                s.b_max = float(max(B.max(initial=0.0), -B.min(initial=0.0)))
        rep.stats[prefix] = s
    return rep


def coverage(rep: Report) -> dict[str, list[int]]:
    """diffusers suffix -> block indices (of the checked model) that have no LoRA on it."""
    spec = SPECS.get(rep.spec or "")
    if spec is None:
        return {}
    have = rep.covered()
    out = {}
    for s in DOUBLE:
        miss = [i for i in range(spec.double) if f"transformer_blocks.{i}.{s}" not in have]
        if miss:
            out[s] = miss
    for s in SINGLE:
        miss = [i for i in range(spec.single) if f"single_transformer_blocks.{i}.{s}" not in have]
        if miss:
            out["single " + s] = miss
    return out


def block_rows(rep: Report) -> list[tuple[str, float, str, str, str, int]]:
    """Per block: (block, ||delta|| summed in quadrature, ranks, alphas, dtypes, modules)."""
    groups: dict[tuple, list[ModuleStats]] = {}
    for s in rep.stats.values():
        b = s.module.block
        groups.setdefault(b if b else ("other", 0), []).append(s)
    order = {"double": 0, "single": 1, "other": 2}
    rows = []
    for (kind, i), ss in sorted(groups.items(), key=lambda kv: (order[kv[0][0]], kv[0][1])):
        norms = [s.delta_norm for s in ss if s.delta_norm is not None]
        total = float(np.sqrt(sum(n * n for n in norms))) if norms else float("nan")
        fmt = lambda vals: "/".join(sorted({str(v) for v in vals}))  # noqa: E731
        alphas = fmt("-" if s.alpha is None else f"{s.alpha:g}" for s in ss)
        rows.append((f"{kind} {i}" if kind != "other" else "outside blocks", total, fmt(s.rank for s in ss),
                     alphas, fmt(s.dtype for s in ss), len(ss)))
    return rows


def module_inner(a: Report, b: Report, prefix: str) -> float | None:
    """<delta_a, delta_b>_F / (|delta_a| |delta_b|) for one module stored in both files."""
    sa, sb = a.stats.get(prefix), b.stats.get(prefix)
    if not sa or not sb or not sa.delta_norm or not sb.delta_norm:
        return None
    fa, fb = a.file, b.file
    A1, B1 = fa.array(sa.module.down).astype(np.float64), fa.array(sa.module.up).astype(np.float64)
    A2, B2 = fb.array(sb.module.down).astype(np.float64), fb.array(sb.module.up).astype(np.float64)
    if A1.shape[1] != A2.shape[1] or B1.shape[0] != B2.shape[0]:
        return None
    inner = float(np.sum((B2.T @ B1) * (A2 @ A1.T))) * sa.scale * sb.scale
    return inner / (sa.delta_norm * sb.delta_norm)


def known_module_count(spec: str) -> int:
    return len(bfl_modules(spec))
