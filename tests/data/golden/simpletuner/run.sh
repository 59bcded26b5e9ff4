#!/usr/bin/env bash
# simpletuner job written by klint; run it from anywhere: it changes into its own folder.
# model: not on this machine: cannot tell base or distilled, size or dtype from the name
set -euo pipefail
cd "$(dirname "$0")"
SIMPLETUNER_DIR="${SIMPLETUNER_DIR:?set SIMPLETUNER_DIR to your simpletuner checkout}"
PYTHON="${PYTHON:-python}"

env CONFIG_BACKEND=json CONFIG_PATH=config.json simpletuner train
# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA
env CONFIG_BACKEND=json CONFIG_PATH=config_stage2.json simpletuner train
