"""The sync expert: does this mouth move with this sound? (SyncNet, Chung & Zisserman 2016; Wav2Lip 2020)

Two encoders map 5 frames of the mouth region (0.2 s) and the 20 log-mel frames under them
(0.2 s) to unit vectors that are close when the two are in sync. Trained contrastively on real
clips of pools A and B: for each mouth window, the sound of the same moment must beat the sound
of the same clip shifted by a few frames. Then frozen, it serves as a loss for the generator and
as the judge of LSE-D and LSE-C:

    d(o) = mean over frames t of || v_t - a_{t+o} ||   for offsets o in [-15, 15]
    LSE-D = min_o d(o)          (lower: closer at the best offset)
    LSE-C = median_o d(o) - min_o d(o)   (higher: a sharper, more confident minimum)
    offset = argmin_o d(o)      (0 for a video in sync with its sound)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..config import MEL_PER_FRAME, FeatureConfig, SyncConfig, device, standardize_frames
from ..config import progress as progress_bar
from ..machinery.runs import load_model
from ..trainer import Trainer, Update, adamw_one_cycle

MOUTH_SIZE = (32, 64)  # the lower half of a face crop, resized to this (rows, columns)


def mouth_region(frames: torch.Tensor) -> torch.Tensor:
    """Face crops (..., 3, H, W) in [0, 1] -> their lower half (..., 3, 32, 64), where the mouth is."""
    lead = frames.shape[:-3]
    h = frames.shape[-2]
    x = frames[..., h // 2:, :].reshape(-1, 3, h - h // 2, frames.shape[-1])
    if tuple(x.shape[-2:]) != MOUTH_SIZE:
        x = F.interpolate(x, size=MOUTH_SIZE, mode="bilinear", antialias=True, align_corners=False)
    return x.reshape(*lead, 3, *MOUTH_SIZE)


def _conv(cin, cout, stride):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SyncExpert(nn.Module):
    """Mouth windows (B, W, 3, h, w) and mel windows (B, mW, n_mels) -> unit embeddings (B, D), (B, D).

    W = ``window`` video frames (5: 0.2 s), m = ``mel_per_frame``. Video: the W frames' colour
    channels stacked (3W channels) through a small 2-D CNN. Audio: the mel window as a
    one-channel picture (time x frequency) through another.
    """

    kind = "sync_expert"

    def __init__(self, n_mels: int = FeatureConfig.n_mels, width: int = SyncConfig.width,
                 embedding_dim: int = SyncConfig.embedding_dim, window: int = SyncConfig.window,
                 mel_per_frame: int = MEL_PER_FRAME):
        super().__init__()
        self.config = dict(n_mels=n_mels, width=width, embedding_dim=embedding_dim, window=window,
                           mel_per_frame=mel_per_frame)
        self.window, self.mel_per_frame = window, mel_per_frame
        w = width
        # video 32 x 64 -> 16 x 32 -> 8 x 16 -> 4 x 8 -> 2 x 4; audio 20 x 80 -> 20 x 40 -> 10 x 20 -> 5 x 10 -> 3 x 5
        self.video = nn.Sequential(_conv(3 * window, w, 2), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2),
                                   _conv(4 * w, 8 * w, 2), nn.AdaptiveAvgPool2d((1, 2)),
                                   nn.Flatten(), nn.Linear(16 * w, embedding_dim))
        self.audio = nn.Sequential(_conv(1, w, (1, 2)), _conv(w, 2 * w, 2), _conv(2 * w, 4 * w, 2),
                                   _conv(4 * w, 8 * w, 2), nn.AdaptiveAvgPool2d((1, 2)),
                                   nn.Flatten(), nn.Linear(16 * w, embedding_dim))

    def embed_video(self, mouths: torch.Tensor) -> torch.Tensor:
        """(B, W, 3, h, w) in [0, 1] -> (B, D) unit vectors (float32, also under mixed precision)."""
        b = mouths.shape[0]
        return F.normalize(self.video(standardize_frames(mouths.reshape(b, -1, *mouths.shape[-2:]))).float(), dim=-1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, mW, n_mels), normalised log-mels -> (B, D) unit vectors (float32, also under mixed precision)."""
        return F.normalize(self.audio(mel[:, None]).float(), dim=-1)

    def forward(self, mouths: torch.Tensor, mel: torch.Tensor):
        return self.embed_video(mouths), self.embed_audio(mel)


def contrastive_loss(v: torch.Tensor, a: torch.Tensor, scale: float = 10.0) -> torch.Tensor:
    """Contrastive loss over candidate sounds: ``v`` (B, D), ``a`` (B, K, D) with ``a[:, 0]`` in sync.

    L = -log softmax_k(scale * cos(v, a_k))[0]: the in-sync sound must be the most similar of the
    K candidates (the others are the same clip shifted in time, the hardest negatives there are).
    """
    logits = scale * torch.einsum("bd,bkd->bk", v, a)
    return F.cross_entropy(logits, torch.zeros(len(v), dtype=torch.long, device=v.device))


# ----------------------------------------------------------------------------------- windows
class ClipWindows:
    """Every ``window``-frame window of some clips of a cache, with the mel frames under each."""

    def __init__(self, cache, index: pd.DataFrame, window: int):
        self.cache, self.window, self.m = cache, window, cache.mel_per_frame
        self.index = index.reset_index(drop=True)
        self.index = self.index[self.index.n_frames >= window + 2].reset_index(drop=True)
        if self.index.empty:
            raise ValueError(f"no clip of at least {window + 2} frames to make sync windows from")

    def clip(self, i: int):
        """All windows of clip ``i``: mouths (N, W, 3, 32, 64) and normalised mels (N, mW, n_mels)."""
        r = self.index.iloc[i]
        frames = np.array(self.cache.frames[r.frame_start:r.frame_start + r.n_frames])
        mel = self.cache.normalize(self.cache.mel[r.mel_start:r.mel_start + self.m * r.n_frames])
        return clip_windows(frames, mel, self.m, self.window)


def clip_windows(frames, mel, mel_per_frame: int, window: int):
    """Every ``window``-frame window of one video: face frames (T, R, R, 3) uint8 (or (T, 3, R, R) in
    [0, 1]) and their normalised log-mels (mT, n_mels), m = ``mel_per_frame`` -> mouths (N, W, 3, 32, 64),
    mels (N, mW, n_mels)."""
    x = frames if isinstance(frames, torch.Tensor) else torch.from_numpy(np.array(frames))
    if x.dtype == torch.uint8:
        x = x.permute(0, 3, 1, 2).float() / 255
    n = len(x) - window + 1
    if n < 1:
        raise ValueError(f"a sync window needs {window} frames; the video has {len(x)}")
    x = mouth_region(x)
    m = mel_per_frame
    mouths = torch.stack([x[s:s + window] for s in range(n)])
    mels = torch.from_numpy(np.stack([np.asarray(mel[m * s:m * (s + window)], np.float32) for s in range(n)]))
    return mouths, mels


def _batch(windows: ClipWindows, rng, batch: int, negatives: int, max_offset: int, min_offset: int = 2):
    """Mouth windows, each with its in-sync sound first and ``negatives`` shifted sounds of the same clip."""
    mouths, mels = [], []
    cache, m, w = windows.cache, windows.m, windows.window
    for _ in range(batch):
        r = windows.index.iloc[int(rng.integers(len(windows.index)))]
        n = int(r.n_frames) - w + 1
        s = int(rng.integers(n))
        offs = [o for o in range(-max_offset, max_offset + 1) if abs(o) >= min_offset and 0 <= s + o < n]
        pick = [s] + [s + int(o) for o in rng.choice(offs, size=negatives, replace=len(offs) < negatives)]
        f = np.array(cache.frames[r.frame_start + s:r.frame_start + s + w])
        mouths.append(torch.from_numpy(f).permute(0, 3, 1, 2).float() / 255)
        mel = np.stack([np.asarray(cache.mel[r.mel_start + m * p:r.mel_start + m * (p + w)]) for p in pick])
        mels.append(torch.from_numpy(cache.normalize(mel)))
    return mouth_region(torch.stack(mouths)), torch.stack(mels)


def train_sync_expert(cache, index: pd.DataFrame, cfg: SyncConfig, seed: int = 0, progress: bool = True):
    """Train a ``SyncExpert`` on the clips of ``index`` (real clips of pools A and B). Returns ``(model, history)``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    dev = device()
    windows = ClipWindows(cache, index, cfg.window)
    model = SyncExpert(cache.mel.shape[1], cfg.width, cfg.embedding_dim, cfg.window, cache.mel_per_frame).to(dev)
    optimizer, scheduler = adamw_one_cycle(model.parameters(), cfg.lr, cfg.weight_decay, cfg.steps, warmup=0.1)

    def sample():
        return _batch(windows, rng, cfg.batch_size, cfg.negatives, cfg.max_offset)

    def loss(batch):
        mouths, mels = batch
        b, k = mels.shape[:2]
        v = model.embed_video(mouths.to(dev))
        a = model.embed_audio(mels.to(dev).reshape(b * k, *mels.shape[2:])).reshape(b, k, -1)
        with torch.no_grad():
            acc = (torch.einsum("bd,bkd->bk", v, a).argmax(1) == 0).float().mean()
        return contrastive_loss(v, a, cfg.scale), dict(acc=acc)

    model.train()
    history = Trainer(sample, [Update(optimizer, loss, scheduler)], "sync expert", progress).run(cfg.steps)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, history


# ----------------------------------------------------------------------------------- judging
@torch.no_grad()
def embed_clip(expert: SyncExpert, mouths: torch.Tensor, mels: torch.Tensor, batch: int = 256):
    """All windows of one clip -> (video embeddings (N, D), audio embeddings (N, D)) on the CPU."""
    dev = next(expert.parameters()).device
    v = torch.cat([expert.embed_video(mouths[k:k + batch].to(dev)).cpu() for k in range(0, len(mouths), batch)])
    a = torch.cat([expert.embed_audio(mels[k:k + batch].to(dev)).cpu() for k in range(0, len(mels), batch)])
    return v, a


def offset_profile(v: torch.Tensor, a: torch.Tensor, max_offset: int = SyncConfig.max_offset) -> dict:
    """Mean distance d(o) between video window t and audio window t + o, for o in [-max_offset, max_offset].

    Only pairs inside the clip count. Returns ``offsets``, ``dists``, ``offset`` (argmin),
    ``lse_d`` = min d and ``lse_c`` = median d - min d (Wav2Lip's LSE-D and LSE-C).
    """
    v, a = torch.as_tensor(v, dtype=torch.float32), torch.as_tensor(a, dtype=torch.float32)
    n = len(v)
    offsets = [o for o in range(-max_offset, max_offset + 1) if n - abs(o) >= 1]
    dists = np.array([float((v[max(0, -o):n - max(0, o)] - a[max(0, o):n - max(0, -o)]).norm(dim=1).mean())
                      for o in offsets])
    k = int(dists.argmin())
    return dict(offsets=np.array(offsets), dists=dists, offset=int(offsets[k]), lse_d=float(dists[k]),
                lse_c=float(np.median(dists) - dists[k]))


def sync_scores(expert: SyncExpert, frames, mel, max_offset: int = SyncConfig.max_offset) -> dict:
    """LSE-D, LSE-C and the best offset of one video with its sound (see ``offset_profile``)."""
    windows = clip_windows(frames, mel, expert.mel_per_frame, expert.window)
    return offset_profile(*embed_clip(expert, *windows), max_offset)


def evaluate_sync(expert: SyncExpert, cache, index: pd.DataFrame, max_offset: int = SyncConfig.max_offset,
                  shift_min: int = 3,
                  seed: int = 0, progress: bool = True) -> dict:
    """How well the expert judges real clips of ``index``.

    ``pair_accuracy``: for every window, is the in-sync sound closer than the sound shifted by a
    random 3-15 frames? (chance 0.5). ``offset_zero``: fraction of clips whose best offset is 0;
    ``offset_within_1``: within one frame. Also the mean LSE-D / LSE-C of the real clips.
    """
    rng = np.random.default_rng(seed)
    windows = ClipWindows(cache, index, expert.window)
    hits, total, offs, lse_d, lse_c = 0, 0, [], [], []
    for i in progress_bar(range(len(windows.index)), progress, desc="sync check", unit="clip"):
        v, a = embed_clip(expert, *windows.clip(i))
        n = len(v)
        shift = rng.integers(shift_min, max_offset + 1, size=n) * rng.choice([-1, 1], size=n)
        ok = (np.arange(n) + shift >= 0) & (np.arange(n) + shift < n)
        t = np.flatnonzero(ok)
        pos = (v[t] - a[t]).norm(dim=1)
        neg = (v[t] - a[t + shift[t]]).norm(dim=1)
        hits += int((pos < neg).sum())
        total += len(t)
        prof = offset_profile(v, a, max_offset)
        offs.append(prof["offset"])
        lse_d.append(prof["lse_d"])
        lse_c.append(prof["lse_c"])
    offs = np.array(offs)
    return dict(pair_accuracy=hits / max(total, 1), pair_chance=0.5, offset_zero=float((offs == 0).mean()),
                offset_within_1=float((np.abs(offs) <= 1).mean()), lse_d=float(np.mean(lse_d)),
                lse_c=float(np.mean(lse_c)), clips=len(offs), offsets=offs)


# ----------------------------------------------------------------------------------- checkpoint
def load_sync_expert(path) -> SyncExpert:
    """A frozen ``SyncExpert`` saved by ``get_sync_expert`` (``torch.load(weights_only=True)``)."""
    model = load_model(path, "sync_expert", {"sync_expert": SyncExpert}, map_location=device(),
                       hint="train it with s2v_lib.gan.sync.get_sync_expert (notebook 04)")
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def get_sync_expert(cache, run, cfg: SyncConfig, seed: int = 0, retrain: bool = False, progress: bool = True):
    """The run's sync expert: ``<run>/checkpoints/sync_expert.pt`` if trained on the same data and
    settings, else trained now on the training clips of pools A and B and saved. Returns ``(expert, history)``."""
    from ..machinery.runs import trained_model

    path = Path(run) / "checkpoints" / "sync_expert.pt"
    idx = cache.index
    index = idx[idx.pool.isin(["A", "B"]) & idx.split.eq("train")]

    key = dict(cache=cache.info.get("fingerprint"), config=dataclasses.asdict(cfg), seed=seed)
    return trained_model(path, key, lambda: train_sync_expert(cache, index, cfg, seed, progress),
                         lambda: load_sync_expert(path), f"pools A and B, split train: {len(index)} clips", retrain)
