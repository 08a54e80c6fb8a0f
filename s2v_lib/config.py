"""Configuration: dataclasses, the named profiles (smoke, course, paper), seeding and device.

A profile is a preset of every knob the course uses. Notebooks take a profile name as a
papermill parameter and may override single fields::

    cfg = get_profile("smoke", corpus={"n_speakers": 12})
"""
from __future__ import annotations

import copy
import dataclasses
import math
import os
import random
from dataclasses import dataclass, field

import numpy as np

#: The shared emotion vocabulary (CREMA-D's six). Real corpora are mapped onto it.
EMOTIONS: tuple[str, ...] = ("anger", "disgust", "fear", "happy", "neutral", "sad")
#: Intensities, as CREMA-D names its levels.
INTENSITIES: tuple[str, ...] = ("low", "medium", "high")
#: The three speaker pools (docs/method.md).
POOLS: tuple[str, ...] = ("A", "B", "C")
#: Face crop sizes the networks are built for: powers of two, halved down to 4 x 4 pixels.
RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256)
#: Where the identity embedding can come from (``StudentConfig.voice_front_end``).
VOICE_FRONT_ENDS: tuple[str, ...] = ("scratch", "ge2e")


def standardize_frames(frames):
    """Face frames in [0, 1] as every network reads them: (x - 0.5) / 0.25, about zero mean and unit spread."""
    return (frames - 0.5) / 0.25


def halvings(resolution: int) -> int:
    """How many times a face of ``resolution`` pixels is halved to reach 4 x 4 (the generator doubles as
    many times from 4 x 4; the discriminators halve as many times): 64 -> 4."""
    if resolution not in RESOLUTIONS:
        raise ValueError(f"resolution must be one of {list(RESOLUTIONS)}, got {resolution}")
    return int(math.log2(resolution // 4))


@dataclass
class CorpusConfig:
    """How SynthTalk makes a corpus."""

    n_speakers: int = 24
    clips_per_speaker: int = 36
    n_sentences: int = 40
    resolution: int = 64  # face crop side in pixels: 32, 64, 128 or 256
    fps: int = 25
    sample_rate: int = 16000
    emotions: tuple[str, ...] = EMOTIONS
    intensities: tuple[str, ...] = INTENSITIES
    #: fractions of speakers in pools A (teacher pretraining), B (distillation, GAN), C (unseen)
    pool_fractions: tuple[float, float, float] = (0.4, 0.4, 0.2)
    #: more unseen speakers, beyond ``n_speakers`` (all in pool C, ``unseen_clips_per_speaker`` clips each):
    #: statistical power for the unseen-speaker measures at little cost; pools A and B are unchanged
    unseen_speakers: int = 0
    unseen_clips_per_speaker: int = 6
    #: fractions of pool B sentences held out for validation and test (observed speakers)
    b_val_fraction: float = 0.15
    b_test_fraction: float = 0.15
    #: fraction of pool A clips held out to score the teachers
    a_val_fraction: float = 0.15
    snr_db: tuple[float, float] = (25.0, 40.0)  # background noise, per clip
    supersample: int = 4  # draw this many times larger, then downsample (anti-aliasing)
    seed: int = 0

    def validate(self) -> "CorpusConfig":
        """Raise ValueError with a readable message for settings that cannot work."""
        if int(self.n_speakers) < 1:
            raise ValueError(f"n_speakers must be at least 1, got {self.n_speakers}")
        if int(self.clips_per_speaker) < 1:
            raise ValueError(f"clips_per_speaker must be at least 1, got {self.clips_per_speaker}")
        if int(self.unseen_speakers) < 0 or int(self.unseen_clips_per_speaker) < 1:
            raise ValueError(f"unseen_speakers must be 0 or more and unseen_clips_per_speaker at least 1, got "
                             f"{self.unseen_speakers} and {self.unseen_clips_per_speaker}")
        if int(self.n_sentences) < 1:
            raise ValueError(f"n_sentences must be at least 1, got {self.n_sentences}")
        if self.resolution not in RESOLUTIONS:
            raise ValueError(f"resolution must be one of {list(RESOLUTIONS)} (the networks halve it down to "
                             f"4 x 4 pixels), got {self.resolution}")
        unknown = [e for e in self.emotions if e not in EMOTIONS]
        if unknown:
            raise ValueError(f"unknown emotion(s) {unknown}; known emotions are {list(EMOTIONS)}")
        if not self.emotions:
            raise ValueError("at least one emotion is needed")
        unknown = [i for i in self.intensities if i not in INTENSITIES]
        if unknown:
            raise ValueError(f"unknown intensity(ies) {unknown}; known are {list(INTENSITIES)}")
        if len(self.pool_fractions) != 3 or min(self.pool_fractions) < 0 or sum(self.pool_fractions) <= 0:
            raise ValueError(f"pool_fractions must be three non-negative numbers (A, B, C), got {self.pool_fractions}")
        if self.fps <= 0 or self.sample_rate <= 0 or self.sample_rate % self.fps:
            raise ValueError(f"sample_rate ({self.sample_rate}) must be a positive multiple of fps ({self.fps})")
        if self.supersample < 1:
            raise ValueError(f"supersample must be at least 1, got {self.supersample}")
        return self


@dataclass
class FeatureConfig:
    """Log-mel features: 80 bands, 25 ms window, 10 ms hop (``mel_per_frame``: 4 per 25 fps video frame)."""

    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    fmin: float = 55.0
    fmax: float = 7600.0

    def hop_length(self, sample_rate: int) -> int:
        return int(round(sample_rate * self.hop_ms / 1000))

    def win_length(self, sample_rate: int) -> int:
        return int(round(sample_rate * self.win_ms / 1000))

    def mel_per_frame(self, sample_rate: int, fps: int) -> int:
        """Mel frames per video frame (10 ms hop, 25 fps: 4), the one place this ratio is computed.

        The audio networks halve time down to the video frame rate, so it must be a power of two.
        """
        per_frame, hop = sample_rate // fps, self.hop_length(sample_rate)
        if hop <= 0 or per_frame % hop:
            raise ValueError(f"a video frame ({per_frame} samples at {sample_rate} Hz and {fps} fps) is not a whole "
                             f"number of {self.hop_ms:g} ms hops ({hop} samples): choose hop_ms so that it divides "
                             f"{1000 / fps:g} ms")
        m = per_frame // hop
        if m & (m - 1):
            raise ValueError(f"hop_ms={self.hop_ms:g} gives {m} mel frames per video frame; the audio networks need "
                             f"a power of two (1, 2, 4, 8...): e.g. hop_ms={1000 / fps / 4:g} (4) or "
                             f"{1000 / fps / 2:g} (2)")
        return m

    def validate(self, sample_rate: int, fps: int) -> "FeatureConfig":
        if self.n_mels < 8:
            raise ValueError(f"n_mels must be at least 8, got {self.n_mels}")
        if not 0 <= self.fmin < self.fmax <= sample_rate / 2:
            raise ValueError(f"the mel bands need 0 <= fmin < fmax <= {sample_rate / 2:g} Hz (half the sample rate), "
                             f"got fmin={self.fmin:g}, fmax={self.fmax:g}")
        if self.win_length(sample_rate) > self.n_fft:
            raise ValueError(f"the {self.win_ms:g} ms window ({self.win_length(sample_rate)} samples) is longer than "
                             f"n_fft={self.n_fft}")
        self.mel_per_frame(sample_rate, fps)
        return self


#: Mel frames per video frame of the default settings (a default of the audio networks' constructors;
#: a run passes its cache's own ``mel_per_frame``).
MEL_PER_FRAME: int = FeatureConfig().mel_per_frame(CorpusConfig.sample_rate, CorpusConfig.fps)


@dataclass
class TeacherConfig:
    """The visual teachers of notebook 02 (both trained on pool A frames)."""

    input_size: int = 64          # frames are resized to this before the CNN
    width: int = 16               # channels of the first block (doubling per block)
    emotion_embedding_dim: int = 64
    identity_embedding_dim: int = 128
    steps: int = 2000             # minibatches for the emotion teacher
    identity_steps: int = 800     # minibatches for the identity teacher
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    cosface_scale: float = 24.0   # CosFace s
    cosface_margin: float = 0.3   # CosFace m
    #: "trained": both teachers trained here on pool A; "pretrained": the real-face models that ship in
    #: packages (FER2013 mini-Xception, dlib's ResNet descriptor; s2v_lib.pretrained, extra [pretrained])
    source: str = "trained"


@dataclass
class StudentConfig:
    """The audio students of notebook 03 (trained on pool B training utterances, no labels)."""

    width: int = 64               # channels of the audio encoder
    emotion_embedding_dim: int = 64
    steps: int = 1000
    batch_size: int = 32
    crop_frames: int = 60         # training crops: up to 60 video frames = 2.4 s = 240 mel frames
    lr: float = 2e-3
    weight_decay: float = 1e-3
    temperature: float = 3.0      # T of knowledge distillation: the teacher's soft targets and the student's softmax
    dropout: float = 0.1          # in the emotion student's embedding and head
    identity_l2: float = 0.5      # weight of the L2 term beside the cosine in the identity loss
    adversary_weight: float = 0.0  # > 0: gradient-reversal adversaries for disentanglement
    #: where the run's identity embedding comes from: "scratch" (the IdentityStudent, trained here on log-mels)
    #: or "ge2e" (Resemblyzer's pretrained GE2E speaker encoder on the samples, mapped to the face space by a
    #: small MLP fitted on the same targets: s2v_lib.pretrained.voice_identity; needs resemblyzer's package)
    voice_front_end: str = "scratch"

    def validate(self) -> "StudentConfig":
        if self.voice_front_end not in VOICE_FRONT_ENDS:
            raise ValueError(f"students.voice_front_end must be one of {list(VOICE_FRONT_ENDS)} (the identity "
                             f"student trained from scratch, or the pretrained GE2E voice encoder), got "
                             f"{self.voice_front_end!r}")
        return self


@dataclass
class LandmarkConfig:
    """The landmark regressor of notebook 05: 68 points from a face crop, the judge of LMD, blinks and head motion."""

    width: int = 16               # channels of the first block (doubling per block)
    steps: int = 1500
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    noise: float = 0.03           # pixel noise added while training (generated frames are noisy)
    #: "auto": the regressor trained on the corpus's ground-truth landmarks where it has them (SynthTalk), else
    #: dlib's pretrained 68 points (extra [pretrained]; iBUG 300-W: non-commercial); or "trained", "pretrained", "none"
    source: str = "auto"


@dataclass
class EvaluationConfig:
    """Notebook 05: which clips are scored, and how the intervals are drawn."""

    unseen_clips: int = 60        # pool C clips scored (0: all); pool B's held-out sentences are always all
    bootstrap: int = 1000         # resamples of clips for the 95 % intervals
    rating_pairs: int = 12        # utterances offered to the workshop rating form


@dataclass
class SyncConfig:
    """The sync expert (notebook 04): mouth windows against sound, trained contrastively."""

    width: int = 24
    embedding_dim: int = 128
    window: int = 5               # video frames the expert sees at once (0.2 s at 25 fps)
    steps: int = 800
    batch_size: int = 32
    negatives: int = 6            # shifted sounds of the same clip per mouth window
    max_offset: int = 15          # frames: candidate shifts and the LSE search range (Wav2Lip's)
    scale: float = 10.0           # cosine -> logit scale of the contrastive loss
    lr: float = 2e-3
    weight_decay: float = 1e-4


@dataclass
class GeneratorConfig:
    """The generator's own sizes (notebook 04); its input sizes come from the data and the students."""

    content_dim: int = 128    # per-frame content from the log-mels
    noise_dim: int = 16       # noise per frame, into the motion GRU
    motion_dim: int = 32      # the GRU's state: spontaneous motion
    style_dim: int = 128      # identity and emotion, mixed: FiLM's input
    width: int = 16           # channels at the last (full-resolution) block; doubling towards 4 x 4 (max 256)
    identity_from: str = "speech"   # "speech" (speech2video) or "image" (static-image baseline)
    use_emotion: bool = True  # ablation: False feeds zeros instead of the emotion embedding
    use_noise: bool = True    # ablation: False feeds zeros instead of noise

    def validate(self) -> "GeneratorConfig":
        if self.identity_from not in ("speech", "image"):
            raise ValueError(f"identity_from must be 'speech' or 'image', got {self.identity_from!r}")
        return self


@dataclass
class GANConfig:
    """The GAN of notebook 04: generator, frame and sequence discriminators, expert losses."""

    steps: int = 1000             # the speech2video model
    baseline_steps: int = 1000    # the static-image baseline
    ablation_steps: int = 250     # each ablation (a shorter budget: compare them with each other)
    batch_size: int = 8           # clips per step
    window: int = 8               # video frames per training window (0.32 s at 25 fps)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    d_width: int = 16             # discriminator width at full resolution
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    w_adv_frame: float = 1.0
    w_adv_sequence: float = 0.5
    w_l1: float = 10.0
    mouth_weight: float = 4.0
    w_sync: float = 0.3
    w_emotion: float = 0.2
    w_identity: float = 0.5
    ema: float = 0.999            # exponential moving average of the generator's weights (0: off)
    checkpoint_every: int = 250
    use_sync: bool = True          # ablations: each one flag (two more in ``generator``)
    use_sequence: bool = True


@dataclass
class Profile:
    """Every knob of one course run."""

    name: str
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    teachers: TeacherConfig = field(default_factory=TeacherConfig)
    students: StudentConfig = field(default_factory=StudentConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    gan: GANConfig = field(default_factory=GANConfig)
    landmarks: LandmarkConfig = field(default_factory=LandmarkConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)

    @property
    def mel_per_frame(self) -> int:
        """Mel frames per video frame, derived from the hop and the frame rate."""
        return self.features.mel_per_frame(self.corpus.sample_rate, self.corpus.fps)

    def validate(self) -> "Profile":
        """Raise ValueError naming the setting when the profile cannot run."""
        self.corpus.validate()
        self.features.validate(self.corpus.sample_rate, self.corpus.fps)
        self.students.validate()
        self.gan.generator.validate()
        if self.gan.window < self.sync.window:
            raise ValueError(f"the GAN's training window ({self.gan.window} frames) must hold the sync expert's "
                             f"({self.sync.window})")
        return self


PROFILES: dict[str, dict] = {
    # seconds on a CPU: enough to check that every stage runs and produces its numbers
    "smoke": dict(corpus=dict(n_speakers=8, clips_per_speaker=18, n_sentences=40),
                  teachers=dict(steps=80, identity_steps=40), students=dict(steps=60, width=32),
                  sync=dict(steps=40), gan=dict(steps=30, baseline_steps=20, ablation_steps=8, batch_size=4),
                  landmarks=dict(steps=60), evaluation=dict(unseen_clips=12, bootstrap=200, rating_pairs=4)),
    # a 3-hour workshop on 2-core laptops: all six notebooks in about a quarter of an hour, every stage
    # visibly working (timed: docs/workshop.md); the claims need the course profile's data and budgets
    "workshop": dict(corpus=dict(n_speakers=16, clips_per_speaker=24, n_sentences=40),
                     teachers=dict(steps=900, identity_steps=400), students=dict(steps=400),
                     sync=dict(steps=300), gan=dict(steps=350, baseline_steps=150, ablation_steps=30),
                     landmarks=dict(steps=800), evaluation=dict(unseen_clips=24, bootstrap=500, rating_pairs=8)),
    # the course: minutes on a 2-core laptop, enough data for the proofs to be clear
    # (20 more unseen speakers, 6 clips each: the unseen-speaker measures need more than pool C's 5)
    "course": dict(corpus=dict(n_speakers=24, clips_per_speaker=36, n_sentences=40, unseen_speakers=20),
                   evaluation=dict(unseen_clips=75)),
    # sized for a GPU: more speakers and clips, larger faces
    "paper": dict(corpus=dict(n_speakers=200, clips_per_speaker=54, n_sentences=120, resolution=128),
                  teachers=dict(steps=6000, identity_steps=3000, batch_size=128, input_size=128, width=32),
                  students=dict(steps=6000, batch_size=64, width=128),
                  gan=dict(steps=20000, baseline_steps=20000, ablation_steps=5000, d_width=32,
                           generator=dict(width=32)),
                  landmarks=dict(steps=6000, width=32), evaluation=dict(unseen_clips=0)),
}


def _merge(obj, overrides: dict):
    for key, value in overrides.items():
        if not hasattr(obj, key):
            raise ValueError(f"unknown setting {key!r} for {type(obj).__name__}; "
                             f"known: {[f.name for f in dataclasses.fields(obj)]}")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current) and isinstance(value, dict):
            _merge(current, value)
        else:
            if isinstance(current, tuple) and isinstance(value, list):
                value = tuple(value)
            setattr(obj, key, value)
    return obj


def with_overrides(config, overrides: dict):
    """A copy of a config with nested overrides: ``with_overrides(gan, {"generator": {"width": 32}})``."""
    return _merge(copy.deepcopy(config), overrides)


def get_profile(name: str = "course", seed: int | None = None, settings: dict | None = None, **overrides) -> Profile:
    """Return the named profile, with nested overrides: ``get_profile("smoke", corpus={"resolution": 128})``.

    ``seed``: the corpus's seed (``corpus.seed``), the run's ``seed`` parameter. ``settings``: nested
    overrides too (a notebook's ``settings`` parameter), applied before the keyword ones.
    """
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}")
    profile = _merge(Profile(name=name), PROFILES[name])
    profile = _merge(profile, settings or {})
    profile = _merge(profile, overrides)
    if seed is not None:
        profile.corpus.seed = int(seed)
    return profile.validate()


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch (all devices) for reproducible runs."""
    random.seed(seed)
    np.random.seed(seed)
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # the corpus generator does not need torch
        return
    torch.manual_seed(seed)


def progress(iterable=None, progress: bool = True, **kwargs):
    """A ``tqdm.auto`` progress bar (a widget in notebooks), silent under CI or when ``progress`` is False."""
    from tqdm.auto import tqdm

    quiet = not progress or os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return tqdm(iterable, disable=quiet, **kwargs)


def device():
    """The torch device to use: CUDA when available, else the CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
