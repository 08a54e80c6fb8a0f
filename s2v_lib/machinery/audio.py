"""Audio: any speech file as 16 kHz mono, read as a stream; log-mel features; voice statistics.

I/O goes through soundfile (wav, flac, ogg, mp3 with libsndfile >= 1.1) with PyAV as the
fallback for everything FFmpeg reads (m4a, mp4, flv...); torchaudio computes the transforms.
A recording is decoded, mixed to mono and resampled ``BLOCK_S`` seconds at a time
(``stream_audio``), so a two-hour lecture needs no more memory than a sentence; ``Recording``
keeps the converted samples in an anonymous temporary file for the passes that need them all.
"""
from __future__ import annotations

import functools
import logging
import math
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from ..config import FeatureConfig

log = logging.getLogger(__name__)

#: Seconds of sound decoded, converted and resampled at a time.
BLOCK_S = 10.0


class AudioError(ValueError):
    """An audio file that cannot be used, with the reason in words."""


# ----------------------------------------------------------------------------------- decoding
def _soundfile_blocks(handle, frames: int) -> Iterator[np.ndarray]:
    with handle:
        while True:
            block = handle.read(frames, dtype="float32", always_2d=True)
            if not len(block):
                return
            yield block


def _pyav_blocks(container, stream) -> Iterator[np.ndarray]:
    channels = stream.codec_context.channels
    with container:
        for frame in container.decode(stream):
            data = frame.to_ndarray()
            planar = frame.format.is_planar and data.ndim == 2 and data.shape[0] == channels
            data = data.T if planar else data.reshape(-1, channels)
            if np.issubdtype(data.dtype, np.integer):
                data = data.astype(np.float32) / np.iinfo(data.dtype).max
            yield data.astype(np.float32, copy=False)


def open_audio(path, block_s: float = BLOCK_S) -> tuple[int, int, Iterator[np.ndarray]]:
    """``(sample_rate, channels, blocks)``: a file's samples as float32 (n, channels) arrays of about
    ``block_s`` seconds (PyAV: one decoded frame each), read as they are consumed. Errors in words
    (``AudioError``) for a missing, unreadable or sound-less file, also when they show mid-stream."""
    import soundfile as sf

    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"{path} is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path} is empty (0 bytes): there is no recording in it")
    try:
        handle = sf.SoundFile(str(path))
        sr, channels = handle.samplerate, handle.channels
        blocks = _soundfile_blocks(handle, max(1, int(block_s * sr)))
    except Exception:  # noqa: BLE001 - formats libsndfile does not know go to FFmpeg
        import av

        try:
            container = av.open(str(path))
        except Exception as exc:  # noqa: BLE001
            raise AudioError(f"cannot read {path} as audio ({type(exc).__name__}: {exc})") from None
        if not container.streams.audio:
            container.close()
            raise AudioError(f"{path} has no audio track")
        stream = container.streams.audio[0]
        sr, channels = stream.codec_context.sample_rate, stream.codec_context.channels
        blocks = _pyav_blocks(container, stream)
    return sr, channels, _in_words(blocks, path)


def _in_words(blocks: Iterator[np.ndarray], path: Path) -> Iterator[np.ndarray]:
    try:
        yield from blocks
    except Exception as exc:  # noqa: BLE001 - a file that breaks off or is corrupt further in
        raise AudioError(f"cannot read {path} as audio ({type(exc).__name__}: {exc})") from None


# ----------------------------------------------------------------------------------- conversion
class StreamResampler:
    """torchaudio's band-limited (windowed sinc) resampling, a block at a time: pushing a signal
    in pieces of any size and then ``flush()`` gives the samples ``resample`` gives for the whole
    (up to float rounding), keeping only one kernel's context between pieces.

    torchaudio convolves the zero-padded signal with a kernel of ``2 width + orig`` taps at stride
    ``orig`` (the rates divided by their gcd), each step giving ``new`` samples: step k reads input
    ``k orig - width`` to ``(k + 1) orig + width``. So each piece is resampled with ``context``
    samples (whole steps, at least ``width``) on either side, and only the steps it fully holds kept.
    """

    def __init__(self, orig_sr: int, target_sr: int, lowpass_filter_width: int = 6, rolloff: float = 0.99):
        g = math.gcd(int(orig_sr), int(target_sr))
        self.orig_sr, self.target_sr = int(orig_sr), int(target_sr)
        self.orig, self.new = self.orig_sr // g, self.target_sr // g
        width = math.ceil(lowpass_filter_width * self.orig / (min(self.orig, self.new) * rolloff))
        self.context = -(-width // self.orig) * self.orig + self.orig  # whole steps, more than one kernel
        self._buf = np.zeros(self.context, np.float32)  # the signal before its start is zeros, as torchaudio pads
        self._steps = 0      # steps given out so far
        self._seen = 0       # input samples pushed so far

    def _run(self, n_steps: int) -> np.ndarray:
        import torch
        import torchaudio.functional as AF

        c = self.context // self.orig
        segment = self._buf[:(n_steps + 2 * c) * self.orig]
        out = AF.resample(torch.from_numpy(np.ascontiguousarray(segment)), self.orig, self.new).numpy()
        out = out[c * self.new:(c + n_steps) * self.new]
        self._buf = self._buf[n_steps * self.orig:]
        self._steps += n_steps
        return out

    def push(self, x: np.ndarray) -> np.ndarray:
        """Resample the next piece of the signal; returns the samples that are final now."""
        if self.orig == self.new:
            return x
        self._buf = np.concatenate([self._buf, np.asarray(x, np.float32)])
        self._seen += len(x)
        n_steps = len(self._buf) // self.orig - 2 * (self.context // self.orig)
        return self._run(n_steps) if n_steps > 0 else np.zeros(0, np.float32)

    def flush(self) -> np.ndarray:
        """The last samples: the whole signal resamples to ceil(n * target / orig) of them."""
        if self.orig == self.new:
            return np.zeros(0, np.float32)
        total = -(-self._seen * self.new // self.orig)
        left = total - self._steps * self.new
        if left <= 0:
            return np.zeros(0, np.float32)
        n_steps = -(-left // self.new)
        need = (n_steps + 2 * (self.context // self.orig)) * self.orig
        self._buf = np.concatenate([self._buf, np.zeros(max(0, need - len(self._buf)), np.float32)])
        return self._run(n_steps)[:left]


def _as_float(data: np.ndarray, name: str) -> np.ndarray:
    """Integers scaled to [-1, 1] (offset binary for unsigned: 8-bit wav's silence is the middle
    value), then float32 (n, channels)."""
    data = np.asarray(data)
    if np.issubdtype(data.dtype, np.unsignedinteger):
        mid = np.float32(np.iinfo(data.dtype).max // 2 + 1)
        data = (data.astype(np.float32) - mid) / mid
    elif np.issubdtype(data.dtype, np.integer):
        data = data / np.float32(np.iinfo(data.dtype).max)
    data = np.asarray(data, np.float32)
    data = data[:, None] if data.ndim == 1 else data
    if data.ndim != 2:
        raise AudioError(f"{name}: expected samples shaped (n,) or (n, channels), got {data.shape}")
    return data


def stream_mono(blocks, sr: int, sample_rate: int = 16000, name: str = "audio", quiet: bool = False,
                report: dict | None = None) -> Iterator[np.ndarray]:
    """Blocks of samples (n,) or (n, channels) at ``sr`` Hz -> float32 mono blocks at ``sample_rate``:
    integers scaled to [-1, 1], channels averaged, NaN/inf samples set to zero, resampled, each step
    said once (as ``name: ...``).

    ``report``, if given, is filled as the blocks go by with what the samples held before conversion:
    ``sample_rate``, ``channels``, ``seconds``, ``nonfinite`` (the number of samples set to zero) and
    ``clipped`` (the fraction of samples at full scale, |x| >= 0.999); final once the stream ends.
    """
    say = (lambda msg: None) if quiet else log.info
    resampler = StreamResampler(sr, sample_rate) if sr != sample_rate else None
    n = values = clipped = nonfinite = 0
    said = set()
    if report is not None:
        report.update(sample_rate=int(sr), channels=0, seconds=0.0, clipped=0.0, nonfinite=0)
    for block in blocks:
        data = _as_float(block, name)
        if not len(data):
            continue
        if data.shape[1] > 1 and "mix" not in said:
            said.add("mix")
            say(f"{name}: audio has {data.shape[1]} channels; mixing to mono")
        if resampler is not None and "rate" not in said:
            said.add("rate")
            say(f"{name}: audio at {sr} Hz; resampling to {sample_rate} Hz")
        with np.errstate(invalid="ignore"):
            clipped += int(np.count_nonzero(np.abs(data) >= 0.999))
        n, values = n + len(data), values + data.size
        audio = data.mean(1) if data.shape[1] > 1 else data[:, 0]
        bad = ~np.isfinite(audio)
        if bad.any():
            nonfinite += int(bad.sum())
            audio = np.where(bad, np.float32(0), audio)
        if report is not None:
            report.update(channels=int(data.shape[1]), seconds=n / sr, clipped=clipped / values,
                          nonfinite=nonfinite)
        audio = audio.astype(np.float32, copy=False)
        out = audio if resampler is None else resampler.push(audio)
        if len(out):
            yield out
    if nonfinite:
        say(f"{name}: {nonfinite} NaN/inf samples set to zero")
    if resampler is not None:
        tail = resampler.flush()
        if len(tail):
            yield tail


def stream_audio(path, sample_rate: int = 16000, quiet: bool = False, report: dict | None = None,
                 block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
    """A file, read and converted as it is consumed: float32 mono blocks at ``sample_rate`` (see
    ``stream_mono`` for ``report``; ``AudioError`` in words for a file that cannot be used)."""
    sr, _, blocks = open_audio(path, block_s)
    return stream_mono(blocks, sr, sample_rate, Path(path).name, quiet, report)


def load_audio(path, sample_rate: int = 16000, quiet: bool = False, report: dict | None = None) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sample_rate`` Hz, saying what it converts.

    Integer and float files, any rate, any channel count are accepted; NaN/inf samples are
    zeroed and reported. Raises ``AudioError`` with a readable reason for a missing,
    unreadable or empty file. ``report``: see ``stream_mono``.
    """
    audio = list(stream_audio(path, sample_rate, quiet, report))
    if not audio:
        raise AudioError(f"{Path(path)} contains no audio samples")
    return np.concatenate(audio)


def to_mono(data: np.ndarray, sr: int, sample_rate: int = 16000, name: str = "audio", quiet: bool = False,
            report: dict | None = None) -> np.ndarray:
    """Samples (n,) or (n, channels) at ``sr`` Hz -> float32 mono at ``sample_rate`` (``stream_mono``
    on the whole array)."""
    data = _as_float(data, name)
    step = max(1, int(BLOCK_S * sr))
    audio = list(stream_mono((data[i:i + step] for i in range(0, len(data), step)), sr, sample_rate, name,
                             quiet, report))
    return np.concatenate(audio) if audio else np.zeros(0, np.float32)


def resample(audio: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc)."""
    if orig_sr == target_sr:
        return audio
    import torch
    import torchaudio.functional as AF

    return AF.resample(torch.from_numpy(np.ascontiguousarray(audio, np.float32)), orig_sr, target_sr).numpy()


class Recording:
    """Mono float32 samples at one rate, ``read(start, stop)`` a range at a time: an array's, or a
    stream's kept in an anonymous temporary file (removed by the system even if the process is killed),
    so that a long recording can be heard twice (students, then generator) without holding it in memory.

    ``Recording.of(blocks, sample_rate)`` stores a stream, counting its samples and their energy.
    """

    def __init__(self, samples: np.ndarray | None, sample_rate: int, *, file=None, length: int | None = None,
                 energy: float | None = None):
        self.sample_rate = int(sample_rate)
        self._array = None if samples is None else np.ascontiguousarray(samples, np.float32)
        self._file = file
        self.length = len(self._array) if self._array is not None else int(length)
        self.energy = float(np.dot(self._array.astype(np.float64), self._array)) if energy is None else energy

    @classmethod
    def of(cls, blocks, sample_rate: int) -> "Recording":
        f = tempfile.TemporaryFile(prefix="s2v-recording-")
        n, energy = 0, 0.0
        try:
            for block in blocks:
                block = np.ascontiguousarray(block, np.float32)
                f.write(block.tobytes())
                n, energy = n + len(block), energy + float(np.dot(block.astype(np.float64), block))
        except BaseException:
            f.close()
            raise
        return cls(None, sample_rate, file=f, length=n, energy=energy)

    def __len__(self) -> int:
        return self.length

    @property
    def seconds(self) -> float:
        return self.length / self.sample_rate

    @property
    def rms(self) -> float:
        return math.sqrt(self.energy / self.length) if self.length else 0.0

    def read(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Samples ``start:stop`` (clipped to the recording, as a slice is)."""
        start, stop, _ = slice(start, stop).indices(self.length)
        if stop <= start:
            return np.zeros(0, np.float32)
        if self._array is not None:
            return self._array[start:stop]
        out = np.empty(stop - start, np.float32)
        self._file.seek(4 * start)
        if self._file.readinto(memoryview(out).cast("B")) != out.nbytes:
            raise OSError(f"the recording's temporary file ended before sample {stop}")
        return out

    def blocks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """The samples in order, ``size`` (default ``BLOCK_S`` seconds) at a time."""
        size = size or int(BLOCK_S * self.sample_rate)
        for start in range(0, self.length, size):
            yield self.read(start, start + size)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> "Recording":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_wav(path, audio: np.ndarray, sample_rate: int) -> None:
    """16-bit PCM wav."""
    import soundfile as sf

    sf.write(str(path), np.clip(audio, -1, 1), sample_rate, subtype="PCM_16")


@functools.lru_cache(maxsize=16)
def mel_transform(sample_rate: int, n_mels: int, n_fft: int, win_length: int, hop_length: int, fmin: float,
                  fmax: float):
    """The first two steps of the log-mel as one torchaudio module, built once per setting: the power
    spectrum |STFT|^2 of Hann-windowed frames (``win_length`` samples every ``hop_length``, frame i centred
    on sample i * hop_length, the ends reflect-padded, each frame zero-padded to ``n_fft``), then
    ``n_mels`` triangular filters spaced evenly on the (Slaney) mel scale from ``fmin`` to ``fmax`` Hz."""
    import torchaudio

    return torchaudio.transforms.MelSpectrogram(
        sample_rate=sample_rate, n_fft=n_fft, win_length=win_length, hop_length=hop_length, f_min=fmin,
        f_max=fmax, n_mels=n_mels, power=2.0, center=True, norm="slaney", mel_scale="slaney")


def log_mel(audio: np.ndarray, sample_rate: int = 16000, features: FeatureConfig | None = None,
            n_frames: int | None = None) -> np.ndarray:
    """Log-mel spectrogram, (n_frames, n_mels) float32; frame i is centred at i * hop:

        X_i(k) = sum_n w(n) x(i hop - n_fft/2 + n) e^{-2 pi j k n / n_fft}   the STFT of frame i
        M_i(b) = sum_k H_b(k) |X_i(k)|^2                                      mel band b's power
        log-mel_i(b) = log max(M_i(b), 1e-10)

    with w a Hann window of ``win_length`` samples in the middle of the ``n_fft``, and H_b band b's
    triangular filter over the FFT bins k (``mel_transform`` computes M). With 16 kHz audio, a 10 ms
    hop and 25 fps video, video frame k owns mel frames 4k..4k+3. ``n_frames`` trims or pads (edge)
    to an exact length.
    """
    import torch

    f = features or FeatureConfig()
    transform = mel_transform(sample_rate, f.n_mels, f.n_fft, f.win_length(sample_rate), f.hop_length(sample_rate),
                              f.fmin, f.fmax)
    with torch.no_grad():
        mel = transform(torch.from_numpy(np.ascontiguousarray(audio, np.float32)))  # (n_mels, frames): M
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

