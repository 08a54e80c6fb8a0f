"""Plots and inline media for the notebooks (matplotlib; videos are shown from their mp4 files)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from ..config import EMOTIONS


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
            if i == 0:
                ax.set_title(emo, fontsize=9)
            rows = idx[(idx.speaker == spk) & (idx.emotion == emo)]
            if "intensity" in rows:
                rows = rows.assign(_o=rows.intensity.map(order).fillna(3)).sort_values("_o")
            if rows.empty:
                continue
            r = rows.iloc[0]
            ax.imshow(cache.frames[int(r.frame_start) + int(r.n_frames) // 2])
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


#: Videos up to this size are embedded in the notebook (it then plays wherever the notebook is opened or
#: exported); larger ones are linked, relative to the folder the notebook runs in.
EMBED_VIDEO_BYTES = 8 * 2 ** 20


def show_video(path, width: int = 256):
    """Show an mp4 inline with its sound: embedded when it is at most ``EMBED_VIDEO_BYTES`` (a notebook
    executed by papermill into another folder, or exported to HTML, still plays it), else by reference."""
    from IPython.display import Video

    path = Path(path).resolve()
    if path.stat().st_size <= EMBED_VIDEO_BYTES:
        return Video(path.read_bytes(), embed=True, mimetype="video/mp4", width=width,
                     html_attributes="controls loop")
    return Video(os.path.relpath(path, Path.cwd()), width=width, html_attributes="controls loop")


def training_curves(history, columns, title: str = "", smooth: int = 25):
    """Loss (or accuracy) per step, raw and as a running mean, one panel per column of ``history``."""
    columns = [c for c in columns if c in history]
    fig, axes = plt.subplots(1, len(columns), figsize=(3.6 * len(columns), 2.8), squeeze=False)
    for ax, col in zip(axes[0], columns):
        ax.plot(history.step, history[col], color="0.75", lw=0.8)
        ax.plot(history.step, history[col].rolling(smooth, min_periods=1).mean(), color="tab:blue", lw=1.6)
        ax.set_xlabel("step")
        ax.set_title(col.replace("_", " "), fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return fig


def embedding_2d(X, labels, title: str = "", ax=None, max_points: int = 3000, seed: int = 0):
    """Embeddings projected on their first two principal components, one colour per label."""
    X = np.asarray(X, float)
    labels = np.asarray(labels)
    if len(X) > max_points:
        keep = np.random.default_rng(seed).choice(len(X), max_points, replace=False)
        X, labels = X[keep], labels[keep]
    Xc = X - X.mean(0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    P = Xc @ vt[:2].T
    if ax is None:
        _, ax = plt.subplots(figsize=(4.4, 4))
    names = sorted(np.unique(labels))
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    for k, name in enumerate(names):
        m = labels == name
        ax.scatter(P[m, 0], P[m, 1], s=5, color=cmap(k % cmap.N), label=str(name), alpha=0.7)
    if len(names) <= 12:
        ax.legend(fontsize=6, markerscale=2, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=10)
    return ax


def emotion_timeline(probs: np.ndarray, fps: int, labels=EMOTIONS, title: str = "", ax=None):
    """A per-frame emotion distribution (T, K) as stacked areas over time."""
    t = np.arange(len(probs)) / fps
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 2.4))
    ax.stackplot(t, np.asarray(probs).T, labels=labels, alpha=0.85)
    ax.set_xlim(t[0], t[-1] if len(t) > 1 else 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("p")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1, 0.5))
    ax.set_title(title, fontsize=10)
    return ax


def retrieval_example(query_face: np.ndarray, faces: list, names: list, scores: list, truth: str, title: str = ""):
    """A voice query (with the face of its speaker, unseen by the model) and the top gallery faces."""
    fig, axes = plt.subplots(1, len(faces) + 1, figsize=(1.7 * (len(faces) + 1), 2.2))
    axes[0].imshow(query_face)
    axes[0].set_title(f"voice of\n{truth}", fontsize=8)
    for ax, face, name, s in zip(axes[1:], faces, names, scores):
        ax.imshow(face)
        ax.set_title(f"{name}\ncos {s:.2f}", fontsize=8, color="tab:green" if name == truth else "black")
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def panel_rows(video: np.ndarray, names, every: int = 5, n: int = 8, title: str = ""):
    """A side-by-side video (T, R, R * len(names), 3) as rows of frames, one row per panel (real, model...)."""
    r = video.shape[1]
    picks = list(range(0, len(video), every))[:n]
    fig, axes = plt.subplots(len(names), len(picks), figsize=(1.2 * len(picks), 1.3 * len(names)), squeeze=False)
    for i, name in enumerate(names):
        for j, t in enumerate(picks):
            axes[i, j].imshow(video[t, :, i * r:(i + 1) * r])
            axes[i, j].axis("off")
            if i == 0:
                axes[i, j].set_title(f"frame {t}", fontsize=7)
        axes[i, 0].text(-0.1, 0.5, name, transform=axes[i, 0].transAxes, ha="right", va="center", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def snapshot_grid(snaps: dict, title: str = ""):
    """One generated frame at several points of training (``train.snapshots``), the real frame last."""
    frames, steps = list(snaps["frames"]), [f"step {int(k)}" for k in snaps["steps"]]
    if "real" in snaps and snaps["real"] is not None:
        frames.append(snaps["real"])
        steps.append("real")
    fig, axes = plt.subplots(1, len(frames), figsize=(1.3 * len(frames), 1.7), squeeze=False)
    for ax, f, name in zip(axes[0], frames, steps):
        ax.imshow(f)
        ax.set_title(name, fontsize=7)
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def metric_panels(tables: dict, metrics: dict, title: str = ""):
    """One panel per metric: each system's mean with its 95 % interval, one bar colour per table.

    ``tables``: name (e.g. "observed", "unseen") -> ``scoring.summary_table`` table; ``metrics``:
    ``evaluation.METRICS`` (key -> (direction, for real, label)).
    """
    names = list(tables)
    systems = list(dict.fromkeys(s for t in tables.values() for s in t.index))
    cols = 4
    rows = int(np.ceil(len(metrics) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False)
    width = 0.8 / len(names)
    x = np.arange(len(systems))
    for ax, (m, (direction, _, label)) in zip(axes.ravel(), metrics.items()):
        for i, name in enumerate(names):
            t = tables[name].reindex(systems)
            mean = t[m].to_numpy(float)
            err = np.abs(np.vstack([mean - t[f"{m}_lo"].to_numpy(float), t[f"{m}_hi"].to_numpy(float) - mean]))
            ok = np.isfinite(mean)
            ax.bar(x[ok] + (i - (len(names) - 1) / 2) * width, mean[ok], width, yerr=err[:, ok], capsize=2,
                   label=name)
        hint = {1: "higher is better", -1: "lower is better", 0: "nearer the real clips is better"}[direction]
        ax.set_title(f"{label}\n({hint})", fontsize=9)
        ax.set_xticks(x, systems, rotation=60, ha="right", fontsize=7)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def signal_tracks(tracks: dict, fps: int, title: str = "", ylabel: str = ""):
    """Per-frame signals of one clip (e.g. eye openness of the real and generated video) over time."""
    fig, ax = plt.subplots(figsize=(7, 2.6))
    for name, values in tracks.items():
        ax.plot(np.arange(len(values)) / fps, values, label=name, lw=1.2)
    ax.set_xlabel("seconds")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def landmark_check(frames: np.ndarray, truth: np.ndarray, found: np.ndarray, title: str = ""):
    """Frames with their true landmarks (top row) and a regressor's (bottom row)."""
    n = len(frames)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for k in range(n):
        landmark_overlay(frames[k], truth[k], axes[0, k], "truth" if k == 0 else None)
        landmark_overlay(frames[k], found[k], axes[1, k], "regressor" if k == 0 else None)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
