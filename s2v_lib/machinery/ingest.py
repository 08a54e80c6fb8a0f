"""Real corpora: CREMA-D and RAVDESS ingested into the layout SynthTalk writes.

Users bring their own copy (nothing is downloaded). Per clip: labels parsed from the file name
and mapped onto the shared vocabulary (``config.EMOTIONS``); frames decoded and resampled to
25 fps (nearest frame in time); the face found in every frame (``detect.make_detector``: MTCNN
when the ``pretrained`` extra is installed, else OpenCV's Haar cascade), short gaps repaired by
interpolation, the boxes smoothed; aligned square crops at the run's
resolution; the sound resampled to 16 kHz mono and trimmed or padded to the video's length.
Written as ``clips/<clip>.mp4`` (the crops, H.264 + AAC) and ``clips/<clip>.wav``, with
``metadata.csv``, ``speakers.csv`` and ``corpus.json`` as SynthTalk writes them, so notebooks
01-06 run unchanged on the folder. There is no per-frame ground truth (no ``gt`` column).

- **CREMA-D** (``VideoFlash/*.flv`` with ``AudioWAV/*.wav`` of the same stem; names
  ``1001_DFA_ANG_XX``: actor, sentence, emotion ANG/DIS/FEA/HAP/NEU/SAD, level LO/MD/HI/XX).
  ``XX`` ("unspecified", most clips) is mapped to *medium*. The sound comes from the wav, or
  from the flv's own track when the wav is missing. ``VideoDemographics.csv``, when present at
  the top of the copy, gives each actor's sex and age.
- **RAVDESS** (``Actor_NN/MM-VC-EE-II-SS-RR-AA.mp4``: modality, vocal channel, emotion,
  intensity, statement, repetition, actor). Only audio-visual speech (``01-01-...``) is used:
  audio-only (03), video-only (02, no sound) and song (vocal channel 02) files are skipped, and
  so are *calm* (02) and *surprised* (08), which the shared vocabulary lacks. Intensity
  01 normal -> medium, 02 strong -> high. Odd-numbered actors are male, even female.

Pools by actor with SynthTalk's fractions (``CorpusConfig.pool_fractions``); pool A clips held
out at random (``a_val_fraction``); pool B split by sentence as SynthTalk does when the corpus
has at least three (CREMA-D's 12). RAVDESS has two statements, so there each pool B recording
is its own utterance and is held out at random with the same fractions.

A clip whose face is missing for longer than ``MAX_GAP_SECONDS`` at a stretch, or in more than
``MAX_MISSING_FRACTION`` of its frames, is skipped with the frames named; an unreadable file is
skipped and listed; ``ingest_summary.json`` says what was ingested, repaired and skipped and why.
Each finished clip leaves ``ingest_log/<clip>.json``: a second run redoes only what is missing
or whose source file changed.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..config import EMOTIONS, CorpusConfig
from ..config import progress as progress_bar
from .detect import DETECTOR_DESCRIPTIONS, resolve_detector_name

log = logging.getLogger(__name__)

INGEST_VERSION = 1
FPS = 25
SAMPLE_RATE = 16000
#: A face may be missing for at most this long at a stretch (repaired by interpolation) ...
MAX_GAP_SECONDS = 0.5
#: ... and in at most this fraction of a clip's frames; otherwise the clip is skipped.
MAX_MISSING_FRACTION = 0.2
#: Reasons found while processing a clip (the others come from its name, before any work).
CLIP_FAILURES = ("unreadable", "no face found", "face missing too long", "failed")

# ----------------------------------------------------------------------------------- CREMA-D
#: CREMA-D's 12 sentences, in the order of its documentation (sentence_id = position).
CREMAD_SENTENCES = {
    "IEO": "It's eleven o'clock.", "TIE": "That is exactly what happened.",
    "IOM": "I'm on my way to the meeting.", "IWW": "I wonder what this is about.",
    "TAI": "The airplane is almost full.", "MTI": "Maybe tomorrow it will be cold.",
    "IWL": "I would like a new alarm clock.", "ITH": "I think I have a doctor's appointment.",
    "DFA": "Don't forget a jacket.", "ITS": "I think I've seen this before.",
    "TSI": "The surface is slick.", "WSI": "We'll stop in a couple of minutes.",
}
CREMAD_EMOTIONS = {"ANG": "anger", "DIS": "disgust", "FEA": "fear", "HAP": "happy", "NEU": "neutral", "SAD": "sad"}
#: XX is CREMA-D's "unspecified" level (most sentences): taken as medium.
CREMAD_LEVELS = {"LO": "low", "MD": "medium", "HI": "high", "XX": "medium"}
_CREMAD_NAME = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{2})$")

# ----------------------------------------------------------------------------------- RAVDESS
RAVDESS_STATEMENTS = {1: "Kids are talking by the door.", 2: "Dogs are sitting by the door."}
#: RAVDESS emotion codes; None: not in the shared vocabulary (the clip is skipped).
RAVDESS_EMOTIONS = {1: "neutral", 2: None, 3: "happy", 4: "sad", 5: "anger", 6: "fear", 7: "disgust", 8: None}
RAVDESS_EMOTION_NAMES = {2: "calm", 8: "surprised"}
RAVDESS_INTENSITIES = {1: "medium", 2: "high"}  # normal, strong
_RAVDESS_NAME = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")
_RAVDESS_MODALITY = {2: "video-only (modality 02): no sound", 3: "audio-only (modality 03): no face"}


@dataclass
class SourceClip:
    """One clip of a real corpus as found on disk, with its labels in the shared vocabulary."""

    clip: str
    video: Path
    audio: Path | None  # a separate sound file, or None: the video's own track
    actor: str
    speaker: str
    emotion: str
    intensity: str
    sentence_id: int
    sentence: str
    extra: dict = field(default_factory=dict)


@dataclass
class Skip:
    """A file left out, why (a short category, counted in the summary) and the details."""

    file: str
    why: str
    detail: str = ""


def _files_under(src: Path, pattern: str) -> list[Path]:
    return sorted(p for p in src.glob(pattern) if p.is_file() and not p.name.startswith("."))


def scan_cremad(src) -> tuple[list[SourceClip], list[Skip]]:
    """The clips of a CREMA-D copy (``VideoFlash/*.flv``) and the files left out, with reasons."""
    src = Path(src)
    _check_source(src)
    vdir = src / "VideoFlash"
    if not vdir.is_dir():
        raise FileNotFoundError(f"{src} has no VideoFlash folder: is this a CREMA-D copy? (expected "
                                f"VideoFlash/1001_DFA_ANG_XX.flv ... and AudioWAV/1001_DFA_ANG_XX.wav ...)")
    wavs = {p.stem: p for p in _files_under(src / "AudioWAV", "*.wav")}
    clips, skips = [], []
    for path in _files_under(vdir, "*.flv"):
        rel = str(path.relative_to(src))
        m = _CREMAD_NAME.match(path.stem)
        if not m or m[2] not in CREMAD_SENTENCES or m[3] not in CREMAD_EMOTIONS or m[4] not in CREMAD_LEVELS:
            skips.append(Skip(rel, "name not in CREMA-D's form", "expected e.g. 1001_DFA_ANG_XX.flv"))
            continue
        actor, code, emo, level = m.groups()
        clips.append(SourceClip(
            clip=path.stem, video=path, audio=wavs.get(path.stem), actor=actor, speaker=f"cremad{actor}",
            emotion=CREMAD_EMOTIONS[emo], intensity=CREMAD_LEVELS[level],
            sentence_id=list(CREMAD_SENTENCES).index(code), sentence=CREMAD_SENTENCES[code],
            extra=dict(sentence_code=code, level_code=level)))
    if not clips and not skips:
        raise FileNotFoundError(f"{vdir} holds no .flv files: is this a complete CREMA-D copy?")
    return clips, skips


def scan_ravdess(src) -> tuple[list[SourceClip], list[Skip]]:
    """The audio-visual speech clips of a RAVDESS copy (``Actor_NN/*.mp4``) and the files left out."""
    src = Path(src)
    _check_source(src)
    files = sorted(p for p in src.rglob("*") if p.is_file() and re.fullmatch(r"Actor_\d+", p.parent.name)
                   and not p.name.startswith("."))
    if not files:
        raise FileNotFoundError(f"{src} has no Actor_NN folders with files: is this a RAVDESS copy? (expected "
                                f"Actor_01/01-01-01-01-01-01-01.mp4 ..., from the Video_Speech_Actor_NN.zip files)")
    clips, skips = [], []
    for path in files:
        rel = str(path.relative_to(src))
        m = _RAVDESS_NAME.match(path.stem)
        if not m:
            skips.append(Skip(rel, "name not in RAVDESS's form", "expected e.g. 01-01-06-01-02-01-12.mp4"))
            continue
        modality, channel, emo, inten, statement, rep, actor = (int(g) for g in m.groups())
        if modality in _RAVDESS_MODALITY:
            skips.append(Skip(rel, _RAVDESS_MODALITY[modality]))
        elif modality != 1 or channel not in (1, 2) or emo not in RAVDESS_EMOTIONS or \
                inten not in RAVDESS_INTENSITIES or statement not in RAVDESS_STATEMENTS:
            skips.append(Skip(rel, "name not in RAVDESS's form", "a code is out of range"))
        elif channel == 2:
            skips.append(Skip(rel, "song (vocal channel 02)"))
        elif RAVDESS_EMOTIONS[emo] is None:
            skips.append(Skip(rel, f"{RAVDESS_EMOTION_NAMES[emo]}: not in the shared emotions"))
        else:
            clips.append(SourceClip(
                clip=path.stem, video=path, audio=None, actor=f"{actor:02d}", speaker=f"ravdess{actor:02d}",
                emotion=RAVDESS_EMOTIONS[emo], intensity=RAVDESS_INTENSITIES[inten],
                sentence_id=statement - 1, sentence=RAVDESS_STATEMENTS[statement],
                extra=dict(repetition=rep, gender="male" if actor % 2 else "female")))
    if not clips:
        raise FileNotFoundError(
            f"{src}: none of its {len(files)} RAVDESS files is an audio-visual speech recording (01-01-...); "
            f"the audio-only and song downloads have no talking faces: use the Video_Speech_Actor_NN.zip files")
    return clips, skips


def _check_source(src: Path) -> None:
    if not src.exists():
        raise FileNotFoundError(f"source folder {src} does not exist")
    if not src.is_dir():
        raise NotADirectoryError(f"{src} is a file; give the folder of the corpus copy")


def cremad_speakers(src, clips: list[SourceClip]) -> pd.DataFrame:
    """speaker, actor and, from ``VideoDemographics.csv`` when present, gender and age."""
    rows = pd.DataFrame({"speaker": sorted({c.speaker for c in clips})})
    rows["actor"] = rows.speaker.str.removeprefix("cremad")
    demo = Path(src) / "VideoDemographics.csv"
    if demo.exists():
        d = pd.read_csv(demo, dtype={"ActorID": str})
        d = d.rename(columns={"ActorID": "actor", "Sex": "gender", "Age": "age"})
        d["gender"] = d.gender.str.lower()
        rows = rows.merge(d[[c for c in ("actor", "gender", "age") if c in d.columns]], on="actor", how="left")
    return rows


def ravdess_speakers(src, clips: list[SourceClip]) -> pd.DataFrame:
    """speaker, actor and gender (RAVDESS: odd-numbered actors are male, even female)."""
    by = {c.speaker: c for c in clips}
    return pd.DataFrame([dict(speaker=s, actor=by[s].actor, gender=by[s].extra["gender"]) for s in sorted(by)])


CORPORA = {
    "cremad": dict(name="CREMA-D", scan=scan_cremad, speakers=cremad_speakers,
                   url="https://github.com/CheyneyComputerScience/CREMA-D", licence="ODbL 1.0"),
    "ravdess": dict(name="RAVDESS", scan=scan_ravdess, speakers=ravdess_speakers,
                    url="https://zenodo.org/record/1188976", licence="CC BY-NC-SA 4.0"),
}


# ----------------------------------------------------------------------------------- pools and splits
def assign_splits(clips: list[SourceClip], cfg: CorpusConfig, seed: int = 0) -> dict[str, tuple[str, str]]:
    """(pool, split) of every clip: pools by actor with SynthTalk's fractions and rules."""
    from .synthtalk import assign_pools, sentence_splits

    speakers = sorted({c.speaker for c in clips})
    pools = dict(zip(speakers, assign_pools(len(speakers), cfg.pool_fractions, seed)))
    n_sentences = len({c.sentence_id for c in clips})
    by_sentence = n_sentences >= 3
    b_split = sentence_splits(max(c.sentence_id for c in clips) + 1, cfg.b_val_fraction, cfg.b_test_fraction)
    out = {}
    for i, spk in enumerate(speakers):
        rng = np.random.default_rng([seed, 5, i])
        for c in sorted((c for c in clips if c.speaker == spk), key=lambda c: c.clip):
            pool = pools[spk]
            if pool == "A":
                split = "val" if rng.random() < cfg.a_val_fraction else "train"
            elif pool == "B" and by_sentence:
                split = b_split[c.sentence_id]
            elif pool == "B":
                u = rng.random()
                split = "test" if u < cfg.b_test_fraction else "val" if u < cfg.b_test_fraction + cfg.b_val_fraction \
                    else "train"
            else:
                split = "test"
            out[c.clip] = (pool, split)
    return out


# ----------------------------------------------------------------------------------- one clip
_WORKER: dict = {}


def _worker_init(out: str, resolution: int, detector: str, forked: bool = False) -> None:
    from .detect import make_detector
    from .synthtalk import ignore_interrupts

    ignore_interrupts()
    if forked and ("torch" in sys.modules or detector == "mtcnn"):
        # one torch thread per process (the processes fill the cores; MTCNN is torch), and a
        # thread pool that torch started before the fork must not be used
        import torch

        torch.set_num_threads(1)
    _WORKER.update(out=Path(out), resolution=int(resolution), detector=make_detector(detector))


def _source_stamp(c: SourceClip) -> dict:
    stamp = {}
    for key, path in (("video", c.video), ("audio", c.audio)):
        if path is not None:
            st = path.stat()
            stamp[key] = [str(path), st.st_size, st.st_mtime_ns]
    return stamp


def _status_path(out: Path, clip: str) -> Path:
    return out / "ingest_log" / f"{clip}.json"


def previous_result(out: Path, c: SourceClip) -> dict | None:
    """The result an earlier run left for this clip, if its source is unchanged and its files exist."""
    path = _status_path(out, c.clip)
    if not path.exists():
        return None
    try:
        done = json.loads(path.read_text())
    except json.JSONDecodeError:
        return None
    if done.get("source") != _source_stamp(c):
        return None
    if done["status"] == "ok" and not all((out / done[k]).exists() for k in ("video", "audio")):
        return None
    return done


def ingest_clip(c: SourceClip, row: dict) -> dict:
    """Decode, detect, repair, crop and write one clip to the files ``row`` names (``video``,
    ``audio``, and ``source``: the file it comes from, for messages). Returns its
    result (also saved as the clip's ``ingest_log`` json): status "ok" with what was measured
    (frames, duration, repaired frames) and the face track, or "skipped" with the reason."""
    from .audio import AudioError, load_audio, write_wav
    from .detect import track_faces
    from .video import crop_faces, read_video, write_video

    out, res, detector = _WORKER["out"], _WORKER["resolution"], _WORKER["detector"]
    result = dict(clip=c.clip, file=row["source"], source=_source_stamp(c))
    rel = row["source"]
    max_gap = int(round(MAX_GAP_SECONDS * FPS))
    try:
        try:
            frames, _ = read_video(c.video, fps=FPS)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means the same to the user
            return _finish(out, result, "skipped", why="unreadable", detail=f"cannot read {rel} as video: {exc}")
        track = track_faces(frames, detector, max_gap=max_gap)
        n = len(frames)
        if track.missing == n:
            return _finish(out, result, "skipped", why="no face found",
                           detail=f"no face in any of the {n} frames of {c.clip}")
        a, b = max(track.gaps, key=lambda g: g[1] - g[0], default=(0, 0))
        if not track.ok:
            return _finish(out, result, "skipped", why="face missing too long",
                           detail=f"no face in frames {a}-{b - 1} of {c.clip} ({(b - a) / FPS:.2f} s, longer than "
                                  f"the {MAX_GAP_SECONDS} s that can be repaired)")
        if track.missing > MAX_MISSING_FRACTION * n:
            return _finish(out, result, "skipped", why="face missing too long",
                           detail=f"no face in {track.missing} of the {n} frames of {c.clip} ("
                                  f"{track.missing / n:.0%}, more than the {MAX_MISSING_FRACTION:.0%} that can be "
                                  f"repaired; longest gap: frames {a}-{b - 1})")
        try:
            audio = load_audio(c.audio if c.audio is not None else c.video, SAMPLE_RATE, quiet=True)
        except AudioError as exc:
            return _finish(out, result, "skipped", why="unreadable", detail=str(exc))
        spf = SAMPLE_RATE // FPS
        audio_seconds = len(audio) / SAMPLE_RATE
        audio = np.pad(audio, (0, max(0, n * spf - len(audio))))[:n * spf]
        crops = crop_faces(frames, track.boxes, res)
        (out / "clips").mkdir(parents=True, exist_ok=True)
        write_video(out / row["video"], crops, FPS, audio, SAMPLE_RATE)
        write_wav(out / row["audio"], audio, SAMPLE_RATE)
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one bad clip must not stop a corpus of thousands
        return _finish(out, result, "skipped", why="failed", detail=f"{c.clip}: {type(exc).__name__}: {exc}")
    measured = dict(duration=n / FPS, frames=n, repaired_frames=track.repaired)
    return _finish(out, result, "ok", video=row["video"], audio=row["audio"], measured=measured,
                   missing=track.missing, repaired=track.repaired, longest_gap=track.longest_gap,
                   audio_seconds=round(audio_seconds, 3),
                   source_height=int(frames.shape[1]), source_width=int(frames.shape[2]),
                   boxes=np.round(track.boxes, 1).tolist())


def _finish(out: Path, result: dict, status: str, **fields) -> dict:
    result = {**result, "status": status, **fields}
    path = _status_path(out, result["clip"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)  # written last: its presence marks a finished clip
    return result


def _ingest_one(job: tuple[SourceClip, dict]) -> dict:
    return ingest_clip(*job)


# ----------------------------------------------------------------------------------- the corpus
def ingest(corpus: str, src, out, resolution: int = 64, workers: int | None = None, seed: int = 0,
           progress: bool = True, detector: str = "auto") -> dict:
    """Ingest a real corpus copy at ``src`` (``corpus``: "cremad" or "ravdess") into ``out``.

    ``detector`` finds the faces (``detect.DETECTORS``): "auto" is MTCNN when its packages are
    installed, else the Haar cascade (``detect.make_detector`` says why); the one used is recorded in
    the corpus settings, so a folder is never filled by two detectors.

    Returns the summary (also printed by the command line and saved as
    ``out/ingest_summary.json``): files found, clips ingested (new this run and reused from an
    earlier one), clips repaired, and every file skipped with its reason.
    """
    if corpus not in CORPORA:
        raise ValueError(f"unknown corpus {corpus!r}; choose one of {sorted(CORPORA)}")
    spec = CORPORA[corpus]
    cfg = CorpusConfig(resolution=int(resolution), seed=int(seed)).validate()
    detector = resolve_detector_name(detector)
    src, out = Path(src).resolve(), Path(out)
    t0 = time.perf_counter()
    clips, skips = spec["scan"](src)
    settings = dict(corpus=spec["name"], resolution=cfg.resolution, seed=cfg.seed, fps=FPS,
                    sample_rate=SAMPLE_RATE, max_gap_seconds=MAX_GAP_SECONDS,
                    max_missing_fraction=MAX_MISSING_FRACTION, detector=detector, version=INGEST_VERSION)
    _check_out(out, settings)
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.json").write_text(json.dumps(dict(name=spec["name"], settings=settings, complete=False), indent=1))
    files = {c.clip: dict(video=f"clips/{c.clip}.mp4", audio=f"clips/{c.clip}.wav",
                          source=str(c.video.relative_to(src))) for c in clips}
    jobs, results = [], []
    for c in clips:
        done = previous_result(out, c)
        if done is not None:
            results.append({**done, "reused": True})
        else:
            jobs.append((c, files[c.clip]))
    workers = max(1, min(workers or (os.cpu_count() or 1), len(jobs) or 1))
    bar = dict(total=len(jobs), desc=f"{spec['name']} clips", unit="clip")
    if workers == 1:
        _worker_init(str(out), cfg.resolution, detector)
        results += [_ingest_one(j) for j in progress_bar(jobs, progress, **bar)]
    else:
        import cv2

        from .synthtalk import _pool_context

        # OpenCV's thread pool must be stopped before the fork (a forked child that touches an
        # inherited pool hangs); one thread per process anyway, the processes fill the cores
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        try:
            with _pool_context().Pool(workers, _worker_init, (str(out), cfg.resolution, detector, True)) as pool:
                results += list(progress_bar(pool.imap_unordered(_ingest_one, jobs), progress, **bar))
        finally:
            cv2.setNumThreads(threads)
    ok = sorted((r for r in results if r["status"] == "ok"), key=lambda r: r["clip"])
    skips += [Skip(r["file"], r["why"], r["detail"]) for r in results if r["status"] != "ok"]
    for s in skips:
        if s.why in CLIP_FAILURES:
            log.warning("skipped %s: %s", s.file, s.detail or s.why)
    summary = _summary(spec["name"], src, out, clips, skips, results, ok, time.perf_counter() - t0, workers)
    (out / "ingest_summary.json").write_text(json.dumps(summary, indent=1))
    if not ok:
        raise RuntimeError(f"no clip of {src} could be ingested; the reasons are in {out / 'ingest_summary.json'}")
    # pools over the speakers that made it into the corpus, so that none is left empty
    by_name = {c.clip: c for c in clips}
    splits = assign_splits([by_name[r["clip"]] for r in ok], cfg, seed)
    meta = pd.DataFrame([dict(clip=c.clip, speaker=c.speaker, emotion=c.emotion, intensity=c.intensity,
                              sentence_id=c.sentence_id, sentence=c.sentence, pool=splits[c.clip][0],
                              split=splits[c.clip][1], **files[c.clip],
                              **{k: v for k, v in c.extra.items() if k != "gender"}, **r["measured"])
                         for r in ok for c in [by_name[r["clip"]]]])
    meta["fps"], meta["sample_rate"] = FPS, SAMPLE_RATE
    meta.to_csv(out / "metadata.csv", index=False)
    speakers = spec["speakers"](src, clips)
    pools = meta.groupby("speaker").pool.first()
    speakers.insert(1, "pool", speakers.speaker.map(pools))
    speakers = speakers[speakers.pool.notna()]
    speakers.to_csv(out / "speakers.csv", index=False)
    (out / "corpus.json").write_text(json.dumps(dict(
        name=spec["name"], source=str(src), url=spec["url"], licence=spec["licence"], settings=settings,
        complete=True, n_clips=len(meta), n_speakers=int(meta.speaker.nunique()), fps=FPS,
        sample_rate=SAMPLE_RATE, resolution=cfg.resolution, emotions=list(EMOTIONS),
        intensities=list(cfg.intensities), detector=DETECTOR_DESCRIPTIONS[detector]),
        indent=1))
    return summary


def _check_out(out: Path, settings: dict) -> None:
    manifest = out / "corpus.json"
    if not manifest.exists():
        if out.exists() and any(out.iterdir()):
            raise FileExistsError(f"{out} is not empty and holds no ingested corpus; choose an empty or new folder")
        return
    old = json.loads(manifest.read_text()).get("settings")
    if old is not None and "detector" not in old:  # ingested before the detector could be chosen: Haar
        old = {**old, "detector": "haar"}
    if old != settings:
        diff = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v} if old else "not an ingested corpus"
        raise FileExistsError(f"{out} already holds a corpus made with other settings ({diff}); choose another "
                              f"folder or delete it")


def _summary(name, src, out, clips, skips, results, ok, seconds, workers) -> dict:
    new = [r for r in results if not r.get("reused")]
    return dict(
        corpus=name, source=str(src), out=str(out), clips_found=len(clips), files_skipped_by_name=len(
            [s for s in skips if s.why not in CLIP_FAILURES]),
        ingested=len(ok), new=sum(r["status"] == "ok" for r in new), reused=sum(1 for r in ok if r.get("reused")),
        repaired=sum(1 for r in ok if r.get("repaired", 0) > 0),
        repaired_frames=int(sum(r.get("repaired", 0) for r in ok)),
        skipped=len(skips), skipped_by_reason=dict(Counter(s.why for s in skips).most_common()),
        skipped_files=[dataclasses.asdict(s) for s in sorted(skips, key=lambda s: s.file)],
        seconds=round(seconds, 1), workers=workers,
        clips_per_minute=round(60 * len(new) / seconds, 1) if new and seconds > 0 else None)


def format_summary(s: dict) -> str:
    """The summary in a few lines, for people."""
    lines = [f"{s['corpus']} -> {s['out']}: {s['ingested']} clips ingested ({s['new']} new, {s['reused']} from an "
             f"earlier run), {s['repaired']} with face gaps repaired ({s['repaired_frames']} frames), "
             f"{s['skipped']} files skipped, {s['seconds']:.0f} s"]
    for why, n in s["skipped_by_reason"].items():
        lines.append(f"  skipped {n:5d}  {why}")
    listed = [f for f in s["skipped_files"] if f["detail"]][:10]
    for f in listed:
        lines.append(f"    {f['file']}: {f['detail']}")
    if len([f for f in s["skipped_files"] if f["detail"]]) > len(listed):
        lines.append(f"    ... every skipped file is listed in {Path(s['out']) / 'ingest_summary.json'}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- look-alike copies
def write_lookalike(kind: str, corpus, dest, clips: list[str] | None = None, seconds: float | None = None,
                    face: int | None = None, blank: dict | None = None, seed: int = 0) -> dict[str, dict]:
    """Lay SynthTalk clips out as a copy of CREMA-D or RAVDESS, with their formats, for the tests,
    the benchmark and for trying ``ingest`` without the real corpus.

    ``cremad``: 480x360 FLV1 video at 30 fps with mp3 sound, plus 16 kHz wavs in AudioWAV/, and a
    VideoDemographics.csv. ``ravdess``: 1280x720 H.264 at 29.97 fps with 48 kHz stereo AAC in
    Actor_NN/. Each face is scaled to ``face`` pixels and pasted on a textured background at an
    offset that differs per clip; ``seconds`` trims clips (or loops them, to reach a length);
    ``blank`` maps a SynthTalk clip to (start, end) seconds shown without the face. Returns, by
    name in the copy, each clip's SynthTalk ``clip`` and its known face ``box`` (x0, y0, x1, y1):
    SynthTalk's own crop, which ``ingest`` should recover.
    """
    from PIL import Image

    from .audio import load_audio, write_wav
    from .synthtalk import EMOTION_CODES, INTENSITY_CODES
    from .video import read_video

    dest = Path(dest)
    w, h, fps = (480, 360, 30.0) if kind == "cremad" else (1280, 720, 30000 / 1001)
    face = face or (200 if kind == "cremad" else 400)
    rng = np.random.default_rng(seed)
    # a room: a wall of slowly varying colour with a little fine grain (real backdrops are plainer)
    wall = rng.integers(70, 190, (5, 7, 3)).astype(np.uint8)
    background = np.asarray(Image.fromarray(wall).resize((w, h), Image.Resampling.BICUBIC), np.float32)
    background = np.clip(background + rng.normal(0, 6, (h, w, 1)), 0, 255).astype(np.uint8)
    meta = corpus.meta if clips is None else corpus.meta.set_index("clip").loc[clips].reset_index()
    speakers = sorted(corpus.meta.speaker.unique())
    boxes, taken = {}, set()
    for k, rec in enumerate(meta.itertuples(index=False)):
        actor = speakers.index(rec.speaker) + 1
        if kind == "cremad":
            level = INTENSITY_CODES[rec.intensity] if rec.emotion != "neutral" else "XX"
            name = f"{1000 + actor}_{list(CREMAD_SENTENCES)[rec.sentence_id % 12]}_{EMOTION_CODES[rec.emotion]}_{level}"
        else:
            emo = {v: c for c, v in RAVDESS_EMOTIONS.items() if v}[rec.emotion]
            inten = 2 if rec.intensity == "high" and rec.emotion != "neutral" else 1
            rep = 1 + sum(t.startswith(f"01-01-{emo:02d}-{inten:02d}-{rec.sentence_id % 2 + 1:02d}") and
                          t.endswith(f"-{actor:02d}") for t in taken)
            name = f"01-01-{emo:02d}-{inten:02d}-{rec.sentence_id % 2 + 1:02d}-{rep:02d}-{actor:02d}"
        if name in taken or (kind == "ravdess" and rep > 2):
            continue
        taken.add(name)
        frames, _ = read_video(corpus.root / rec.video)
        audio = load_audio(corpus.root / rec.audio, 16000, quiet=True)
        if seconds:
            n = int(round(seconds * 25))
            frames, audio = np.resize(frames, (n, *frames.shape[1:])), np.resize(audio, n * 640)
        n = int(round(len(frames) * fps / 25))
        x0 = int(w * 0.5 - face * 0.5 + (k % 5 - 2) * 0.04 * w)
        y0 = int(h * 0.45 - face * 0.5 + (k % 3 - 1) * 0.04 * h)
        out = np.repeat(background[None], n, 0)
        gone = blank.get(rec.clip) if blank else None
        for j in range(n):
            if gone and gone[0] <= j / fps < gone[1]:
                continue
            src = frames[min(int(round(j * 25 / fps)), len(frames) - 1)]
            out[j, y0:y0 + face, x0:x0 + face] = np.asarray(
                Image.fromarray(src).resize((face, face), Image.Resampling.BICUBIC))
        if kind == "cremad":
            (dest / "VideoFlash").mkdir(parents=True, exist_ok=True)
            (dest / "AudioWAV").mkdir(parents=True, exist_ok=True)
            _write_av(dest / "VideoFlash" / f"{name}.flv", out, fps, audio, 16000, "flv", "flv", "libmp3lame",
                      44100, 1)
            write_wav(dest / "AudioWAV" / f"{name}.wav", audio, 16000)
        else:
            folder = dest / f"Actor_{actor:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            _write_av(folder / f"{name}.mp4", out, fps, audio, 16000, "mp4", "libx264", "aac", 48000, 2)
        boxes[name] = dict(clip=rec.clip, box=[x0, y0, x0 + face, y0 + face])
    if kind == "cremad":
        actors = sorted({int(n[:4]) for n in taken})
        pd.DataFrame(dict(ActorID=actors, Age=[20 + 3 * i for i in range(len(actors))],
                          Sex=["Female" if i % 2 else "Male" for i in range(len(actors))])).to_csv(
            dest / "VideoDemographics.csv", index=False)
    return boxes


def _write_av(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None, sr: int, fmt: str,
              vcodec: str, acodec: str, out_sr: int, channels: int) -> None:
    """A video file as a camera or a corpus distributor would make it (no reproducibility needed)."""
    from fractions import Fraction

    import av

    from .audio import resample

    with av.open(str(path), "w", format=fmt) as out:
        vs = out.add_stream(vcodec, rate=Fraction(fps).limit_denominator(1001))
        vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        if vcodec == "flv":
            vs.bit_rate = 2_000_000
        else:
            vs.options = {"crf": "20", "preset": "veryfast"}
        aus = None
        if audio is not None:
            aus = out.add_stream(acodec, rate=out_sr)
            aus.layout = "stereo" if channels == 2 else "mono"
        for i, f in enumerate(frames):
            for packet in vs.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None:
            samples = np.repeat(resample(audio, sr, out_sr)[None], channels, 0).astype(np.float32)
            for start in range(0, samples.shape[1], 16384):  # PyAV converts to the codec's format
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 16384]),
                                                format="fltp", layout=aus.layout.name)
                af.sample_rate, af.pts = out_sr, start
                for packet in aus.encode(af):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
