"""GAN training: a step runs, a resumed run equals an uninterrupted one, DDP ranks agree."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from s2v_lib.gan import sync
from s2v_lib import teachers
from s2v_lib.config import GANConfig, GeneratorConfig, with_overrides
from s2v_lib.gan.train import GANData, GANTrainer

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


def test_resume_gives_the_same_losses_as_an_uninterrupted_run(tmp_path):
    data = GANData.synthetic(seed=1)
    straight = GANTrainer(CFG, data, _experts(), seed=4, dev=torch.device("cpu")).train(5, progress=False)
    ckpt = tmp_path / "gan.pt"
    first = GANTrainer(CFG, data, _experts(), seed=4, dev=torch.device("cpu")).train(3, ckpt, progress=False)
    assert ckpt.exists() and not ckpt.with_suffix(".pt.tmp").exists()
    second = GANTrainer(CFG, data, _experts(), seed=4, dev=torch.device("cpu")).train(5, ckpt, progress=False)
    assert list(second.step) == [4, 5]
    resumed = np.concatenate([first.drop(columns="step_seconds").to_numpy(), second.drop(columns="step_seconds").to_numpy()])
    assert np.array_equal(resumed, straight.drop(columns="step_seconds").to_numpy())
    with pytest.raises(ValueError, match="other settings"):
        GANTrainer(dataclasses.replace(CFG, lr_g=1e-3), data, _experts(), dev=torch.device("cpu")).load(ckpt)


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
    from s2v_lib.gan import train

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
