"""Qwen3 text conditioning for Klein, identical to `Flux2KleinPipeline.encode_prompt`.

Chat template with one user turn, no thinking; padded/truncated to 512 tokens; the DiT sees
hidden states 9, 18 and 27 concatenated per token. The widely copied diffusers training
example used 10/20/30 (FLUX.2-dev's layers); Klein was trained on 9/18/27, so they are fixed here.
"""

from __future__ import annotations

import contextlib

import torch

KLEIN_LAYERS = (9, 18, 27)
MAX_TOKENS = 512


def chat_text(tokenizer, prompt: str) -> str:
    return tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True, enable_thinking=False)


@contextlib.contextmanager
def _truncated(text_encoder, n_layers: int):
    """Run only the first `n_layers` decoder layers; the rest cannot affect the states we read.

    Through the config's layer count (Qwen3's forward loops over `layers[:num_hidden_layers]`),
    never by swapping the layer list: transformers installs its hidden-state hooks once, on the
    layers present at the first call, and a later full forward would then miss the rest.
    """
    inner = getattr(text_encoder, "model", text_encoder)
    cfg = inner.config
    if n_layers >= cfg.num_hidden_layers:
        yield
        return
    full = cfg.num_hidden_layers
    cfg.num_hidden_layers = n_layers
    try:
        yield
    finally:
        cfg.num_hidden_layers = full


@torch.no_grad()
def encode_prompts(text_encoder, tokenizer, prompts: list[str], *, layers=KLEIN_LAYERS,
                   max_length: int = MAX_TOKENS) -> torch.Tensor:
    """(B, max_length, 3 * hidden) prompt embeddings in the text encoder's dtype, on its device."""
    if tuple(layers) != KLEIN_LAYERS:
        raise ValueError(f"FLUX.2 klein reads Qwen3 hidden states {KLEIN_LAYERS}, not {tuple(layers)}")
    batch = tokenizer([chat_text(tokenizer, p) for p in prompts], return_tensors="pt", padding="max_length",
                      truncation=True, max_length=max_length)
    device = next(text_encoder.parameters()).device
    # hidden_states[k] is the input of layer k; keeping k+1 layers leaves the final norm (which
    # only touches the last state) off every state we read
    with _truncated(text_encoder, max(layers) + 1):
        out = text_encoder(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device),
                           output_hidden_states=True, use_cache=False)
    states = torch.stack([out.hidden_states[k] for k in layers], dim=1)  # (B, 3, L, D)
    b, n, length, d = states.shape
    return states.permute(0, 2, 1, 3).reshape(b, length, n * d)


def text_ids(length: int, batch: int = 1) -> torch.Tensor:
    """4-axis ids of text tokens: (0, 0, 0, l)."""
    ids = torch.zeros(1, length, 4, dtype=torch.long)
    ids[..., 3] = torch.arange(length)
    return ids.expand(batch, -1, -1)
