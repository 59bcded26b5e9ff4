from __future__ import annotations

import torch

from plugins.klein.tiny import TEXT_LAYERS, build_tiny_pipeline


def test_tiny_pipeline_is_klein_shaped(tiny_pipe):
    from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import PreTrainedTokenizerFast, Qwen3ForCausalLM

    p = tiny_pipe
    assert isinstance(p, Flux2KleinPipeline)
    assert isinstance(p.transformer, Flux2Transformer2DModel)
    assert isinstance(p.vae, AutoencoderKLFlux2)
    assert isinstance(p.text_encoder, Qwen3ForCausalLM)
    assert isinstance(p.tokenizer, PreTrainedTokenizerFast)
    assert p.text_encoder.config.num_hidden_layers >= max(27, TEXT_LAYERS - 1)
    # joint attention width = 3 text hidden states (layers 9, 18, 27) concatenated
    assert p.transformer.config.joint_attention_dim == 3 * p.text_encoder.config.hidden_size
    assert p.transformer.config.in_channels == 4 * p.vae.config.latent_channels
    assert p.vae_scale_factor == 8
    assert not p.config.is_distilled


def test_chat_template_matches_qwen3_no_thinking(tiny_pipe):
    tok = tiny_pipe.tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": "ohwx woman, smiling"}], tokenize=False,
                                   add_generation_prompt=True, enable_thinking=False)
    assert text == "<|im_start|>user\nohwx woman, smiling<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    ids = tok(text)["input_ids"]
    # special tokens are single ids, and the text round-trips
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    assert tok.decode(ids) == text
    padded = tok(text, padding="max_length", max_length=512, truncation=True)
    assert len(padded["input_ids"]) == 512 and padded["input_ids"][-1] == tok.pad_token_id


def test_encode_prompt_and_generate(tiny_pipe):
    embeds, ids = tiny_pipe.encode_prompt("ohwx woman")
    assert embeds.shape == (1, 512, 48) and ids.shape == (1, 512, 4)
    assert torch.isfinite(embeds).all()
    out = tiny_pipe(prompt="ohwx woman", height=64, width=48, num_inference_steps=2, guidance_scale=4.0,
                    output_type="pt", generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 3, 64, 48) and torch.isfinite(out).all()


def test_deterministic_per_seed(tiny_pipe):
    again = build_tiny_pipeline(seed=0)
    other = build_tiny_pipeline(seed=1)
    a = dict(tiny_pipe.transformer.named_parameters())
    b = dict(again.transformer.named_parameters())
    c = dict(other.transformer.named_parameters())
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert torch.equal(tiny_pipe.vae.bn.running_var, again.vae.bn.running_var)


def test_save_and_reload_as_diffusers_folder(tiny_dir, tiny_pipe):
    from diffusers import Flux2KleinPipeline

    loaded = Flux2KleinPipeline.from_pretrained(tiny_dir)
    e1, _ = tiny_pipe.encode_prompt("ohwx")
    e2, _ = loaded.encode_prompt("ohwx")
    torch.testing.assert_close(e1, e2)
    assert torch.equal(loaded.vae.bn.running_mean, tiny_pipe.vae.bn.running_mean)
