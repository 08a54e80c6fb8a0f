"""Plots and inline media for the notebooks (matplotlib; videos are shown from their mp4 files)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from .config import EMOTIONS


def face_grid(cache, speakers=None, emotions=EMOTIONS, max_speakers: int = 6):
    """One face per (speaker, emotion): the middle frame of the most intense clip of each."""
    idx = cache.index
    speakers = list(speakers) if speakers is not None else sorted(idx.speaker.unique())[:max_speakers]
    order = {"high": 0, "medium": 1, "low": 2}
    fig, axes = plt.subplots(len(speakers), len(emotions), figsize=(1.4 * len(emotions), 1.45 * len(speakers)),
                             squeeze=False)
    for i, spk in enumerate(speakers):
        for j, emo in enumerate(emotions):
            ax = axes[i, j]
            ax.axis("off")
            rows = idx[(idx.speaker == spk) & (idx.emotion == emo)]
            if "intensity" in rows:
                rows = rows.assign(_o=rows.intensity.map(order).fillna(3)).sort_values("_o")
            if rows.empty:
                continue
            r = rows.iloc[0]
            ax.imshow(cache.frames[int(r.frame_start) + int(r.n_frames) // 2])
            if i == 0:
                ax.set_title(emo, fontsize=9)
        axes[i, 0].text(-0.1, 0.5, spk, transform=axes[i, 0].transAxes, ha="right", va="center", fontsize=8)
    fig.tight_layout()
    return fig


def landmark_overlay(frame: np.ndarray, landmarks: np.ndarray, ax=None, title: str | None = None):
    """A frame with its 68 landmarks: jaw, brows, nose, eyes, mouth in different colours."""
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.imshow(frame)
    groups = [(0, 17, "w"), (17, 27, "y"), (27, 36, "c"), (36, 48, "lime"), (48, 68, "r")]
    for a, b, c in groups:
        ax.scatter(landmarks[a:b, 0] - 0.5, landmarks[a:b, 1] - 0.5, s=6, c=c)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def mel_with_visemes(mel: np.ndarray, viseme: np.ndarray, mouth_open: np.ndarray, fps: int,
                     viseme_names, mel_per_frame: int = 4, title: str = ""):
    """Log-mel spectrogram over time, with the viseme timeline and mouth opening under it."""
    t_end = len(viseme) / fps
    fig, axes = plt.subplots(2, 1, figsize=(10, 4.2), sharex=True, gridspec_kw=dict(height_ratios=[2, 1.3]))
    axes[0].imshow(mel.T, origin="lower", aspect="auto", extent=[0, t_end, 0, mel.shape[1]], cmap="magma")
    axes[0].set_ylabel("mel band")
    axes[0].set_title(title, fontsize=10)
    t = (np.arange(len(viseme)) + 0.5) / fps
    axes[1].plot(t, mouth_open, color="k", lw=1.5, label="mouth opening (truth)")
    axes[1].set_ylim(-0.05, 1.3)
    prev = None
    for k, v in enumerate(viseme):
        if v != prev:
            axes[1].axvline(k / fps, color="0.8", lw=0.6)
            axes[1].text(k / fps + 0.004, 1.08 + 0.12 * (k % 2), viseme_names[int(v)], fontsize=6.5)
            prev = v
    axes[1].set_xlabel("time (s)")
    axes[1].set_ylabel("open")
    axes[1].legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def class_balance(meta):
    """Clips per emotion and intensity, and clips per pool and split."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    if "intensity" in meta:
        meta.groupby(["emotion", "intensity"]).size().unstack(fill_value=0).plot.bar(ax=axes[0], rot=0)
    else:
        meta.emotion.value_counts().sort_index().plot.bar(ax=axes[0], rot=0)
    axes[0].set_ylabel("clips")
    axes[0].set_title("emotions")
    meta.groupby(["pool", "split"]).size().unstack(fill_value=0).plot.bar(ax=axes[1], stacked=True, rot=0)
    axes[1].set_title("pools and splits")
    fig.tight_layout()
    return fig


def bars(values: dict, title: str = "", ylabel: str = "", chance: float | None = None):
    fig, ax = plt.subplots(figsize=(max(4, 0.55 * len(values)), 3))
    names = list(values)
    ax.bar(names, [values[n] for n in names], color="tab:blue")
    if chance is not None:
        ax.axhline(chance, color="tab:red", ls="--", label=f"chance ({chance:.2f})")
        ax.legend()
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", rotation=45)
    fig.tight_layout()
    return fig


def confusion(cm: np.ndarray, labels, title: str = ""):
    cm = np.asarray(cm, float)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.2, 3.8))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(labels)), labels, rotation=45, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def show_video(path, width: int = 256):
    """Show an mp4 inline (with its sound) by reference to the file, not embedded."""
    from IPython.display import Video

    rel = os.path.relpath(Path(path).resolve(), Path.cwd())
    return Video(rel, width=width, html_attributes="controls loop")
