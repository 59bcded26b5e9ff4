"""The trainer's conditioning equals what the pipeline computes at inference."""
from __future__ import annotations

import pytest
import torch

from plugins.klein import latents as L
from plugins.klein import sigmas as S
from plugins.klein import text as T


def test_text_embeddings_equal_encode_prompt(tiny_pipe):
    prompts = ["ohwx woman, smiling, red dress", "", "a much longer caption " * 40]  # last one truncates at 512
    ours = T.encode_prompts(tiny_pipe.text_encoder, tiny_pipe.tokenizer, prompts)
    with torch.no_grad():
        theirs, ids = tiny_pipe.encode_prompt(prompts)
    assert ours.shape == (3, 512, 48)
    assert torch.equal(ours, theirs)
    assert torch.equal(T.text_ids(512, 3), ids)
    # the layers matter: 10/20/30-style picks give different embeddings
    with torch.no_grad():
        wrong, _ = tiny_pipe.encode_prompt(prompts[:1], text_encoder_out_layers=(10, 20, 26))
    assert not torch.allclose(ours[:1], wrong)


def test_wrong_layers_refused(tiny_pipe):
    with pytest.raises(ValueError, match="9, 18, 27"):
        T.encode_prompts(tiny_pipe.text_encoder, tiny_pipe.tokenizer, ["x"], layers=(10, 20, 30))


def test_latents_equal_pipeline_encoding(tiny_pipe, two_images):
    px = L.load_image(two_images / "a.png", (48, 64))
    assert px.shape == (1, 3, 64, 48) and px.min() >= -1 and px.max() <= 1
    ours = L.encode(tiny_pipe.vae, px)
    with torch.no_grad():
        theirs = tiny_pipe._encode_vae_image(px, generator=None)
    assert ours.shape == (1, 16, 4, 3)
    assert torch.equal(ours, theirs)
    assert torch.equal(L.image_ids(4, 3), tiny_pipe._prepare_latent_ids(ours))
    assert torch.equal(L.pack(ours), tiny_pipe._pack_latents(ours))
    # normalisation uses the VAE's BatchNorm stats (non-trivial in the tiny model)
    raw = L.patchify(tiny_pipe.vae.encode(px.float()).latent_dist.mode())
    assert not torch.allclose(raw, ours)


def test_patchify_channel_order_and_inverse():
    z = torch.arange(2 * 4 * 6, dtype=torch.float32).reshape(1, 2, 4, 6)
    p = L.patchify(z)
    assert p.shape == (1, 8, 2, 3)
    # channel 4c + 2dy + dx holds pixel (2i+dy, 2j+dx) of channel c
    for c in range(2):
        for dy in range(2):
            for dx in range(2):
                assert torch.equal(p[0, 4 * c + 2 * dy + dx], z[0, c, dy::2, dx::2])
    assert torch.equal(L.unpatchify(p), z)


def test_decode_inverts_normalisation(tiny_pipe, two_images):
    px = L.load_image(two_images / "b.png", (64, 64))
    z = L.encode(tiny_pipe.vae, px)
    with torch.no_grad():
        raw = tiny_pipe.vae.encode(px).latent_dist.mode()
        direct = tiny_pipe.vae.decode(raw, return_dict=False)[0]
    img = L.decode(tiny_pipe.vae, z)
    assert img.shape == (1, 3, 64, 64)
    torch.testing.assert_close(img, direct, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("w,h,res", [(1000, 1500, 1024), (1920, 1080, 1024), (400, 300, 64), (64, 64, 64),
                                     (300, 3000, 768)])
def test_buckets_are_16px_within_budget(w, h, res):
    bw, bh = L.bucket_for(w, h, res)
    assert bw % 16 == 0 and bh % 16 == 0
    assert bw * bh <= res * res
    assert bw * bh >= 0.7 * res * res or (w / h) > 2.5 or (h / w) > 2.5
    assert abs((bw / bh) / (w / h) - 1) < 0.05 or max(w / h, h / w) > 2.5


def test_sigma_shift_grows_with_resolution():
    assert S.shift_for_tokens(1024) == pytest.approx(1.88, abs=0.01)  # 512 px
    assert S.shift_for_tokens(2304) == pytest.approx(2.33, abs=0.01)  # 768 px
    assert S.shift_for_tokens(4096) == pytest.approx(3.16, abs=0.01)  # 1024 px
    g = torch.Generator().manual_seed(0)
    lo = S.sample_sigmas(20000, 1024, g)
    hi = S.sample_sigmas(20000, 4096, torch.Generator().manual_seed(0))
    assert 0 < float(lo.min()) and float(hi.max()) < 1
    assert float(hi.mean()) > float(lo.mean()) > 0.5  # shifted towards noise, more at high res
