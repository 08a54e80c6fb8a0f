"""A face-landmark regressor: the judge behind LMD, blinks and head motion (notebook 05).

No pretrained landmark detector can be downloaded here, so one is trained on SynthTalk's
ground truth: the 68 points (iBUG order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
mouth 48-67) of every frame of pool A's training clips, in the coordinates of the face crop.
A small CNN (the teachers' ``FaceEncoder`` and a linear layer) regresses them as fractions of
the crop side; a little pixel noise while training prepares it for generated frames. It is
scored on real frames of held-out clips before it may judge generated ones, and LMD compares
its landmarks on generated frames with its landmarks on the real frames of the same moment,
so that its own bias cancels.

From landmarks come three per-clip measures:

* ``eye_openness``: the eye aspect ratio (EAR, Soukupova & Cech 2016), eye height over width;
* ``count_blinks``: closures, frames where the EAR drops below a fraction of the clip's open-eye
  level (its 90th percentile), counted once per closure;
* ``head_motion``: the mean squared frame-to-frame displacement of the rigid points (nose, eye
  corners, jaw tops), lightly smoothed over time, in pixels squared per frame.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from ..config import CorpusConfig, LandmarkConfig, device
from ..machinery.runs import load_model
from ..trainer import Trainer, Update, adamw_one_cycle
from ..teachers import FaceEncoder, as_batch, module_device

N_POINTS = 68
MOUTH = np.arange(48, 68)
FACE = np.arange(68)
LEFT_EYE, RIGHT_EYE = np.arange(36, 42), np.arange(42, 48)
#: points that move with the head, not with speech or expression
RIGID = np.r_[np.arange(27, 36), [36, 39, 42, 45, 0, 16]]


class LandmarkRegressor(nn.Module):
    """Face crops (B, 3, H, W) in [0, 1] -> landmarks (B, 68, 2) as fractions of the crop side (x, y)."""

    kind = "landmark_regressor"

    def __init__(self, input_size: int = CorpusConfig.resolution, width: int = LandmarkConfig.width):
        super().__init__()
        self.config = dict(input_size=input_size, width=width)
        self.encoder = FaceEncoder(input_size, width, out_dim=256, dropout=0.0)
        self.head = nn.Linear(256, 2 * N_POINTS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (0.5 + self.head(self.encoder(x))).view(-1, N_POINTS, 2)


@torch.no_grad()
def find_landmarks(model: LandmarkRegressor, frames, batch: int = 512) -> np.ndarray:
    """uint8 (N, H, W, 3) frames (or float (N, 3, H, W) in [0, 1]) -> (N, 68, 2) landmarks in pixels."""
    model.eval()
    dev = module_device(model)
    side = frames.shape[2] if isinstance(frames, np.ndarray) else frames.shape[-1]
    out = [model(as_batch(frames[k:k + batch], dev)).float().cpu().numpy() for k in range(0, len(frames), batch)]
    return np.concatenate(out) * side if out else np.zeros((0, N_POINTS, 2), np.float32)


def crop_landmarks(gt: dict | None, resolution: int, clip: str = "the clip") -> np.ndarray:
    """A clip's ground-truth landmarks (``Corpus.ground_truth``) in the pixels of its ``resolution`` px
    face crop: (T, 68, 2)."""
    if gt is None or "landmarks" not in gt:
        raise ValueError(f"{clip} has no ground-truth landmarks (only SynthTalk corpora have them)")
    if "box" not in gt:
        raise ValueError(f"{clip} has landmarks but no crop box to place them in the face crop")
    box = np.asarray(gt["box"], np.float32)  # x0, y0, x1, y1 in the video's pixels (one box, or one per frame)
    box = box[:, None] if box.ndim == 2 else box
    return ((gt["landmarks"] - box[..., :2]) * resolution / (box[..., 2:] - box[..., :2])).astype(np.float32)


def available(cache) -> bool:
    """Whether the cache's corpus has ground-truth landmarks to train the regressor on (SynthTalk: yes;
    an ingested real corpus: no)."""
    idx = cache.index
    if "gt" not in idx or idx["gt"].isna().any():
        return False
    gt = cache.corpus().ground_truth(idx["clip"].iloc[0])
    return gt is not None and "landmarks" in gt and "box" in gt


def _table(cache, index: pd.DataFrame):
    rows = np.concatenate([np.arange(r.frame_start, r.frame_start + r.n_frames) for r in index.itertuples()])
    corpus = cache.corpus()
    marks = np.concatenate([crop_landmarks(corpus.ground_truth(c), cache.resolution, c)[:n]
                            for c, n in zip(index["clip"], index.n_frames)])
    return rows.astype(np.int64), marks / cache.resolution


def train_landmark_regressor(cache, index: pd.DataFrame, cfg: LandmarkConfig, seed: int = 0,
                             progress: bool = True):
    """Fit a ``LandmarkRegressor`` on every frame of the clips of ``index``. Returns ``(model, history)``."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    rows, marks = _table(cache, index)
    # blinks are rare (a few frames in a hundred): a quarter of each batch is drawn from frames
    # with the eyes half shut or more, and eye points weigh more, or the regressor never learns to shut them
    ear = eye_openness(marks)
    shut = np.flatnonzero(ear < 0.6 * np.percentile(ear, 90))
    n_shut = cfg.batch_size // 4 if len(shut) else 0
    weight = torch.ones(N_POINTS, 1)
    weight[np.r_[LEFT_EYE, RIGHT_EYE]] = 4.0
    dev = device()
    weight = weight.to(dev)
    model = LandmarkRegressor(cache.resolution, cfg.width).to(dev)
    optimizer, scheduler = adamw_one_cycle(model.parameters(), cfg.lr, cfg.weight_decay, cfg.steps)

    def sample():
        pick = np.sort(np.r_[rng.integers(len(rows), size=cfg.batch_size - n_shut),
                             rng.choice(shut, size=n_shut) if n_shut else []].astype(np.int64))
        x = as_batch(cache.frames[rows[pick]])
        x = (x + cfg.noise * torch.randn(x.shape, generator=gen)).clamp(0, 1).to(dev)
        return x, torch.from_numpy(marks[pick]).float().to(dev)

    def loss(batch):
        x, y = batch
        return (nn.functional.smooth_l1_loss(model(x), y, beta=0.01, reduction="none") * weight).mean(), {}

    model.train()
    history = Trainer(sample, [Update(optimizer, loss, scheduler)], "landmarks", progress).run(cfg.steps)
    return model.eval(), history


def evaluate_landmarks(model: LandmarkRegressor, cache, index: pd.DataFrame) -> dict:
    """The regressor's own error on real frames of ``index``, against the ground truth.

    ``error_px``: mean point-to-point distance in crop pixels (``mouth_error_px`` on the mouth);
    ``nme``: the same divided by the inter-ocular distance (outer eye corners), the usual
    normalised mean error; ``mean_shape_error_px``: the error of always answering the mean
    shape of these frames (what a regressor that learned nothing would score). Also the blink
    detector against the true blinks: ``blinks_true`` and ``blinks_found`` per second, and head
    motion from the true and from the found landmarks (``head_motion_true``, ``head_motion_found``:
    the difference is what the regressor's jitter adds).
    """
    err, mouth, iod, base, true_b, found_b, seconds = [], [], [], [], 0, 0, 0.0
    head_true, head_found = [], []
    fps, corpus = cache.info["fps"], cache.corpus()
    for r in index.itertuples():
        gt = corpus.ground_truth(r.clip)
        truth = crop_landmarks(gt, cache.resolution, r.clip)[:r.n_frames]
        pred = find_landmarks(model, np.asarray(cache.frames[r.frame_start:r.frame_start + r.n_frames]))
        d = np.linalg.norm(pred - truth, axis=-1)
        err.append(d.mean(1))
        mouth.append(d[:, MOUTH].mean(1))
        iod.append(np.linalg.norm(truth[:, 36] - truth[:, 45], axis=-1))
        base.append(truth)
        true_b += _onsets(gt["blink"][:r.n_frames] > 0.5)
        found_b += count_blinks(eye_openness(pred))
        head_true.append(head_motion(truth))
        head_found.append(head_motion(pred))
        seconds += r.n_frames / fps
    err, mouth, iod, base = map(np.concatenate, (err, mouth, iod, base))
    base = np.linalg.norm(base - base.mean(0), axis=-1).mean(1)
    return dict(error_px=float(err.mean()), mouth_error_px=float(mouth.mean()), nme=float((err / iod).mean()),
                mean_shape_error_px=float(base.mean()), frames=len(err), blinks_true=true_b / seconds,
                blinks_found=found_b / seconds, head_motion_true=float(np.mean(head_true)),
                head_motion_found=float(np.mean(head_found)))


# ----------------------------------------------------------------------------------- measures
def eye_openness(landmarks: np.ndarray) -> np.ndarray:
    """Eye aspect ratio per frame, both eyes averaged: (|p2-p6| + |p3-p5|) / (2 |p1-p4|)."""
    lm = np.asarray(landmarks, np.float64)
    ear = []
    for eye in (LEFT_EYE, RIGHT_EYE):
        p = lm[:, eye]
        h = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
        ear.append(h / (2 * np.linalg.norm(p[:, 0] - p[:, 3], axis=-1) + 1e-9))
    return np.mean(ear, 0)


def _onsets(closed: np.ndarray) -> int:
    closed = np.asarray(closed, bool)
    return int(closed[0]) + int((closed[1:] & ~closed[:-1]).sum()) if len(closed) else 0


def count_blinks(ear: np.ndarray, ratio: float = 0.6) -> int:
    """Closures in an eye-openness track: runs of frames below ``ratio`` x the clip's open level.

    The open level is the 90th percentile of the track, so a clip whose eyes never move (a
    still picture) has no closures whatever its eye size.
    """
    ear = np.asarray(ear, np.float64)
    if len(ear) == 0:
        return 0
    return _onsets(ear < ratio * np.percentile(ear, 90))


def head_motion(landmarks: np.ndarray, smooth: int = 3) -> float:
    """Mean squared frame-to-frame displacement (px^2 per frame) of the centroid of the rigid points,
    after a ``smooth``-frame moving average: a regressor's frame-to-frame jitter on a still face is
    damped, a head's motion (slow, over seconds) is not."""
    c = np.asarray(landmarks, np.float64)[:, RIGID].mean(1)
    if smooth > 1 and len(c) >= smooth:
        kernel = np.ones(smooth) / smooth
        c = np.stack([np.convolve(c[:, i], kernel, mode="valid") for i in range(2)], 1)
    if len(c) < 2:
        return 0.0
    return float((np.diff(c, axis=0) ** 2).sum(1).mean())


def aligned(fake: np.ndarray, real: np.ndarray, points) -> tuple:
    """Both landmark tracks with the centroid of ``points`` moved to the origin in every frame, so a
    distance between them measures shape (how a mouth opens), not where the head is."""
    f, r = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    return f - f[:, points].mean(1, keepdims=True), r - r[:, points].mean(1, keepdims=True)


def fit_to_judge(check: dict, max_error_ratio: float = 0.75, blink_tolerance: float = 0.5) -> tuple:
    """Whether a regressor's scores on real frames (``evaluate_landmarks``) let it judge generated ones:
    its error well below the mean-face answer's, and the blink rate it finds within ``blink_tolerance``
    (relative) of the true rate. Returns ``(fit, reason in words)``."""
    ratio = check["error_px"] / max(check["mean_shape_error_px"], 1e-9)
    if ratio > max_error_ratio:
        return False, (f"its error is {ratio:.0%} of always answering the mean face (at most {max_error_ratio:.0%} "
                       f"needed): train it longer (cfg.landmarks.steps)")
    true, found = check["blinks_true"], check["blinks_found"]
    if true > 0 and abs(found - true) > blink_tolerance * true:
        return False, f"it finds {found:.2f} blinks per second where there are {true:.2f}"
    return True, f"error {ratio:.0%} of the mean face's, {found:.2f} blinks/s found against {true:.2f}/s true"


# ----------------------------------------------------------------------------------- checkpoint
def load_landmark_regressor(path) -> LandmarkRegressor:
    return load_model(path, "landmark_regressor", {"landmark_regressor": LandmarkRegressor}, map_location=device(),
                      hint="train it with s2v_lib.evaluation.landmarks.get_landmark_regressor (notebook 05)")


def get_landmark_regressor(cache, run, cfg: LandmarkConfig, seed: int = 0, retrain: bool = False,
                           progress: bool = True):
    """The run's regressor: ``<run>/checkpoints/landmark_regressor.pt`` if trained on the same data and
    settings, else trained now on pool A's training clips and saved. Returns ``(model, history)``."""
    import dataclasses

    from ..data import split_index
    from ..machinery.runs import trained_model

    path = Path(run) / "checkpoints" / "landmark_regressor.pt"
    index = split_index(cache.index, "A", "train")
    if index.empty:
        raise ValueError("the corpus has no training clips in pool A for the landmark regressor")

    key = dict(cache=cache.info.get("fingerprint"), config=dataclasses.asdict(cfg), seed=seed)
    return trained_model(path, key, lambda: train_landmark_regressor(cache, index, cfg, seed, progress),
                         lambda: load_landmark_regressor(path), f"pool A train: {len(index)} clips", retrain)
