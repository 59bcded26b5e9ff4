#!/usr/bin/env bash
# diffusion-pipe job written by klint; run it from anywhere: it changes into its own folder.
set -euo pipefail
cd "$(dirname "$0")"
DIFFUSION_PIPE_DIR="${DIFFUSION_PIPE_DIR:?set DIFFUSION_PIPE_DIR to your diffusion-pipe checkout}"
PYTHON="${PYTHON:-python}"

deepspeed --num_gpus=1 "$DIFFUSION_PIPE_DIR/train.py" --deepspeed --config config.toml
# stage 2 starts from stage 1's last epoch (diffusion-pipe names run folders by time)
ln -sfn "$PWD/$(ls -d output/*/epoch* | sort -V | tail -n 1)" output/stage1-final
deepspeed --num_gpus=1 "$DIFFUSION_PIPE_DIR/train.py" --deepspeed --config config_stage2.toml
