"""A tiny random FLUX.2 [klein]-shaped pipeline, built in-process, for CPU tests.

Same component classes and wiring as the real checkpoints (Flux2Transformer2DModel,
AutoencoderKLFlux2 with a /8 encoder and BatchNorm latent stats, a Qwen3 causal LM with
>= 28 layers so hidden states 9/18/27 exist, a byte-level tokenizer with Qwen's chat
template and special tokens), only narrow. No file or network access.
"""

from __future__ import annotations

import torch

# Qwen3's chat special tokens, in Qwen's vocabulary order; "<|endoftext|>" doubles as pad.
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]

# Jinja template with the behaviour of Qwen3's: one turn per message, and with
# add_generation_prompt + enable_thinking=False an empty think block is pre-filled.
CHAT_TEMPLATE = (
    "{%- for m in messages -%}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{- '<|im_start|>assistant\\n' -}}"
    "{%- if enable_thinking is defined and enable_thinking is false -%}"
    "{{- '<think>\\n\\n</think>\\n\\n' -}}"
    "{%- endif -%}"
    "{%- endif -%}"
)

TRANSFORMER_CONFIG = dict(
    num_layers=2, num_single_layers=2, num_attention_heads=2, attention_head_dim=16,
    joint_attention_dim=48, in_channels=16, axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False,
)
TEXT_HIDDEN = 16  # joint_attention_dim = 3 * hidden (layers 9, 18, 27 concatenated)
TEXT_LAYERS = 28
LATENT_CHANNELS = 4  # patchified 2x2 -> 16 = transformer in_channels


def build_tokenizer():
    """A real PreTrainedTokenizerFast: byte-level BPE over the 256 byte symbols (no merges)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import PreTrainedTokenizerFast

    alphabet = ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIAL_TOKENS)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        padding_side="right", model_max_length=131072,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_text_encoder(vocab_size: int, seed: int = 0, num_layers: int = TEXT_LAYERS):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen3Config(
        vocab_size=vocab_size, hidden_size=TEXT_HIDDEN, intermediate_size=32, num_hidden_layers=num_layers,
        num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024,
        tie_word_embeddings=True,
    )
    return Qwen3ForCausalLM(cfg).eval()


def build_vae(seed: int = 0):
    from diffusers import AutoencoderKLFlux2

    torch.manual_seed(seed)
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8, 8, 8), layers_per_block=1, latent_channels=LATENT_CHANNELS, norm_num_groups=4,
        sample_size=64,
    ).eval()
    # non-trivial running stats, so a missing or wrong normalisation shows up in tests
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        vae.bn.running_mean.copy_(torch.randn(vae.bn.num_features, generator=g) * 0.5)
        vae.bn.running_var.copy_(torch.rand(vae.bn.num_features, generator=g) * 2 + 0.25)
    return vae


def build_transformer(seed: int = 0):
    from diffusers import Flux2Transformer2DModel

    torch.manual_seed(seed)
    return Flux2Transformer2DModel(**TRANSFORMER_CONFIG).eval()


def build_scheduler():
    from diffusers import FlowMatchEulerDiscreteScheduler

    # the Klein checkpoints' scheduler settings (dynamic shifting; mu comes from the pipeline)
    return FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000, shift=3.0, use_dynamic_shifting=True, base_shift=0.5, max_shift=1.15,
        base_image_seq_len=256, max_image_seq_len=4096, time_shift_type="exponential",
    )


def build_tiny_pipeline(seed: int = 0, *, is_distilled: bool = False):
    """A `diffusers.Flux2KleinPipeline` with tiny random weights (fp32, CPU). Deterministic per seed."""
    from diffusers import Flux2KleinPipeline

    tokenizer = build_tokenizer()
    return Flux2KleinPipeline(
        scheduler=build_scheduler(), vae=build_vae(seed), text_encoder=build_text_encoder(len(tokenizer), seed),
        tokenizer=tokenizer, transformer=build_transformer(seed), is_distilled=is_distilled,
    )
