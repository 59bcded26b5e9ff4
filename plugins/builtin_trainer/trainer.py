"""The built-in training loop for FLUX.2 [klein] LoRAs.

One step = the inference math run backwards: cached VAE-mode latents (patchified, BatchNorm-
normalised) and cached Qwen3 9/18/27 embeddings; sigma from a logit-normal with a resolution-
dependent shift; x_t = (1-s) x0 + s eps; fp32 MSE against eps - x0. Batch 1 per process, constant lr.

Determinism: the data order comes from (seed, stage, epoch) and every step's noise, sigma and
caption dropout from (seed, step, rank), so `--resume` from a checkpoint continues bit-for-bit.
Multi-GPU: started by `accelerate launch` (or torchrun), each rank takes its own sample per step
and DDP averages LoRA gradients; rank 0 writes every file.
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
from plugins.builtin_trainer.optim import build_optimizer, set_lr
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


def flow_matching_loss(model, x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor, emb: torch.Tensor,
                       h: int, w: int, dtype: torch.dtype) -> torch.Tensor:
    """fp32 MSE between the DiT's prediction at x_t = (1-s) x0 + s eps and the velocity eps - x0.

    x0/noise are packed (B, h*w, C); sigma (B,) in (0, 1) is passed as the timestep (the model
    scales by 1000 itself); ids are the 4-axis ones inference uses; no guidance input.
    """
    s = sigma.view(-1, 1, 1)
    xt = (1 - s) * x0 + s * noise
    b = x0.shape[0]
    pred = model(hidden_states=xt.to(dtype), encoder_hidden_states=emb, timestep=sigma.to(dtype),
                 img_ids=L.image_ids(h, w, b).to(x0.device), txt_ids=T.text_ids(emb.shape[1], b).to(x0.device),
                 guidance=None, return_dict=False)[0]
    return torch.nn.functional.mse_loss(pred[:, : x0.shape[1]].float(), (noise - x0).float())


SPEEDS = ("auto", "fast", "low-memory")


def want_checkpointing(transformer, device: torch.device, tokens: int, speed: str = "auto") -> tuple[bool, str]:
    """Gradient checkpointing only when activations would not fit in free VRAM (or as --speed asks)."""
    env = os.environ.get("KLINT_GRADIENT_CHECKPOINTING")
    if env in ("0", "1"):
        return env == "1", "KLINT_GRADIENT_CHECKPOINTING"
    if speed == "low-memory":
        return True, "--speed low-memory"
    if speed == "fast":
        return False, "--speed fast"
    if device.type != "cuda":
        return False, "cpu"
    cfg = transformer.config
    dim = cfg.num_attention_heads * cfg.attention_head_dim
    blocks = cfg.num_layers + cfg.num_single_layers
    need = ACT_BYTES_PER_BLOCK_DIM_TOKEN * blocks * dim * tokens * 1.15
    free, _total = torch.cuda.mem_get_info(device)
    return need > free, f"activations ~{need / 2**30:.1f} GiB vs {free / 2**30:.1f} GiB free"


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


def save_checkpoint(out: Path, step: int, model, opt) -> Path:
    d = out / "checkpoints" / f"step-{step:06d}"
    tmp = d.with_name(d.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    state = {"step": step, "lora": {n: p.detach().cpu().clone() for n, p in _trainable(model).items()},
             "optimizer": opt.state_dict()}
    torch.save(state, tmp / "state.pt")
    if d.exists():
        import shutil

        shutil.rmtree(d)
    tmp.replace(d)
    return d


def load_checkpoint(path: Path, model, opt) -> int:
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
        for n, p in params.items():
            p.copy_(lora[n].to(p.device, p.dtype))
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

    cuda = device.type == "cuda"
    dtype = torch.bfloat16 if cuda else torch.float32
    torch.manual_seed(job.seed)
    pipe = load_pipeline(job.model, dtype=dtype, warn=tell)
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
    prompts = sorted({it.caption for it in job.items} | {""} | set(job.sample_prompts))
    t_cache0 = time.perf_counter()
    if d.main:
        todo = [i for i, k in enumerate(lat_keys) if lat_cache.get(k) is None]
        if todo:
            pipe.vae.to(device)
            for i in todo:
                px = L.load_image(job.items[i].image, buckets[i])
                lat_cache.put(lat_keys[i], L.encode(pipe.vae, px)[0].float())
        todo_t = [p for p in prompts if txt_cache.get(p) is None]
        if todo_t:
            pipe.text_encoder.to(device)
            for p in todo_t:
                txt_cache.put(p, T.encode_prompts(pipe.text_encoder, pipe.tokenizer, [p])[0])
        tell(f"cached {len(todo)} latents and {len(todo_t)} text embeddings "
             f"({len(job.items) - len(todo)} + {len(prompts) - len(todo_t)} reused) in "
             f"{time.perf_counter() - t_cache0:.1f}s")
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

    # ---- model -----------------------------------------------------------------------------
    transformer = pipe.transformer
    speed = (job.options or {}).get("speed") or "auto"
    # fp8 matmuls need Ada/Hopper tensor cores; elsewhere they would only add casts
    fp8_hw = cuda and torch.cuda.get_device_capability(device) >= (8, 9)
    fp8_matmul = os.environ.get("KLINT_FP8_MATMUL") == "1" or (speed != "auto" and fp8_hw)
    if speed != "auto" and not cuda:
        tell(f"--speed {speed}: compilation and fp8 matmuls need a CUDA GPU; running eager on {device.type}")
    if job.base_dtype == "fp8" and not fp8_matmul:
        # weight-only fp8 storage of the frozen base, upcast per layer for compute
        transformer.enable_layerwise_casting(storage_dtype=torch.float8_e4m3fn, compute_dtype=dtype)
    transformer.to(device)
    kahan = job.recipe.optimizer == "adamw8bit-kahan"
    lora_dtype = torch.bfloat16 if (kahan and cuda) else torch.float32
    params = lora_mod.add_lora(transformer, job.recipe.rank, job.recipe.alpha, dtype=lora_dtype)
    max_tokens = max((bw // 16) * (bh // 16) for bw, bh in buckets) + T.MAX_TOKENS
    ckpt_on, why = want_checkpointing(transformer, device, max_tokens, speed)
    if ckpt_on:
        transformer.enable_gradient_checkpointing()
    tell(f"gradient checkpointing {'on' if ckpt_on else 'off'} ({why})")
    if fp8_matmul:
        from plugins.klein.fp8 import convert_lora_base_layers

        tell(f"fp8 matmuls on {convert_lora_base_layers(transformer)} frozen base linears")
    compile_on = os.environ.get("KLINT_COMPILE") == "1" or (speed == "fast" and cuda)
    if compile_on and not ckpt_on:
        # regional compilation; compiling with checkpointing crashed inductor on H200 (see notes)
        transformer.compile_repeated_blocks()
        tell("regional compilation of the repeated blocks")
    model = transformer
    if d.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        model = DDP(transformer, device_ids=[device.index] if cuda else None, static_graph=ckpt_on)
    opt = build_optimizer(job.recipe.optimizer, params, lr=stages[0].lr, weight_decay=job.recipe.weight_decay)

    start = 0
    metrics_path = out / "metrics.jsonl"
    if job.resume:
        start = load_checkpoint(ckpts[-1], transformer, opt)
        tell(f"resumed from {ckpts[-1]} at step {start}")
        if d.main:
            _truncate_metrics(metrics_path, start)
    elif d.main and metrics_path.exists():
        metrics_path.unlink()
    if d.main:
        write_resolved_config(out, job, extra=dict(
            device=str(device), world_size=d.world, compute_dtype=str(dtype).replace("torch.", ""),
            lora_dtype=str(lora_dtype).replace("torch.", ""), gradient_checkpointing=ckpt_on,
            checkpoint_every=every, total_steps=total, caption_dropout=CAPTION_DROPOUT, model_size=size,
            text_layers=list(T.KLEIN_LAYERS), distilled=distilled,
            stages=[dict(stage=s.index, steps=s.steps, lr=s.lr, images=len(s.items)) for s in stages]))

    # ---- loop ------------------------------------------------------------------------------
    model.train()
    accum = max(1, int(job.recipe.gradient_accumulation))
    reporter = Reporter(total, start, progress and d.main)
    last_loss = float("nan")
    t_loop = time.perf_counter()
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
                    g = step_generator(job.seed, micro, d.rank)
                    x0 = lat[idx].unsqueeze(0)
                    _, c, h, w = x0.shape
                    sigma = sample_sigmas(1, h * w, g)
                    noise = torch.randn(x0.shape, generator=g)
                    drop = torch.rand(1, generator=g).item() < CAPTION_DROPOUT
                    caption = "" if drop else job.items[idx].caption
                    emb = txt[caption].unsqueeze(0).to(device, dtype)
                    # DDP syncs gradients on the last micro-batch only
                    sync = contextlib.nullcontext() if (d.world == 1 or k == accum - 1) else model.no_sync()
                    with sync:
                        # bf16 autocast on GPU: fp32 LoRA factors would otherwise run their matmuls in fp32
                        with torch.autocast(device.type, dtype=dtype, enabled=cuda):
                            loss = flow_matching_loss(model, L.pack(x0).to(device), L.pack(noise).to(device),
                                                      sigma.to(device), emb, h, w, dtype) / accum
                        loss.backward()
                    lv += loss.detach()
                    seen.append(job.items[idx].rel)
                    sigmas.append(round(float(sigma), 6))
                    drops.append(drop)
                opt.step()
                opt.zero_grad(set_to_none=True)
                if d.world > 1:
                    import torch.distributed as dist

                    dist.all_reduce(lv)
                    lv /= d.world
                last_loss = float(lv)
                done = step + 1
                if d.main:
                    row = dict(step=done, loss=last_loss, lr=stage.lr, sigma=sigmas[0], stage=stage.index,
                               image=seen[0], caption_dropped=drops[0],
                               elapsed_s=round(time.perf_counter() - t_loop, 3))
                    if accum > 1:
                        row.update(sigma=sigmas, image=seen, caption_dropped=drops)
                    mfh.write(json.dumps(row) + "\n")
                    mfh.flush()
                reporter.update(done, last_loss)
                if done % every == 0 or done == total:
                    if d.main:
                        save_checkpoint(out, done, transformer, opt)
                    barrier(d)
                if d.main and job.sample_every and done % job.sample_every == 0:
                    write_previews(pipe, transformer, txt, job, out, done, distilled, size, device)
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
    return dict(steps=total, start=start, last_loss=last_loss, files=files, gradient_checkpointing=ckpt_on,
                world_size=d.world, transformer=transformer, seconds=time.perf_counter() - t_loop)


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
def write_previews(pipe, transformer, txt, job, out: Path, step: int, distilled: bool, size: str, device) -> None:
    """Preview images with the current LoRA: base model 50 steps at CFG 4, distilled 4 steps at CFG 1."""
    kind = "tiny" if size == "tiny" else ("distilled" if distilled else "base")
    steps = PREVIEW_STEPS[kind]
    cfg = 1.0 if distilled else 4.0
    was_training = transformer.training
    transformer.eval()
    pipe.vae.to(device)
    folder = out / "samples"
    folder.mkdir(exist_ok=True)
    # the compute dtype, never a parameter's: with an fp8 base (the standard recipe) the first one is float8
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
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
