"""Generator and discriminators: shapes, flags, chunked generation, gradients and losses."""
import pytest
import torch

from s2v_lib.gan import discriminators as D
from s2v_lib.gan import sync
from s2v_lib import teachers
from s2v_lib.gan.generator import Generator

SMALL = dict(width=8, content_dim=32, style_dim=32, motion_dim=8, noise_dim=4)


@pytest.mark.parametrize("resolution", [64, 128])
def test_generator_shapes(resolution):
    g = Generator(resolution=resolution, **SMALL)
    video, state = g(torch.randn(2, 4 * 7, 80), torch.randn(2, 128), torch.randn(2, 64))
    assert video.shape == (2, 7, 3, resolution, resolution) and state.shape == (1, 2, 8)


def test_each_frame_follows_its_own_sound_and_its_own_clip():
    """Frame t is made from the sound around t, and clip b from clip b's inputs only: a mix-up of the
    batch and time axes (a wrong reshape between the per-frame decoder and the video) breaks this."""
    torch.manual_seed(0)
    g = Generator(**SMALL).eval()
    t = 40
    mel, ident, emo, noise = torch.randn(2, 4 * t, 80), torch.randn(2, 128), torch.randn(2, 64), torch.randn(2, t, 4)
    video, _ = g(mel, ident, emo, noise=noise)
    late = mel.clone()
    late[0, 4 * 30:] += 3.0  # clip 0's sound changes from frame 30 on
    changed, _ = g(late, ident, emo, noise=noise)
    diff = (changed - video).abs().amax((2, 3, 4))  # (clip, frame)
    c = g.content.CONTEXT_FRAMES
    assert (diff[0, :30 - c] == 0).all(), "frames long before the change must not move"
    assert (diff[0, 30:] > 1e-3).all(), "frames of the changed sound must change"
    assert (diff[1] == 0).all(), "the other clip of the batch must not change"


def test_static_image_baseline_is_one_flag():
    g = Generator(identity_from="image", **SMALL)
    video, _ = g(torch.randn(1, 20, 80), emotion=torch.randn(1, 64), identity_image=torch.rand(1, 3, 64, 64))
    assert video.shape == (1, 5, 3, 64, 64)
    with pytest.raises(ValueError, match="identity_image"):
        g(torch.randn(1, 20, 80), torch.randn(1, 128))
    with pytest.raises(ValueError, match="identity_from"):
        Generator(identity_from="photo")


def test_ablation_flags_remove_their_input():
    torch.manual_seed(0)
    mel, ident = torch.randn(1, 40, 80), torch.randn(1, 128)
    g = Generator(use_emotion=False, use_noise=False, **SMALL).eval()
    a, _ = g(mel, ident, torch.randn(1, 64))
    b, _ = g(mel, ident, torch.randn(1, 64))
    assert torch.equal(a, b), "without emotion and noise inputs, the output depends on speech and identity only"
    g2 = Generator(**SMALL).eval()
    assert not torch.equal(g2(mel, ident, torch.randn(1, 64))[0], g2(mel, ident, torch.randn(1, 64))[0])


def test_chunked_generation_matches_whole_generation():
    torch.manual_seed(0)
    g = Generator(**SMALL).eval()
    mel, ident, emo = torch.randn(1, 4 * 37, 80), torch.randn(1, 128), torch.randn(1, 64)
    whole = g.generate(mel, ident, emo, chunk_frames=1000, seed=3)
    chunked = g.generate(mel, ident, emo, chunk_frames=8, seed=3)
    assert whole.shape == (1, 37, 3, 64, 64)
    assert torch.allclose(whole, chunked, atol=1e-5)


def test_discriminator_shapes_and_projection():
    fd = D.FrameDiscriminator(width=8, feature_dim=32)
    assert fd(torch.rand(3, 3, 64, 64), torch.randn(3, 128)).shape == (3,)
    sd = D.SequenceDiscriminator(width=8, feature_dim=32)
    assert sd(torch.rand(2, 6, 3, 64, 64), torch.randn(2, 64)).shape == (2,)
    frames = torch.rand(2, 3, 64, 64)
    assert not torch.allclose(fd(frames, torch.randn(2, 128)), fd(frames, torch.randn(2, 128))), \
        "the identity condition must change the score"


def test_a_discriminator_gradient_reaches_the_generator():
    g = Generator(**SMALL)
    fd = D.FrameDiscriminator(width=8, feature_dim=32)
    sd = D.SequenceDiscriminator(width=8, feature_dim=32)
    ident, emo = torch.randn(2, 128), torch.randn(2, 64)
    video, _ = g(torch.randn(2, 24, 80), ident, emo)
    loss = D.g_hinge_loss(fd(video.flatten(0, 1), ident.repeat_interleave(6, 0))) + D.g_hinge_loss(sd(video, emo))
    loss.backward()
    for name in ("content.net.0.weight", "style.0.weight", "blocks.0.conv1.weight", "to_rgb.weight"):
        grad = dict(g.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_losses_on_known_cases():
    real = torch.rand(2, 3, 64, 64)
    assert D.reconstruction_loss(real, real) == 0
    mouth_err = real.clone()
    mouth_err[..., 45, 32] += 0.5
    cheek_err = real.clone()
    cheek_err[..., 20, 5] += 0.5
    assert D.reconstruction_loss(mouth_err, real) > 3 * D.reconstruction_loss(cheek_err, real)
    assert D.d_hinge_loss(torch.full((4,), 2.0), torch.full((4,), -2.0)) == 0
    assert D.g_hinge_loss(torch.tensor([1.0, 3.0])) == -2
    teacher = teachers.EmotionTeacher(width=8).eval()
    frames = torch.rand(4, 3, 64, 64)
    probs = torch.softmax(teacher(frames)[0], -1).detach()
    # -sum q log p is linear in q: over one-hot targets it is least at p's top class, most at its bottom one,
    # and the teacher's own distribution (its entropy) lies between
    likeliest, unlikeliest = torch.eye(6)[probs.argmax(1)], torch.eye(6)[probs.argmin(1)]
    own = D.emotion_expert_loss(teacher, frames, probs)
    assert D.emotion_expert_loss(teacher, frames, likeliest) <= own + 1e-6
    assert own <= D.emotion_expert_loss(teacher, frames, unlikeliest) + 1e-6
    assert float(own.detach()) == pytest.approx(float(-(probs * probs.log()).sum(1).mean()), rel=1e-4)
    ident = teachers.IdentityTeacher(width=8).eval()
    assert D.identity_expert_loss(ident, frames, ident(frames).detach()) < 1e-5


def test_sync_loss_flows_to_the_video():
    expert = sync.SyncExpert(width=8, embedding_dim=16).eval()
    for p in expert.parameters():
        p.requires_grad_(False)
    video = torch.rand(1, 8, 3, 64, 64, requires_grad=True)
    loss = D.sync_expert_loss(expert, video, torch.randn(1, 32, 80))
    loss.backward()
    assert loss > 0 and video.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="at least 5 frames"):
        D.sync_expert_loss(expert, torch.rand(1, 3, 3, 64, 64), torch.randn(1, 12, 80))
