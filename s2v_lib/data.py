"""Data: a corpus on disk, the preprocessed feature cache, and PyTorch datasets of aligned windows.

A *corpus* is a folder with ``metadata.csv`` (one row per clip: clip, speaker, emotion,
pool, split, video, audio, ...) and the files it names; SynthTalk writes one, and the
real-corpus ingestion scripts write the same layout. Preprocessing decodes every clip into
face crops at the run's resolution and log-mel features (4 mel frames per video frame) and
stores them as memory-mapped arrays with an index, in the run directory. A fingerprint of
the inputs and settings is kept beside them: change either and the cache rebuilds.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from .machinery.audio import load_audio, log_mel
from .config import EMOTIONS, FeatureConfig
from .config import progress as progress_bar
from .machinery.video import crop_faces, read_video

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("clip", "speaker", "emotion", "pool", "split", "video", "audio")
CACHE_VERSION = 2  # 2: the fingerprint names the data (metadata), the stamp the files


class CorpusError(ValueError):
    """A corpus folder that cannot be used, with the reason in words."""


class Corpus:
    """A corpus folder: ``metadata.csv``, optional ``speakers.csv`` and ``corpus.json``, and clips."""

    def __init__(self, root):
        self.root = Path(root)
        meta_path = self.root / "metadata.csv"
        if not meta_path.exists():
            raise CorpusError(f"{self.root} is not a corpus: metadata.csv is missing (make one with "
                              f"`python -m s2v_lib synthtalk --out {self.root}` or an ingestion script)")
        self.meta = pd.read_csv(meta_path)
        missing = [c for c in REQUIRED_COLUMNS if c not in self.meta.columns]
        if missing:
            raise CorpusError(f"{meta_path} lacks the column(s) {missing}")
        unknown = sorted(set(self.meta.emotion) - set(EMOTIONS))
        if unknown:
            raise CorpusError(f"{meta_path}: unknown emotion label(s) {unknown}; the shared vocabulary is "
                              f"{list(EMOTIONS)}")
        self._confine(meta_path)
        pools = self.meta.groupby("speaker").pool.nunique()
        if (pools > 1).any():
            raise CorpusError(f"speaker(s) {list(pools[pools > 1].index)} appear in more than one pool")
        manifest = self.root / "corpus.json"
        self.manifest = json.loads(manifest.read_text()) if manifest.exists() else {}
        spk = self.root / "speakers.csv"
        self.speakers = pd.read_csv(spk) if spk.exists() else pd.DataFrame(
            {"speaker": sorted(self.meta.speaker.unique())})

    @property
    def fps(self) -> int:
        return int(self.manifest.get("fps", self.meta.get("fps", pd.Series([25])).iloc[0]))

    @property
    def sample_rate(self) -> int:
        return int(self.manifest.get("sample_rate", self.meta.get("sample_rate", pd.Series([16000])).iloc[0]))

    def _confine(self, meta_path: Path) -> None:
        """Every file a row names lies inside the corpus folder: a downloaded or edited metadata.csv
        must not make the cache read ``/etc/...`` or ``../elsewhere``."""
        root = self.root.resolve()
        for column in ("video", "audio", "gt"):
            if column not in self.meta.columns:
                continue
            for i, value in self.meta[column].items():
                if not isinstance(value, str) or not value:
                    continue
                target = (root / value).resolve()
                if Path(value).is_absolute() or not target.is_relative_to(root):
                    raise CorpusError(f"{meta_path}, row {i + 2} (clip {self.meta['clip'][i]!r}): {column} "
                                      f"{value!r} points outside the corpus folder {root}; paths must be "
                                      f"relative to it")

    def __len__(self) -> int:
        return len(self.meta)

    def __repr__(self) -> str:
        return (f"Corpus({self.root}: {len(self.meta)} clips, {self.meta.speaker.nunique()} speakers, "
                f"{self.meta.emotion.nunique()} emotions)")

    def row(self, clip: str) -> pd.Series:
        rows = self.meta[self.meta["clip"] == clip]
        if rows.empty:
            raise KeyError(f"no clip named {clip!r} in {self.root}")
        return rows.iloc[0]

    def path(self, clip: str, kind: str = "video") -> Path:
        return self.root / self.row(clip)[kind]

    def ground_truth(self, clip: str) -> dict | None:
        """Per-frame ground truth (SynthTalk only): landmarks, mouth_open, viseme, blink, head_pose..."""
        row = self.row(clip)
        if "gt" not in row or not isinstance(row["gt"], str):
            return None
        with np.load(self.root / row["gt"]) as z:
            return {k: z[k] for k in z.files}


# ----------------------------------------------------------------------------------- the cache
def fingerprint(corpus: Corpus, resolution: int, features: FeatureConfig) -> dict:
    """What the cache holds: the corpus's metadata (its clips, speakers, labels and lengths) and the settings.

    Networks trained on a cache are keyed by this (``runs.trained``), so it names the data, not the copy:
    the same corpus generated again, in another folder or on another machine, has the same fingerprint,
    and a run bundle's networks (``machinery.bundle``) load there instead of training again."""
    return dict(version=CACHE_VERSION, data=hashlib.sha1((corpus.root / "metadata.csv").read_bytes()).hexdigest(),
                resolution=int(resolution), features=dataclasses.asdict(features))


def files_stamp(corpus: Corpus) -> dict:
    """Which files the cache was made from: the corpus folder and every input file's size and time (a file
    edited in place makes the cache out of date, even when the metadata is the same)."""
    h = hashlib.sha1()
    for rel in pd.concat([corpus.meta.video, corpus.meta.audio]):
        st = (corpus.root / rel).stat()
        h.update(f"{rel}:{st.st_size}:{st.st_mtime_ns}".encode())
    return dict(corpus=str(corpus.root.resolve()), files=h.hexdigest())


class FeatureCache:
    """Face crops (N, R, R, 3) uint8 and log-mels (4N, n_mels) float32, memory-mapped, with an index.

    ``index`` has one row per clip: the corpus metadata plus ``frame_start``, ``n_frames`` and
    ``mel_start`` (mel frames of clip = ``mel[mel_start : mel_start + 4 * n_frames]``).
    """

    def __init__(self, root):
        self.root = Path(root)
        self.info = json.loads((self.root / "cache.json").read_text())
        self.index = pd.read_csv(self.root / "index.csv")
        r, m = self.info["resolution"], self.info["features"]["n_mels"]
        n, nm = int(self.info["n_frames"]), int(self.info["n_mel_frames"])
        self.frames = np.memmap(self.root / "frames.u8", np.uint8, "r", shape=(n, r, r, 3))
        self.mel = np.memmap(self.root / "mel.f32", np.float32, "r", shape=(nm, m))
        self.mel_mean = np.asarray(self.info["mel_mean"], np.float32)
        self.mel_std = np.asarray(self.info["mel_std"], np.float32)

    @property
    def resolution(self) -> int:
        return int(self.info["resolution"])

    def normalize(self, mel) -> np.ndarray:
        """Log-mels as the networks see them: each band z-scored by the cache's mean and std, float32."""
        return ((np.asarray(mel) - self.mel_mean) / self.mel_std).astype(np.float32)

    def corpus(self) -> "Corpus":
        """The corpus this cache was made from (for the clips' sound and metadata)."""
        return Corpus((self.info.get("stamp") or self.info["fingerprint"])["corpus"])  # version 1: in the fingerprint

    @property
    def mel_per_frame(self) -> int:
        return int(self.info["mel_per_frame"])

    def clip_frames(self, clip: str) -> np.ndarray:
        r = self._row(clip)
        return self.frames[r.frame_start:r.frame_start + r.n_frames]

    def clip_mel(self, clip: str) -> np.ndarray:
        r = self._row(clip)
        return self.mel[r.mel_start:r.mel_start + self.mel_per_frame * r.n_frames]

    def _row(self, clip: str):
        rows = self.index[self.index["clip"] == clip]
        if rows.empty:
            raise KeyError(f"no clip named {clip!r} in the cache at {self.root}")
        return rows.iloc[0]

    def __repr__(self) -> str:
        return (f"FeatureCache({self.root}: {len(self.index)} clips, {self.frames.shape[0]} frames at "
                f"{self.resolution}px, mel {self.mel.shape})")


def open_cache(run) -> FeatureCache:
    """The feature cache of a run directory, or an error that says which notebook makes it."""
    from .machinery.runs import require

    return FeatureCache(require(run, "cache", "cache.json", "01_data_preparation"))


def build_cache(corpus: Corpus, cache_dir, resolution: int, features: FeatureConfig | None = None,
                progress: bool = True, rebuild: bool = False) -> FeatureCache:
    """Preprocess every clip of ``corpus`` into ``cache_dir``, or reuse it if nothing changed."""
    features = features or FeatureConfig()
    cache_dir = Path(cache_dir)
    fp, stamp = fingerprint(corpus, resolution, features), files_stamp(corpus)
    info_path = cache_dir / "cache.json"
    if not rebuild and info_path.exists():
        old = json.loads(info_path.read_text())
        if old.get("fingerprint") == fp and old.get("stamp") == stamp:
            return FeatureCache(cache_dir)
        log.info("feature cache at %s is out of date; rebuilding", cache_dir)
    sr, fps = corpus.sample_rate, corpus.fps
    mel_per_frame = features.validate(sr, fps).mel_per_frame(sr, fps)
    tmp = cache_dir.with_name(cache_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rows, n_frames, n_mel = [], 0, 0
    total, sq = np.zeros(features.n_mels), np.zeros(features.n_mels)
    with open(tmp / "frames.u8", "wb") as ff, open(tmp / "mel.f32", "wb") as fm:
        for rec in progress_bar(corpus.meta.itertuples(index=False), progress, total=len(corpus.meta),
                                desc="preprocessing", unit="clip"):
            frames, _ = read_video(corpus.root / rec.video)
            gt_box = None
            gt_rel = getattr(rec, "gt", None)
            if isinstance(gt_rel, str) and (corpus.root / gt_rel).exists():
                with np.load(corpus.root / gt_rel) as z:
                    gt_box = z["box"] if "box" in z.files else None
            h, w = frames.shape[1:3]
            box = gt_box if gt_box is not None else np.array([0, 0, w, h], np.float32)
            crops = crop_faces(frames, box, resolution)
            audio = load_audio(corpus.root / rec.audio, sr, quiet=True)
            expected = len(crops) * (sr // fps)
            if abs(len(audio) - expected) > sr // fps:
                log.warning("%s: audio lasts %.2f s but video %.2f s; features follow the video",
                            rec.clip, len(audio) / sr, len(crops) / fps)
            mel = log_mel(audio, sr, features, n_frames=mel_per_frame * len(crops))
            ff.write(np.ascontiguousarray(crops).tobytes())
            fm.write(np.ascontiguousarray(mel).tobytes())
            total += mel.sum(0)
            sq += (mel.astype(np.float64) ** 2).sum(0)
            rows.append(dict(clip=rec.clip, frame_start=n_frames, n_frames=len(crops), mel_start=n_mel))
            n_frames += len(crops)
            n_mel += len(mel)
    index = corpus.meta.merge(pd.DataFrame(rows), on="clip")
    index.to_csv(tmp / "index.csv", index=False)
    mean = total / max(n_mel, 1)
    std = np.sqrt(np.maximum(sq / max(n_mel, 1) - mean ** 2, 1e-8))
    (tmp / "cache.json").write_text(json.dumps(dict(
        fingerprint=fp, stamp=stamp, resolution=int(resolution), features=dataclasses.asdict(features), fps=fps,
        sample_rate=sr, mel_per_frame=mel_per_frame, n_frames=n_frames, n_mel_frames=n_mel,
        mel_mean=mean.tolist(), mel_std=std.tolist()), indent=1))
    if cache_dir.exists():
        shutil.rmtree(cache_dir)
    tmp.rename(cache_dir)
    return FeatureCache(cache_dir)


def split_index(index: pd.DataFrame, pool: str | None = None, split: str | None = None) -> pd.DataFrame:
    """Rows of a cache index for one pool and/or split, e.g. ``split_index(idx, "B", "train")``."""
    sel = np.ones(len(index), bool)
    if pool is not None:
        sel &= index.pool.eq(pool).to_numpy()
    if split is not None:
        sel &= index.split.eq(split).to_numpy()
    return index[sel].reset_index(drop=True)


def voice_statistics_table(corpus: Corpus, cache_csv=None, progress: bool = True) -> pd.DataFrame:
    """``audio.voice_statistics`` of every clip (one row per clip, with the metadata columns).

    Saved to ``cache_csv`` and read back from it when it already covers the same clips.
    """
    from .machinery.audio import voice_statistics

    if cache_csv is not None and Path(cache_csv).exists():
        table = pd.read_csv(cache_csv)
        if list(table["clip"]) == list(corpus.meta["clip"]):
            return table
    rows = []
    for rec in progress_bar(corpus.meta.itertuples(index=False), progress, total=len(corpus.meta),
                            desc="voice statistics", unit="clip"):
        audio = load_audio(corpus.root / rec.audio, corpus.sample_rate, quiet=True)
        rows.append(dict(clip=rec.clip, **voice_statistics(audio, corpus.sample_rate)))
    table = corpus.meta.merge(pd.DataFrame(rows), on="clip")
    if cache_csv is not None:
        table.to_csv(cache_csv, index=False)
    return table


#: Voice statistics that describe prosody (pitch, loudness, tempo) rather than timbre.
PROSODY_FEATURES = ("f0_median", "f0_std", "f0_range", "loudness_mean", "loudness_std", "voiced_fraction",
                    "onset_rate", "voiced_seconds", "tilt")
