#!/usr/bin/env bash
# ai-toolkit job written by klint; run it from anywhere: it changes into its own folder.
set -euo pipefail
cd "$(dirname "$0")"
AI_TOOLKIT_DIR="${AI_TOOLKIT_DIR:?set AI_TOOLKIT_DIR to your ai-toolkit checkout}"
PYTHON="${PYTHON:-python}"

"$PYTHON" "$AI_TOOLKIT_DIR/run.py" config.yaml
# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA
"$PYTHON" "$AI_TOOLKIT_DIR/run.py" config_stage2.yaml
