"""SynthTalk: a talking-face corpus generated with the truth known.

Every speaker has one latent identity ``z`` that drives both the face (``faces.FaceIdentity``)
and the voice (an espeak-ng voice variant, ``espeak.VoiceSpec``): a larger "size" factor
gives a wider face, a squarer jaw and thicker brows *and* a lower pitch and lower formants,
the way vocal-tract size and sex tie voice to appearance in people. Two factors (hair
colour, skin tone) touch the face only, so a voice cannot predict everything.

Each clip: a sentence from a small grammar, an emotion at an intensity (prosody in the
voice, an expression in the face), lips driven by the phonemes espeak-ng actually spoke,
blinks, slow head motion with speech-linked nods and a brow raise on the emphasised word.
Written as ``clips/<clip>.mp4`` (H.264 + AAC), ``.wav`` (16 kHz mono) and ``.npz`` (per-frame
ground truth), with ``metadata.csv``, ``speakers.csv`` and ``corpus.json`` beside them.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import math
import multiprocessing as mp
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter, resample_poly

from ..config import INTENSITIES, CorpusConfig
from ..config import progress as progress_bar
from .espeak import Espeak, VoiceSpec, remove_stale_data_folders
from .faces import EXPRESSION_CHANNELS, FACE_ATTRIBUTES, FaceIdentity, FaceRenderer, FaceState

CORPUS_VERSION = 2  # 2: stronger facial expressions (about twice the displacement)

# ----------------------------------------------------------------------------------- sentences
_SUBJECTS = ["The old man", "My brother", "A tall woman", "Bob", "The baker", "Mary", "Your mother",
             "The pilot", "Paula", "The farmer", "The young boy", "Mister Brown"]
_VERBS = ["bought", "painted", "found", "lost", "moved", "built", "packed", "brought", "opened", "mapped"]
_OBJECTS = ["a purple map", "the big boat", "my brown bag", "some warm bread", "a bright lamp",
            "the pink umbrella", "a small box", "the heavy table", "five ripe plums", "a blue cup",
            "the metal pipe", "a new bike"]
_PLACES = ["before midnight", "by the pond", "in the park", "near the bay", "at home", "on Monday",
           "behind the barn", "after the meeting", "by the window", "in the morning"]


def sentences(n: int) -> list[str]:
    """The first ``n`` sentences of SynthTalk's grammar (the same list whatever the seed)."""
    combos = list(itertools.product(_SUBJECTS, _VERBS, _OBJECTS, _PLACES))
    if n > len(combos):
        raise ValueError(f"the grammar makes at most {len(combos)} sentences, asked for {n}")
    order = np.random.default_rng(1234).permutation(len(combos))[:n]
    return [" ".join(combos[i]) + "." for i in order]


# ----------------------------------------------------------------------------------- emotions
#: Prosody at full intensity, relative to the speaker's own voice: pitch and range in
#: espeak's 0-100 units (50 = the voice), rate as a factor, volume in espeak's 0-200 units.
EMOTION_PROSODY = {
    "anger":   dict(pitch=+10, range=+30, rate=1.12, volume=150),
    "disgust": dict(pitch=-10, range=-18, rate=0.82, volume=95),
    "fear":    dict(pitch=+26, range=+12, rate=1.25, volume=82),
    "happy":   dict(pitch=+18, range=+38, rate=1.06, volume=120),
    "neutral": dict(pitch=0, range=0, rate=1.0, volume=100),
    "sad":     dict(pitch=-18, range=-32, rate=0.78, volume=68),
}
#: Voice quality at full intensity, added to the speaker's own: harsh and tense in anger (creak,
#: raised formants), breathy in sadness, tremulous in fear, raised formants with a smile.
EMOTION_VOICE = {
    "anger":   dict(roughness=3, breath=0, flutter=0, formants=+4.0),
    "disgust": dict(roughness=2, breath=1, flutter=0, formants=-2.0),
    "fear":    dict(roughness=0, breath=2, flutter=160, formants=+2.0),
    "happy":   dict(roughness=0, breath=0, flutter=0, formants=+5.0),
    "neutral": dict(roughness=0, breath=0, flutter=0, formants=0.0),
    "sad":     dict(roughness=1, breath=4, flutter=40, formants=-3.0),
}
#: Facial expression at full intensity (channels of ``faces.EXPRESSION_CHANNELS``).
EMOTION_FACE = {
    "anger":   dict(brow_furrow=1.0, brow_raise=-0.5, eye_open=0.35, mouth_corner=-0.35, flush=0.9),
    "disgust": dict(nose_wrinkle=1.0, upper_lip_raise=0.9, brow_furrow=0.5, mouth_corner=-0.6, eye_open=-0.45),
    "fear":    dict(brow_raise=1.0, brow_tilt=0.6, eye_open=1.0, mouth_stretch=0.9, flush=-0.3),
    "happy":   dict(mouth_corner=1.0, eye_open=-0.35, brow_raise=0.25, flush=0.3, mouth_stretch=0.3),
    "neutral": dict(),
    "sad":     dict(brow_tilt=1.0, mouth_corner=-0.9, eye_open=-0.55, brow_raise=-0.1),
}
#: Head motion: amplitude factor and a pitch offset in degrees (sad looks down).
EMOTION_MOTION = {"anger": (1.4, -1.0), "disgust": (0.9, 0.0), "fear": (1.2, 0.0),
                  "happy": (1.3, -0.5), "neutral": (1.0, 0.0), "sad": (0.6, 4.0)}
INTENSITY_SCALE = {"low": 0.5, "medium": 0.75, "high": 1.0}
EMOTION_CODES = {"anger": "ANG", "disgust": "DIS", "fear": "FEA", "happy": "HAP", "neutral": "NEU", "sad": "SAD"}
INTENSITY_CODES = {"low": "LO", "medium": "MD", "high": "HI"}


def emotional_voice(voice: VoiceSpec, emotion: str, level: float) -> VoiceSpec:
    """The speaker's voice variant with the emotion's voice quality added, scaled by ``level``."""
    q = EMOTION_VOICE[emotion]
    return dataclasses.replace(
        voice, name=f"{voice.name}{EMOTION_CODES[emotion].lower()}{int(round(level * 10))}",
        roughness=int(min(7, voice.roughness + round(q["roughness"] * level))),
        breath=int(min(10, voice.breath + round(q["breath"] * level))),
        flutter=int(round(q["flutter"] * level)),
        formants=tuple(f * (1 + q["formants"] * level / 100) for f in voice.formants))


def expression_vector(emotion: str, intensity: float) -> np.ndarray:
    return np.array([EMOTION_FACE[emotion].get(c, 0.0) for c in EXPRESSION_CHANNELS]) * intensity


# ----------------------------------------------------------------------------------- visemes
#: Viseme -> (mouth opening, width, rounding).
VISEMES = {
    "rest": (0.04, 0.5, 0.0), "PBM": (0.0, 0.5, 0.0), "FV": (0.1, 0.55, 0.0), "TH": (0.2, 0.55, 0.0),
    "TDNL": (0.28, 0.55, 0.0), "SZ": (0.18, 0.7, 0.0), "SH": (0.25, 0.35, 0.7), "KG": (0.35, 0.5, 0.0),
    "R": (0.28, 0.35, 0.5), "AA": (0.95, 0.55, 0.0), "EH": (0.6, 0.75, 0.0), "IY": (0.3, 0.95, 0.0),
    "OW": (0.62, 0.3, 0.85), "UW": (0.3, 0.2, 1.0),
}
VISEME_NAMES = tuple(VISEMES)
_CONSONANTS = {"p": "PBM", "b": "PBM", "m": "PBM", "f": "FV", "v": "FV", "T": "TH", "D": "TH",
               "t": "TDNL", "d": "TDNL", "n": "TDNL", "l": "TDNL", "s": "SZ", "z": "SZ", "S": "SH",
               "Z": "SH", "tS": "SH", "dZ": "SH", "k": "KG", "g": "KG", "N": "KG", "h": "KG", "x": "KG",
               "r": "R", "w": "UW", "j": "IY", "?": "rest"}


def viseme_of(phoneme: str) -> str:
    """Map an espeak-ng English phoneme mnemonic (``'p'``, ``'aI'``, ``'@L'``, ``'_:'``...) to a viseme."""
    if not phoneme or phoneme[0] == "_":
        return "rest"
    core = phoneme.rstrip("#/-;:!2")
    if core in _CONSONANTS:
        return _CONSONANTS[core]
    if phoneme in _CONSONANTS:
        return _CONSONANTS[phoneme]
    c = phoneme[0]
    if c in "aAV":
        return "AA"
    if c in "E@3e":
        return "EH"
    if c in "iIy":
        return "IY"
    if c in "0Oo":
        return "OW"
    if c in "uUw":
        return "UW"
    return _CONSONANTS.get(c, "TDNL")


# ----------------------------------------------------------------------------------- speakers
@dataclass
class Speaker:
    speaker: str
    index: int
    pool: str
    gender: str
    latent: np.ndarray
    face: FaceIdentity
    voice: VoiceSpec
    rate_wpm: float
    blink_rate: float
    motion: float

    def row(self) -> dict:
        row = dict(speaker=self.speaker, pool=self.pool, gender=self.gender)
        row.update({f"z{i}": float(v) for i, v in enumerate(self.latent)})
        row.update(self.face.attributes())
        row.update(hair_style=self.face.hair_style, glasses=int(self.face.glasses),
                   pitch_base=self.voice.pitch_base, pitch_range=self.voice.pitch_range,
                   roughness=self.voice.roughness, breath=self.voice.breath, rate_wpm=self.rate_wpm,
                   blink_rate=self.blink_rate, motion=self.motion)
        row.update({f"formant{i + 1}": f for i, f in enumerate(self.voice.formants)})
        return row


_HAIR = [(25, 20, 18), (60, 40, 28), (105, 70, 40), (150, 100, 55), (200, 160, 95), (140, 60, 30)]
_IRIS = [(70, 45, 30), (95, 65, 35), (60, 90, 120), (70, 110, 80), (40, 30, 25)]


def logistic(x: float) -> float:
    """The logistic function 1 / (1 + e^-x): any real number -> (0, 1) (a latent factor -> age, skin tone)."""
    return 1.0 / (1.0 + math.exp(-x))


def speaker_voice(z: np.ndarray, female: bool, rng: np.random.Generator, name: str = "voice",
                  jitter: float = 1.0) -> tuple[VoiceSpec, float]:
    """The voice of a speaker with latent identity ``z`` (6,): an espeak-ng voice variant and a speaking rate.

        pitch  f0 = 155 Hz * exp(-0.30 z0 + e)              (z0: size; a larger speaker speaks lower)
        range     = f0 * (0.55 + 0.35 logistic(z3) - 0.2 age)  (z3: energy)
        formants  = 100 % * exp(-0.055 z0 - 0.04 z2) * (1 + e)  (z2: vertical length: a longer vocal tract)
        rate      = 172 words/min * exp(0.08 z3 - 0.12 age + e),   age = logistic(1.3 z1)

    with e small idiosyncrasies drawn from ``rng`` (scaled by ``jitter``; 0 gives the formulas alone,
    drawing the same numbers). The face (``make_speaker``) reads the same z0-z2, so the voice carries
    appearance; z4 and z5 (hair, skin) reach the face only. Returns ``(VoiceSpec, rate in words/min)``.
    """
    size, age_z, length, energy = z[:4]
    age = logistic(1.3 * age_z)
    n = lambda s: float(jitter * s * rng.standard_normal())  # noqa: E731  small idiosyncrasies
    pitch_base = 155.0 * math.exp(-0.30 * size + n(0.04))
    pitch_range = pitch_base * (0.55 + 0.35 * logistic(energy) - 0.2 * age)
    formant_scale = 100.0 * math.exp(-0.055 * size - 0.04 * length)
    formants = tuple(float(formant_scale * (1 + n(0.01))) for _ in range(5))
    voice = VoiceSpec(name=name, gender="female" if female else "male",
                      pitch_base=pitch_base, pitch_range=pitch_range, formants=formants,
                      roughness=int(np.clip(round(5 * age - 1 + n(0.5)), 0, 7)),
                      breath=int(np.clip(round(4 * age + 2 * female - 1.5 + n(0.7)), 0, 8)))
    rate_wpm = 172.0 * math.exp(0.08 * energy - 0.12 * age + n(0.03))
    return voice, rate_wpm


def make_speaker(index: int, seed: int, pool: str = "A") -> Speaker:
    """Speaker ``index`` of the corpus with seed ``seed``: one latent, a face and a voice from it.

    Latent factors: z0 size (and sex), z1 age, z2 vertical length, z3 energy, z4 hair colour,
    z5 skin tone. z0-z3 reach both face and voice (``speaker_voice``); z4 and z5 only the face.
    """
    rng = np.random.default_rng([seed, 1, index])
    z = rng.standard_normal(6)
    size, age_z, length, energy, hair_z, skin_z = z
    female = size + 0.35 * rng.standard_normal() < 0
    age = logistic(1.3 * age_z)
    n = lambda s: float(s * rng.standard_normal())  # noqa: E731  small idiosyncrasies
    # --- voice (draws from rng first, then the face does)
    voice, rate = speaker_voice(z, female, rng, name=f"s2v{seed % 100000}x{index}")
    # --- face
    skin_tone = logistic(1.2 * skin_z)
    dark, light = np.array([110, 72, 50]), np.array([246, 208, 182])
    skin = tuple(int(v) for v in dark + (light - dark) * skin_tone)
    lip = tuple(int(v) for v in np.clip(np.array(skin) * [0.85, 0.55, 0.58] + [30, 10, 15] + rng.normal(0, 8, 3), 0, 255))
    if female:
        hair_style = 1 if rng.random() < 0.8 else 0
    else:
        hair_style = 2 if (age > 0.6 and rng.random() < 0.6) else 0
    face = FaceIdentity(
        face_w=0.33 + 0.018 * size + n(0.005),
        face_h=0.35 + 0.02 * length + 0.008 * size + n(0.004),
        jaw=float(np.clip(0.78 + 0.07 * size + n(0.02), 0.55, 0.97)),
        nose_len=0.13 + 0.012 * length + 0.006 * age + n(0.003),
        nose_w=max(0.03, 0.045 + 0.006 * size + n(0.002)),
        brow_thick=max(0.007, 0.014 + 0.004 * size + n(0.001)),
        lip_thick=max(0.01, 0.02 - 0.003 * size + n(0.001)),
        eye_size=0.05 + 0.004 * energy - 0.002 * size - 0.003 * age + n(0.001),
        eye_gap=0.125 + 0.006 * size + n(0.003),
        mouth_w=0.095 + 0.006 * size + n(0.003),
        skin_tone=skin_tone, skin_rgb=skin,
        hair_rgb=_HAIR[int(np.clip((hair_z + 2.4) / 4.8 * len(_HAIR), 0, len(_HAIR) - 1))],
        hair_gray=float(np.clip((age - 0.55) * 2.2, 0, 1)), hair_style=hair_style,
        iris_rgb=_IRIS[int(rng.integers(len(_IRIS)))], lip_rgb=lip,
        beard=float(0.4 + 0.6 * rng.random()) if (not female and rng.random() < 0.25 + 0.35 * age) else 0.0,
        glasses=bool(rng.random() < 0.12 + 0.3 * age), age=age,
    )
    return Speaker(speaker=f"S{index + 1:04d}", index=index, pool=pool,
                   gender="female" if female else "male", latent=z, face=face, voice=voice,
                   rate_wpm=rate, blink_rate=float(rng.uniform(0.2, 0.5)),
                   motion=float(math.exp(0.25 * energy) * rng.uniform(0.8, 1.2)))


def assign_pools(n_speakers: int, fractions, seed: int) -> list[str]:
    """Pool of each speaker index: A, B, C in the given proportions, each non-empty when possible."""
    f = np.asarray(fractions, float) / np.sum(fractions)
    counts = np.floor(f * n_speakers).astype(int)
    for i in np.argsort(-(f * n_speakers - counts))[: n_speakers - counts.sum()]:
        counts[i] += 1
    for need in (1, 0, 2):  # prefer B, then A, then C when a pool would be empty
        if counts[need] == 0 and f[need] > 0 and counts.max() > 1:
            counts[np.argmax(counts)] -= 1
            counts[need] += 1
    labels = np.repeat(np.array(["A", "B", "C"]), counts)
    return [str(p) for p in np.random.default_rng([seed, 3]).permutation(labels)]


def make_speakers(cfg: CorpusConfig) -> list[Speaker]:
    """The corpus's speakers: ``n_speakers`` in pools A, B and C, then ``unseen_speakers`` more in pool C."""
    pools = assign_pools(cfg.n_speakers, cfg.pool_fractions, cfg.seed) + ["C"] * int(cfg.unseen_speakers)
    return [make_speaker(i, cfg.seed, pools[i]) for i in range(len(pools))]


# ----------------------------------------------------------------------------------- clip plan
@dataclass
class ClipSpec:
    clip: str
    index: int
    speaker: str
    emotion: str
    intensity: str
    sentence_id: int
    sentence: str
    pool: str
    split: str


def sentence_splits(n_sentences: int, val_fraction: float, test_fraction: float) -> dict[int, str]:
    """Pool B is split by utterance: test and validation sentences are never trained on."""
    order = np.random.default_rng(4321).permutation(n_sentences)
    n_test = max(1, int(round(test_fraction * n_sentences))) if n_sentences >= 3 else 0
    n_val = max(1, int(round(val_fraction * n_sentences))) if n_sentences >= 3 else 0
    out = {}
    for rank, s in enumerate(order):
        out[int(s)] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def plan_clips(cfg: CorpusConfig, speakers: list[Speaker]) -> list[ClipSpec]:
    texts = sentences(cfg.n_sentences)
    b_split = sentence_splits(cfg.n_sentences, cfg.b_val_fraction, cfg.b_test_fraction)
    combos = [(e, i) for e in cfg.emotions for i in cfg.intensities]
    specs = []
    for spk in speakers:
        rng = np.random.default_rng([cfg.seed, 5, spk.index])
        n_clips = cfg.clips_per_speaker if spk.index < cfg.n_speakers else cfg.unseen_clips_per_speaker
        order = np.concatenate([rng.permutation(len(combos)) for _ in range(math.ceil(n_clips / len(combos)))])
        sent = rng.permutation(np.resize(np.arange(cfg.n_sentences), n_clips))
        seen = {}
        for k in range(n_clips):
            emotion, intensity = combos[order[k]]
            s = int(sent[k])
            if spk.pool == "B":
                split = b_split[s]
            elif spk.pool == "A":
                split = "val" if rng.random() < cfg.a_val_fraction else "train"
            else:
                split = "test"
            base = f"{spk.speaker}_{s:03d}_{EMOTION_CODES[emotion]}_{INTENSITY_CODES[intensity]}"
            seen[base] = seen.get(base, 0) + 1
            specs.append(ClipSpec(f"{base}_{seen[base]:02d}", len(specs), spk.speaker, emotion, intensity,
                                  s, texts[s], spk.pool, split))
    return specs


# ----------------------------------------------------------------------------------- one clip
def _pink_noise(n: int, rng) -> np.ndarray:
    # Paul Kellet's economy filter on white noise: about -3 dB per octave
    b = [0.049922035, -0.095993537, 0.050612699, -0.004408786]
    a = [1, -2.494956002, 2.017265875, -0.522189400]
    x = lfilter(b, a, rng.standard_normal(n + 2000))[2000:]
    return (x / (np.std(x) + 1e-9)).astype(np.float32)


def mouth_track(phonemes: list[tuple[float, str]], end: float, n_frames: int, fps: int):
    """Per-frame (open, width, round, viseme id) from phoneme start times, with co-articulation.

    Targets of each phoneme are held over its interval on a 5 ms grid and smoothed by a
    25 ms Gaussian (neighbouring phonemes blend), then bilabials are forced shut on the
    frames their interval covers (or the nearest frame for a very short one), so p/b/m
    closures land on the right frames.
    """
    step = 0.005
    grid = np.arange(0.0, n_frames / fps + step, step)
    names = ["rest"] + [viseme_of(p) for _, p in phonemes] + ["rest"]
    starts = np.array([0.0] + [t for t, _ in phonemes] + [end])
    which = np.clip(np.searchsorted(starts, grid, side="right") - 1, 0, len(names) - 1)
    params = np.array([VISEMES[names[i]] for i in which])
    smooth = gaussian_filter1d(params, sigma=0.025 / step, axis=0, mode="nearest")
    t = (np.arange(n_frames) + 0.5) / fps
    track = np.stack([np.interp(t, grid, smooth[:, k]) for k in range(3)], 1)
    frame_which = np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(names) - 1)
    vis = np.array([VISEME_NAMES.index(names[i]) for i in frame_which], np.int8)
    for i, (s, ph) in enumerate(phonemes):
        if viseme_of(ph) != "PBM":
            continue
        e = phonemes[i + 1][0] if i + 1 < len(phonemes) else s + 0.06
        inside = np.where((t >= s) & (t < e))[0]
        if len(inside) == 0:
            inside = [int(np.clip(np.argmin(np.abs(t - (s + e) / 2)), 0, n_frames - 1))]
        track[inside, 0] = 0.0
        vis[inside] = VISEME_NAMES.index("PBM")
    return np.clip(track[:, 0], 0, 1), track[:, 1], track[:, 2], vis


def blink_track(n_frames: int, fps: int, rate: float, rng) -> np.ndarray:
    """Eye closure per frame (0 open, 1 shut): blinks as a Poisson process with a refractory gap."""
    closure = np.zeros(n_frames)
    profile = np.array([0.55, 1.0, 0.8, 0.4, 0.12])
    t = rng.exponential(1.0 / rate) * 0.6
    while t * fps < n_frames:
        k = int(t * fps)
        seg = closure[k:k + len(profile)]
        closure[k:k + len(profile)] = np.maximum(seg, profile[:len(seg)])
        t += 0.6 + rng.exponential(1.0 / rate)
    return closure


def head_track(n_frames: int, fps: int, amplitude: float, pitch_offset: float, envelope: np.ndarray, rng):
    """(T, 3) yaw, pitch, roll in degrees: slow sinusoids plus nods that follow the speech envelope."""
    t = np.arange(n_frames) / fps
    out = np.zeros((n_frames, 3))
    for k, amp in enumerate((3.0, 2.0, 1.5)):
        for _ in range(3):
            f, ph = rng.uniform(0.12, 0.8), rng.uniform(0, 2 * np.pi)
            out[:, k] += amplitude * amp / 2 * np.sin(2 * np.pi * f * t + ph)
    nod = gaussian_filter1d(envelope - envelope.mean(), 2.0)
    out[:, 1] += pitch_offset + 3.0 * amplitude * nod / (np.abs(nod).max() + 1e-6)
    return out


def emotional_speech(text: str, speaker: Speaker, emotion: str, level: float, rng: np.random.Generator,
                     sample_rate: int = 16000, engine: Espeak | None = None):
    """``text`` in ``speaker``'s voice with ``emotion``'s prosody and voice quality at ``level``
    (0-1), and a little random variation of rate, pitch and loudness drawn from ``rng``.

    Returns ``(utterance, speech)``: espeak-ng's ``Utterance`` (phoneme and word times) and its
    samples resampled to ``sample_rate`` (float32).
    """
    engine = engine or Espeak.get()
    pro = EMOTION_PROSODY[emotion]
    utt = engine.speak(
        text, emotional_voice(speaker.voice, emotion, level),
        rate=speaker.rate_wpm * (1 + (pro["rate"] - 1) * level) * math.exp(0.04 * rng.standard_normal()),
        pitch=50 + pro["pitch"] * level + 3 * rng.standard_normal(),
        pitch_range=50 + pro["range"] * level + 5 * rng.standard_normal(),
        volume=(100 + (pro["volume"] - 100) * level) * math.exp(0.05 * rng.standard_normal()),
        seed=int(rng.integers(2 ** 31)))
    g = math.gcd(sample_rate, utt.sample_rate)
    return utt, resample_poly(utt.audio, sample_rate // g, utt.sample_rate // g).astype(np.float32)


def synthesize_clip(spec: ClipSpec, speaker: Speaker, cfg: CorpusConfig, renderer: FaceRenderer,
                    engine: Espeak | None = None) -> dict:
    """Speak and render one clip. Returns frames, audio and the per-frame ground truth."""
    rng = np.random.default_rng([cfg.seed, 2, spec.index])
    level = INTENSITY_SCALE[spec.intensity] if spec.emotion != "neutral" else 0.0
    sr, fps = cfg.sample_rate, cfg.fps
    utt, speech = emotional_speech(spec.sentence, speaker, spec.emotion, level, rng, sr, engine)
    lead, tail = rng.uniform(0.15, 0.35), rng.uniform(0.15, 0.35)
    spf = sr // fps
    n_frames = int(math.ceil((lead + len(speech) / sr + tail) * fps))
    audio = np.zeros(n_frames * spf, np.float32)
    k0 = int(round(lead * sr))
    audio[k0:k0 + len(speech)] = speech[: len(audio) - k0]
    rms = float(np.sqrt(np.mean(speech ** 2))) if len(speech) else 0.0
    snr = rng.uniform(*cfg.snr_db)
    audio += _pink_noise(len(audio), rng) * (rms / 10 ** (snr / 20) + 1e-4)
    audio = np.clip(audio, -1.0, 1.0)

    phonemes = [(t + lead, p) for t, p in utt.phonemes]
    words = [(t + lead, w) for t, w in utt.words]
    mouth_open, mouth_width, mouth_round, viseme = mouth_track(phonemes, lead + len(speech) / sr, n_frames, fps)
    envelope = np.sqrt(np.mean(audio.reshape(n_frames, spf) ** 2, 1))
    blink = blink_track(n_frames, fps, speaker.blink_rate, rng)
    amp, pitch_off = EMOTION_MOTION[spec.emotion]
    pose = head_track(n_frames, fps, speaker.motion * (1 + (amp - 1) * level),
                      pitch_off * level, envelope, rng)
    expr = np.tile(expression_vector(spec.emotion, level), (n_frames, 1))
    expr += gaussian_filter1d(rng.standard_normal(expr.shape) * 0.05, 4.0, axis=0) * 3
    # emphasis: a brow raise on the loudest word
    t = (np.arange(n_frames) + 0.5) / fps
    emphasis = None
    if words:
        loud = []
        for i, (ws, w) in enumerate(words):
            we = words[i + 1][0] if i + 1 < len(words) else lead + len(speech) / sr
            a, b = int(ws * fps), max(int(ws * fps) + 1, int(we * fps))
            loud.append(envelope[a:b].mean() if a < n_frames else 0.0)
        emphasis = words[int(np.argmax(loud))]
        expr[:, EXPRESSION_CHANNELS.index("brow_raise")] += 0.6 * np.exp(-((t - emphasis[0] - 0.12) / 0.12) ** 2)
    gaze = np.repeat(rng.normal(0, 0.3, (n_frames // 20 + 1, 2)), 20, 0)[:n_frames]
    if spec.emotion == "sad":
        gaze[:, 1] += 0.5 * level

    frames = np.empty((n_frames, renderer.resolution, renderer.resolution, 3), np.uint8)
    landmarks = np.empty((n_frames, 68, 2), np.float32)
    for k in range(n_frames):
        state = FaceState(expr[k], mouth_open[k], mouth_width[k], mouth_round[k], blink[k],
                          yaw=pose[k, 0], pitch=pose[k, 1], roll=pose[k, 2], gaze=tuple(gaze[k]))
        frames[k], landmarks[k] = renderer.render(speaker.face, state)
    gt = dict(landmarks=landmarks, mouth_open=mouth_open.astype(np.float32), viseme=viseme,
              blink=blink.astype(np.float32), head_pose=pose.astype(np.float32),
              expression=expr.astype(np.float32),
              box=np.array([0, 0, renderer.resolution, renderer.resolution], np.float32),
              phoneme_times=np.array([p[0] for p in phonemes], np.float32),
              phoneme_names=np.array([p[1] for p in phonemes]),
              word_times=np.array([w[0] for w in words], np.float32),
              word_texts=np.array([w[1] for w in words]),
              emphasis_time=np.float32(emphasis[0] if emphasis else -1))
    return dict(frames=frames, audio=audio, gt=gt, n_frames=n_frames, duration=n_frames / fps)


def speak(text: str, speaker_index: int = 0, emotion: str = "neutral", intensity: str = "medium", seed: int = 0,
          sample_rate: int = 16000, pause: float = 0.25, snr_db: float | None = 35.0) -> np.ndarray:
    """A typed sentence said by a SynthTalk voice: float32 mono samples at ``sample_rate``.

    The voice is speaker ``speaker_index`` of the corpus made with ``seed`` (``make_speaker``:
    the same person as clip speaker ``S{index + 1:04d}`` there), with ``emotion``'s prosody and
    voice quality at ``intensity`` (``low``, ``medium``, ``high`` or the codes ``LO``, ``MD``,
    ``HI``), as in the corpus. ``pause`` seconds of quiet go before and after, and faint pink
    noise ``snr_db`` dB below the speech (None: none), since the corpus clips have some.
    The same arguments give the same samples.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("nothing to say: the text is empty")
    if emotion not in EMOTION_PROSODY:
        raise ValueError(f"unknown emotion {emotion!r}; choose one of {list(EMOTION_PROSODY)}")
    levels = {**{k: k for k in INTENSITY_SCALE}, **{v.lower(): k for k, v in INTENSITY_CODES.items()}}
    if str(intensity).lower() not in levels:
        raise ValueError(f"unknown intensity {intensity!r}; choose one of {list(INTENSITY_SCALE)} "
                         f"(or {list(INTENSITY_CODES.values())})")
    intensity = levels[str(intensity).lower()]
    if int(speaker_index) < 0:
        raise ValueError(f"speaker_index must be 0 or more, got {speaker_index}")
    speaker = make_speaker(int(speaker_index), seed)
    rng = np.random.default_rng([seed, 4, int(speaker_index)])
    level = INTENSITY_SCALE[intensity] if emotion != "neutral" else 0.0
    _, speech = emotional_speech(text.strip(), speaker, emotion, level, rng, sample_rate)
    if len(speech) == 0:
        raise ValueError(f"espeak-ng made no sound for {text!r}")
    gap = np.zeros(int(round(pause * sample_rate)), np.float32)
    audio = np.concatenate([gap, speech, gap])
    if snr_db is not None:
        rms = float(np.sqrt(np.mean(speech ** 2)))
        audio += _pink_noise(len(audio), rng) * rms / 10 ** (snr_db / 20)
    return np.clip(audio, -1.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------------- corpus
_WORKER: dict = {}


def _worker_init(cfg_dict: dict, out_dir: str):
    ignore_interrupts()
    cfg = CorpusConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in cfg_dict.items()})
    _WORKER.update(cfg=cfg, out=Path(out_dir), renderer=FaceRenderer(cfg.resolution, cfg.supersample),
                   speakers={s.speaker: s for s in make_speakers(cfg)})


def _make_clip(spec: ClipSpec) -> dict:
    from .audio import write_wav
    from .video import write_video

    cfg, out = _WORKER["cfg"], _WORKER["out"]
    clip_dir = out / "clips"
    row = dict(clip=spec.clip, speaker=spec.speaker, emotion=spec.emotion, intensity=spec.intensity,
               sentence_id=spec.sentence_id, sentence=spec.sentence, pool=spec.pool, split=spec.split,
               video=f"clips/{spec.clip}.mp4", audio=f"clips/{spec.clip}.wav", gt=f"clips/{spec.clip}.npz")
    gt_path = clip_dir / f"{spec.clip}.npz"
    if gt_path.exists() and (clip_dir / f"{spec.clip}.mp4").exists() and (clip_dir / f"{spec.clip}.wav").exists():
        with np.load(gt_path) as z:  # resume: this clip was finished by an earlier run
            n = int(z["mouth_open"].shape[0])
        return {**row, "duration": n / cfg.fps, "frames": n}
    data = synthesize_clip(spec, _WORKER["speakers"][spec.speaker], cfg, _WORKER["renderer"])
    write_video(clip_dir / f"{spec.clip}.mp4", data["frames"], cfg.fps, data["audio"], cfg.sample_rate)
    write_wav(clip_dir / f"{spec.clip}.wav", data["audio"], cfg.sample_rate)
    tmp = clip_dir / f"{spec.clip}.tmp.npz"
    np.savez_compressed(tmp, **data["gt"])
    os.replace(tmp, gt_path)  # the npz is written last: its presence marks a finished clip
    return {**row, "duration": data["duration"], "frames": data["n_frames"]}


def ignore_interrupts() -> None:
    """In a worker process: leave Ctrl-C to the parent, which stops the pool and reports it in one line.
    SIGTERM is the pool's own way to stop its workers: back to the default (a forked worker inherits the
    CLI's handler, which would turn it into a KeyboardInterrupt and a traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _pool_context():
    # fork works from notebooks and unguarded scripts alike. SynthTalk's workers use no torch or
    # OpenMP, so threads in the parent cannot deadlock them; ingestion's may (MTCNN is torch), and
    # each sets torch to one thread before its first use (ingest._worker_init). macOS and Windows spawn.
    if sys.platform.startswith("linux"):
        return mp.get_context("fork")
    return mp.get_context("spawn")


def generate_corpus(out_dir, cfg: CorpusConfig, workers: int | None = None, progress: bool = True) -> Path:
    """Write a SynthTalk corpus to ``out_dir`` (resumes an interrupted run with the same settings).

    Returns the folder. A folder that holds a finished corpus with the same settings is
    reused as it is; one made with other settings is an error, so data is never mixed.
    """
    cfg.validate()
    out = Path(out_dir)
    settings = dataclasses.asdict(cfg)
    manifest = out / "corpus.json"
    if manifest.exists():
        old = json.loads(manifest.read_text())
        if _comparable(old.get("config", {})) == _comparable(settings) and old.get("complete"):
            return out
        if _comparable(old.get("config", {})) != _comparable(settings):
            raise ValueError(f"{out} already holds a corpus made with other settings; choose another folder "
                             f"or delete it (differences: {_diff(old.get('config', {}), settings)})")
    (out / "clips").mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps(dict(name="SynthTalk", version=CORPUS_VERSION, config=settings,
                                        complete=False), indent=1))
    speakers = make_speakers(cfg)
    specs = plan_clips(cfg, speakers)
    pd.DataFrame([s.row() for s in speakers]).to_csv(out / "speakers.csv", index=False)
    workers = max(1, min(workers or (os.cpu_count() or 1), len(specs)))
    bar = dict(total=len(specs), desc="SynthTalk clips", unit="clip")
    if workers == 1:
        _worker_init(settings, str(out))
        rows = [_make_clip(s) for s in progress_bar(specs, progress, **bar)]
    else:
        with _pool_context().Pool(workers, _worker_init, (settings, str(out))) as pool:
            rows = list(progress_bar(pool.imap(_make_clip, specs, chunksize=4), progress, **bar))
            pool.close()  # let the workers end normally, removing their espeak data folders
            pool.join()
        remove_stale_data_folders()  # and those of workers that could not
    meta = pd.DataFrame(rows)
    meta.insert(len(meta.columns), "fps", cfg.fps)
    meta.insert(len(meta.columns), "sample_rate", cfg.sample_rate)
    meta.to_csv(out / "metadata.csv", index=False)
    manifest.write_text(json.dumps(dict(
        name="SynthTalk", version=CORPUS_VERSION, config=settings, complete=True, n_clips=len(meta),
        n_speakers=len(speakers), fps=cfg.fps, sample_rate=cfg.sample_rate, resolution=cfg.resolution,
        emotions=list(cfg.emotions), intensities=list(cfg.intensities),
        face_attributes=list(FACE_ATTRIBUTES), visemes=list(VISEME_NAMES),
        expression_channels=list(EXPRESSION_CHANNELS)), indent=1))
    return out


#: settings added after corpora were made: a corpus that does not name one was made with this value
LATER_SETTINGS = dict(unseen_speakers=0, unseen_clips_per_speaker=6)


def _comparable(d: dict) -> str:
    d = {**LATER_SETTINGS, **d}
    return json.dumps({k: list(v) if isinstance(v, (list, tuple)) else v for k, v in d.items()}, sort_keys=True)


def _diff(a: dict, b: dict) -> dict:
    a = {**LATER_SETTINGS, **a}
    return {k: (a.get(k), b.get(k)) for k in set(a) | set(b)
            if json.dumps(a.get(k)) != json.dumps(list(b[k]) if isinstance(b.get(k), tuple) else b.get(k))}


__all__ = ["generate_corpus", "make_speakers", "make_speaker", "plan_clips", "synthesize_clip", "speak",
           "emotional_speech", "sentences",
           "viseme_of", "mouth_track", "blink_track", "Speaker", "ClipSpec", "EMOTION_PROSODY", "EMOTION_FACE",
           "VISEMES", "VISEME_NAMES", "INTENSITIES"]
