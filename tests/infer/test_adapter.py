"""IDFormer / PerceiverAttentionCA: key layout of the official v0.9.1 file, tiny forwards, file formats."""

from __future__ import annotations

import pytest
import torch

from curate.errors import KlintError
from plugins.pulid.adapter import PulidAdapter, build_tiny_adapter, load_adapter
from plugins.pulid.encoders import (OFFICIAL_CA, OFFICIAL_ENCODER, IDFormer, PerceiverAttentionCA,
                                    official_ca_for_slot, official_key_shapes, split_prefix)
from plugins.pulid.hooks import ca_slots

TINY_ENC = dict(dim=16, depth=5, dim_head=4, heads=4, num_id_token=3, num_queries=6, output_dim=12, ff_mult=2,
                id_dim=20, vit_dim=8, hidden=24)


def test_official_key_table_matches_modules_built_at_full_size():
    table = official_key_shapes()
    assert len(table) == 312  # the documented tensor count of pulid_flux_v0.9.1.safetensors
    assert table["pulid_encoder.latents"] == (1, 32, 1024)
    assert table["pulid_encoder.proj_out"] == (1024, 2048)
    assert table["pulid_ca.19.to_kv.weight"] == (4096, 2048)
    assert table["pulid_ca.0.to_q.weight"] == (2048, 3072)
    with torch.device("meta"):  # shapes only: no 571 M parameters allocated
        enc = IDFormer(**OFFICIAL_ENCODER)
        ca = PerceiverAttentionCA(**OFFICIAL_CA)
    built = {f"pulid_encoder.{k}": tuple(v.shape) for k, v in enc.state_dict().items()}
    for k in range(20):
        built.update({f"pulid_ca.{k}.{n}": tuple(v.shape) for n, v in ca.state_dict().items()})
    assert built == table
    n_params = sum(v.numel() for v in enc.state_dict().values())
    assert 140e6 < n_params < 160e6  # documented: IDFormer ~151 M


def _generated_state(prefix: str, module: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {f"{prefix}.{k}": torch.randn(v.shape, generator=g) for k, v in module.state_dict().items()}


def test_tiny_idformer_loads_by_prefix_strictly_and_combines_references():
    state = _generated_state("pulid_encoder", IDFormer(**TINY_ENC), 1)
    state["unrelated.weight"] = torch.zeros(1)
    enc = IDFormer(**TINY_ENC)
    enc.load_state_dict(split_prefix(state, "pulid_encoder"), strict=True)
    assert torch.equal(enc.latents, state["pulid_encoder.latents"])
    one = enc(torch.randn(1, 20), [torch.randn(1, 5, 8) for _ in range(5)])
    assert one.shape == (1, 6, 12)
    # three references: 3x the ID tokens and ViT tokens, still num_queries outputs
    x3, h3 = torch.randn(1, 3, 20), [torch.randn(1, 15, 8) for _ in range(5)]
    out3 = enc(x3, h3)
    assert out3.shape == (1, 6, 12)
    # the queries see every reference: changing the second one changes the tokens
    x3b = x3.clone()
    x3b[:, 1] += 1
    assert not torch.allclose(enc(x3b, h3), out3)
    # a (1, 1, D) reference is the same as a (1, D) one
    h1 = [torch.randn(1, 5, 8) for _ in range(5)]
    x1 = torch.randn(1, 20)
    torch.testing.assert_close(enc(x1, h1), enc(x1[:, None], h1))


def test_ca_adds_per_image_token_residual_from_id_tokens():
    ca = PerceiverAttentionCA(dim=32, dim_head=8, heads=2, kv_dim=16)
    img, ids = torch.randn(2, 10, 32), torch.randn(2, 4, 16)
    out = ca(ids, img)
    assert out.shape == img.shape
    # queries are per image token: dropping tokens does not change the others' residuals
    torch.testing.assert_close(ca(ids, img[:, :6]), out[:, :6])
    assert not torch.allclose(ca(ids + 1, img), out)


def test_slot_spacing_matches_pulid_and_klein_sizes():
    assert len(ca_slots(19, 38)) == 20  # FLUX.1-dev
    assert ca_slots(5, 20) == [("double", 0), ("double", 2), ("double", 4), ("single", 0), ("single", 4),
                               ("single", 8), ("single", 12), ("single", 16)]  # klein-4B: 8 slots
    assert len(ca_slots(8, 24)) == 10  # klein-9B
    picks = [official_ca_for_slot(k, i, 5 if k == "double" else 20) for k, i in ca_slots(5, 20)]
    assert picks[:3] == sorted(picks[:3]) and all(0 <= p <= 9 for p in picks[:3])
    assert all(10 <= p <= 19 for p in picks[3:]) and picks[3:] == sorted(picks[3:])


def _tiny_transformer(n_double=2, n_single=2, heads=2, head_dim=16):
    from diffusers import Flux2Transformer2DModel

    torch.manual_seed(0)
    return Flux2Transformer2DModel(num_layers=n_double, num_single_layers=n_single, num_attention_heads=heads,
                                   attention_head_dim=head_dim, joint_attention_dim=48, in_channels=16,
                                   axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False)


def test_klint_adapter_file_round_trips_and_rejects_other_shapes(tmp_path):
    tr = _tiny_transformer()
    ad = build_tiny_adapter(tr, id_dim=40, vit_dim=32, seed=3)
    path = tmp_path / "ad.safetensors"
    ad.save(path)
    back = load_adapter(path, tr)
    assert isinstance(back, PulidAdapter) and back.slots == ad.slots
    for (k, v), (k2, v2) in zip(ad.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    with pytest.raises(KlintError, match="slots at width"):
        load_adapter(path, _tiny_transformer(n_double=4))


def test_official_file_on_a_non_3072_transformer_says_no_klein_adapter_exists(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "pulid_flux_v0.9.1.safetensors"
    save_file({"pulid_encoder.latents": torch.zeros(1, 32, 1024)}, str(p))
    with pytest.raises(KlintError, match="no PuLID adapter trained for FLUX.2 \\[klein\\] exists"):
        load_adapter(p, _tiny_transformer())
    bad = tmp_path / "x.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(KlintError, match="not a safetensors file"):
        load_adapter(bad, _tiny_transformer())
