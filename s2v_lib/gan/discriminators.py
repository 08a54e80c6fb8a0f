"""The discriminators and the losses of the GAN (notebook 04).

* ``FrameDiscriminator``: is this single frame a real face, and is it *this* person?
  Conditioned on the identity embedding by projection (Miyato & Koyama 2018):
  D(x, y) = psi(phi(x)) + <embed(y), phi(x)>.
* ``SequenceDiscriminator``: is this window of frames real motion (blinks, head motion,
  expression dynamics) for this emotion? Frames encoded one by one, then a temporal CNN;
  projection on the emotion embedding.
* sync: the frozen sync expert (``s2v_lib.gan.sync``) scores mouth against sound (``sync_expert_loss``).
* emotion: the frozen emotion teacher judges generated frames against the emotion the speech
  implies (``emotion_expert_loss``).

Losses are functions with their equations: hinge adversarial losses, L1 reconstruction with
extra weight on the mouth, identity through the identity teacher.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import spectral_norm

from ..config import CorpusConfig, GANConfig, StudentConfig, TeacherConfig, halvings, standardize_frames
from .sync import mouth_region


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(spectral_norm(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2))


class _FrameEncoder(nn.Module):
    """(N, 3, R, R) in [0, 1] -> (N, F): spectrally normalised strided convs down to 4 x 4, then a linear map."""

    def __init__(self, resolution: int, width: int, out_dim: int):
        super().__init__()
        n = halvings(resolution)
        chans = [3] + [min(width * 2 ** k, 256) for k in range(n)]
        self.net = nn.Sequential(*[_down(chans[k], chans[k + 1]) for k in range(n)], nn.Flatten(),
                                 spectral_norm(nn.Linear(chans[-1] * 16, out_dim)), nn.LeakyReLU(0.2))

    def forward(self, x):
        return self.net(standardize_frames(x) / 2)  # in [-1, 1]


class FrameDiscriminator(nn.Module):
    """Frames (N, 3, R, R) and identity embeddings (N, Di) -> realism scores (N,)."""

    def __init__(self, resolution: int = CorpusConfig.resolution, identity_dim: int = TeacherConfig.identity_embedding_dim,
                 width: int = GANConfig.d_width, feature_dim: int = 256):
        super().__init__()
        self.encode = _FrameEncoder(resolution, width, feature_dim)
        self.score = spectral_norm(nn.Linear(feature_dim, 1))
        self.embed = spectral_norm(nn.Linear(identity_dim, feature_dim, bias=False))

    def forward(self, frames: torch.Tensor, identity: torch.Tensor) -> torch.Tensor:
        h = self.encode(frames)
        return self.score(h)[:, 0] + (self.embed(identity) * h).sum(1)


class SequenceDiscriminator(nn.Module):
    """Windows (B, T, 3, R, R) and emotion embeddings (B, De) -> realism scores (B,) of the motion."""

    def __init__(self, resolution: int = CorpusConfig.resolution, emotion_dim: int = StudentConfig.emotion_embedding_dim,
                 width: int = GANConfig.d_width, feature_dim: int = 128):
        super().__init__()
        self.encode = _FrameEncoder(resolution, width, feature_dim)
        self.temporal = nn.Sequential(spectral_norm(nn.Conv1d(2 * feature_dim, feature_dim, 3, padding=1)),
                                      nn.LeakyReLU(0.2),
                                      spectral_norm(nn.Conv1d(feature_dim, feature_dim, 3, padding=1)),
                                      nn.LeakyReLU(0.2))
        self.score = spectral_norm(nn.Linear(feature_dim, 1))
        self.embed = spectral_norm(nn.Linear(emotion_dim, feature_dim, bias=False))

    def forward(self, video: torch.Tensor, emotion: torch.Tensor) -> torch.Tensor:
        b, t = video.shape[:2]
        h = self.encode(video.reshape(b * t, *video.shape[2:])).view(b, t, -1)
        motion = torch.cat([h, h - torch.roll(h, 1, dims=1)], -1)  # what a frame looks like and how it changed
        g = self.temporal(motion.transpose(1, 2)).mean(2)
        return self.score(g)[:, 0] + (self.embed(emotion) * g).sum(1)


# ----------------------------------------------------------------------------------- losses
def d_hinge_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: E[max(0, 1 - D(real))] + E[max(0, 1 + D(fake))]."""
    return F.relu(1 - real_scores).mean() + F.relu(1 + fake_scores).mean()


def g_hinge_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -E[D(fake)]."""
    return -fake_scores.mean()


def mouth_weights(resolution: int, weight: float = GANConfig.mouth_weight, device=None) -> torch.Tensor:
    """(R, R) pixel weights: 1 everywhere, ``weight`` on the mouth (rows 60-90 %, columns 25-75 %)."""
    w = torch.ones(resolution, resolution, device=device)
    w[int(0.6 * resolution):int(0.9 * resolution), int(0.25 * resolution):int(0.75 * resolution)] = weight
    return w / w.mean()


def reconstruction_loss(fake: torch.Tensor, real: torch.Tensor, mouth_weight: float = GANConfig.mouth_weight) -> torch.Tensor:
    """L1 between generated and real frames (..., 3, R, R), the mouth region weighted ``mouth_weight`` times.

    L = mean(w * |fake - real|), with the weights w normalised to mean 1.
    """
    w = mouth_weights(fake.shape[-1], mouth_weight, fake.device)
    return (w * (fake - real).abs()).mean()


def sync_expert_loss(expert, video: torch.Tensor, mel: torch.Tensor) -> torch.Tensor:
    """The frozen sync expert as a loss (Wav2Lip): -log of its in-sync probability, averaged over windows.

    ``video`` (B, T, 3, R, R), ``mel`` (B, mT, n_mels) normalised (m = the expert's ``mel_per_frame``).
    Windows of the expert's W frames (5) every frame; p = (1 + cos(v, a)) / 2 turns the cosine of the
    two embeddings into a probability.
    """
    b, t = video.shape[:2]
    w, m = expert.window, expert.mel_per_frame
    if t < w:
        raise ValueError(f"sync needs at least {w} frames, got {t}")
    starts = range(t - w + 1)
    mouths = mouth_region(torch.stack([video[:, s:s + w] for s in starts], 1).flatten(0, 1))
    mels = torch.stack([mel[:, m * s:m * (s + w)] for s in starts], 1).flatten(0, 1)
    v, a = expert.embed_video(mouths), expert.embed_audio(mels)
    p = ((1 + (v * a).sum(-1)) / 2).clamp(1e-6, 1)
    return -torch.log(p).mean()


def emotion_expert_loss(teacher, frames: torch.Tensor, target_probs: torch.Tensor) -> torch.Tensor:
    """The frozen emotion teacher judges generated frames (N, 3, R, R) against the emotion speech implies.

    Cross-entropy  -sum_k q_k log p_teacher(k | frame)  with q (N, 6) the target distribution
    (the emotion student's prediction for the utterance, repeated per frame).
    """
    logits, _ = teacher(frames)
    return -(target_probs * F.log_softmax(logits, -1)).sum(-1).mean()


def identity_expert_loss(teacher, frames: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """1 - cos(identity teacher(frames), target embedding), averaged: the face must look like that person."""
    return (1 - F.cosine_similarity(teacher(frames), target, dim=-1)).mean()
