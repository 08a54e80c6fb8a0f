"""A pretrained voice front-end for the identity student: GE2E speaker embedding -> face embedding.

The from-scratch ``students.IdentityStudent`` learns to hear a face from pool B's few training
speakers, and on speakers it never heard (pool C) it does no better than chance. Resemblyzer's GE2E
encoder (``voice.GE2EVoiceEncoder``) was trained on thousands of real speakers to tell voices
apart; here a small MLP (``VoiceToFace``) maps its 256-d utterance embedding to the identity
teacher's face-embedding space, trained on exactly the targets the from-scratch student learns:
each pool B training utterance's clip face embedding (``students.Utterances.face``), with the
student's loss (``students.identity_loss``: 1 - cos plus a small L2). No label is used.

    voices = clip_voice_embeddings(corpus, train.meta["clip"])         # (N, 256), GE2E
    mapping, history = train_voice_to_face(voices, train.face)         # -> VoiceToFace
    scores = retrieval_scores(mapping.predict(test_voices), test.meta.speaker, *gallery_b)

``GE2EIdentityStudent`` joins the encoder and the mapping: mono audio at any rate -> a unit face
embedding, the vector ``Speech2VideoModel`` takes from the identity student. Mappings are saved and
loaded with ``save_voice_to_face`` / ``load_voice_to_face`` (``torch.load(weights_only=True)``).

In a run, ``StudentConfig.voice_front_end = "ge2e"`` selects it (``make course
SET="students.voice_front_end=ge2e"``): ``students.get_students`` then also fits the mapping on pool B's
training utterances, or loads it (``get_voice_to_face``: ``checkpoints/voice_to_face.pt``, the GE2E
embeddings cached in ``checkpoints/ge2e_voices.npz``), and records the choice in the run
(``students.run_voice_front_end``), so that ``Speech2VideoModel.from_run`` and ``python -m s2v_lib
generate`` take the identity from this student, on the recording's samples (the emotion student stays on
log-mels). Notebook 04's generator is still trained on the scratch identity student's embeddings: both
predict the identity teacher's face embedding, so either is a condition it knows.
"""
from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

VOICE_DIM = 256


@dataclasses.dataclass
class VoiceToFaceConfig:
    """How ``train_voice_to_face`` fits the mapping (full-batch would do; small batches add noise)."""

    hidden: int = 256
    dropout: float = 0.2
    steps: int = 1500
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    identity_l2: float = 0.5     # the L2 weight of ``students.identity_loss``
    voice_noise: float = 0.02    # Gaussian noise on the (unit) GE2E embeddings while training


class VoiceToFace(nn.Module):
    """GE2E utterance embeddings (B, 256) -> predicted face embeddings (B, Di) (compare by cosine)."""

    kind = "voice_to_face"

    def __init__(self, face_dim: int, voice_dim: int = VOICE_DIM, hidden: int = VoiceToFaceConfig.hidden,
                 dropout: float = VoiceToFaceConfig.dropout):
        super().__init__()
        self.config = dict(face_dim=face_dim, voice_dim=voice_dim, hidden=hidden, dropout=dropout)
        self.net = nn.Sequential(nn.Linear(voice_dim, hidden), nn.LayerNorm(hidden), nn.ReLU(inplace=True),
                                 nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                 nn.Linear(hidden, face_dim))

    def forward(self, voice: torch.Tensor) -> torch.Tensor:
        return self.net(voice)

    @torch.no_grad()
    def predict(self, voices: np.ndarray) -> np.ndarray:
        """(N, 256) GE2E embeddings -> (N, Di) unit face embeddings, float32."""
        self.eval()
        dev = next(self.parameters()).device
        out = self(torch.as_tensor(np.asarray(voices, np.float32), device=dev))
        return F.normalize(out, dim=-1).cpu().numpy()


def train_voice_to_face(voices: np.ndarray, faces: np.ndarray, cfg: VoiceToFaceConfig | None = None,
                        seed: int = 0, progress: bool = False, loss=None) -> tuple[VoiceToFace, list[float]]:
    """Fit a ``VoiceToFace`` from GE2E embeddings ``voices`` (N, 256) to face embeddings ``faces`` (N, Di)
    (``students.Utterances.face``: each clip's teacher embedding), by ``loss(pred, target, cfg.identity_l2)``
    (default ``students.identity_loss``), with the course's training loop (``trainer.Trainer``).
    Returns ``(mapping in eval mode, loss per step)``."""
    from ..students import identity_loss
    from ..trainer import Trainer, Update, adamw_one_cycle

    cfg = cfg or VoiceToFaceConfig()
    loss_fn = loss or identity_loss
    voices, faces = np.asarray(voices, np.float32), np.asarray(faces, np.float32)
    if voices.ndim != 2 or faces.ndim != 2 or len(voices) != len(faces):
        raise ValueError(f"expected voices (N, {VOICE_DIM}) and faces (N, D) of the same N, "
                         f"got {voices.shape} and {faces.shape}")
    if len(voices) < 2:
        raise ValueError("a voice -> face mapping needs at least two utterances")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    model = VoiceToFace(faces.shape[1], voices.shape[1], cfg.hidden, cfg.dropout)
    optimizer, scheduler = adamw_one_cycle(model.parameters(), cfg.lr, cfg.weight_decay, cfg.steps)
    x, y = torch.from_numpy(voices), torch.from_numpy(faces)

    def sample():
        pick = torch.randint(len(x), (min(cfg.batch_size, len(x)),), generator=gen)
        v = x[pick]
        if cfg.voice_noise > 0:
            v = F.normalize(v + cfg.voice_noise * torch.randn(v.shape, generator=gen), dim=-1)
        return v, y[pick]

    def step_loss(batch):
        v, target = batch
        return loss_fn(model(v), target, cfg.identity_l2), {}

    model.train()
    history = Trainer(sample, [Update(optimizer, step_loss, scheduler, name="identity_loss")], "voice -> face",
                      progress).run(cfg.steps)
    model.eval()
    return model, history["identity_loss"].tolist()


# ----------------------------------------------------------------------------------- voices
def voice_embeddings(recordings, encoder=None, progress: bool = False) -> np.ndarray:
    """GE2E embeddings (N, 256) of recordings: file paths (any format and rate, mixed to mono) or
    ``(samples, sample_rate)`` pairs."""
    from ..config import progress as progress_bar
    from ..machinery.audio import load_audio
    from .voice import SAMPLE_RATE, GE2EVoiceEncoder

    encoder = encoder or GE2EVoiceEncoder()
    out = []
    for rec in progress_bar(list(recordings), progress, desc="GE2E", unit="utt"):
        if isinstance(rec, (str, Path)):
            wav, sr = load_audio(rec, SAMPLE_RATE, quiet=True), SAMPLE_RATE
        else:
            wav, sr = rec
        out.append(encoder.embed(np.asarray(wav, np.float32), sr))
    return np.stack(out) if out else np.zeros((0, VOICE_DIM), np.float32)


def clip_voice_embeddings(corpus, clips, encoder=None, cache_file=None, progress: bool = False,
                          source: str = "") -> np.ndarray:
    """GE2E embeddings (N, 256) of a corpus's clips (their sound files, ``metadata.csv``'s ``audio``), in
    the order of ``clips``. ``cache_file`` (.npz): embeddings already computed for these clips by the same
    weights from the same ``source`` (a string naming the sound files' version, e.g. ``cache_source(cache)``;
    the clip names alone do not tell a regenerated corpus from the old one) are read from it, the others
    computed and the file rewritten."""
    from .voice import GE2EVoiceEncoder

    clips = [str(c) for c in clips]
    encoder = encoder or GE2EVoiceEncoder()
    weights = bytes(encoder.weights_sha1.tolist()).hex()
    known: dict = {}
    if cache_file is not None and Path(cache_file).is_file():
        with np.load(cache_file, allow_pickle=False) as z:
            if str(z["weights"]) == weights and str(z["source"] if "source" in z else "") == str(source):
                known = dict(zip(z["clips"].tolist(), z["embeddings"]))
    todo = [c for c in dict.fromkeys(clips) if c not in known]
    if todo:
        paths = [corpus.root / corpus.row(c)["audio"] for c in todo]
        known.update(zip(todo, voice_embeddings(paths, encoder, progress)))
        if cache_file is not None:
            Path(cache_file).parent.mkdir(parents=True, exist_ok=True)
            names = sorted(known)
            tmp = Path(cache_file).with_suffix(".tmp.npz")
            np.savez(tmp, clips=np.array(names), embeddings=np.stack([known[n] for n in names]),
                     weights=np.array(weights), source=np.array(str(source)))
            tmp.replace(cache_file)
    return np.stack([known[c] for c in clips]).astype(np.float32)


class GE2EIdentityStudent(nn.Module):
    """Mono audio -> a unit face embedding (Di,): the GE2E encoder followed by a ``VoiceToFace`` mapping.

    ``embed(wav, sample_rate)`` for one utterance; ``embed_pieces(pieces, sample_rate)`` for a long recording
    heard a window at a time (``GE2EVoiceEncoder.embed_pieces``: the running mean of every window's GE2E
    embedding), as ``Speech2VideoModel`` does with the recording's samples."""

    kind = "ge2e_identity_student"

    def __init__(self, mapping: VoiceToFace, encoder=None):
        super().__init__()
        from .voice import GE2EVoiceEncoder

        self.mapping = mapping.eval()
        self.encoder = encoder or GE2EVoiceEncoder()
        self.config = dict(embedding_dim=mapping.config["face_dim"], front_end="ge2e")

    @torch.no_grad()
    def embed(self, wav: np.ndarray, sample_rate: int = 16000) -> np.ndarray:
        return self.mapping.predict(self.encoder.embed(np.asarray(wav, np.float32), sample_rate)[None])[0]

    @torch.no_grad()
    def embed_pieces(self, pieces, sample_rate: int = 16000) -> np.ndarray | None:
        """Mono pieces of one recording -> its unit face embedding (Di,); None when every piece is digitally silent."""
        voice = self.encoder.embed_pieces(pieces, sample_rate)
        return None if voice is None else self.mapping.predict(voice[None])[0]

    def forward(self, voices: torch.Tensor) -> torch.Tensor:
        """GE2E embeddings (B, 256) -> unit face embeddings (B, Di)."""
        return F.normalize(self.mapping(voices), dim=-1)


# ----------------------------------------------------------------------------------- scores
def retrieval_scores(pred: np.ndarray, speakers, gallery_speakers, gallery) -> dict:
    """Voice -> face retrieval of predicted face embeddings ``pred`` (N, Di) of utterances by ``speakers``
    among ``gallery`` (one face per speaker of ``gallery_speakers``), as ``students.evaluate_students``
    scores it: top-1 and top-5 with their chance levels (top-5 NaN when the gallery has 5 faces or
    fewer), plus top-2, the mean rank and the counts."""
    from ..evaluation.metrics import retrieval_ranks, top_k, top_k_chance

    ranks = retrieval_ranks(pred, list(speakers), gallery, list(gallery_speakers))
    n = len(list(gallery_speakers))
    return dict(identity_top1=top_k(ranks, 1), identity_top1_chance=top_k_chance(n, 1),
                identity_top2=top_k(ranks, 2), identity_top2_chance=top_k_chance(n, 2),
                identity_top5=top_k(ranks, 5) if n > 5 else float("nan"),
                identity_top5_chance=top_k_chance(n, 5) if n > 5 else float("nan"),
                mean_rank=float(np.mean(ranks)), mean_rank_chance=(n + 1) / 2,
                n_utterances=len(ranks), n_speakers=n, ranks=ranks)


# ----------------------------------------------------------------------------------- checkpoints
def save_voice_to_face(model: VoiceToFace, path, **extra) -> Path:
    """Weights plus the config that made them (``runs.save_model``), e.g. ``checkpoints/voice_to_face.pt``."""
    from ..machinery.runs import save_model

    return save_model(model, path, **extra)


def load_voice_to_face(path, map_location="cpu") -> VoiceToFace:
    from ..machinery.runs import load_model

    return load_model(path, "voice_to_face", {"voice_to_face": VoiceToFace}, map_location=map_location,
                      hint="train the students in notebook 03 with students.voice_front_end='ge2e' (or fit one with "
                           "s2v_lib.pretrained.voice_identity.train_voice_to_face)")


def load_ge2e_identity_student(path, map_location="cpu") -> GE2EIdentityStudent:
    """The GE2E encoder (from resemblyzer's package: ``PretrainedModelMissing`` names the pip line when it is
    not installed) and the mapping saved at ``path``, on ``map_location``."""
    from .voice import GE2EVoiceEncoder

    mapping = load_voice_to_face(path, map_location)
    return GE2EIdentityStudent(mapping, GE2EVoiceEncoder().to(map_location)).eval()


def digest(voices: np.ndarray) -> str:
    """A short SHA-1 of a voice-embedding array (to key a fitted mapping by what it was fitted on)."""
    return hashlib.sha1(np.ascontiguousarray(voices, np.float32).tobytes()).hexdigest()[:12]


# ----------------------------------------------------------------------------------- in a run
def cache_source(cache) -> str:
    """A short SHA-1 naming the version of a feature cache's sound: its fingerprint and the stamp of the files it
    was made from (``data.files_stamp``), what ``clip_voice_embeddings`` keys its cache by."""
    import json

    text = json.dumps(dict(fingerprint=cache.info.get("fingerprint"), stamp=cache.info.get("stamp")), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


def get_voice_to_face(utts, features, run, seed: int = 0, retrain: bool = False, progress: bool = True,
                      cfg: VoiceToFaceConfig | None = None) -> tuple[VoiceToFace, object]:
    """The run's voice -> face mapping, loaded if present, else fitted on ``utts`` (``students.Utterances``: pool
    B's training utterances) and saved to ``<run>/checkpoints/voice_to_face.pt``, like the students
    (``runs.trained_model``: keyed by the teacher features, the clips, the settings, the seed and the GE2E
    weights). Targets: each utterance's teacher face embedding (``utts.face``), never a label. The GE2E
    embeddings of the clips' sound files (``data.FeatureCache.corpus()``) are cached in
    ``<run>/checkpoints/ge2e_voices.npz``. Returns ``(mapping, history)`` (None as history when it was loaded
    without one). Raises ``PretrainedModelMissing`` when resemblyzer's package is not installed."""
    import pandas as pd

    from ..machinery.runs import trained_model
    from .voice import GE2EVoiceEncoder

    cfg = cfg or VoiceToFaceConfig()
    encoder = GE2EVoiceEncoder()
    ckpt = Path(run) / "checkpoints"
    path = ckpt / "voice_to_face.pt"
    clips = [str(c) for c in utts.meta["clip"]]
    key = dict(features=features.info.get("fingerprint"), clips=clips, targets="teacher face embeddings",
               config=dataclasses.asdict(cfg), seed=seed, ge2e=bytes(encoder.weights_sha1.tolist()).hex())

    def fit():
        from ..data import open_cache

        cache = open_cache(run)
        voices = clip_voice_embeddings(cache.corpus(), clips, encoder, ckpt / "ge2e_voices.npz", progress,
                                       source=cache_source(cache))
        mapping, losses = train_voice_to_face(voices, utts.face, cfg, seed, progress)
        return mapping, pd.DataFrame(dict(step=np.arange(1, len(losses) + 1), identity_loss=losses))

    return trained_model(path, key, fit, lambda: load_voice_to_face(path), trained_on=(
        f"{len(clips)} utterances of {utts.meta.speaker.nunique()} speakers (pools {sorted(set(utts.meta.pool))}): "
        f"GE2E embeddings -> teacher face embeddings"), retrain=retrain)
