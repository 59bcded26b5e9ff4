#!/usr/bin/env bash
# diffusion-pipe job written by klint; run it from anywhere: it changes into its own folder.
# model: not on this machine: cannot tell base or distilled, size or dtype from the name
set -euo pipefail
cd "$(dirname "$0")"
DIFFUSION_PIPE_DIR="${DIFFUSION_PIPE_DIR:?set DIFFUSION_PIPE_DIR to your diffusion-pipe checkout}"
PYTHON="${PYTHON:-python}"

deepspeed --num_gpus=1 "$DIFFUSION_PIPE_DIR/train.py" --deepspeed --config config.toml
# stage 2 starts from stage 1's final LoRA (diffusion-pipe names run folders by time; the last save is the newest step*/epoch* folder); the link is relative so the job can move
final="$(ls -td output/*/step* output/*/epoch* 2>/dev/null | head -n 1)"
[ -n "$final" ] || { echo "stage 1 left no saved LoRA under output/" >&2; exit 1; }
ln -sfn "${final#output/}" output/stage1-final
deepspeed --num_gpus=1 "$DIFFUSION_PIPE_DIR/train.py" --deepspeed --config config_stage2.toml
