"""What the trainer tests used to miss: its own sigma-shift call, non-square ids, the caption dropout
rate, the Qwen3 truncation, the Kahan and master-weight paths on CPU, checkpointing modes, fp8 backward."""
from __future__ import annotations

import json

import pytest
import torch

from plugins.builtin_trainer import trainer as TR
from plugins.klein import latents as L
from plugins.klein import sigmas as S
from plugins.klein import text as T
from tests.train.conftest import make_job


def _quiet(msg):
    pass


@pytest.fixture(scope="module")
def wide_run(tmp_path_factory):
    """12 steps on one 2:1 image: bucket 64x32 at resolution 64 -> latent h=2, w=4."""
    from PIL import Image, ImageDraw

    root = tmp_path_factory.mktemp("wide")
    im = Image.new("RGB", (96, 48), (220, 220, 220))
    ImageDraw.Draw(im).ellipse((10, 4, 50, 44), fill=(200, 40, 40))
    im.save(root / "w.png")
    (root / "w.txt").write_text("ohwx woman, wide photo")
    out = tmp_path_factory.mktemp("wide-out")
    job = make_job(root, out, steps=12, lr=1e-3, seed=3, sample_prompts=())
    summary = TR.run_training(job, say=_quiet, progress=False)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return job, summary, rows


def test_bucket_is_not_square(wide_run):
    job, _, _ = wide_run
    from plugins.builtin_trainer.cache import TensorCache, file_digest, module_fingerprint
    from plugins.klein.tiny import build_vae

    cache = TensorCache(job.out_dir / "cache", "latents", module_fingerprint(build_vae(0)))
    lat = cache.get(f"{file_digest(job.items[0].image)}:64x32")
    assert lat is not None and lat.shape == (16, 2, 4)


def test_trainer_sigmas_are_shifted_for_the_image_token_count(wide_run):
    job, _, rows = wide_run
    n_tokens = (64 // 16) * (32 // 16)  # image tokens only, from the bucket
    for r in rows:
        g = TR.step_generator(job.seed, r["step"] - 1, 0)
        u = torch.sigmoid(torch.randn(1, generator=g))
        want = S.shift_sigmas(u, S.shift_for_tokens(n_tokens))
        assert r["sigma"] == pytest.approx(float(want), abs=1e-6), r
        wrong = [float(u), float(S.shift_sigmas(u, S.shift_for_tokens(n_tokens + T.MAX_TOKENS)))]
        assert all(abs(r["sigma"] - x) > 1e-5 for x in wrong)  # no shift / text counted: caught


def test_trainer_caption_dropout_follows_its_rate(wide_run):
    job, _, rows = wide_run
    flags = [TR.step_draws(job.seed, r["step"] - 1, 0, (1, 16, 2, 4))[2] for r in rows]
    assert [r["caption_dropped"] for r in rows] == flags  # the trainer uses these draws
    n = 4000
    rate = sum(TR.step_draws(0, k, 0, (1, 1, 1, 1))[2] for k in range(n)) / n
    assert abs(rate - TR.CAPTION_DROPOUT) < 0.012, rate  # 100 % or 0 % dropout fails here
    cfg = json.loads((job.out_dir / "config.json").read_text())
    assert cfg["trainer"]["caption_dropout"] == TR.CAPTION_DROPOUT == 0.05


def test_first_step_loss_uses_row_major_ids_of_the_bucket(wide_run, tiny_pipe):
    """LoRA B = 0 at step 1, so its loss is the base model's: recompute it with (h, w) and (w, h) ids."""
    job, _, rows = wide_run
    from plugins.builtin_trainer.cache import TensorCache, file_digest, module_fingerprint
    from plugins.klein.tiny import build_transformer

    lat = TensorCache(job.out_dir / "cache", "latents", module_fingerprint(tiny_pipe.vae)).get(
        f"{file_digest(job.items[0].image)}:64x32").unsqueeze(0)
    sigma, noise, drop = TR.step_draws(job.seed, 0, 0, tuple(lat.shape))
    cap = "" if drop else job.items[0].caption
    emb = T.encode_prompts(tiny_pipe.text_encoder, tiny_pipe.tokenizer, [cap])
    base = build_transformer(seed=0)
    _, _, h, w = lat.shape

    def loss(ids):
        with torch.no_grad():
            return float(TR.flow_matching_loss(base, L.pack(lat), L.pack(noise), sigma, emb, h, w, torch.float32,
                                               img_ids=ids))

    right = loss(L.image_ids(h, w))
    swapped = loss(L.image_ids(w, h)[:, : h * w])
    # the same fp32 ops as the trainer: equal to rounding; a swap moves the tiny model's loss by ~6e-5
    assert rows[0]["loss"] == pytest.approx(right, rel=2e-6, abs=0)
    assert abs(swapped - right) > 2e-5 * right  # so the check above can tell a swap


def test_qwen3_truncation_after_layer_27_matches_a_full_forward(tiny_pipe):
    from plugins.klein.tiny import build_text_encoder

    enc = build_text_encoder(len(tiny_pipe.tokenizer), seed=1, num_layers=34)
    ran = []
    hooks = [layer.register_forward_hook(lambda m, i, o, k=k: ran.append(k)) for k, layer in enumerate(enc.model.layers)]
    prompts = ["ohwx woman, red dress", ""]
    ours = T.encode_prompts(enc, tiny_pipe.tokenizer, prompts)
    assert sorted(set(ran)) == list(range(28))  # layers 28-33 never ran
    assert len(enc.model.layers) == 34  # and are back afterwards
    for h in hooks:
        h.remove()
    batch = tiny_pipe.tokenizer([T.chat_text(tiny_pipe.tokenizer, p) for p in prompts], return_tensors="pt",
                                padding="max_length", truncation=True, max_length=T.MAX_TOKENS)
    with torch.no_grad():
        full = enc(**batch, output_hidden_states=True, use_cache=False).hidden_states
    assert len(full) == 35
    want = torch.cat([full[9], full[18], full[27]], dim=-1)
    torch.testing.assert_close(ours, want, rtol=0, atol=0)
    # hidden_states[27] is the input of layer 27, not the final-normed output
    assert not torch.allclose(full[27], full[34])


def test_kahan_path_inside_the_trainer(two_images, tmp_path):
    """adamw8bit-kahan keeps bf16 LoRA weights (on CPU too) and tracks an fp32 run closely."""
    kw = dict(steps=6, lr=2e-3, rank=4, alpha=4)
    ref = TR.run_training(make_job(two_images, tmp_path / "fp32", optimizer="adamw8bit", **kw), say=_quiet,
                          progress=False)
    kah = TR.run_training(make_job(two_images, tmp_path / "kahan", optimizer="adamw8bit-kahan", **kw), say=_quiet,
                          progress=False)
    opt = kah["optimizer"]
    assert type(opt).__name__ == "AdamW8bitKahan"
    t_ref, t_kah = TR._trainable(ref["transformer"]), TR._trainable(kah["transformer"])
    assert {p.dtype for p in t_kah.values()} == {torch.bfloat16}
    comps = [opt.state[p]["kahan_comp"] for p in t_kah.values() if "kahan_comp" in opt.state[p]]
    assert comps and any(float(c.float().abs().max()) > 0 for c in comps)  # compensation carried rounding
    num = sum(float((t_kah[n].float() - p.float()).abs().sum()) for n, p in t_ref.items() if "lora_B" in n)
    moved = sum(float(p.float().abs().sum()) for n, p in t_ref.items() if "lora_B" in n)
    assert moved > 0 and num < 0.05 * moved, (num, moved)
    cfg = json.loads((tmp_path / "kahan" / "config.json").read_text())
    assert cfg["trainer"]["lora_dtype"] == "bfloat16" and cfg["trainer"]["optimizer_class"] == "AdamW8bitKahan"


def test_master_weights_path_inside_the_trainer(two_images, tmp_path, monkeypatch):
    """bf16 LoRA compute with fp32 masters (the GPU default), forced on CPU; resume stays bit-for-bit."""
    monkeypatch.setenv("KLINT_LORA_COMPUTE", "bf16")
    kw = dict(lr=2e-3, rank=4, alpha=4, optimizer="adamw", checkpoint_every=2)
    a = TR.run_training(make_job(two_images, tmp_path / "a", steps=4, **kw), say=_quiet, progress=False)
    assert a["masters"] is not None
    assert {p.dtype for p in a["masters"].model} == {torch.bfloat16}
    assert {p.dtype for p in a["masters"].master} == {torch.float32}
    for m, p in zip(a["masters"].master, a["masters"].model):
        assert torch.equal(m.detach().to(torch.bfloat16), p.detach())  # model copy = rounded master
    state = torch.load(tmp_path / "a" / "checkpoints" / "step-000004" / "state.pt", weights_only=True)
    assert {v.dtype for v in state["lora"].values()} == {torch.float32}  # masters saved, not bf16 copies
    TR.run_training(make_job(two_images, tmp_path / "b", steps=2, **kw), say=_quiet, progress=False)
    b = TR.run_training(make_job(two_images, tmp_path / "b", steps=4, resume=True, **kw), say=_quiet,
                        progress=False)
    assert all(torch.equal(x, y) for x, y in zip(a["masters"].master, b["masters"].master))
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["trainer"]["fp32_master_weights"] is True and cfg["trainer"]["lora_dtype"] == "bfloat16"


def test_master_weights_keep_updates_bf16_would_round_away():
    from plugins.builtin_trainer.optim import MasterWeights

    p = torch.nn.Parameter(torch.ones(256, dtype=torch.bfloat16))
    mw = MasterWeights([p])
    opt = torch.optim.SGD(mw.master, lr=1.0)
    for _ in range(200):
        p.grad = torch.full_like(p, -1e-4)  # 1e-4 steps: below bf16's spacing (2**-7) at 1.0
        mw.grads_to_master()
        opt.step()
        mw.master_to_model()
    assert float(mw.master[0][0]) == pytest.approx(1.02, abs=1e-4)
    assert float(p[0]) == pytest.approx(1.02, abs=4e-3) and float(p[0]) != 1.0


def test_selective_checkpointing_recomputes_mlps_and_keeps_gradients():
    from plugins.klein.lora import add_lora
    from plugins.klein.tiny import build_transformer

    def grads(mode):
        t = build_transformer(seed=0)
        params = add_lora(t, rank=4, alpha=4)
        with torch.no_grad():
            for p in params:
                p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.05)
        TR.apply_checkpointing(t, mode)
        calls = []
        t.transformer_blocks[0].ff.linear_in.register_forward_hook(lambda *a: calls.append(1))
        t.train()
        loss = TR.flow_matching_loss(t, torch.randn(1, 8, 16, generator=torch.Generator().manual_seed(0)),
                                     torch.randn(1, 8, 16, generator=torch.Generator().manual_seed(1)),
                                     torch.tensor([0.4]), torch.randn(1, 8, 48, generator=torch.Generator().manual_seed(2)),
                                     2, 4, torch.float32)
        loss.backward()
        return [p.grad.clone() for p in params], len(calls)

    plain, n_plain = grads("off")
    sel, n_sel = grads("selective")
    assert n_plain == 1 and n_sel == 2  # the feed-forward ran again in backward
    for a, b in zip(plain, sel):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_loss_log_reads_the_device_only_when_flushing():
    """Meta tensors cannot be read: adding them must not touch their values (no per-step sync)."""
    log = TR.LossLog(every=4)
    for k in range(3):
        log.add({"step": k + 1}, torch.empty((), device="meta"), torch.empty((), device="meta"))
        assert not log.due()
    log.add({"step": 4}, torch.empty((), device="meta"), torch.empty((), device="meta"))
    assert log.due()
    with pytest.raises(Exception):
        log.flush()  # reading happens here, once for all four steps
    log = TR.LossLog(every=2)
    log.add({"step": 1}, torch.tensor(0.5), torch.tensor(2.0))
    log.add({"step": 2}, torch.tensor(0.25), torch.tensor(1.0))
    assert log.flush() == [{"step": 1, "loss": 0.5, "grad_norm": 2.0}, {"step": 2, "loss": 0.25, "grad_norm": 1.0}]


def test_metrics_complete_with_sparse_logging(two_images, tmp_path):
    job = make_job(two_images, tmp_path, steps=7, options={"log_every": 3}, checkpoint_every=5)
    TR.run_training(job, say=_quiet, progress=False)
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, 8))
    assert all(r["loss"] > 0 and r["grad_norm"] > 0 for r in rows)
