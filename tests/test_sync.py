"""The sync expert and the LSE-D / LSE-C judge."""
import numpy as np
import pytest
import torch

from s2v_lib.gan import sync
from s2v_lib.config import SyncConfig


def test_shapes_and_mouth_region():
    expert = sync.SyncExpert(width=8, embedding_dim=32).eval()
    for size in (64, 128):
        mouths = sync.mouth_region(torch.rand(2, 5, 3, size, size))
        assert mouths.shape == (2, 5, 3, 32, 64)
    v, a = expert(mouths, torch.randn(2, 20, 80))
    assert v.shape == a.shape == (2, 32)


def test_the_expert_sees_the_mouth_only():
    """The video embedding reads the lower half of the face (where the mouth is), nothing above it,
    and one window's embedding does not depend on the rest of its batch."""
    torch.manual_seed(0)
    expert = sync.SyncExpert(width=8, embedding_dim=32).eval()
    frames = torch.rand(2, 5, 3, 64, 64)
    v = expert.embed_video(sync.mouth_region(frames))
    brows = frames.clone()
    brows[..., :32, :] = torch.rand_like(brows[..., :32, :])  # the upper half: eyes and brows
    assert torch.allclose(expert.embed_video(sync.mouth_region(brows)), v, atol=1e-6)
    lips = frames.clone()
    lips[..., 40:56, 16:48] = 0.0  # a dark open mouth
    assert not torch.allclose(expert.embed_video(sync.mouth_region(lips)), v, atol=1e-3)
    assert torch.allclose(expert.embed_video(sync.mouth_region(frames[1:])), v[1:], atol=1e-5)
    mel = torch.randn(2, 20, 80)
    assert torch.allclose(expert.embed_audio(mel[1:]), expert.embed_audio(mel)[1:], atol=1e-5)


def test_sync_loss_prefers_the_in_sync_sound():
    torch.manual_seed(0)
    v = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    others = torch.nn.functional.normalize(torch.randn(4, 5, 16), dim=-1)
    good = torch.cat([v[:, None], others], 1)
    bad = torch.cat([others[:, :1], v[:, None], others[:, 1:]], 1)  # the match sits at a shifted place
    assert sync.contrastive_loss(v, good) < 0.1 < sync.contrastive_loss(v, bad)


def test_offset_profile_finds_a_known_shift():
    rng = np.random.default_rng(0)
    v = torch.nn.functional.normalize(torch.from_numpy(rng.normal(size=(60, 16))).float(), dim=-1)
    in_sync = sync.offset_profile(v, v.clone())
    assert in_sync["offset"] == 0 and in_sync["lse_d"] == pytest.approx(0, abs=1e-6) and in_sync["lse_c"] > 1
    # the sound runs 5 frames late: video frame t matches audio frame t + 5
    late = torch.cat([torch.zeros(5, 16), v[:-5]])
    shifted = sync.offset_profile(v, late)
    assert shifted["offset"] == 5 and shifted["lse_d"] < in_sync["lse_c"]
    assert len(shifted["offsets"]) == 31
    # a still face: every offset is as good as any other, so no confidence
    still = sync.offset_profile(v[:1].repeat(60, 1), v)
    assert still["lse_c"] == pytest.approx(0, abs=0.05)


def test_windows_align_frames_and_mels(tiny_cache):
    windows = sync.ClipWindows(tiny_cache, tiny_cache.index, SyncConfig.window)
    mouths, mels = windows.clip(0)
    n = int(windows.index.n_frames.iloc[0])
    assert mouths.shape == (n - 4, 5, 3, 32, 64) and mels.shape == (n - 4, 20, 80)
    raw = (np.asarray(tiny_cache.clip_mel(windows.index["clip"].iloc[0])) - tiny_cache.mel_mean) / tiny_cache.mel_std
    assert np.allclose(tiny_cache.normalize(tiny_cache.clip_mel(windows.index["clip"].iloc[0])), raw, atol=1e-6)
    assert np.allclose(mels[3].numpy(), raw[12:32], atol=1e-5)


def test_a_briefly_trained_expert_tells_sync_from_shift(tiny_cache, tmp_path):
    cfg = SyncConfig(width=8, steps=120, batch_size=16, negatives=4)
    expert, history = sync.get_sync_expert(tiny_cache, tmp_path, cfg, progress=False)
    assert len(history) == cfg.steps and not any(p.requires_grad for p in expert.parameters())
    idx = tiny_cache.index
    scores = sync.evaluate_sync(expert, tiny_cache, idx[idx.pool.isin(["A", "B"])], progress=False)
    assert scores["pair_accuracy"] > 0.6, scores
    again, _ = sync.get_sync_expert(tiny_cache, tmp_path, cfg, progress=False)
    x = sync.mouth_region(torch.rand(1, 5, 3, 64, 64))
    assert torch.allclose(again.embed_video(x), expert.embed_video(x))
