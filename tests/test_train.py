"""GAN training: a step runs, the fast step computes today's, a resumed run equals an uninterrupted one, DDP
ranks agree."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from s2v_lib.gan import sync, train
from s2v_lib import teachers
from s2v_lib.config import GANConfig, GeneratorConfig, get_profile, with_overrides
from s2v_lib.gan.generator import FiLMBlock, upsample_conv
from s2v_lib.gan.train import GANData, GANTrainer, StepOptions, native_bfloat16

CFG = GANConfig(batch_size=2, window=6, generator=GeneratorConfig(width=8), d_width=8, checkpoint_every=2)


def _experts():
    torch.manual_seed(0)
    return dict(sync=sync.SyncExpert(width=8), emotion_teacher=teachers.EmotionTeacher(width=8),
                identity_teacher=teachers.IdentityTeacher(width=8))


def test_a_step_uses_every_loss_and_the_flags_switch_them_off():
    data = GANData.synthetic()
    row = GANTrainer(CFG, data, _experts(), seed=0, dev=torch.device("cpu")).step()
    assert {"adv_frame", "adv_sequence", "l1", "sync", "emotion", "identity"} <= set(row)
    assert all(np.isfinite(v) for v in row.values())
    ablated = with_overrides(CFG, dict(use_sync=False, use_sequence=False,
                                       generator=dict(use_emotion=False, use_noise=False)))
    row = GANTrainer(ablated, data, _experts(), seed=0, dev=torch.device("cpu")).step()
    assert not {"adv_sequence", "sync", "emotion"} & set(row)


def test_static_image_baseline_trains_by_the_same_code():
    cfg = with_overrides(CFG, dict(generator=dict(identity_from="image")))
    trainer = GANTrainer(cfg, GANData.synthetic(), _experts(), seed=0, dev=torch.device("cpu"))
    assert trainer.generator.image_identity is not None and np.isfinite(trainer.step()["g_loss"])


CPU = torch.device("cpu")
OPTIONS = {"default": StepOptions(), "mixed precision": StepOptions(precision="mixed"),
           "today's step": StepOptions.reference(CPU)}


@pytest.mark.parametrize("options", OPTIONS.values(), ids=OPTIONS.keys())
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path, options):
    data = GANData.synthetic(seed=1)
    straight = GANTrainer(CFG, data, _experts(), seed=4, dev=CPU, options=options).train(5, progress=False)
    ckpt = tmp_path / "gan.pt"
    first = GANTrainer(CFG, data, _experts(), seed=4, dev=CPU, options=options).train(3, ckpt, progress=False)
    assert ckpt.exists() and not ckpt.with_suffix(".pt.tmp").exists()
    second = GANTrainer(CFG, data, _experts(), seed=4, dev=CPU, options=options).train(5, ckpt, progress=False)
    assert list(second.step) == [4, 5]
    resumed = np.concatenate([first.drop(columns="step_seconds").to_numpy(), second.drop(columns="step_seconds").to_numpy()])
    assert np.array_equal(resumed, straight.drop(columns="step_seconds").to_numpy())
    with pytest.raises(ValueError, match="other settings"):
        GANTrainer(dataclasses.replace(CFG, lr_g=1e-3), data, _experts(), dev=torch.device("cpu")).load(ckpt)


def test_upsample_conv_is_the_conv_of_the_upsampled_picture():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(5, 4, 3, padding=1)
    for x in (torch.randn(2, 5, 6, 7), torch.randn(2, 5, 4, 4).to(memory_format=torch.channels_last)):
        grads = []
        for fast in (True, False):
            xx = x.clone().requires_grad_()
            y = upsample_conv(xx, conv) if fast else conv(F.interpolate(xx, scale_factor=2, mode="nearest"))
            assert y.shape == (2, 4, 2 * x.shape[2], 2 * x.shape[3])
            conv.zero_grad()
            (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()  # a gradient that differs per pixel
            grads.append((y.detach(), xx.grad, conv.weight.grad.clone(), conv.bias.grad.clone()))
        for fast, plain in zip(*grads):
            assert torch.allclose(fast, plain, atol=1e-5), (fast - plain).abs().max()
    block, style = FiLMBlock(8, 4, 16), torch.randn(3, 16)
    x = torch.randn(3, 8, 4, 4)
    fast = block(x, style)
    block.subpixel = False
    assert torch.allclose(fast, block(x, style), atol=1e-5)


def _forwards(trainer) -> list:
    calls = []
    trainer.G.register_forward_hook(lambda *args: calls.append(1))
    return calls


def test_generating_once_computes_the_step_of_generating_twice():
    # without noise the reference's two generator forwards make the same video: the steps must agree
    cfg = with_overrides(CFG, dict(generator=dict(use_noise=False)))
    data = GANData.synthetic(seed=3)
    today = StepOptions.reference(CPU)
    runs = {}
    for name, options in {"today's": today, "generate once": dataclasses.replace(today, generate_once=True),
                          "and frozen discriminators": dataclasses.replace(today, generate_once=True,
                                                                           freeze_discriminators=True)}.items():
        trainer = GANTrainer(cfg, data, _experts(), seed=5, dev=CPU, options=options)
        calls = _forwards(trainer)
        rows = [trainer.step() for _ in range(3)]
        assert len(calls) == (6 if name == "today's" else 3), name  # forwards of the generator in three steps
        runs[name] = rows, torch.cat([p.detach().flatten() for p in trainer.G.parameters()])
    rows, weights = runs["today's"]
    for name, (other_rows, other_weights) in runs.items():
        for a, b in zip(rows, other_rows):
            assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-5, abs=1e-7) for k in a), name
        assert torch.allclose(weights, other_weights, atol=1e-6), name


def test_the_default_step_stays_near_todays_losses():
    # the same first batch and weights: sub-pixel conv and mixed precision change rounding, not the losses
    data = GANData.synthetic(seed=2)
    full = GANTrainer(CFG, data, _experts(), seed=1, dev=CPU, options=StepOptions.reference(CPU)).step()
    for options in (StepOptions(precision="full"), StepOptions(precision="mixed")):
        row = GANTrainer(CFG, data, _experts(), seed=1, dev=CPU, options=options).step()
        for k in ("l1", "d_loss", "sync", "emotion", "identity"):
            assert row[k] == pytest.approx(full[k], rel=0.02), (options.precision, k, row[k], full[k])


def test_precision_choices_and_a_failing_compiler(monkeypatch):
    assert StepOptions(precision="mixed").mixed_precision(CPU, 1) and not StepOptions(precision="full").mixed_precision(
        CPU, 2 ** 30)
    assert not StepOptions().mixed_precision(CPU, train.CPU_MIXED_PRECISION_WORK - 1)  # too small to pay
    assert StepOptions().mixed_precision(CPU, train.step_work(get_profile("course").gan, 64)) == native_bfloat16()
    with pytest.raises(ValueError, match="'auto', 'mixed' or 'full'"):
        GANTrainer(CFG, GANData.synthetic(), dev=CPU, options=StepOptions(precision="half"))
    data = GANData.synthetic(seed=6)
    eager = GANTrainer(CFG, data, _experts(), seed=2, dev=CPU).step()

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(torch, "compile", lambda module, **kw: broken)  # compiles, then fails on the first call
    with pytest.warns(UserWarning, match="torch.compile failed .*no C\\+\\+ compiler.*training eagerly"):
        row = GANTrainer(CFG, data, _experts(), seed=2, dev=CPU, options=StepOptions(compile=True)).step()
    assert row == eager
    monkeypatch.setattr(torch, "compile", broken)  # fails to set up
    with pytest.warns(UserWarning, match="torch.compile is not available"):
        row = GANTrainer(CFG, data, _experts(), seed=2, dev=CPU, options=StepOptions(compile=True)).step()
    assert row == eager


def test_ddp_ranks_hold_identical_weights(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", "-m", "s2v_lib.gan.train", "ddp-check", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = (tmp_path / "rank0.txt").read_text(), (tmp_path / "rank1.txt").read_text()
    assert a == b, (a, b)


def test_training_data_from_a_run(tiny_cache, tiny_teachers, tiny_features):
    from s2v_lib import students
    from s2v_lib.config import StudentConfig

    run = tiny_teachers[0]
    utts = students.Utterances.load(tiny_cache, tiny_features, pools=("B",))
    emo, ident, _ = students.get_students("distilled", utts, tiny_features, run,
                                          StudentConfig(steps=2, batch_size=2, width=16, crop_frames=12),
                                          progress=False)
    clips = list(utts.meta["clip"])
    data = GANData.from_run(tiny_cache, tiny_features, emo, ident, clips)
    assert len(data.frames) == len(clips) and data.identity.shape == (len(clips), 128)
    assert all(len(m) == 4 * len(f) for m, f in zip(data.mel, data.frames))
    assert np.allclose(data.emotion_probs.sum(1), 1, atol=1e-5)
    spk = utts.meta.speaker.to_numpy()
    for k in range(len(clips)):  # the baseline's picture: the same speaker, another clip when there is one
        others = [j for j in range(len(clips)) if spk[j] == spk[k] and j != k]
        if others:
            assert not any(np.array_equal(data.reference[k], f) for f in np.asarray(data.frames[k]))
    batch = data.batch(np.random.default_rng(0), 3, 5)
    assert batch["real"].shape == (3, 5, 3, 64, 64) and batch["mel"].shape == (3, 20, 80)
    with pytest.raises(ValueError, match="built for"):
        GANTrainer(CFG, data, resolution=128, dev=torch.device("cpu"))


def test_fit_resumes_and_keeps_snapshots_over_training(tmp_path):
    data = GANData.synthetic(seed=2)
    tr, hist = train.fit("no_noise", CFG, data, _experts(), tmp_path, 4, seed=0, progress=False, watch=data,
                         snapshots=2)
    assert list(hist.step) == [1, 2, 3, 4]
    snaps = train.snapshots(tmp_path, "no_noise")
    assert list(snaps["steps"]) == [1, 2, 4] and snaps["frames"].shape == (3, 64, 64, 3)
    again, hist2 = train.fit("no_noise", CFG, data, _experts(), tmp_path, 6, seed=0, progress=False, watch=data,
                             snapshots=2)
    assert list(hist2.step) == [1, 2, 3, 4, 5, 6] and again.step_count == 6
    with pytest.raises(ValueError, match="unknown system"):
        train.fit("magic", CFG, data, {}, tmp_path, 1)
