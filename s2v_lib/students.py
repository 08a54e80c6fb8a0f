"""Audio students: networks that hear speech and predict what the visual teachers see.

They see only log-mel spectrograms, never frames and never labels (docs/method.md):

* ``EmotionStudent``: mel (B, mT, n_mels) -> per-frame emotion logits (B, T, 6) and an
  utterance emotion embedding (B, De); trained by knowledge distillation (``kd_loss``) to the
  emotion teacher's soft distributions over the paired frames.
* ``IdentityStudent``: mel (B, mT, n_mels) -> a face embedding (B, Di); trained to regress the
  clip's identity-teacher embedding (``identity_loss``: cosine plus a small L2, as Speech2Face).

Disentanglement: optional adversaries behind gradient reversal (``grad_reverse``) try to read
the teacher's identity from the emotion embedding and the teacher's emotion from the identity
embedding; the students learn to defeat them. The adversaries' targets are teacher outputs
too, so no label is used. ``targets="labels"`` trains the same students on the ground truth
instead (cross-entropy on the true emotion; the speaker's mean face embedding), as the
supervised upper bound.

``StudentConfig.voice_front_end = "ge2e"`` swaps the identity student of notebooks 04-06 for a
pretrained one: Resemblyzer's GE2E speaker encoder on the samples, mapped to the face embedding by a
small MLP fitted on the same targets (``pretrained.voice_identity``); ``get_students`` fits it too and
records the choice in the run (``use_voice_front_end``, read by ``run_voice_front_end``).
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import EMOTIONS, MEL_PER_FRAME, FeatureConfig, StudentConfig, TeacherConfig, device
from .machinery.runs import load_model, save_model
from .trainer import Trainer, Update, adamw_one_cycle


# ----------------------------------------------------------------------------------- networks
class _Residual(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation, bias=False),
                                  nn.BatchNorm1d(width), nn.ReLU(inplace=True),
                                  nn.Conv1d(width, width, 3, padding=1, bias=False), nn.BatchNorm1d(width))

    def forward(self, x):
        return F.relu(x + self.body(x))


class AudioEncoder(nn.Module):
    """Log-mel (B, mT, n_mels) -> per-video-frame features (B, T, C), m = ``mel_per_frame``.

    A 1-D CNN over time: one conv over the mel bands, log2(m) stride-2 convs (100 -> 25 frames
    per second at m = 4, so feature t sits under video frame t) and dilated residual blocks whose
    receptive field spans about 1.2 s (prosody lives at that scale).
    """

    def __init__(self, n_mels: int, width: int, mel_per_frame: int):
        super().__init__()
        self.mel_per_frame = mel_per_frame
        stem = [nn.Conv1d(n_mels, width, 5, padding=2, bias=False), nn.BatchNorm1d(width), nn.ReLU(inplace=True)]
        for _ in range(int(math.log2(mel_per_frame))):  # halve time: mel frame rate -> video frame rate
            stem += [nn.Conv1d(width, width, 4, stride=2, padding=1, bias=False), nn.BatchNorm1d(width),
                     nn.ReLU(inplace=True)]
        self.stem = nn.Sequential(*stem)
        self.blocks = nn.Sequential(*[_Residual(width, d) for d in (1, 2, 4, 8)])

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.ndim != 3 or mel.shape[1] % self.mel_per_frame:
            raise ValueError(f"expected log-mels shaped (B, {self.mel_per_frame}T, n_mels), got {tuple(mel.shape)}")
        return self.blocks(self.stem(mel.transpose(1, 2))).transpose(1, 2)


def stats_pool(h: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, 2C): mean and standard deviation over time (x-vector style)."""
    return torch.cat([h.mean(1), h.std(1, unbiased=False)], -1)


class EmotionStudent(nn.Module):
    """Log-mel (B, mT, n_mels) -> ``dict(logits (B, T, 6), embedding (B, De))``.

    The embedding summarises the utterance; each frame's logits read the frame's features
    together with it, so a frame is judged in the context of the whole utterance.
    """

    kind = "emotion_student"

    def __init__(self, n_mels: int = FeatureConfig.n_mels, width: int = StudentConfig.width,
                 embedding_dim: int = StudentConfig.emotion_embedding_dim, n_emotions: int = len(EMOTIONS),
                 dropout: float = StudentConfig.dropout, mel_per_frame: int = MEL_PER_FRAME):
        super().__init__()
        self.config = dict(n_mels=n_mels, width=width, embedding_dim=embedding_dim, n_emotions=n_emotions,
                           dropout=dropout, mel_per_frame=mel_per_frame)
        self.encoder = AudioEncoder(n_mels, width, mel_per_frame)
        self.embed = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * width, embedding_dim), nn.LayerNorm(embedding_dim))
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(width + embedding_dim, width), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(width, n_emotions))

    def forward(self, mel: torch.Tensor) -> dict:
        h = self.encoder(mel)
        e = self.embed(stats_pool(h))
        logits = self.head(torch.cat([h, e[:, None].expand(-1, h.shape[1], -1)], -1))
        return dict(logits=logits, embedding=e)


class IdentityStudent(nn.Module):
    """Log-mel (B, mT, n_mels) -> predicted face embedding (B, Di) (compare by direction: cosine)."""

    kind = "identity_student"

    def __init__(self, n_mels: int = FeatureConfig.n_mels, width: int = StudentConfig.width,
                 embedding_dim: int = TeacherConfig.identity_embedding_dim, mel_per_frame: int = MEL_PER_FRAME):
        super().__init__()
        self.config = dict(n_mels=n_mels, width=width, embedding_dim=embedding_dim, mel_per_frame=mel_per_frame)
        self.encoder = AudioEncoder(n_mels, width, mel_per_frame)
        self.head = nn.Sequential(nn.Linear(2 * width, 2 * width), nn.ReLU(inplace=True),
                                  nn.Linear(2 * width, embedding_dim))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.head(stats_pool(self.encoder(mel)))


# ----------------------------------------------------------------------------------- losses
def kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """Knowledge distillation (Hinton et al. 2015):  T^2 * KL(p_T || q_T)  averaged over frames.

    p_T is the teacher's distribution at temperature T (given), q_T = softmax(z / T) the
    student's. KL(p || q) = sum_k p_k (log p_k - log q_k) is zero exactly when q = p; the T^2
    keeps gradients of the same size whatever T is.
    """
    logq = F.log_softmax(student_logits / temperature, -1)
    p = teacher_probs
    kl = (p * (torch.log(p.clamp_min(1e-12)) - logq)).sum(-1)
    return kl.mean() * temperature ** 2


def identity_loss(pred: torch.Tensor, target: torch.Tensor, l2: float = 0.5) -> torch.Tensor:
    """(1 - cos(pred, target)) + l2 * ||pred - target||^2, averaged over the batch (targets are unit vectors)."""
    return (1 - F.cosine_similarity(pred, target, dim=-1)).mean() + l2 * ((pred - target) ** 2).sum(-1).mean()


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        ctx.weight = weight
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.weight * grad, None


def grad_reverse(x: torch.Tensor, weight: float = 1.0) -> torch.Tensor:
    """Identity going forward; multiplies the gradient by -weight going back (Ganin & Lempitsky 2015).

    An adversary trained through it learns to read x, while whatever produced x learns to
    make x unreadable to it.
    """
    return _GradReverse.apply(x, weight)


# ----------------------------------------------------------------------------------- data
@dataclasses.dataclass
class Utterances:
    """Every clip of some pools as the students see it (normalised log-mels) with its targets.

    ``mel[i]`` (mT_i, n_mels), m = ``mel_per_frame``; ``soft[i]`` (T_i, 6) teacher distributions at T;
    ``face[i]`` (Di,) the clip's teacher identity embedding; ``meta`` the clips' rows (speaker,
    emotion, pool, split...): labels there are used only to score, or by ``targets="labels"``.
    """

    meta: pd.DataFrame
    mel: list
    soft: list
    face: np.ndarray

    @classmethod
    def load(cls, cache, features, pools=("B",), splits=None, temperature: float | None = None) -> "Utterances":
        """The clips of ``pools`` (and ``splits``); soft targets at ``temperature`` (default: the features' T)."""
        if features.info["fingerprint"].get("cache") != cache.info.get("fingerprint"):
            raise ValueError("the teacher features were extracted from another feature cache: re-run notebook 02")
        idx = features.index
        sel = idx.pool.isin(list(pools)) & (idx.split.isin(list(splits)) if splits is not None else True)
        meta = idx[sel].reset_index(drop=True)
        if meta.empty:
            raise ValueError(f"no clips in pools {list(pools)} / splits {splits} of the teacher features")
        mel = [cache.normalize(cache.clip_mel(c)) for c in meta["clip"]]
        soft = [features.soft_targets(c, temperature) for c in meta["clip"]]
        bad = [c for c, m, p in zip(meta["clip"], mel, soft) if len(m) != cache.mel_per_frame * len(p)]
        if bad:
            raise ValueError(f"mel frames and teacher frames disagree for {bad[:3]}: re-run notebooks 01 and 02")
        face = features.clip_identity[idx.index[sel]]
        return cls(meta, mel, soft, face)

    def __len__(self) -> int:
        return len(self.meta)

    def subset(self, mask) -> "Utterances":
        mask = np.asarray(mask, bool)
        k = np.flatnonzero(mask)
        return Utterances(self.meta[mask].reset_index(drop=True), [self.mel[i] for i in k],
                          [self.soft[i] for i in k], self.face[k])

    @property
    def mel_per_frame(self) -> int:
        """Mel frames per video frame, as the utterances hold them."""
        return len(self.mel[0]) // len(self.soft[0])

    @property
    def emotion_ids(self) -> np.ndarray:
        return np.array([EMOTIONS.index(e) for e in self.meta.emotion])


def _crop_batch(utts: Utterances, pick, frames: int, rng):
    """Random aligned crops: mel (B, mF, n_mels), teacher probs (B, F, 6), with F <= every picked clip."""
    f = min([frames] + [len(utts.soft[i]) for i in pick])
    mel, soft, mel_per_frame = [], [], utts.mel_per_frame
    for i in pick:
        s = int(rng.integers(len(utts.soft[i]) - f + 1))
        mel.append(utts.mel[i][mel_per_frame * s:mel_per_frame * (s + f)])
        soft.append(utts.soft[i][s:s + f])
    return torch.from_numpy(np.stack(mel)), torch.from_numpy(np.stack(soft))


def _spec_augment(mel: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One band mask (up to 8 mel bands) and one time mask (up to 0.1 s) per example, plus a level shift."""
    b, t, m = mel.shape
    mel = mel.clone()
    for k in range(b):
        f0 = int(torch.randint(0, m - 8, (1,), generator=gen))
        mel[k, :, f0:f0 + int(torch.randint(0, 9, (1,), generator=gen))] = 0
        t0 = int(torch.randint(0, max(t - 10, 1), (1,), generator=gen))
        mel[k, t0:t0 + int(torch.randint(0, 11, (1,), generator=gen))] = 0
    return mel + 0.2 * (torch.rand(b, 1, 1, generator=gen) * 2 - 1)


# ----------------------------------------------------------------------------------- training
def train_students(utts: Utterances, cfg: StudentConfig, targets: str = "teacher", seed: int = 0,
                   progress: bool = True, desc: str = "students", emotion_loss=kd_loss, identity_loss=identity_loss):
    """Train an ``EmotionStudent`` and an ``IdentityStudent`` together on ``utts``.

    ``targets="teacher"``: emotion by ``emotion_loss(student_logits, teacher_probs, cfg.temperature)``
    (``kd_loss``, or one of your own) to the teacher's per-frame distributions, identity by
    ``identity_loss(pred, target, cfg.identity_l2)`` (``identity_loss``, or your own) to the clip's
    teacher face embedding; with
    ``cfg.adversary_weight > 0`` two adversaries behind ``grad_reverse`` push emotion out of the
    identity embedding and identity out of the emotion embedding. ``targets="labels"``: the
    supervised upper bound (cross-entropy on the true emotion; the speaker's mean teacher face
    embedding as the identity target).
    Returns ``(emotion_student, identity_student, history)``.
    """
    if targets not in ("teacher", "labels"):
        raise ValueError(f"targets must be 'teacher' or 'labels', got {targets!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    n_mels = utts.mel[0].shape[1]
    dev = device()
    m = utts.mel_per_frame
    emo = EmotionStudent(n_mels, cfg.width, cfg.emotion_embedding_dim, dropout=cfg.dropout, mel_per_frame=m).to(dev)
    ident = IdentityStudent(n_mels, cfg.width, utts.face.shape[1], mel_per_frame=m).to(dev)
    adv_id = nn.Sequential(nn.Linear(cfg.emotion_embedding_dim, 128), nn.ReLU(),
                           nn.Linear(128, utts.face.shape[1])).to(dev)
    adv_emo = nn.Sequential(nn.Linear(utts.face.shape[1], 128), nn.ReLU(), nn.Linear(128, len(EMOTIONS))).to(dev)
    params = [*emo.parameters(), *ident.parameters()]
    use_adv = cfg.adversary_weight > 0 and targets == "teacher"
    if use_adv:
        params += [*adv_id.parameters(), *adv_emo.parameters()]
    optimizer, scheduler = adamw_one_cycle(params, cfg.lr, cfg.weight_decay, cfg.steps)
    face = torch.from_numpy(utts.face)
    if targets == "labels":  # the speaker's mean face embedding, from the speaker label
        spk = utts.meta.speaker.to_numpy()
        means = {s: F.normalize(face[spk == s].mean(0), dim=0) for s in np.unique(spk)}
        face = torch.stack([means[s] for s in spk])
    face, truth = face.to(dev), torch.from_numpy(utts.emotion_ids).to(dev)

    def sample():
        pick = rng.integers(len(utts), size=cfg.batch_size)
        mel, soft = _crop_batch(utts, pick, cfg.crop_frames, rng)
        return _spec_augment(mel, gen).to(dev), soft.to(dev), torch.from_numpy(pick).to(dev)

    def loss(batch):
        mel, soft, pick_t = batch
        out = emo(mel)
        pred_face = ident(mel)
        if targets == "teacher":
            l_emo = emotion_loss(out["logits"], soft, cfg.temperature)
        else:
            y = truth[pick_t][:, None].expand(-1, out["logits"].shape[1])
            l_emo = F.cross_entropy(out["logits"].reshape(-1, len(EMOTIONS)), y.reshape(-1))
        l_id = identity_loss(pred_face, face[pick_t], cfg.identity_l2)
        total = l_emo + l_id
        logs = dict(emotion_loss=l_emo, identity_loss=l_id)
        if use_adv:
            # adversary 1 reads the teacher's face embedding from the emotion embedding;
            # adversary 2 reads the teacher's clip emotion from the identity embedding
            guess_face = adv_id(grad_reverse(out["embedding"], cfg.adversary_weight))
            l_a1 = 1 - F.cosine_similarity(guess_face, face[pick_t], dim=-1).mean()
            guess_emo = adv_emo(grad_reverse(F.normalize(pred_face, dim=-1), cfg.adversary_weight))
            l_a2 = kd_loss(guess_emo, soft.mean(1), 1.0)
            total = total + l_a1 + l_a2
            logs.update(adversary_identity_loss=l_a1, adversary_emotion_loss=l_a2)
        return total, logs

    emo.train()
    ident.train()
    history = Trainer(sample, [Update(optimizer, loss, scheduler, name=None)], desc, progress).run(cfg.steps)
    emo.eval()
    ident.eval()
    return emo, ident, history


@torch.no_grad()
def predict_utterances(emotion_student: EmotionStudent, identity_student: IdentityStudent, mels) -> dict:
    """Each whole utterance through both students: ``mels`` is a list of normalised log-mels (mT, n_mels)
    (``Utterances.mel``).

    Returns ``probs`` (N, 6): the utterance's emotion distribution (mean of its frames' softmax),
    ``emotion_embedding`` (N, De), ``identity`` (N, Di) unit vectors.
    """
    emotion_student.eval()
    identity_student.eval()
    dev = next(emotion_student.parameters()).device
    dev_id = next(identity_student.parameters()).device
    probs, emb, ident = [], [], []
    for mel in mels:
        x = torch.from_numpy(mel[None]).to(dev)
        out = emotion_student(x)
        probs.append(torch.softmax(out["logits"][0], -1).mean(0))
        emb.append(out["embedding"][0])
        ident.append(F.normalize(identity_student(x.to(dev_id))[0], dim=0).to(dev))
    return dict(probs=torch.stack(probs).cpu().numpy(), emotion_embedding=torch.stack(emb).cpu().numpy(),
                identity=torch.stack(ident).cpu().numpy())


def evaluate_students(pred: dict, utts: Utterances, gallery_speakers, gallery) -> dict:
    """Emotion accuracy (with chance), agreement with the teacher, voice -> face retrieval top-1/top-5."""
    from .evaluation.metrics import retrieval_ranks, top_k, top_k_chance
    from .probes import chance_accuracy

    truth = utts.emotion_ids
    guess = pred["probs"].argmax(1)
    teacher = np.array([s.mean(0).argmax() for s in utts.soft])
    ranks = retrieval_ranks(pred["identity"], list(utts.meta.speaker), gallery, list(gallery_speakers))
    n = len(gallery_speakers)
    return dict(emotion_acc=float((guess == truth).mean()), emotion_chance=chance_accuracy(truth),
                teacher_agreement=float((guess == teacher).mean()),
                teacher_acc=float((teacher == truth).mean()),
                identity_top1=top_k(ranks, 1), identity_top1_chance=top_k_chance(n, 1),
                # top-5 says nothing when the gallery has 5 or fewer faces
                identity_top5=top_k(ranks, 5) if n > 5 else float("nan"),
                identity_top5_chance=top_k_chance(n, 5) if n > 5 else float("nan"),
                n_utterances=len(utts), n_speakers=n, ranks=ranks, predicted=guess)


def retrieval(query: np.ndarray, gallery_speakers, gallery: np.ndarray, k: int = 5) -> dict:
    """The ``k`` gallery identities most similar (cosine) to one query embedding: ``speakers``, ``scores``."""
    g = gallery / (np.linalg.norm(gallery, axis=1, keepdims=True) + 1e-12)
    sim = g @ (query / (np.linalg.norm(query) + 1e-12))
    top = np.argsort(-sim, kind="stable")[:k]
    return dict(speakers=[list(gallery_speakers)[i] for i in top], scores=[float(sim[i]) for i in top])


def disentanglement(pred_train: dict, train: Utterances, pred_test: dict, test: Utterances) -> dict:
    """Linear probes for what an embedding should *not* carry, fitted on ``train`` and scored on ``test``.

    ``emotion_from_identity``: the true emotion read from the identity embedding (should sit
    near chance); ``speaker_from_emotion``: the speaker read from the emotion embedding (same
    speakers in both sets, new sentences; should sit near chance). Each with its chance level.
    """
    from .probes import split_accuracy

    a = split_accuracy(pred_train["identity"], train.meta.emotion, pred_test["identity"], test.meta.emotion)
    b = split_accuracy(pred_train["emotion_embedding"], train.meta.speaker, pred_test["emotion_embedding"],
                       test.meta.speaker)
    return dict(probe_emotion_from_identity=a["accuracy"], probe_emotion_from_identity_chance=a["chance"],
                probe_speaker_from_emotion=b["accuracy"], probe_speaker_from_emotion_chance=b["chance"])


#: The ways notebook 03 trains the students: (targets, whether the adversaries are on).
VARIANTS = {"distilled": ("teacher", False), "adversarial": ("teacher", True), "supervised": ("labels", False)}


def get_students(variant: str, utts: Utterances, features, run, cfg: StudentConfig, seed: int = 0,
             retrain: bool = False, progress: bool = True):
    """The run's students of one variant (``VARIANTS``), loaded if present, else trained on ``utts`` and saved.

    ``distilled``: teacher targets only; ``adversarial``: plus the gradient-reversal adversaries
    (weight ``cfg.adversary_weight``, 1.0 if unset); ``supervised``: ground-truth labels (upper bound).
    Weights go to ``<run>/checkpoints/<variant>_{emotion,identity}_student.pt``.
    With teacher targets (``distilled``, ``adversarial``) it also makes ``cfg.voice_front_end`` the run's
    identity front-end (``use_voice_front_end``: for ``"ge2e"`` the voice -> face mapping is fitted on the
    same utterances, or loaded). ``voice_front_end`` is not part of the students' key: it does not change them.
    Returns ``(emotion_student, identity_student, history)``.
    """
    from .machinery.runs import trained

    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {list(VARIANTS)}")
    cfg.validate()
    targets, adversarial = VARIANTS[variant]
    if cfg.voice_front_end == "ge2e" and targets == "teacher":  # no package: say so before training anything
        from .pretrained import package_file

        package_file("resemblyzer", "pretrained.pt", "the GE2E voice front-end (students.voice_front_end='ge2e')")
    cfg = dataclasses.replace(cfg, adversary_weight=(cfg.adversary_weight or 1.0) if adversarial else 0.0)
    ckpt = Path(run) / "checkpoints"
    paths = {k: ckpt / f"{variant}_{k}.pt" for k in ("emotion_student", "identity_student")}

    def train():
        emo, ident, history = train_students(utts, cfg, targets, seed, progress, desc=f"{variant} students")
        save_student(emo, paths["emotion_student"], variant=variant)
        save_student(ident, paths["identity_student"], variant=variant)
        return (emo, ident), history

    def load():
        return load_student(paths["emotion_student"], "emotion_student"), \
            load_student(paths["identity_student"], "identity_student")

    config = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "voice_front_end"}
    key = dict(features=features.info.get("fingerprint"), clips=list(utts.meta["clip"]), variant=variant,
               config=config, seed=seed)
    (emo, ident), history, _ = trained(paths["emotion_student"], key, train, load, retrain)
    if targets == "teacher":
        use_voice_front_end(run, cfg.voice_front_end, utts, features, seed, retrain, progress)
    return emo, ident, history


#: The file of a run that names its identity front-end (``StudentConfig.voice_front_end``); absent: "scratch".
VOICE_FRONT_END_FILE = "voice_front_end.json"


def use_voice_front_end(run, front_end: str, utts: Utterances | None = None, features=None, seed: int = 0,
                        retrain: bool = False, progress: bool = True):
    """Make ``front_end`` the identity front-end that notebooks 04-06 and ``Speech2VideoModel.from_run`` use.

    ``"scratch"``: the run's ``identity_student.pt`` (``checkpoints/voice_front_end.json`` is removed; nothing
    else changes). ``"ge2e"``: the voice -> face mapping of ``pretrained.voice_identity.get_voice_to_face``,
    fitted on ``utts`` (or loaded), then ``voice_front_end.json`` written. Returns the mapping, or None.
    """
    import json

    from .config import VOICE_FRONT_ENDS
    from .machinery.runs import atomic_write

    if front_end not in VOICE_FRONT_ENDS:
        raise ValueError(f"students.voice_front_end must be one of {list(VOICE_FRONT_ENDS)}, got {front_end!r}")
    path = Path(run) / "checkpoints" / VOICE_FRONT_END_FILE
    if front_end == "scratch":
        path.unlink(missing_ok=True)
        return None
    from .pretrained.voice_identity import get_voice_to_face

    mapping, _ = get_voice_to_face(utts, features, run, seed, retrain, progress)
    record = dict(voice_front_end=front_end, mapping="voice_to_face.pt")
    atomic_write(path, lambda f: f.write(json.dumps(record, indent=1).encode()))
    return mapping


def run_voice_front_end(run) -> str:
    """The identity front-end a run's notebook 03 chose (``use_voice_front_end``): "scratch" or "ge2e"."""
    import json

    from .config import VOICE_FRONT_ENDS

    path = Path(run) / "checkpoints" / VOICE_FRONT_END_FILE
    if not path.exists():
        return "scratch"
    front_end = json.loads(path.read_text()).get("voice_front_end")
    if front_end not in VOICE_FRONT_ENDS:
        raise ValueError(f"{path} names the identity front-end {front_end!r}, not one of {list(VOICE_FRONT_ENDS)}: "
                         f"re-run notebook 03")
    return front_end


# ----------------------------------------------------------------------------------- checkpoints
_KINDS = {"emotion_student": EmotionStudent, "identity_student": IdentityStudent}


def save_student(model: nn.Module, path, **extra):
    """Weights plus the config that made them, written atomically (``runs.save_model``)."""
    return save_model(model, path, **extra)


def publish(run, variant: str) -> list:
    """Make one variant's students the run's students: ``checkpoints/{emotion,identity}_student.pt``.

    Notebooks 04-06 load these two files by path.
    """
    import shutil

    ckpt = Path(run) / "checkpoints"
    out = []
    for kind in ("emotion_student", "identity_student"):
        src = ckpt / f"{variant}_{kind}.pt"
        if not src.exists():
            raise FileNotFoundError(f"no {variant} students in {ckpt}: train them first (students.get_students)")
        dst = ckpt / f"{kind}.pt"
        tmp = dst.with_suffix(".pt.tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)
        out.append(dst)
    return out


def load_student(path, kind: str) -> nn.Module:
    """Load an ``emotion_student`` or ``identity_student`` saved by ``save_student``."""
    return load_model(path, kind, _KINDS, hint="train the students in notebook 03", map_location=device())
