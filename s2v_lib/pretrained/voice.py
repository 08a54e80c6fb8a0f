"""Resemblyzer 0.1.4's GE2E speaker encoder (Wan et al. 2018), read from the file it ships.

``resemblyzer/pretrained.pt`` (17 MB, Apache-2.0) holds a 3-layer LSTM (40 mel bands -> 256) and
a linear layer, trained with the generalised end-to-end loss on thousands of real speakers. The
network is small, so it is rebuilt here (``GE2EVoiceEncoder``) and its weights are loaded with
``torch.load(weights_only=True)``; ``resemblyzer`` itself is never imported (its ``webrtcvad``
import needs ``pkg_resources``, i.e. setuptools < 81). Install the file with
``pip install --no-deps resemblyzer==0.1.4``.

What it computes, as Resemblyzer's ``VoiceEncoder.embed_utterance`` does:

* 16 kHz audio, its loudness raised to -30 dBFS when quieter (never lowered);
* a 40-band mel power spectrogram (25 ms window, 10 ms hop; not log);
* windows of 160 frames (1.6 s) every 1/1.3 s (the last one kept when at least 75 % full, the audio
  zero-padded to it); each window: LSTM -> last hidden state of the top layer -> linear -> ReLU ->
  unit length;
* the utterance's embedding: the mean of its windows', normalised to unit length (256-d).

Resemblyzer's ``preprocess_wav`` also shortens long silences with a voice-activity detector;
here that is left to the caller (the corpus's clips are short and tightly cut).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import file_digest, package_file

SAMPLE_RATE = 16000
N_MELS = 40
WINDOW_MS, HOP_MS = 25, 10
PARTIAL_FRAMES = 160
TARGET_DBFS = -30.0


class GE2EVoiceEncoder(nn.Module):
    """Mel windows (B, 160, 40) -> unit speaker embeddings (B, 256); ``embed(wav)`` for a whole utterance."""

    kind = "voice_encoder"

    def __init__(self, path=None, hidden: int = 256, layers: int = 3, embedding_dim: int = 256):
        super().__init__()
        self.lstm = nn.LSTM(N_MELS, hidden, layers, batch_first=True)
        self.linear = nn.Linear(hidden, embedding_dim)
        path = path or package_file("resemblyzer", "pretrained.pt", "the GE2E voice encoder")
        state = torch.load(path, map_location="cpu", weights_only=True)["model_state"]
        self.load_state_dict({k: v for k, v in state.items() if k.split(".")[0] in ("lstm", "linear")})
        self.register_buffer("weights_sha1", file_digest(path))
        self.eval()

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(mels)
        return F.normalize(F.relu(self.linear(hidden[-1])), dim=-1)

    @torch.no_grad()
    def partial_embeddings(self, wav: np.ndarray, sample_rate: int = SAMPLE_RATE, rate: float = 1.3,
                           min_coverage: float = 0.75) -> np.ndarray:
        """Mono audio (T,) at ``sample_rate`` -> the unit embeddings (k, 256) of its k 1.6 s windows, float32."""
        wav = prepare_audio(wav, sample_rate)
        mel_slices, padded = partial_slices(len(wav), rate, min_coverage)
        wav = np.pad(wav, (0, max(0, padded - len(wav))))
        mel = mel_spectrogram(wav)
        mels = torch.from_numpy(np.stack([mel[s] for s in mel_slices]))
        dev = next(self.parameters()).device
        return self(mels.to(dev)).cpu().numpy()

    def embed(self, wav: np.ndarray, sample_rate: int = SAMPLE_RATE, rate: float = 1.3,
              min_coverage: float = 0.75) -> np.ndarray:
        """Mono audio (T,) at ``sample_rate`` -> the utterance's unit embedding (256,), float32."""
        mean = self.partial_embeddings(wav, sample_rate, rate, min_coverage).mean(0)
        return (mean / np.linalg.norm(mean)).astype(np.float32)

    def embed_pieces(self, pieces, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
        """A recording heard a piece at a time (an iterable of mono arrays at ``sample_rate``, e.g. 10 s windows
        read one by one) -> its unit embedding (256,): the running mean of every piece's window embeddings,
        normalised, so only one piece is ever in memory. One piece gives ``embed``'s answer; several differ
        from ``embed`` of the whole only at the pieces' edges (each piece's windows start at its own start,
        and each is raised to -30 dBFS on its own). Digitally silent pieces (all zeros) are skipped; None
        when every piece is."""
        total, n = np.zeros(self.linear.out_features, np.float64), 0
        for piece in pieces:
            piece = np.asarray(piece, np.float32)
            if not np.any(piece):
                continue
            partial = self.partial_embeddings(piece, sample_rate)
            total, n = total + partial.sum(0, dtype=np.float64), n + len(partial)
        if n == 0:
            return None
        return (total / np.linalg.norm(total)).astype(np.float32)


def prepare_audio(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Mono float audio at any rate -> 16 kHz, raised to -30 dBFS when quieter (Resemblyzer's volume rule)."""
    import librosa

    wav = np.asarray(wav, np.float32)
    if wav.ndim != 1:
        raise ValueError(f"expected mono audio shaped (T,), got {wav.shape}")
    if sample_rate != SAMPLE_RATE:
        wav = librosa.resample(wav, orig_sr=sample_rate, target_sr=SAMPLE_RATE)
    rms = float(np.sqrt(np.mean((wav * 32767) ** 2))) if len(wav) else 0.0
    if rms == 0:
        raise ValueError("the audio is silent: a voice embedding needs speech")
    change = TARGET_DBFS - 20 * np.log10(rms / 32767)
    return (wav * 10 ** (change / 20)).astype(np.float32) if change > 0 else wav


def mel_spectrogram(wav: np.ndarray) -> np.ndarray:
    """16 kHz audio -> (frames, 40) mel power spectrogram, 25 ms window, 10 ms hop, float32."""
    import librosa

    mel = librosa.feature.melspectrogram(y=wav, sr=SAMPLE_RATE, n_fft=SAMPLE_RATE * WINDOW_MS // 1000,
                                         hop_length=SAMPLE_RATE * HOP_MS // 1000, n_mels=N_MELS)
    return mel.astype(np.float32).T


def partial_slices(n_samples: int, rate: float = 1.3, min_coverage: float = 0.75):
    """Where an utterance of ``n_samples`` is cut into 1.6 s windows: (mel frame slices, samples to pad to)."""
    hop = SAMPLE_RATE * HOP_MS // 1000
    n_frames = int(np.ceil((n_samples + 1) / hop))
    step = int(np.round(SAMPLE_RATE / rate / hop))
    if not 0 < step <= PARTIAL_FRAMES:
        raise ValueError(f"rate must lie between {SAMPLE_RATE / (hop * PARTIAL_FRAMES):g} and {SAMPLE_RATE / hop:g}")
    starts = list(range(0, max(1, n_frames - PARTIAL_FRAMES + step + 1), step))
    last = starts[-1] * hop
    coverage = (n_samples - last) / (PARTIAL_FRAMES * hop)
    if coverage < min_coverage and len(starts) > 1:
        starts = starts[:-1]
    return [slice(s, s + PARTIAL_FRAMES) for s in starts], (starts[-1] + PARTIAL_FRAMES) * hop


def voice_embedding(wav: np.ndarray, sample_rate: int = SAMPLE_RATE, encoder: GE2EVoiceEncoder | None = None):
    """Mono audio -> its unit 256-d GE2E speaker embedding (loads the encoder when none is given)."""
    return (encoder or GE2EVoiceEncoder()).embed(wav, sample_rate)
