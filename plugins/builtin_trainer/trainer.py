"""The built-in training loop for FLUX.2 [klein] LoRAs.

One step = the inference math run backwards: cached VAE-mode latents (patchified, BatchNorm-
normalised) and cached Qwen3 9/18/27 embeddings; sigma from a logit-normal with a resolution-
dependent shift; x_t = (1-s) x0 + s eps; fp32 MSE against eps - x0. Batch 1 per process, constant lr.

Determinism: the data order comes from (seed, stage, epoch) and every step's noise, sigma and
caption dropout from (seed, step, rank), so `--resume` from a checkpoint continues bit-for-bit.
Multi-GPU: started by `accelerate launch` (or torchrun), each rank takes its own sample per step
and DDP averages LoRA gradients; rank 0 writes every file. Frozen base weights (fp8 buffers
included) are never synchronised: every rank loads the same checkpoint.

No per-step host sync on a GPU: latents, embeddings and ids live on the device, the loss and
gradient norm stay device tensors and are read (and logged) every `log_every` steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

from curate.errors import KlintError
from plugins.builtin_trainer.cache import TensorCache, file_digest, module_fingerprint
from plugins.builtin_trainer.optim import MasterWeights, build_optimizer, set_lr
from plugins.klein import latents as L
from plugins.klein import lora as lora_mod
from plugins.klein import text as T
from plugins.klein.loading import load_pipeline, model_size
from plugins.klein.sigmas import sample_sigmas

CAPTION_DROPOUT = 0.05
ACT_BYTES_PER_BLOCK_DIM_TOKEN = 45  # from the H200 baseline: 4B and 9B both ~45 B per block*D*token
PREVIEW_STEPS = {"base": 50, "distilled": 4, "tiny": 4}


@dataclasses.dataclass
class Stage:
    index: int
    steps: int
    lr: float
    items: list[int]  # indices into job.items, each repeated by its repeats
    start: int = 0  # first global step of this stage


@dataclasses.dataclass
class Dist:
    world: int = 1
    rank: int = 0
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_dist() -> tuple[Dist, torch.device]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and os.environ.get("KLINT_FORCE_CPU") != "1" and \
        os.environ.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true")
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if cuda else "gloo")
    return Dist(world, rank, local), device


def barrier(d: Dist) -> None:
    if d.world > 1:
        import torch.distributed as dist

        dist.barrier()


def plan_stages(job) -> list[Stage]:
    r = job.recipe
    all_idx = list(range(len(job.items)))
    stages = [Stage(1, r.steps, r.lr, all_idx)]
    if job.two_stage:
        full = [i for i, it in enumerate(job.items) if it.framing == "full-body"]
        if not full:
            raise KlintError("--two-stage needs full-body images and the dataset has none")
        stages.append(Stage(2, r.stage2_steps, r.stage2_lr, full, start=r.steps))
    return stages


def sample_index(job, stage: Stage, step_in_stage: int, d: Dist) -> int:
    """Which item a rank trains on at a step: a seeded shuffle per epoch of the repeat-expanded list."""
    expanded = [i for i in stage.items for _ in range(max(1, job.items[i].repeats))]
    pos = step_in_stage * d.world + d.rank
    epoch, off = divmod(pos, len(expanded))
    g = torch.Generator().manual_seed(job.seed * 1_000_003 + stage.index * 7_919 + epoch)
    return expanded[int(torch.randperm(len(expanded), generator=g)[off])]


def step_generator(seed: int, step: int, rank: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 2_654_435_761 + step * 40_503 + rank * 97) % (2**63 - 1))


def step_draws(seed: int, micro: int, rank: int, shape: tuple[int, ...],
               dropout: float = CAPTION_DROPOUT) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(sigma, noise, caption dropped) of one micro-batch, on the CPU: the same on every device,
    so --resume continues bit-for-bit. sigma's shift uses the image's own token count h*w."""
    g = step_generator(seed, micro, rank)
    sigma = sample_sigmas(1, shape[-2] * shape[-1], g)
    noise = torch.randn(shape, generator=g)
    drop = torch.rand(1, generator=g).item() < dropout
    return sigma, noise, drop


def flow_matching_loss(model, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, emb: torch.Tensor,
                       h: int, w: int, dtype: torch.dtype, img_ids: torch.Tensor | None = None,
                       txt_ids: torch.Tensor | None = None) -> torch.Tensor:
    """fp32 MSE between the DiT's prediction at x_t = (1-s) x0 + s eps and the velocity eps - x0.

    x0/noise are packed (B, h*w, C); sigma (B,) in (0, 1) is passed as the timestep (the model
    scales by 1000 itself); ids are the 4-axis ones inference uses; no guidance input.
    """
    s = sigma.view(-1, 1, 1)
    xt = (1 - s) * x0 + s * noise
    b = x0.shape[0]
    if img_ids is None:
        img_ids = L.image_ids(h, w, b).to(x0.device)
    if txt_ids is None:
        txt_ids = T.text_ids(emb.shape[1], b).to(x0.device)
    pred = model(hidden_states=xt.to(dtype), encoder_hidden_states=emb, timestep=sigma.to(dtype),
                 img_ids=img_ids, txt_ids=txt_ids, guidance=None, return_dict=False)[0]
    return torch.nn.functional.mse_loss(pred[:, : x0.shape[1]].float(), (noise - x0).float())


SPEEDS = ("auto", "fast", "selective", "low-memory")
CHECKPOINTING = ("off", "selective", "full")


def activation_bytes(transformer, tokens: int) -> dict[str, float]:
    """Estimated activation memory of one step per checkpointing mode (with a 15 % margin).

    off: ~45 B per block x width x token (both H200 baseline shapes); full: the block inputs
    (image + text stream, bf16) plus one block being recomputed; selective keeps attention
    activations and recomputes the MLP halves, about 60 % of off (an estimate until measured).
    """
    cfg = transformer.config
    dim = cfg.num_attention_heads * cfg.attention_head_dim
    blocks = cfg.num_layers + cfg.num_single_layers
    off = ACT_BYTES_PER_BLOCK_DIM_TOKEN * blocks * dim * tokens
    full = 4 * blocks * dim * tokens + ACT_BYTES_PER_BLOCK_DIM_TOKEN * dim * tokens
    return {"off": off * 1.15, "selective": 0.6 * off * 1.15, "full": full * 1.15}


@dataclasses.dataclass
class SpeedPlan:
    """Every speed/memory switch of a run, each with the reason it was chosen."""
    speed: str
    checkpointing: str  # off | selective | full
    compile: bool
    fp8_storage: bool
    fp8_matmul: bool
    reasons: dict[str, str]

    def describe(self) -> str:
        parts = [f"checkpointing {self.checkpointing} ({self.reasons['checkpointing']})",
                 f"compile {'on' if self.compile else 'off'} ({self.reasons['compile']})",
                 f"fp8 storage {'on' if self.fp8_storage else 'off'} ({self.reasons['fp8_storage']})",
                 f"fp8 matmuls {'on' if self.fp8_matmul else 'off'} ({self.reasons['fp8_matmul']})"]
        return f"speed {self.speed}: " + "; ".join(parts)


def plan_speed(speed: str, base_dtype: str, *, cuda: bool, fp8_hw: bool, free_bytes: float | None,
               need_bytes: dict[str, float]) -> SpeedPlan:
    """Resolve --speed into explicit switches. Nothing changes the precision the user chose:
    fp8 matmuls only ever run on an fp8 base, and only fast/selective/low-memory use them.
    Checkpointing for auto and fast is the least that fits the measured free memory."""
    if speed not in SPEEDS:
        raise KlintError(f"--speed must be one of {', '.join(SPEEDS)}, got {speed!r}")
    why: dict[str, str] = {}
    gib = 2**30

    def fits(mode: str) -> bool:
        return free_bytes is None or need_bytes[mode] <= free_bytes

    if not cuda:
        ckpt, why["checkpointing"] = "off", "cpu: no GPU memory to save"
    elif speed == "low-memory":
        ckpt, why["checkpointing"] = "full", "--speed low-memory"
    elif speed == "selective":
        ckpt, why["checkpointing"] = "selective", "--speed selective: MLP halves recomputed"
    else:
        ckpt = next((m for m in CHECKPOINTING if fits(m)), "full")
        free = "unknown" if free_bytes is None else f"{free_bytes / gib:.1f} GiB"
        why["checkpointing"] = (f"activations ~{need_bytes['off'] / gib:.1f} GiB without, "
                                f"~{need_bytes['selective'] / gib:.1f} selective, ~{need_bytes['full'] / gib:.1f} full; "
                                f"{free} free")
    env = os.environ.get("KLINT_GRADIENT_CHECKPOINTING")
    if env in ("0", "1", *CHECKPOINTING):
        ckpt = {"0": "off", "1": "full"}.get(env, env)
        why["checkpointing"] = "KLINT_GRADIENT_CHECKPOINTING"

    if not cuda:
        comp, why["compile"] = False, "cpu"
    elif speed != "fast":
        comp, why["compile"] = False, f"--speed {speed}"
    elif ckpt != "off":
        # regional compilation under checkpointing crashed inductor on H200 (shared/bench/results)
        comp, why["compile"] = False, "not with checkpointing"
    else:
        comp, why["compile"] = True, "--speed fast: repeated blocks"
    env = os.environ.get("KLINT_COMPILE")
    if env in ("0", "1"):
        comp, why["compile"] = env == "1", "KLINT_COMPILE"

    fp8_storage = base_dtype == "fp8"
    why["fp8_storage"] = "--base-dtype fp8: row-scaled block linears" if fp8_storage else f"{base_dtype} base"
    if not fp8_storage:
        mm, why["fp8_matmul"] = False, f"{base_dtype} base"
    elif not fp8_hw:
        mm, why["fp8_matmul"] = False, "cpu" if not cuda else "needs fp8 tensor cores (sm_89+)"
    elif speed == "auto":
        mm, why["fp8_matmul"] = False, "--speed auto keeps bf16 compute; fast/selective/low-memory use fp8"
    else:
        mm, why["fp8_matmul"] = True, f"--speed {speed} on an fp8 base"
    env = os.environ.get("KLINT_FP8_MATMUL")
    if env in ("0", "1") and fp8_storage:
        mm, why["fp8_matmul"] = env == "1" and (fp8_hw or not cuda), "KLINT_FP8_MATMUL"
    return SpeedPlan(speed, ckpt, comp, fp8_storage, mm, why)


def enable_selective_checkpointing(transformer) -> int:
    """Recompute the MLP halves only: double blocks' feed-forwards and the single blocks' SwiGLU
    (their MLP linears are fused with attention's). Attention activations stay saved, so the
    recompute is the cheaper part of each block. Returns how many modules were wrapped."""
    from torch.utils.checkpoint import checkpoint

    def wrap(mod):
        inner = mod.forward

        def forward(*args, **kwargs):
            if torch.is_grad_enabled():
                return checkpoint(inner, *args, use_reentrant=False, **kwargs)
            return inner(*args, **kwargs)

        mod.forward = forward

    n = 0
    for block in transformer.transformer_blocks:
        for mod in (block.ff, block.ff_context):
            wrap(mod)
            n += 1
    for block in transformer.single_transformer_blocks:
        wrap(block.attn.mlp_act_fn)
        n += 1
    return n


def apply_checkpointing(transformer, mode: str) -> None:
    if mode == "full":
        transformer.enable_gradient_checkpointing()
    elif mode == "selective":
        enable_selective_checkpointing(transformer)


def wrap_ddp(transformer, device: torch.device, static_graph: bool):
    """DDP over the trainable LoRA only. Frozen weights and buffers are identical on every rank (same
    checkpoint); syncing them would broadcast ~8.7 GB per step on 9B, and gloo cannot send fp8."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    frozen = [n for n, p in transformer.named_parameters() if not p.requires_grad]
    frozen += [n for n, _ in transformer.named_buffers()]
    DDP._set_params_and_buffers_to_ignore_for_model(transformer, frozen)
    return DDP(transformer, device_ids=[device.index] if device.type == "cuda" else None,
               broadcast_buffers=False, static_graph=static_graph)


def prepare_model(transformer, *, rank: int, alpha: float, lora_dtype: torch.dtype, base_dtype: str,
                  fp8_matmul: bool, device: torch.device) -> tuple[list[torch.nn.Parameter], int]:
    """LoRA on every block linear, fp8 storage of their base weights (quantised on `device`, layer by
    layer) for an fp8 base, then the model on `device`. Returns (LoRA params, fp8 layer count)."""
    from plugins.klein.fp8 import convert_lora_base_layers

    params = lora_mod.add_lora(transformer, rank, alpha, dtype=lora_dtype)
    n = convert_lora_base_layers(transformer, matmul=fp8_matmul, device=device) if base_dtype == "fp8" else 0
    transformer.to(device)
    return params, n


class Stepper:
    """One training step after the forward/backward: master-weight grads, clipping, optimizer, copy back.

    Shared by the trainer and benchmarks/train_step.py, so the benchmark times exactly this code.
    """

    def __init__(self, params, *, optimizer: str, lr: float, weight_decay: float, max_grad_norm: float,
                 masters: bool):
        self.masters = MasterWeights(params) if masters else None
        self.params = self.masters.master if self.masters else list(params)
        self.opt = build_optimizer(optimizer, self.params, lr=lr, weight_decay=weight_decay)
        self.max_norm = float(max_grad_norm or 0)

    def step(self) -> torch.Tensor:
        """Returns the gradient norm before clipping, as a device tensor (no host sync)."""
        if self.masters is not None:
            self.masters.grads_to_master()
        gn = torch.nn.utils.clip_grad_norm_(self.params, self.max_norm if self.max_norm > 0 else float("inf"))
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        if self.masters is not None:
            self.masters.master_to_model()
        return gn


class LossLog:
    """Per-step loss / grad-norm kept as device tensors; read back in one transfer every `every` steps."""

    def __init__(self, every: int):
        self.every = max(1, every)
        self.pending: list[tuple[dict, torch.Tensor, torch.Tensor]] = []

    def add(self, row: dict, loss: torch.Tensor, grad_norm: torch.Tensor) -> None:
        self.pending.append((row, loss.detach().reshape(()), grad_norm.detach().reshape(()).float()))

    def due(self) -> bool:
        return len(self.pending) >= self.every

    def flush(self, world: int = 1) -> list[dict]:
        if not self.pending:
            return []
        vals = torch.stack([torch.stack([lv.float(), gn]) for _, lv, gn in self.pending])
        if world > 1:
            import torch.distributed as dist

            dist.all_reduce(vals)
            vals /= world
        rows = []
        for (row, _, _), (lv, gn) in zip(self.pending, vals.tolist()):
            rows.append({**row, "loss": lv, "grad_norm": gn})
        self.pending = []
        return rows


class Reporter:
    """Rich progress bar (step, loss, it/s, ETA) on a terminal; periodic lines otherwise."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.total, self.enabled = total, enabled
        self.tty = enabled and sys.stderr.isatty()
        self.every = max(1, total // 20)
        self._bar = None
        self.t0 = time.perf_counter()
        self.start = start
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("step"), MofNCompleteColumn(), BarColumn(),
                                 TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[rate]} it/s"),
                                 TextColumn("ETA"), TimeRemainingColumn(), console=Console(stderr=True))
            self._bar.start()
            self._task = self._bar.add_task("train", total=total, completed=start, loss="-", rate="-")

    def update(self, step: int, loss: float) -> None:
        if not self.enabled:
            return
        rate = (step - self.start) / max(time.perf_counter() - self.t0, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, completed=step, loss=f"{loss:.4f}", rate=f"{rate:.2f}")
        elif step % self.every == 0 or step == self.total:
            eta = (self.total - step) / rate if rate > 0 else float("nan")
            print(f"klint: step {step}/{self.total} loss {loss:.4f} {rate:.2f} it/s ETA {eta:.0f}s",
                  file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _ckpt_dirs(out: Path) -> list[Path]:
    root = out / "checkpoints"
    if not root.is_dir():
        return []
    return sorted((p for p in root.iterdir() if p.name.startswith("step-") and (p / "state.pt").is_file()),
                  key=lambda p: int(p.name.split("-")[1]))


def _trainable(model) -> dict[str, torch.nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def _state_tensors(model, masters: MasterWeights | None) -> dict[str, torch.Tensor]:
    """name -> the weights the optimizer steps (fp32 masters when the model holds bf16 copies)."""
    params = _trainable(model)
    if masters is None:
        return dict(params)
    by_id = {id(p): m for p, m in zip(masters.model, masters.master)}
    return {n: by_id[id(p)] for n, p in params.items()}


def save_checkpoint(out: Path, step: int, model, opt, masters: MasterWeights | None = None) -> Path:
    d = out / "checkpoints" / f"step-{step:06d}"
    tmp = d.with_name(d.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "lora": {n: p.detach().cpu().clone() for n, p in _state_tensors(model, masters).items()},
             "optimizer": opt.state_dict()}
    torch.save(state, tmp / "state.pt")
    if d.exists():
        import shutil

        shutil.rmtree(d)
    tmp.replace(d)
    return d


def load_checkpoint(path: Path, model, opt, masters: MasterWeights | None = None) -> int:
    try:
        state = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    except Exception as exc:
        raise KlintError(f"{path}: cannot read checkpoint ({type(exc).__name__}); use an earlier one or a fresh --out") from None
    params = _trainable(model)
    lora = state.get("lora", {})
    if set(params) != set(lora) or any(lora[n].shape != p.shape for n, p in params.items()):
        raise KlintError(f"{path}: checkpoint LoRA does not match this model/rank; resume with the same settings "
                         "or use a fresh --out")
    with torch.no_grad():
        for n, p in _state_tensors(model, masters).items():
            p.copy_(lora[n].to(p.device, p.dtype))
        if masters is not None:
            masters.master_to_model()
    try:
        opt.load_state_dict(state["optimizer"])
    except (ValueError, KeyError) as exc:
        raise KlintError(f"{path}: optimizer state does not match --optimizer ({exc}); resume with the same "
                         "optimizer or use a fresh --out") from None
    return int(state["step"])


def _truncate_metrics(path: Path, last_step: int) -> None:
    if not path.is_file():
        return
    keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0) <= last_step]
    path.write_text("".join(ln + "\n" for ln in keep))


def _prompt_counts(job, prompts) -> str:
    caps = {it.caption for it in job.items}
    extra = set(job.sample_prompts) - caps - {""}
    parts = [f"{len(caps)} caption{'s' * (len(caps) != 1)}"]
    if "" not in caps:
        parts.append("the empty prompt")
    if extra:
        parts.append(f"{len(extra)} preview prompt{'s' * (len(extra) != 1)}")
    return ", ".join(parts)


def _lora_precision(job, cuda: bool) -> tuple[torch.dtype, bool]:
    """(dtype of the LoRA weights the model computes with, whether fp32 masters back them)."""
    want = os.environ.get("KLINT_LORA_COMPUTE")
    if job.recipe.optimizer == "adamw8bit-kahan":
        return torch.bfloat16, False  # bf16 weights, the optimizer compensates the rounding itself
    if want == "bf16" or (cuda and want != "fp32"):
        return torch.bfloat16, True
    return torch.float32, False


def run_training(job, *, say: Callable[[str], None] | None = None, progress: bool = True,
                 checkpoint_every: int | None = None) -> dict[str, Any]:
    """Train `job` (a curate.train_job.TrainJob); returns a summary dict. Raises KlintError on bad input."""
    d, device = setup_dist()

    def tell(msg: str) -> None:
        if d.main:
            (say or (lambda m: print(f"klint: {m}", file=sys.stderr, flush=True)))(msg)

    out = Path(job.out_dir)
    ckpts = _ckpt_dirs(out)
    if ckpts and not job.resume:
        raise KlintError(f"{out} already holds checkpoints: pass --resume to continue, or choose another --out")
    if job.resume and not ckpts:
        raise KlintError(f"--resume: no checkpoint in {out / 'checkpoints'}")
    out.mkdir(parents=True, exist_ok=True)
    stages = plan_stages(job)
    total = sum(s.steps for s in stages)
    every = checkpoint_every or job.checkpoint_every or max(50, min(500, total // 10 or 1))
    options = job.options or {}
    log_every = int(options.get("log_every") or os.environ.get("KLINT_LOG_EVERY") or 10)

    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda or os.environ.get("KLINT_COMPUTE_DTYPE") == "bf16" else torch.float32
    torch.manual_seed(job.seed)
    t_load = time.perf_counter()
    pipe = load_pipeline(job.model, dtype=dtype, warn=tell)
    tell(f"loaded {job.model} in {time.perf_counter() - t_load:.1f}s; training on {device}")
    pipe.set_progress_bar_config(disable=True)
    distilled = bool(getattr(pipe.config, "is_distilled", False))
    size = model_size(pipe.transformer)
    if size != "tiny" and size != job.recipe.model:
        tell(f"recipe {job.recipe.name} is for {job.recipe.model}, the checkpoint is {size}")

    # ---- cache latents and text embeddings once (rank 0 computes, the others read) -------------
    cache_root = out / "cache"
    fp_vae = module_fingerprint(pipe.vae)
    fp_txt = module_fingerprint(pipe.text_encoder) + "-" + str(len(pipe.tokenizer))
    lat_cache = TensorCache(cache_root, "latents", fp_vae)
    txt_cache = TensorCache(cache_root, "text", fp_txt)
    from PIL import Image

    buckets, lat_keys = [], []
    for it in job.items:
        try:
            with Image.open(it.image) as im:
                from PIL import ImageOps

                w, h = ImageOps.exif_transpose(im).size
        except OSError as exc:
            raise KlintError(f"{it.rel}: cannot read image: {exc}") from None
        bw, bh = L.bucket_for(w, h, job.resolution)
        buckets.append((bw, bh))
        lat_keys.append(f"{file_digest(it.image)}:{bw}x{bh}")
    prompts = sorted({it.caption for it in job.items} | {""} | set(job.sample_prompts) | set(_eval_prompts(job)))
    t_cache0 = time.perf_counter()
    if d.main:
        todo = [i for i, k in enumerate(lat_keys) if lat_cache.get(k) is None]
        todo_t = [p for p in prompts if txt_cache.get(p) is None]
        if todo or todo_t:
            tell(f"encoding {len(todo)} images (VAE) and {len(todo_t)} prompts (Qwen3) into {cache_root}")
        if todo:
            pipe.vae.to(device)
            for i in todo:
                px = L.load_image(job.items[i].image, buckets[i])
                lat_cache.put(lat_keys[i], L.encode(pipe.vae, px)[0].float())
        if todo_t:
            pipe.text_encoder.to(device)
            for p in todo_t:
                txt_cache.put(p, T.encode_prompts(pipe.text_encoder, pipe.tokenizer, [p])[0])
        dt_cache = time.perf_counter() - t_cache0
        tell(f"latents: {len(todo)} images encoded, {len(job.items) - len(todo)} reused from the cache; "
             f"text embeddings: {len(todo_t)} prompts encoded ({_prompt_counts(job, prompts)}), "
             f"{len(prompts) - len(todo_t)} reused ({dt_cache:.1f}s)")
    barrier(d)
    lat = [lat_cache.get(k) for k in lat_keys]
    txt = {p: txt_cache.get(p) for p in prompts}
    if any(x is None for x in lat) or any(v is None for v in txt.values()):
        raise KlintError(f"{cache_root}: cache incomplete (another process removed it?)")
    # the text encoder is not needed again; the VAE stays (small) for previews
    pipe.text_encoder = None
    pipe.vae.to("cpu")
    gc.collect()
    if cuda:
        torch.cuda.empty_cache()
    # device-resident for the whole run: no host-to-device copy of latents or embeddings per step
    lat = [x.to(device) for x in lat]
    txt = {p: v.to(device, dtype) for p, v in txt.items()}

    # ---- model -----------------------------------------------------------------------------
    from plugins.klein.fp8 import fp8_hardware

    transformer = pipe.transformer
    speed = options.get("speed") or "auto"
    lora_dtype, use_masters = _lora_precision(job, cuda)
    max_tokens = max((bw // 16) * (bh // 16) for bw, bh in buckets) + T.MAX_TOKENS
    need = activation_bytes(transformer, max_tokens)
    fp8_hw = fp8_hardware(device)
    pre = plan_speed(speed, job.base_dtype, cuda=cuda, fp8_hw=fp8_hw, free_bytes=None, need_bytes=need)
    params, fp8_n = prepare_model(transformer, rank=job.recipe.rank, alpha=job.recipe.alpha, lora_dtype=lora_dtype,
                                  base_dtype=job.base_dtype, fp8_matmul=pre.fp8_matmul, device=device)
    free = torch.cuda.mem_get_info(device)[0] if cuda else None
    plan = plan_speed(speed, job.base_dtype, cuda=cuda, fp8_hw=fp8_hw, free_bytes=free, need_bytes=need)
    tell(plan.describe())
    apply_checkpointing(transformer, plan.checkpointing)
    if plan.compile:
        transformer.compile_repeated_blocks()
    model = transformer
    if d.world > 1:
        model = wrap_ddp(transformer, device, static_graph=plan.checkpointing != "off")
    stepper = Stepper(params, optimizer=job.recipe.optimizer, lr=stages[0].lr, weight_decay=job.recipe.weight_decay,
                      max_grad_norm=job.recipe.max_grad_norm, masters=use_masters)
    masters, opt, max_norm = stepper.masters, stepper.opt, stepper.max_norm
    lora_desc = f"{str(lora_dtype).replace('torch.', '')}{' + fp32 masters' if masters else ''}"
    tell(f"LoRA rank {job.recipe.rank} in {lora_desc}, {type(opt).__name__}, "
         f"gradient clipping {max_norm:g}" if max_norm > 0 else f"LoRA rank {job.recipe.rank} in {lora_desc}, "
         f"{type(opt).__name__}, no gradient clipping")

    start = 0
    metrics_path = out / "metrics.jsonl"
    if job.resume:
        start = load_checkpoint(ckpts[-1], transformer, opt, masters)
        tell(f"resumed from {ckpts[-1]} at step {start}")
        if d.main:
            _truncate_metrics(metrics_path, start)
    elif d.main and metrics_path.exists():
        metrics_path.unlink()
    if d.main:
        write_resolved_config(out, job, extra=dict(
            device=str(device), world_size=d.world, compute_dtype=str(dtype).replace("torch.", ""),
            lora_dtype=str(lora_dtype).replace("torch.", ""), fp32_master_weights=bool(masters),
            optimizer_class=type(opt).__name__, gradient_checkpointing=plan.checkpointing != "off",
            checkpointing=plan.checkpointing, compile=plan.compile, fp8_matmul=plan.fp8_matmul,
            fp8_storage=f"row-scaled e4m3 ({fp8_n} block linears)" if fp8_n else "off", speed_plan=plan.describe(),
            max_grad_norm=max_norm, log_every=log_every,
            checkpoint_every=every, total_steps=total, caption_dropout=CAPTION_DROPOUT, model_size=size,
            text_layers=list(T.KLEIN_LAYERS), distilled=distilled,
            stages=[dict(stage=s.index, steps=s.steps, lr=s.lr, images=len(s.items)) for s in stages]))

    # ---- loop ------------------------------------------------------------------------------
    model.train()
    accum = max(1, int(job.recipe.gradient_accumulation))
    reporter = Reporter(total, start, progress and d.main)
    log = LossLog(log_every)
    last_loss = float("nan")
    ids_cache: dict[tuple[int, int], torch.Tensor] = {}
    txt_ids = T.text_ids(T.MAX_TOKENS).to(device)
    # bf16 autocast only where fp32 LoRA factors would otherwise run their matmuls in fp32
    autocast = dtype != torch.float32 and lora_dtype == torch.float32
    t_loop = time.perf_counter()

    def write_rows(mfh) -> None:
        nonlocal last_loss
        rows = log.flush(d.world)
        for row in rows:
            mfh.write(json.dumps(row) + "\n")
        if rows:
            mfh.flush()
            last_loss = rows[-1]["loss"]
            reporter.update(rows[-1]["step"], last_loss)

    try:
        with open(metrics_path, "a", encoding="utf-8") if d.main else open(os.devnull, "w") as mfh:
            for step in range(start, total):
                stage = next(s for s in stages if s.start <= step < s.start + s.steps)
                set_lr(opt, stage.lr)
                lv = torch.zeros((), device=device)
                seen, sigmas, drops = [], [], []
                for k in range(accum):
                    # micro-batch k of this step; with accum == 1 this is exactly the step itself,
                    # so data order and noise do not depend on whether accumulation exists
                    micro = step * accum + k
                    idx = sample_index(job, stage, (step - stage.start) * accum + k, d)
                    x0 = lat[idx].unsqueeze(0)
                    _, c, h, w = x0.shape
                    sigma_host, noise, drop = step_draws(job.seed, micro, d.rank, tuple(x0.shape))
                    sigma = sigma_host
                    if cuda:  # pinned + non_blocking: a pageable copy would wait for the GPU
                        sigma, noise = sigma.pin_memory(), noise.pin_memory()
                    sigma = sigma.to(device, non_blocking=True)
                    noise = noise.to(device, non_blocking=True)
                    caption = "" if drop else job.items[idx].caption
                    emb = txt[caption].unsqueeze(0)
                    if (h, w) not in ids_cache:
                        ids_cache[(h, w)] = L.image_ids(h, w).to(device)
                    # DDP syncs gradients on the last micro-batch only
                    sync = contextlib.nullcontext() if (d.world == 1 or k == accum - 1) else model.no_sync()
                    with sync:
                        with torch.autocast(device.type, dtype=dtype, enabled=autocast):
                            loss = flow_matching_loss(model, L.pack(x0), L.pack(noise), sigma, emb, h, w, dtype,
                                                      img_ids=ids_cache[(h, w)], txt_ids=txt_ids) / accum
                        loss.backward()
                    lv += loss.detach()
                    seen.append(job.items[idx].rel)
                    sigmas.append(round(float(sigma_host), 6))
                    drops.append(drop)
                gn = stepper.step()
                done = step + 1
                row = dict(step=done, lr=stage.lr, sigma=sigmas[0], stage=stage.index, image=seen[0],
                           caption_dropped=drops[0], max_grad_norm=max_norm,
                           elapsed_s=round(time.perf_counter() - t_loop, 3))
                if accum > 1:
                    row.update(sigma=sigmas, image=seen, caption_dropped=drops)
                log.add(row, lv, gn)
                ckpt_now = done % every == 0 or done == total
                preview_now = bool(job.sample_every) and done % job.sample_every == 0
                if log.due() or ckpt_now or preview_now:
                    write_rows(mfh)
                if ckpt_now:
                    if d.main:
                        ck = save_checkpoint(out, done, transformer, opt, masters)
                        # a LoRA file beside the state, so `klint eval RUN` can score every checkpoint
                        lora_mod.save_lora(transformer, ck, rank=job.recipe.rank, alpha=job.recipe.alpha,
                                           metadata={"klint.steps": str(done), "klint.trigger": job.trigger or "",
                                                     "klint.model": size})
                    barrier(d)
                if d.main and preview_now:
                    write_previews(pipe, transformer, txt, job, out, done, distilled, size, device, dtype)
                if d.main and job.eval_every and done % job.eval_every == 0:
                    from plugins.klein.eval_backend import train_eval

                    kind = "tiny" if size == "tiny" else ("distilled" if distilled else "base")
                    mfh.write(json.dumps(train_eval(pipe, transformer, txt, job, out, done, PREVIEW_STEPS[kind],
                                                    1.0 if distilled else 4.0, device, dtype)) + "\n")
                    mfh.flush()
            write_rows(mfh)
    finally:
        reporter.close()
    if d.world > 1:
        _check_ranks_agree(transformer, d)
        tell(f"LoRA weights identical on all {d.world} ranks")
    files = {}
    if d.main:
        files = lora_mod.save_lora(transformer, out, rank=job.recipe.rank, alpha=job.recipe.alpha,
                                   metadata={"klint.steps": str(total), "klint.trigger": job.trigger or "",
                                             "klint.model": size})
        tell(f"wrote {files['bfl']} (BFL/ComfyUI) and {files['diffusers']} (diffusers)")
        from curate.lora import check_file  # `klint lora` on the run's own output

        tell(check_file(files["bfl"]))
    barrier(d)
    return dict(steps=total, start=start, last_loss=last_loss, files=files,
                gradient_checkpointing=plan.checkpointing != "off", checkpointing=plan.checkpointing, plan=plan,
                world_size=d.world, transformer=transformer, masters=masters, optimizer=opt,
                seconds=time.perf_counter() - t_loop)


def _check_ranks_agree(transformer, d: Dist) -> None:
    """DDP must leave every rank with the same LoRA; a silent divergence would waste a whole run."""
    import torch.distributed as dist

    vals = [p.detach().double().reshape(-1) for p in _trainable(transformer).values()]
    flat = torch.cat(vals)
    sig = torch.stack([flat.sum(), (flat * torch.arange(1, flat.numel() + 1, dtype=torch.float64,
                                                         device=flat.device)).sum()])
    gathered = [torch.zeros_like(sig) for _ in range(d.world)]
    dist.all_gather(gathered, sig)
    if any(not torch.equal(g, gathered[0]) for g in gathered):
        raise KlintError("DDP ranks ended with different LoRA weights")


def write_resolved_config(out: Path, job, extra: dict[str, Any]) -> None:
    data = {"job": job.to_dict(), "trainer": extra}
    tmp = out / "config.json.tmp"
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(out / "config.json")


@torch.no_grad()
def _eval_prompts(job) -> list[str]:
    if not job.eval_every:
        return []
    from curate.eval_job import training_prompts

    return [p.text for p in training_prompts(job.trigger)]


def write_previews(pipe, transformer, txt, job, out: Path, step: int, distilled: bool, size: str, device,
                   dtype: torch.dtype) -> None:
    """Preview images with the current LoRA: base model 50 steps at CFG 4, distilled 4 steps at CFG 1."""
    kind = "tiny" if size == "tiny" else ("distilled" if distilled else "base")
    steps = PREVIEW_STEPS[kind]
    cfg = 1.0 if distilled else 4.0
    was_training = transformer.training
    transformer.eval()
    pipe.vae.to(device)
    folder = out / "samples"
    folder.mkdir(exist_ok=True)
    # the compute dtype, never a parameter's: with an fp8 base the first one may be float8
    neg = txt[""].unsqueeze(0).to(device, dtype)
    try:
        for k, prompt in enumerate(job.sample_prompts):
            g = torch.Generator().manual_seed(job.seed + k)
            img = pipe(prompt_embeds=txt[prompt].unsqueeze(0).to(device, dtype), negative_prompt_embeds=neg,
                       height=job.resolution, width=job.resolution, num_inference_steps=steps, guidance_scale=cfg,
                       generator=g, output_type="pil").images[0]
            img.save(folder / f"step-{step:06d}-{k}.png")
    finally:
        pipe.vae.to("cpu")
        transformer.train(was_training)
