"""`klint lora` on a rank-32 klein-9B LoRA (BFL naming, bf16, every block linear): warm wall time.

Writes the file into /tmp once (~170 MiB), then times `klint lora FILE` in subprocesses (the first run warms
the page cache). Target: <= 2 s warm.  Usage: python benchmarks/lora_lint.py [--runs 5] [--rank 32]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def make(path: Path, rank: int) -> None:
    from curate.lora import st
    from curate.lora.model import bfl_modules

    g = np.random.default_rng(0)
    tensors = {}
    for name, (i, o) in bfl_modules("klein-9b").items():
        if not name.startswith(("double_blocks.", "single_blocks.")):
            continue
        tensors[f"diffusion_model.{name}.lora_A.weight"] = (g.standard_normal((rank, i), np.float32) * 0.02, "BF16")
        tensors[f"diffusion_model.{name}.lora_B.weight"] = (g.standard_normal((o, rank), np.float32) * 0.001, "BF16")
    st.write(path, tensors, {"format": "pt", "klint.rank": str(rank), "klint.alpha": str(rank),
                             "klint.alpha_baked": "true"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--file", type=Path, default=Path("/tmp/klint_bench_lora_9b_r32.safetensors"))
    a = ap.parse_args()
    if not a.file.exists():
        make(a.file, a.rank)
    print(f"{a.file}: {a.file.stat().st_size / 2**20:.0f} MiB")
    cmd = [sys.executable, "-m", "curate.cli.main", "lora", str(a.file)]
    out = subprocess.run(cmd, capture_output=True, text=True)
    print(out.stdout.strip())
    times, cpu = [], []
    for _ in range(a.runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=False)
        times.append(time.perf_counter() - t)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    # on a shared machine wall time includes waiting for a core; CPU time is what the command costs
    print(f"warm wall: median {statistics.median(times):.2f} s, min {min(times):.2f}, max {max(times):.2f}; "
          f"CPU (user+sys): median {statistics.median(cpu):.2f} s ({a.runs} runs)")


if __name__ == "__main__":
    main()
