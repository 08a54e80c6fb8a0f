"""One source per setting: derived values computed from the settings, and networks that follow them."""
import numpy as np
import pytest
import torch

from s2v_lib.config import (MEL_PER_FRAME, FeatureConfig, GANConfig, GeneratorConfig, StudentConfig, SyncConfig,
                            TeacherConfig, get_profile, halvings, standardize_frames, with_overrides)


@pytest.mark.parametrize("hop_ms, expected", [(5.0, 8), (10.0, 4), (20.0, 2), (40.0, 1)])
def test_mel_frames_per_video_frame_come_from_the_hop_and_the_frame_rate(hop_ms, expected):
    assert FeatureConfig(hop_ms=hop_ms).mel_per_frame(16000, 25) == expected
    assert get_profile("smoke", features=dict(hop_ms=hop_ms)).mel_per_frame == expected


@pytest.mark.parametrize("settings, message", [
    (dict(features=dict(hop_ms=8.0)), "power of two"),
    (dict(features=dict(hop_ms=12.5)), "whole number"),
    (dict(features=dict(n_mels=4)), "n_mels"),
    (dict(features=dict(fmax=9000.0)), "half the sample rate"),
    (dict(corpus=dict(resolution=96)), "must be one of"),
    (dict(gan=dict(window=4)), "sync expert"),
    (dict(gan=dict(generator=dict(identity_from="photo"))), "identity_from"),
])
def test_a_profile_that_cannot_run_is_refused_by_name(settings, message):
    with pytest.raises(ValueError, match=message):
        get_profile("smoke", settings=settings)


def test_network_defaults_are_the_config_defaults():
    from s2v_lib import students, teachers
    from s2v_lib.gan import discriminators, sync
    from s2v_lib.gan.generator import Generator

    assert teachers.EmotionTeacher().config["width"] == TeacherConfig.width
    assert students.EmotionStudent().config["width"] == StudentConfig.width
    assert students.EmotionStudent().config["dropout"] == StudentConfig.dropout
    assert sync.SyncExpert().config["width"] == SyncConfig.width
    assert sync.SyncExpert().window == SyncConfig.window
    d_widths = {m.out_channels for m in discriminators.FrameDiscriminator().modules() if isinstance(m, torch.nn.Conv2d)}
    assert min(d_widths) == GANConfig.d_width
    assert Generator().config["width"] == GeneratorConfig.width and Generator().mel_per_frame == MEL_PER_FRAME == 4


@pytest.mark.parametrize("mel_per_frame", [1, 2, 4, 8])
def test_audio_networks_keep_one_output_per_video_frame(mel_per_frame):
    from s2v_lib import students
    from s2v_lib.gan.generator import Generator

    mel = torch.randn(2, 12 * mel_per_frame, 40)
    student = students.EmotionStudent(40, width=16, embedding_dim=8, mel_per_frame=mel_per_frame).eval()
    assert student(mel)["logits"].shape == (2, 12, 6)
    g = Generator(32, 16, 8, 40, mel_per_frame, width=8, content_dim=16, style_dim=16, motion_dim=8, noise_dim=4)
    video, _ = g(mel, torch.randn(2, 16), torch.randn(2, 8))
    assert video.shape == (2, 12, 3, 32, 32)


def test_chunked_generation_is_whole_generation_at_two_mel_frames_per_frame():
    from s2v_lib.gan.generator import Generator

    torch.manual_seed(0)
    # noise_dim a multiple of 16: torch draws normal numbers 16 at a time, so chunks draw what the whole does
    g = Generator(32, 16, 8, 40, 2, width=8, content_dim=16, style_dim=16, motion_dim=8, noise_dim=16)
    mel, ident = torch.randn(1, 2 * 30, 40), torch.randn(1, 16)
    np.testing.assert_allclose(g.generate(mel, ident, chunk_frames=30), g.generate(mel, ident, chunk_frames=7),
                               atol=1e-5)


def test_a_setting_changed_in_a_profile_reaches_the_generator():
    from s2v_lib.gan.train import GANData, GANTrainer

    cfg = with_overrides(get_profile("smoke").gan, dict(batch_size=2, window=6, d_width=8,
                                                         generator=dict(width=8, content_dim=24, noise_dim=3)))
    data = GANData.synthetic(n_clips=2, n_frames=8, resolution=32, n_mels=64, mel_per_frame=2)
    g = GANTrainer(cfg, data, resolution=32, dev=torch.device("cpu")).G
    assert (g.n_mels, g.mel_per_frame, g.cfg.content_dim, g.cfg.noise_dim) == (64, 2, 24, 3)
    assert GANTrainer(cfg, data, resolution=32, dev=torch.device("cpu")).step()["l1"] > 0


def test_frames_are_standardised_one_way():
    x = torch.tensor([0.0, 0.5, 1.0])
    assert standardize_frames(x).tolist() == [-2.0, 0.0, 2.0]
    assert [halvings(r) for r in (32, 64, 128, 256)] == [3, 4, 5, 6]
