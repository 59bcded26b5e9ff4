#!/usr/bin/env bash
# ai-toolkit job written by klint; run it from anywhere: it changes into its own folder.
# model: not on this machine: cannot tell base or distilled, size or dtype from the name
# ai-toolkit always loads Qwen3 from the hub (Qwen/Qwen3-8B): on an offline GPU machine it must already be in the Hugging Face cache (HF_HOME)
# VAE: /models/black-forest-labs/FLUX.2-klein-base-9B/ae.safetensors if present, else the hub (ai-toolkit/flux2_vae): offline, put it in the cache or pass --vae
set -euo pipefail
cd "$(dirname "$0")"
AI_TOOLKIT_DIR="${AI_TOOLKIT_DIR:?set AI_TOOLKIT_DIR to your ai-toolkit checkout}"
PYTHON="${PYTHON:-python}"

"$PYTHON" "$AI_TOOLKIT_DIR/run.py" config.yaml
# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA
"$PYTHON" "$AI_TOOLKIT_DIR/run.py" config_stage2.yaml
