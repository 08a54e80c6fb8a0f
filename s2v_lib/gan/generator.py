"""The generator: speech -> a video of face crops, with no picture of the speaker.

Inputs (docs/method.md, notebook 04):

* ``identity`` (B, Di): the identity student's face embedding, predicted from the voice;
* ``emotion`` (B, De): the emotion student's utterance embedding;
* ``mel`` (B, mT, n_mels): the log-mels, m = ``mel_per_frame`` of them per video frame, from which a
  content encoder makes one feature per video frame (what the mouth must do);
* noise (B, T, Z) through a GRU: spontaneous motion (blinks, head motion) that speech does not
  determine.

Each frame is decoded from [content_t, motion_t] by upsampling blocks whose feature maps are
modulated (FiLM, as AdaIN without the normalisation statistics being learned) by a style vector
made from identity and emotion: who it is and how they feel set the scale and shift of every
channel, the sound sets what moves. The static-image baseline of the paper is the same network
with ``identity_from="image"``: an image encoder turns one real frame of the speaker into the
identity vector (one flag, the same code path).
"""
from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import (MEL_PER_FRAME, CorpusConfig, FeatureConfig, GeneratorConfig, StudentConfig, TeacherConfig,
                      halvings, standardize_frames)


class ContentEncoder(nn.Module):
    """Log-mels (B, mT, n_mels) -> per-frame content (B, T, C), m = ``mel_per_frame``.

    Stride-2 convolutions halve time log2(m) times, down to the video frame rate. An output frame
    depends on a few video frames each side; ``CONTEXT_FRAMES`` is a safe bound, used when a long
    recording is generated in chunks.
    """

    CONTEXT_FRAMES = 12  # video frames each side that chunked generation hands a chunk

    def __init__(self, n_mels: int, dim: int, mel_per_frame: int):
        super().__init__()
        self.mel_per_frame = mel_per_frame
        layers = [nn.Conv1d(n_mels, dim, 5, padding=2), nn.LeakyReLU(0.2)]
        for _ in range(int(math.log2(mel_per_frame))):  # halve time: mel frame rate -> video frame rate
            layers += [nn.Conv1d(dim, dim, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Conv1d(dim, dim, 3, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv1d(dim, dim, 3, padding=1))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[1] % self.mel_per_frame:
            raise ValueError(f"expected log-mels shaped (B, {self.mel_per_frame}T, n_mels), got {tuple(mel.shape)}")
        return self.net(mel.transpose(1, 2)).transpose(1, 2)


class ImageIdentityEncoder(nn.Module):
    """The static-image baseline's identity: one face crop (B, 3, R, R) in [0, 1] -> (B, Di)."""

    def __init__(self, identity_dim: int = TeacherConfig.identity_embedding_dim, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(3, w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(w, 2 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(4 * w, 4 * w, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16 * w, identity_dim))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] != 64:
            image = F.interpolate(image, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
        return F.normalize(self.net(standardize_frames(image)), dim=-1)


def subpixel_kernels(weight: torch.Tensor) -> torch.Tensor:
    """A 3x3 kernel (O, I, 3, 3) -> the four 2x2 kernels (4 O, I, 2, 2) it amounts to on a nearest-upsampled picture.

    After a nearest x2 upsampling, output pixel (2i + a, 2j + b) of a 3x3 conv sees only the 2 x 2 input
    pixels around (i, j): for phase a = 0 the rows i - 1 and i with kernel rows (k0, k1 + k2), for a = 1
    the rows i and i + 1 with (k0 + k1, k2); the same for the columns. Channel order: (a, b, O).
    """
    k0, k1, k2 = weight.unbind(-2)
    rows = torch.stack([torch.stack([k0, k1 + k2], -2), torch.stack([k0 + k1, k2], -2)])  # (2, O, I, 2, 3)
    c0, c1, c2 = rows.unbind(-1)
    return torch.stack([torch.stack([c0, c1 + c2], -1), torch.stack([c0 + c1, c2], -1)], 1).flatten(0, 2)


def upsample_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv(interpolate(x, scale_factor=2, mode="nearest"))`` for a 3x3 ``conv`` with padding 1, computed
    on the small picture: (N, I, h, w) -> (N, O, 2h, 2w).

    The same function (to rounding) with 4/9 of the multiplications and no upsampled copy of ``x``:
    one 2x2 conv makes the four phases of every output pixel (``subpixel_kernels``), side by side on a
    (h + 1) x (w + 1) grid, phase (a, b) offset by (a, b); one strided view interleaves them.
    """
    n, _, h, w = x.shape
    o = conv.out_channels
    bias = None if conv.bias is None else conv.bias.repeat(4)
    y = F.conv2d(F.pad(x, (1, 1, 1, 1)), subpixel_kernels(conv.weight), bias).unflatten(1, (2, 2, o))
    sn, sa, sb, so, sh, sw = y.stride()  # y[n, a, b, o, i + a, j + b] is output pixel (n, o, 2i + a, 2j + b)
    video = torch.as_strided(y, (n, o, h, 2, w, 2), (sn, so, sh, sa + sh, sw, sb + sw), y.storage_offset())
    return video.reshape(n, o, 2 * h, 2 * w)


class FiLMBlock(nn.Module):
    """Upsample x2, conv, then per-channel scale and shift from the style: h * (1 + gamma(s)) + beta(s).

    ``subpixel`` (default): the upsampling and the first conv in one (``upsample_conv``, 2.25x fewer
    multiplications); False computes them as written, the reference the tests compare with.
    """

    subpixel = True

    def __init__(self, cin: int, cout: int, style_dim: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.film = nn.Linear(style_dim, 4 * cout)
        self.norm = nn.InstanceNorm2d(cout, affine=False)

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        g1, b1, g2, b2 = self.film(style)[:, :, None, None].chunk(4, dim=1)
        if self.subpixel:
            h = upsample_conv(x, self.conv1)
        else:
            h = self.conv1(F.interpolate(x, scale_factor=2, mode="nearest"))
        x = F.leaky_relu(self.norm(h) * (1 + g1) + b1, 0.2)
        return F.leaky_relu(self.norm(self.conv2(x)) * (1 + g2) + b2, 0.2)


class Generator(nn.Module):
    """Speech (and the students' embeddings) -> video.

    ``forward(mel (B, mT, n_mels), identity (B, Di) or identity_image (B, 3, R, R), emotion (B, De),
    noise (B, T, Z) | None, state | None)`` -> ``(video (B, T, 3, R, R) in [0, 1], state)``;
    ``state`` is the motion GRU's hidden state, to continue in the next chunk of a long recording.
    """

    kind = "generator"

    def __init__(self, resolution: int = CorpusConfig.resolution, identity_dim: int = TeacherConfig.identity_embedding_dim,
                 emotion_dim: int = StudentConfig.emotion_embedding_dim, n_mels: int = FeatureConfig.n_mels,
                 mel_per_frame: int = MEL_PER_FRAME,
                 **sizes):
        """The input sizes come from the data; ``sizes`` are the fields of ``config.GeneratorConfig``."""
        super().__init__()
        cfg = GeneratorConfig(**sizes).validate()
        self.resolution, self.identity_dim, self.emotion_dim = resolution, identity_dim, emotion_dim
        self.n_mels, self.mel_per_frame, self.cfg = n_mels, mel_per_frame, cfg
        self.config = dict(resolution=resolution, identity_dim=identity_dim, emotion_dim=emotion_dim, n_mels=n_mels,
                           mel_per_frame=mel_per_frame, **dataclasses.asdict(cfg))
        self.content = ContentEncoder(n_mels, cfg.content_dim, mel_per_frame)
        self.motion = nn.GRU(cfg.noise_dim, cfg.motion_dim, batch_first=True)
        self.image_identity = ImageIdentityEncoder(identity_dim) if cfg.identity_from == "image" else None
        self.style = nn.Sequential(nn.Linear(identity_dim + emotion_dim, cfg.style_dim), nn.LeakyReLU(0.2),
                                   nn.Linear(cfg.style_dim, cfg.style_dim))
        n_up = halvings(resolution)
        chans = [min(cfg.width * 2 ** (n_up - k), 256) for k in range(n_up + 1)]  # 4x4 ... full size
        self.start = nn.Linear(cfg.content_dim + cfg.motion_dim + cfg.style_dim, chans[0] * 16)
        self.blocks = nn.ModuleList(FiLMBlock(chans[k], chans[k + 1], cfg.style_dim) for k in range(n_up))
        self.to_rgb = nn.Conv2d(chans[-1], 3, 3, padding=1)
        self.chans0 = chans[0]

    def identity_vector(self, identity=None, identity_image=None) -> torch.Tensor:
        if self.cfg.identity_from == "image":
            if identity_image is None:
                raise ValueError("the static-image baseline needs identity_image: one face crop per video")
            return self.image_identity(identity_image)
        if identity is None:
            raise ValueError("speech2video needs the identity embedding predicted from the voice")
        return F.normalize(identity, dim=-1)

    def forward(self, mel, identity=None, emotion=None, noise=None, state=None, identity_image=None,
                generator: torch.Generator | None = None):
        content = self.content(mel)
        return self.decode(content, self.identity_vector(identity, identity_image), emotion, noise, state, generator)

    def decode(self, content, ident, emotion=None, noise=None, state=None, generator=None):
        """Per-frame content (B, T, C) and the identity vector (B, Di) -> (video, GRU state)."""
        cfg = self.cfg
        b, t = content.shape[:2]
        if emotion is None or not cfg.use_emotion:
            emotion = torch.zeros(b, self.emotion_dim, device=content.device)
        if noise is None:
            noise = torch.randn(b, t, cfg.noise_dim, generator=generator).to(content.device)
        if not cfg.use_noise:
            noise = torch.zeros_like(noise)
        motion, state = self.motion(noise, state)
        style = self.style(torch.cat([ident, emotion], -1))                    # (B, S)
        style_t = style[:, None].expand(-1, t, -1).reshape(b * t, -1)
        h = torch.cat([content, motion, style[:, None].expand(-1, t, -1)], -1).reshape(b * t, -1)
        x = F.leaky_relu(self.start(h), 0.2).view(b * t, self.chans0, 4, 4)
        for block in self.blocks:
            x = block(x, style_t)
        video = torch.sigmoid(self.to_rgb(x).float())  # full precision out of autocast: the losses compare pixels
        return video.view(b, t, 3, *video.shape[-2:]), state

    @torch.no_grad()
    def generate(self, mel, identity=None, emotion=None, identity_image=None, chunk_frames: int | None = None,
                 seed: int = 0):
        """A whole utterance of any length, in chunks of ``chunk_frames`` video frames (default: 10 s at
        64 px, fewer at larger sizes so that memory stays about the same).

        Each chunk's content sees ``ContentEncoder.CONTEXT_FRAMES`` video frames of its neighbours, and the
        motion GRU carries its state across, so the result does not depend on where the chunks
        fall: chunked and whole generation give the same video. Returns (1, T, 3, R, R) on the CPU
        (``generate_chunks`` yields the same video piece by piece, for recordings too long to hold).
        """
        return torch.cat(list(self.generate_chunks(mel, identity, emotion, identity_image, chunk_frames, seed)), 1)

    @torch.no_grad()
    def generate_chunks(self, mel, identity=None, emotion=None, identity_image=None, chunk_frames: int | None = None,
                        seed: int = 0):
        """``generate``, one chunk (1, t, 3, R, R) at a time: memory is bounded by one chunk. ``mel`` may also be
        anything with a ``shape`` that gives (B, mT, n_mels) tensors for ``mel[:, a:b]`` (``inference.MelFrames``
        of a long recording, computed as the chunks ask)."""
        self.eval()
        dev = next(self.parameters()).device
        gen = torch.Generator().manual_seed(seed)
        m = self.mel_per_frame
        t = mel.shape[1] // m
        if chunk_frames is None:
            chunk_frames = max(25, 250 * 64 ** 2 // self.resolution ** 2)
        ident = self.identity_vector(None if identity is None else identity.to(dev),
                                     None if identity_image is None else identity_image.to(dev))
        emotion = None if emotion is None else emotion.to(dev)
        c, state = self.content.CONTEXT_FRAMES, None
        for f0 in range(0, t, chunk_frames):
            f1 = min(t, f0 + chunk_frames)
            # the noise of a chunk is drawn in order, so chunked and whole runs draw the same numbers
            noise = torch.randn(mel.shape[0], f1 - f0, self.cfg.noise_dim, generator=gen)
            m0, m1 = max(0, m * (f0 - c)), min(m * t, m * (f1 + c))
            content = self.content(mel[:, m0:m1].to(dev))[:, f0 - m0 // m:f1 - m0 // m]
            video, state = self.decode(content, ident, emotion, noise.to(dev), state)
            yield video.cpu()
