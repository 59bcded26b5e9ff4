"""Multi-process training through `accelerate launch` (DDP; gloo on CPU, NCCL on GPUs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("accelerate", reason="the train extra (accelerate) is not installed")


def test_accelerate_launch_two_processes_fp8(two_images, tmp_path):
    """Two gloo ranks on an fp8 base: DDP must not touch the frozen fp8 weights (gloo cannot even send them)."""
    out = tmp_path / "ddp"
    env = dict(os.environ, KLINT_FORCE_CPU="1", OMP_NUM_THREADS="1")
    # --multi_gpu is accelerate's DDP launcher; with no CUDA the trainer joins the group over gloo
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "29517",
           "-m", "curate.cli.main", "train", str(two_images), "--model", "tiny", "--steps", "4", "--rank", "4",
           "--force", "--out", str(out), "--no-progress", "--no-cache", "--base-dtype", "fp8", "--sample-every", "4"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identical on all 2 ranks" in proc.stderr
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["trainer"]["world_size"] == 2
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]  # one line per step, written by rank 0 only
    assert (out / "lora.safetensors").is_file()
    assert (out / "samples" / "step-000004-0.png").is_file()  # previews on rank 0 with the fp8 base
    assert cfg["trainer"]["fp8_storage"] == "row-scaled e4m3 (28 block linears)"


def _ddp_worker(rank, world, port, queue):
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    from plugins.builtin_trainer.trainer import prepare_model, wrap_ddp
    from plugins.klein import latents as L
    from plugins.klein import text as T
    from plugins.klein.tiny import build_transformer

    t = build_transformer(seed=0)
    torch.manual_seed(rank)  # different LoRA init per rank: DDP must broadcast rank 0's
    params, n = prepare_model(t, rank=4, alpha=4, lora_dtype=torch.float32, base_dtype="fp8", fp8_matmul=True,
                              device=torch.device("cpu"))
    fp8 = t.transformer_blocks[0].attn.to_q.base_layer
    if rank == 1:  # frozen state that differs must stay as it is: nothing frozen is ever sent
        with torch.no_grad():
            t.x_embedder.weight.add_(1.0)
            fp8.weight_scale.mul_(2.0)
    model = wrap_ddp(t, torch.device("cpu"), static_graph=False)
    g = torch.Generator().manual_seed(10 + rank)
    out = model(hidden_states=torch.randn(1, 8, 16, generator=g), encoder_hidden_states=torch.randn(1, 4, 48, generator=g),
                timestep=torch.tensor([0.5]), img_ids=L.image_ids(2, 4), txt_ids=T.text_ids(4), guidance=None,
                return_dict=False)[0]
    out.pow(2).mean().backward()
    queue.put(dict(rank=rank, n=n, embed=float(t.x_embedder.weight.double().sum()),
                   scale=float(fp8.weight_scale.double().sum()),
                   # plain lists: torch tensors would travel as shared-memory handles that die with this process
                   lora=[p.detach().reshape(-1).tolist() for p in params],
                   grads=[p.grad.reshape(-1).tolist() for p in params]))
    dist.destroy_process_group()


def test_ddp_syncs_lora_only_never_frozen_fp8_buffers():
    """wrap_ddp on two gloo CPU processes: LoRA broadcast and gradients averaged; frozen weights untouched."""
    import torch
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, 29533, queue)) for r in range(2)]
    for p in procs:
        p.start()
    res = sorted((queue.get(timeout=300) for _ in procs), key=lambda r: r["rank"])
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    r0, r1 = res
    assert r0["n"] == r1["n"] == 28
    assert r1["embed"] - r0["embed"] == pytest.approx(32 * 16, rel=1e-6)  # x_embedder is 32x16, +1 each
    assert r1["scale"] == pytest.approx(2 * r0["scale"], rel=1e-6)
    assert r0["lora"] == r1["lora"]  # rank 0's init everywhere
    assert any(max(map(abs, g)) > 0 for g in r0["grads"])
    assert all(torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-7)
               for a, b in zip(r0["grads"], r1["grads"]))  # averaged over the ranks
