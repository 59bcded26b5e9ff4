#!/usr/bin/env bash
# musubi-tuner job written by klint; run it from anywhere: it changes into its own folder.
# model: not on this machine: cannot tell base or distilled, size or dtype from the name
set -euo pipefail
cd "$(dirname "$0")"
MUSUBI_TUNER_DIR="${MUSUBI_TUNER_DIR:?set MUSUBI_TUNER_DIR to your musubi-tuner checkout}"
PYTHON="${PYTHON:-python}"

# cache latents and Qwen3 outputs once, then train
"$PYTHON" "$MUSUBI_TUNER_DIR/src/musubi_tuner/flux_2_cache_latents.py" --dataset_config dataset.toml --vae /models/bfl/ae.safetensors --model_version klein-base-9b
"$PYTHON" "$MUSUBI_TUNER_DIR/src/musubi_tuner/flux_2_cache_text_encoder_outputs.py" --dataset_config dataset.toml --text_encoder /models/bfl/qwen_3_8b.safetensors --model_version klein-base-9b --batch_size 16
accelerate launch --num_cpu_threads_per_process 1 --mixed_precision bf16 "$MUSUBI_TUNER_DIR/src/musubi_tuner/flux_2_train_network.py" --config_file train.toml
# stage 2: full-body images only, lower lr, starting from the stage-1 LoRA
"$PYTHON" "$MUSUBI_TUNER_DIR/src/musubi_tuner/flux_2_cache_latents.py" --dataset_config dataset_stage2.toml --vae /models/bfl/ae.safetensors --model_version klein-base-9b
"$PYTHON" "$MUSUBI_TUNER_DIR/src/musubi_tuner/flux_2_cache_text_encoder_outputs.py" --dataset_config dataset_stage2.toml --text_encoder /models/bfl/qwen_3_8b.safetensors --model_version klein-base-9b --batch_size 16
accelerate launch --num_cpu_threads_per_process 1 --mixed_precision bf16 "$MUSUBI_TUNER_DIR/src/musubi_tuner/flux_2_train_network.py" --config_file train_stage2.toml
