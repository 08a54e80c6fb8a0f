"""Audio: loading any speech file as 16 kHz mono, log-mel features, and voice statistics.

I/O goes through soundfile (wav, flac, ogg, mp3 with libsndfile >= 1.1) with PyAV as the
fallback for everything FFmpeg reads (m4a, mp4, flv...); torchaudio computes the transforms.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..config import FeatureConfig

log = logging.getLogger(__name__)


class AudioError(ValueError):
    """An audio file that cannot be used, with the reason in words."""


def _read_with_pyav(path: Path) -> tuple[np.ndarray, int]:
    import av

    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise AudioError(f"{path} has no audio track")
        stream = container.streams.audio[0]
        chunks = [f.to_ndarray() for f in container.decode(stream)]
        sr = stream.codec_context.sample_rate
    if not chunks:
        return np.zeros((0, 1), np.float32), sr
    planar = chunks[0].ndim == 2 and chunks[0].shape[0] == stream.codec_context.channels and \
        stream.codec_context.format.is_planar
    data = np.concatenate(chunks, axis=1 if planar else 0)
    data = data.T if planar else data.reshape(-1, stream.codec_context.channels)
    if np.issubdtype(data.dtype, np.integer):
        data = data.astype(np.float32) / np.iinfo(data.dtype).max
    return data.astype(np.float32), sr


def load_audio(path, sample_rate: int = 16000, quiet: bool = False, report: dict | None = None) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sample_rate`` Hz, saying what it converts.

    Integer and float files, any rate, any channel count are accepted; NaN/inf samples are
    zeroed and reported. Raises ``AudioError`` with a readable reason for a missing,
    unreadable or empty file. ``report``: see ``to_mono``.
    """
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file")
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception:  # noqa: BLE001 - formats libsndfile does not know go to FFmpeg
        try:
            data, sr = _read_with_pyav(path)
        except AudioError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise AudioError(f"cannot read {path} as audio ({type(exc).__name__}: {exc})") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path} contains no audio samples")
    return to_mono(data, sr, sample_rate, name=path.name, quiet=quiet, report=report)


def to_mono(data: np.ndarray, sr: int, sample_rate: int = 16000, name: str = "audio", quiet: bool = False,
            report: dict | None = None) -> np.ndarray:
    """Samples (n,) or (n, channels) at ``sr`` Hz -> float32 mono at ``sample_rate``: integers
    scaled to [-1, 1], channels averaged, NaN/inf samples set to zero, resampled, each step said
    (as ``name: ...``).

    ``report``, if given, is filled with what the samples held before conversion:
    ``sample_rate``, ``channels``, ``seconds``, ``nonfinite`` (the number of samples set to
    zero) and ``clipped`` (the fraction of samples at full scale, |x| >= 0.999).
    """
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.unsignedinteger):  # offset binary (8-bit wav): silence is the middle value
        mid = np.float32(np.iinfo(data.dtype).max // 2 + 1)
        data = (data.astype(np.float32) - mid) / mid
    elif np.issubdtype(data.dtype, np.integer):
        data = data / np.float32(np.iinfo(data.dtype).max)
    data = np.asarray(data, np.float32)
    data = data[:, None] if data.ndim == 1 else data
    if data.ndim != 2:
        raise AudioError(f"{name}: expected samples shaped (n,) or (n, channels), got {data.shape}")
    say = (lambda msg: None) if quiet else log.info
    if report is not None:
        step = 1 << 20  # counted a block at a time: a long recording needs no second copy
        with np.errstate(invalid="ignore"):
            at_full_scale = sum(int(np.count_nonzero(np.abs(data[i:i + step]) >= 0.999))
                                for i in range(0, len(data), step))
        report.update(sample_rate=int(sr), channels=int(data.shape[1]), seconds=data.shape[0] / sr,
                      clipped=at_full_scale / max(data.size, 1))
    if data.shape[1] > 1:
        say(f"{name}: audio has {data.shape[1]} channels; mixing to mono")
        data = data.mean(1, keepdims=True)
    audio = data[:, 0]
    bad = ~np.isfinite(audio)
    if report is not None:
        report["nonfinite"] = int(bad.sum())
    if bad.any():
        say(f"{name}: {int(bad.sum())} NaN/inf samples set to zero")
        audio = np.where(bad, 0.0, audio).astype(np.float32)
    if sr != sample_rate:
        say(f"{name}: audio at {sr} Hz; resampling to {sample_rate} Hz")
        audio = resample(audio, sr, sample_rate)
    return audio.astype(np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc)."""
    if orig_sr == target_sr:
        return audio
    import torch
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(audio, np.float32)), orig_sr, target_sr).numpy()


def write_wav(path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav."""
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1, 1), sample_rate, subtype="PCM_16")


_MEL_CACHE: dict = {}


def log_mel(audio: np.ndarray, sample_rate: int = 16000, features: FeatureConfig | None = None,
            n_frames: int | None = None) -> np.ndarray:
    """Log-mel spectrogram, (n_frames, n_mels) float32; frame i is centred at i * hop.

    With 16 kHz audio, a 10 ms hop and 25 fps video, video frame k owns mel frames
    4k..4k+3. ``n_frames`` trims or pads (edge) to an exact length.
    """
    import torch
    import torchaudio

    f = features or FeatureConfig()
    key = (sample_rate, f.n_mels, f.n_fft, f.win_ms, f.hop_ms, f.fmin, f.fmax)
    if key not in _MEL_CACHE:
        _MEL_CACHE[key] = torchaudio.transforms.MelSpectrogram(
            sample_rate=sample_rate, n_fft=f.n_fft, win_length=f.win_length(sample_rate),
            hop_length=f.hop_length(sample_rate), f_min=f.fmin, f_max=f.fmax, n_mels=f.n_mels,
            power=2.0, center=True, norm="slaney", mel_scale="slaney")
    with torch.no_grad():
        mel = _MEL_CACHE[key](torch.from_numpy(np.ascontiguousarray(audio, np.float32)))
    out = torch.log(mel.clamp_min(1e-10)).T.numpy().astype(np.float32)
    if n_frames is not None:
        if out.shape[0] >= n_frames:
            out = out[:n_frames]
        else:
            out = np.concatenate([out, np.repeat(out[-1:], n_frames - out.shape[0], 0)])
    return out


def voice_statistics(audio: np.ndarray, sample_rate: int = 16000) -> dict[str, float]:
    """Utterance-level voice statistics: pitch (level, spread, range), loudness, timbre (MFCC
    means, spectral centroid and tilt), and tempo (voiced fraction, syllable-like onset rate).

    These are the classic hand-made features of speaker and emotion recognition; notebook 01
    uses them to prove that SynthTalk's voices carry face and emotion information.
    """
    import librosa

    hop = 160
    rms = librosa.feature.rms(y=audio, frame_length=400, hop_length=hop)[0]
    voiced = rms > max(0.1 * np.percentile(rms, 95), 1e-4)
    f0 = librosa.yin(audio, fmin=60, fmax=420, sr=sample_rate, frame_length=1024, hop_length=hop)
    n = min(len(f0), len(voiced))
    f0v = f0[:n][voiced[:n]]
    if len(f0v) < 5:
        f0v = f0[:n]
    semitones = 12 * np.log2(f0v / 100.0)
    mfcc = librosa.feature.mfcc(y=audio, sr=sample_rate, n_mfcc=13, n_fft=512, hop_length=hop)
    spec = np.abs(librosa.stft(audio, n_fft=512, hop_length=hop)) + 1e-9
    m = min(mfcc.shape[1], spec.shape[1], len(voiced))
    sel = voiced[:m] if voiced[:m].any() else np.ones(m, bool)
    mfcc, spec = mfcc[:, :m][:, sel], spec[:, :m][:, sel]
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=512)
    centroid = (spec * freqs[:, None]).sum(0) / spec.sum(0)
    low, high = spec[freqs < 1000].sum(0), spec[freqs >= 1000].sum(0)
    env = rms / (rms.max() + 1e-9)
    peaks = np.sum((env[1:-1] > env[:-2]) & (env[1:-1] >= env[2:]) & (env[1:-1] > 0.3))
    loud = 20 * np.log10(rms[voiced] + 1e-6) if voiced.any() else 20 * np.log10(rms + 1e-6)
    stats = dict(
        f0_median=float(np.median(semitones)), f0_std=float(np.std(semitones)),
        f0_range=float(np.percentile(semitones, 95) - np.percentile(semitones, 5)),
        loudness_mean=float(np.mean(loud)), loudness_std=float(np.std(loud)),
        centroid=float(np.mean(centroid)) / 1000.0, tilt=float(np.mean(np.log(high / low))),
        voiced_fraction=float(voiced.mean()), onset_rate=float(peaks / max(voiced.sum() * hop / sample_rate, 1e-3)),
        voiced_seconds=float(voiced.sum() * hop / sample_rate))
    stats.update({f"mfcc{i}": float(v) for i, v in enumerate(mfcc.mean(1))})
    return stats

