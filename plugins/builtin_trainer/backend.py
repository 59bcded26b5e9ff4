"""The registry entry point: `BuiltinTrainer().run(job)`."""

from __future__ import annotations


class BuiltinTrainer:
    name = "builtin"

    def run(self, job) -> int:
        import sys

        if job.dry_run:
            # the plan was printed by `klint train`; add what this backend would do on this machine
            import torch

            dev = f"cuda x{torch.cuda.device_count()}" if torch.cuda.is_available() else "cpu"
            print(f"builtin     would train on {dev}; nothing written (dry run)", file=sys.stdout)
            return 0
        from plugins.builtin_trainer.trainer import run_training

        summary = run_training(job)
        return 0 if summary["steps"] >= 0 else 1
