"""The hook manager on a real (tiny, random) Flux2Transformer2DModel with Klein's 5/9-style layout."""

from __future__ import annotations

import pytest
import torch

from plugins.pulid.adapter import build_tiny_adapter
from plugins.pulid.hooks import IDInjector, transformer_slots

N_TXT, SIDE = 7, 4  # 16 noisy tokens


@pytest.fixture(scope="module")
def model():
    from diffusers import Flux2Transformer2DModel

    torch.manual_seed(0)
    tr = Flux2Transformer2DModel(num_layers=5, num_single_layers=9, num_attention_heads=2, attention_head_dim=16,
                                 joint_attention_dim=48, in_channels=16, axes_dims_rope=(4, 4, 4, 4),
                                 guidance_embeds=False).eval()
    ad = build_tiny_adapter(tr, id_dim=40, vit_dim=32, seed=1)
    with torch.no_grad():
        cond, uncond = ad.id_tokens(torch.randn(1, 40), [torch.randn(1, 17, 32) for _ in range(5)])
    return tr, ad, cond, uncond


def _ids(t: int) -> torch.Tensor:
    hh, ww = torch.meshgrid(torch.arange(SIDE), torch.arange(SIDE), indexing="ij")
    return torch.stack([torch.full_like(hh, t), hh, ww, torch.zeros_like(hh)], -1).reshape(-1, 4)


def _inputs(refs: int, prepend: bool):
    g = torch.Generator().manual_seed(5)
    n = SIDE * SIDE
    ref_ids = [_ids(10 + 10 * i) for i in range(refs)]
    ids = torch.cat(ref_ids + [_ids(0)]) if prepend else torch.cat([_ids(0)] + ref_ids)
    txt_ids = torch.stack([torch.zeros(N_TXT), torch.zeros(N_TXT), torch.zeros(N_TXT), torch.arange(N_TXT)], -1)
    noisy = slice(refs * n, (refs + 1) * n) if prepend else slice(0, n)
    return dict(hidden_states=torch.randn(1, n * (1 + refs), 16, generator=g),
                encoder_hidden_states=torch.randn(1, N_TXT, 48, generator=g),
                timestep=torch.tensor([0.7]), img_ids=ids[None], txt_ids=txt_ids[None].long(),
                return_dict=False), noisy


def test_slots_are_pulid_spacing(model):
    tr, ad, *_ = model
    assert transformer_slots(tr) == [("double", 0), ("double", 2), ("double", 4), ("single", 0), ("single", 4),
                                     ("single", 8)]


@pytest.mark.parametrize("prepend", [False, True], ids=["refs-appended", "refs-prepended"])
def test_hooks_fire_on_slot_blocks_and_change_only_noisy_image_tokens(model, prepend):
    tr, ad, cond, uncond = model
    kw, noisy = _inputs(refs=2, prepend=prepend)
    raw, after = {}, {}

    def grab(store, key):
        def hook(m, a, out):
            store[key] = (out[1] if isinstance(out, tuple) else out).clone(), \
                (out[0].clone() if isinstance(out, tuple) else None)
        return hook

    blocks = [("double", i, b) for i, b in enumerate(tr.transformer_blocks)] + \
             [("single", j, b) for j, b in enumerate(tr.single_transformer_blocks)]
    handles = [b.register_forward_hook(grab(raw, (k, i))) for k, i, b in blocks]  # before the injector's
    with torch.no_grad(), IDInjector(tr, ad.pulid_ca, cond, uncond, weight=1.0) as inj:
        handles += [b.register_forward_hook(grab(after, (k, i))) for k, i, b in blocks]  # after it
        tr(**kw)
    for h in handles:
        h.remove()
    fired = [(k, i) for k, i, *_ in inj.fired]
    assert fired == transformer_slots(tr)
    for (kind, idx), (img_after, txt_after) in after.items():
        img_raw, txt_raw = raw[(kind, idx)]
        diff = (img_after - img_raw).abs().amax(dim=-1)[0]
        if kind == "double":
            rows = noisy
            assert torch.equal(txt_after, txt_raw)  # text stream untouched
        else:
            rows = slice(N_TXT + noisy.start, N_TXT + noisy.stop)
        mask = torch.zeros_like(diff, dtype=torch.bool)
        mask[rows] = True
        assert torch.all(diff[~mask] == 0), f"{kind} {idx}: text or reference tokens changed"
        if (kind, idx) in fired:
            assert torch.all(diff[mask] > 0), f"{kind} {idx}: noisy tokens not all changed"
        else:
            assert torch.all(diff == 0)


def test_weight_zero_is_bit_identical_and_hooks_are_removed(model):
    tr, ad, cond, uncond = model
    kw, _ = _inputs(refs=1, prepend=False)
    with torch.no_grad():
        plain = tr(**kw)[0]
        with IDInjector(tr, ad.pulid_ca, cond, uncond, weight=0.0) as inj:
            zero = tr(**kw)[0]
        with IDInjector(tr, ad.pulid_ca, cond, uncond, weight=1.0):
            one = tr(**kw)[0]
        again = tr(**kw)[0]
    assert inj.fired == []
    assert torch.equal(plain, zero)
    assert not torch.allclose(plain, one)
    assert torch.equal(plain, again)  # handles removed on exit


def test_start_fraction_and_cfg_negative_call_get_zero_id_tokens(model):
    tr, ad, cond, uncond = model
    kw, _ = _inputs(refs=0, prepend=False)
    with torch.no_grad():
        plain = tr(**kw)[0]
        # 4 steps, start 0.5: the first two steps (each cond + uncond) run without ID
        with IDInjector(tr, ad.pulid_ca, cond, uncond, weight=1.0, start=0.5, num_steps=4, cfg=True) as inj:
            outs = [tr(**kw)[0] for _ in range(8)]
        with IDInjector(tr, ad.pulid_ca, uncond, None, weight=1.0) as only_uncond:
            neg = tr(**kw)[0]
    assert all(torch.equal(o, plain) for o in outs[:4])
    assert not torch.allclose(outs[4], plain)
    torch.testing.assert_close(outs[5], neg)  # the negative call used IDFormer(zeros)
    assert not torch.allclose(outs[4], outs[5])
    assert len(inj.fired) == 4 * len(transformer_slots(tr)) and only_uncond.fired
