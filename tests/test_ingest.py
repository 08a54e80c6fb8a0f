"""Real-corpus ingestion: CREMA-D and RAVDESS look-alike copies made from SynthTalk clips.

The copies have the real layouts and formats (CREMA-D: 480x360 FLV1 at 30 fps with mp3 sound and
16 kHz wavs; RAVDESS: 1280x720 H.264 at 29.97 fps with 48 kHz stereo AAC), faces scaled up and
pasted at known places on a textured background, so every ingested crop has a known answer.
The tests of tracking and repair ingest with the Haar cascade, on which their fixtures and
thresholds were chosen; one ingests with MTCNN, the default when it is installed.
"""
import importlib.util
import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest

from s2v_lib.machinery import ingest as ing
from s2v_lib.machinery.audio import load_audio
from s2v_lib.data import REQUIRED_COLUMNS, Corpus, build_cache
from s2v_lib.machinery import detect
from s2v_lib.machinery.detect import FaceDetector, crop_box, missing_runs, repair_gaps, smooth_track, track_faces

SECONDS = 1.2  # clips are trimmed: the tests check behaviour, not throughput


# ----------------------------------------------------------------------------------- detector
def test_detector_finds_a_real_face():
    skimage_data = pytest.importorskip("skimage.data")
    astronaut = skimage_data.astronaut()  # a photograph that ships inside scikit-image
    assert np.allclose(FaceDetector(max_side=512)(astronaut), [177, 66, 272, 161], atol=2)
    assert np.allclose(FaceDetector()(astronaut), [177, 66, 272, 161], atol=4)  # found at 360 px, scaled back
    assert FaceDetector()(np.full((360, 480, 3), 128, np.uint8)) is None


def test_detectors_by_name_and_errors_that_name_the_fix(monkeypatch, tmp_path, capsys):
    from s2v_lib.machinery.cli import main
    from s2v_lib.pretrained import PretrainedModelMissing

    assert type(detect.make_detector("haar")) is FaceDetector and detect.resolve_detector_name("haar") == "haar"
    with pytest.raises(ValueError, match="unknown face detector 'hog'; choose one of auto, haar, dlib, mtcnn"):
        detect.make_detector("hog")
    mtcnn_installed = all(importlib.util.find_spec(m) for m in ("facenet_pytorch", "torchvision"))
    assert detect.resolve_detector_name() == ("mtcnn" if mtcnn_installed else "haar")
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # as if the pretrained extra were not installed
    monkeypatch.setitem(sys.modules, "dlib", None)
    assert detect.resolve_detector_name("auto") == "haar"
    with pytest.raises(PretrainedModelMissing, match=r"pip install --no-deps facenet-pytorch==2\.6\.0"):
        detect.make_detector("mtcnn")
    with pytest.raises(PretrainedModelMissing, match=r"pip install dlib-bin"):
        detect.make_detector("dlib")
    with pytest.raises(PretrainedModelMissing):  # before the source is even looked at
        ing.ingest("cremad", tmp_path / "nowhere", tmp_path / "out", detector="mtcnn")
    assert main(["ingest", "cremad", str(tmp_path), "--out", str(tmp_path / "out"), "--detector", "mtcnn"]) == 2
    assert "pip install --no-deps facenet-pytorch" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_gaps_are_repaired_by_interpolation_up_to_a_limit():
    raw = np.tile(np.array([10, 20, 50, 60], np.float32), (20, 1))
    raw[:, 0] += np.arange(20)  # the face moves right
    raw[3:6] = np.nan           # 3 frames: repaired
    raw[10:17] = np.nan         # 7 frames: too long for max_gap=5
    assert missing_runs(raw) == [(3, 6), (10, 17)]
    boxes, repaired, longest = repair_gaps(raw, max_gap=5)
    assert repaired == 3 and longest == 7
    assert np.allclose(boxes[3:6, 0], [13, 14, 15]) and np.isnan(boxes[10:17]).all()
    boxes, repaired, _ = repair_gaps(raw, max_gap=7)
    assert repaired == 10 and not np.isnan(boxes).any()
    smooth = smooth_track(boxes)
    assert np.allclose(smooth[:, 2] - smooth[:, 0], 40) and np.allclose(smooth[:, 3] - smooth[:, 1], 40)
    square = crop_box(np.array([100, 100, 200, 200]))
    assert square[2] - square[0] == pytest.approx(147, abs=0.5)  # CROP_SCALE: the head, not brows to chin


def test_track_reports_a_clip_without_faces():
    track = track_faces(np.full((6, 120, 160, 3), 90, np.uint8))
    assert track.missing == 6 and not track.ok and track.gaps == [(0, 6)]


def test_read_video_resamples_to_25_fps_by_timestamps(tmp_path):
    import av

    from s2v_lib.machinery.video import read_video

    path = tmp_path / "count.mp4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=30)
        vs.width = vs.height = 32
        vs.pix_fmt, vs.options = "yuv420p", {"qp": "0"}
        for i in range(75):  # 2.5 s at 30 fps; frame i has grey level 3 i
            for p in vs.encode(av.VideoFrame.from_ndarray(np.full((32, 32, 3), 3 * i, np.uint8), format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
    frames, fps = read_video(path, fps=25)
    assert fps == 25 and len(frames) == 62  # 2.5 s kept
    picked = np.round(frames[:, 0, 0, 0] / 3).astype(int)
    assert np.array_equal(picked, np.round(np.arange(62) * 30 / 25 + 1e-9).astype(int))


# ----------------------------------------------------------------------------------- look-alike copies
@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """A SynthTalk corpus (12 speakers x 2 clips) and those of its clips whose drawn face the Haar
    cascade finds in every other frame of the part the tests use, two per speaker. The cascade
    misses some drawn faces (all with glasses or a beard, a few others): half the speakers pass."""
    from PIL import Image

    from s2v_lib.config import CorpusConfig
    from s2v_lib.machinery.synthtalk import generate_corpus
    from s2v_lib.machinery.video import read_video

    cfg = CorpusConfig(n_speakers=12, clips_per_speaker=2, n_sentences=12, seed=7)
    corpus = Corpus(generate_corpus(tmp_path_factory.mktemp("faces") / "synthtalk", cfg, workers=2, progress=False))
    plain = corpus.speakers[(corpus.speakers.glasses == 0) & (corpus.speakers.beard == 0)].speaker
    detector, canvas, clips = FaceDetector(), np.full((360, 480, 3), 120, np.uint8), []
    for _, rows in corpus.meta[corpus.meta.speaker.isin(plain)].groupby("speaker"):
        found = True
        for video in rows.video:
            for f in read_video(corpus.root / video)[0][:int(SECONDS * 25):2]:
                canvas[80:280, 140:340] = np.asarray(Image.fromarray(f).resize((200, 200)))
                found = found and detector(canvas) is not None
        clips += list(rows["clip"]) if found else []
    assert len(clips) >= 8, f"the face detector finds too few SynthTalk faces for the fixtures: {clips}"
    return corpus, clips


@pytest.fixture(scope="module")
def cremad(faces, tmp_path_factory):
    """A CREMA-D copy: the usable clips, one with a short face gap, one with a long one, an
    unreadable file and a file named against the convention; and its ingestion (2 processes)."""
    corpus, usable = faces[0], faces[1][:6]  # 3 speakers
    root = tmp_path_factory.mktemp("cremad")
    src = root / "CREMA-D"
    blank = {usable[0]: (0.3, 0.42), usable[1]: (0.2, 1.0)}
    known = ing.write_lookalike("cremad", corpus, src, clips=usable, seconds=SECONDS, blank=blank)
    names = {v["clip"]: k for k, v in known.items()}
    (src / "VideoFlash" / "1099_IEO_ANG_HI.flv").write_bytes(os.urandom(5000))  # garbage, named right
    (src / "VideoFlash" / "holiday.flv").write_bytes(b"")
    summary = ing.ingest("cremad", src, root / "out", workers=2, progress=False, detector="haar")
    return dict(src=src, out=root / "out", known=known, summary=summary, synthtalk=corpus,
                short=names[usable[0]], long=names[usable[1]])


@pytest.fixture(scope="module")
def ravdess(faces, tmp_path_factory):
    """A RAVDESS copy: the usable clips, plus an audio-only, a video-only, a song and a calm file."""
    corpus, usable = faces[0], faces[1][-4:]  # 2 speakers
    root = tmp_path_factory.mktemp("ravdess")
    src = root / "RAVDESS"
    known = ing.write_lookalike("ravdess", corpus, src, clips=usable, seconds=SECONDS)
    first = next(iter(known))
    actor = first[-2:]
    extras = {f"02-01-03-01-01-01-{actor}.mp4": "video-only", f"01-02-03-01-01-01-{actor}.mp4": "song",
              f"01-01-02-01-01-01-{actor}.mp4": "calm", f"01-01-08-02-02-01-{actor}.mp4": "surprised"}
    for name in extras:
        shutil.copy(src / f"Actor_{actor}" / f"{first}.mp4", src / f"Actor_{actor}" / name)
    audio_only = src / f"Actor_{actor}" / f"03-01-03-01-01-01-{actor}.wav"
    shutil.copy(corpus.root / "clips" / f"{known[first]['clip']}.wav", audio_only)
    summary = ing.ingest("ravdess", src, root / "out", workers=1, progress=False, detector="haar")
    return dict(src=src, out=root / "out", known=known, summary=summary, synthtalk=corpus, actor=actor)


def _box_errors(run, resolution=64):
    """Per clip: mean absolute error of the recovered crop box edges, in pixels of the output crop."""
    errors = {}
    for name, truth in run["known"].items():
        result = json.loads((run["out"] / "ingest_log" / f"{name}.json").read_text())
        if result["status"] == "ok":
            side = truth["box"][2] - truth["box"][0]
            errors[name] = float(np.abs(np.array(result["boxes"]) - truth["box"]).mean() * resolution / side)
    return errors


# ----------------------------------------------------------------------------------- CREMA-D
def test_cremad_labels_are_parsed_from_names(cremad):
    clips, skips = ing.scan_cremad(cremad["src"])
    assert {s.file: s.why for s in skips} == {"VideoFlash/holiday.flv": "name not in CREMA-D's form"}
    c = next(c for c in clips if c.clip.endswith("_XX"))
    assert c.intensity == "medium" and c.emotion == "neutral"  # XX (unspecified) -> medium
    meta = Corpus(cremad["out"]).meta
    row = meta.iloc[0]
    actor, code, emo, level = row["clip"].split("_")
    assert row.speaker == f"cremad{actor}" and row.sentence == ing.CREMAD_SENTENCES[code]
    assert row.emotion == ing.CREMAD_EMOTIONS[emo] and row.intensity == ing.CREMAD_LEVELS[level]
    speakers = pd.read_csv(cremad["out"] / "speakers.csv", dtype={"actor": str})
    assert set(speakers.gender) <= {"male", "female"} and speakers.age.notna().all()  # VideoDemographics.csv


def test_cremad_faces_are_found_where_they_were_put(cremad):
    errors = _box_errors(cremad)
    assert len(errors) == len(cremad["known"]) - 1  # all but the long gap
    assert np.mean(list(errors.values())) < 2.5 and max(errors.values()) < 4.5, errors


def test_cremad_crops_show_the_face(cremad):
    from s2v_lib.machinery.video import read_video

    name = next(n for n in cremad["known"] if n not in (cremad["short"], cremad["long"]))
    crops, fps = read_video(cremad["out"] / "clips" / f"{name}.mp4")
    truth, _ = read_video(cremad["synthtalk"].root / "clips" / f"{cremad['known'][name]['clip']}.mp4")
    assert fps == 25 and crops.shape[1:] == (64, 64, 3)
    a, b = crops.mean(0).ravel(), truth[:len(crops)].mean(0).ravel()
    assert np.corrcoef(a, b)[0, 1] > 0.9  # the mean face of the clip, against SynthTalk's own crop


def test_cremad_audio_is_16k_mono_the_length_of_the_video(cremad):
    import soundfile as sf

    meta = Corpus(cremad["out"]).meta
    for rec in meta.itertuples():
        audio, sr = sf.read(cremad["out"] / rec.audio)
        assert sr == 16000 and audio.ndim == 1 and len(audio) == rec.frames * 640
    rec = meta.iloc[0]
    original = load_audio(cremad["synthtalk"].root / "clips" / f"{cremad['known'][rec['clip']]['clip']}.wav")
    assert np.corrcoef(load_audio(cremad["out"] / rec.audio), original[:rec.frames * 640])[0, 1] > 0.99


def test_cremad_gaps_are_repaired_or_skipped_and_garbage_listed(cremad):
    s = cremad["summary"]
    meta = Corpus(cremad["out"]).meta.set_index("clip")
    assert meta.loc[cremad["short"], "repaired_frames"] >= 2 and s["repaired"] >= 1
    assert cremad["long"] not in meta.index
    why = {f["file"]: f for f in s["skipped_files"]}
    long = why[f"VideoFlash/{cremad['long']}.flv"]
    assert long["why"] == "face missing too long" and "no face in frames 5-24" in long["detail"]
    assert "longer than the 0.5 s that can be repaired" in long["detail"]
    assert why["VideoFlash/1099_IEO_ANG_HI.flv"]["why"] == "unreadable"
    assert s["ingested"] == len(meta) == len(cremad["known"]) - 1 and s["skipped"] == 3
    saved = json.loads((cremad["out"] / "ingest_summary.json").read_text())
    assert saved["skipped_by_reason"] == s["skipped_by_reason"]


def test_cremad_output_is_a_corpus_the_course_can_use(cremad, tmp_path):
    corpus = Corpus(cremad["out"])
    synth = ["clip", "speaker", "emotion", "intensity", "sentence_id", "sentence", "pool", "split", "video",
             "audio", "duration", "frames", "fps", "sample_rate"]
    assert set(synth) <= set(corpus.meta.columns) and set(REQUIRED_COLUMNS) <= set(corpus.meta.columns)
    assert corpus.meta.groupby("speaker").pool.nunique().max() == 1
    assert set(corpus.meta.pool) == {"A", "B", "C"} and corpus.fps == 25 and corpus.sample_rate == 16000
    assert corpus.ground_truth(corpus.meta["clip"].iloc[0]) is None
    manifest = json.loads((cremad["out"] / "corpus.json").read_text())
    assert manifest["complete"] and manifest["resolution"] == 64 and manifest["n_clips"] == len(corpus.meta)
    cache = build_cache(corpus, tmp_path / "cache", 64, progress=False)
    assert cache.frames.shape == (corpus.meta.frames.sum(), 64, 64, 3)
    assert cache.mel.shape[0] == 4 * corpus.meta.frames.sum()


def test_rerun_resumes_and_redoes_only_what_changed(cremad, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(cremad["out"], out)
    stamps = {p.name: p.stat().st_mtime_ns for p in (out / "clips").iterdir()}
    again = ing.ingest("cremad", cremad["src"], out, workers=1, progress=False, detector="haar")
    assert again["new"] == 0 and again["reused"] == cremad["summary"]["ingested"]
    assert again["skipped_by_reason"] == cremad["summary"]["skipped_by_reason"]
    assert {p.name: p.stat().st_mtime_ns for p in (out / "clips").iterdir()} == stamps
    (out / "clips" / f"{cremad['short']}.mp4").unlink()  # lost: that clip alone is redone
    third = ing.ingest("cremad", cremad["src"], out, workers=1, progress=False, detector="haar")
    assert third["new"] == 1 and third["reused"] == again["reused"] - 1
    assert pd.read_csv(out / "metadata.csv").equals(pd.read_csv(cremad["out"] / "metadata.csv"))
    with pytest.raises(FileExistsError, match="other settings"):
        ing.ingest("cremad", cremad["src"], out, resolution=128, progress=False, detector="haar")


def test_a_corpus_ingested_before_the_detector_could_be_chosen_counts_as_haar(cremad, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(cremad["out"], out)

    def forget_the_detector():  # corpus.json as ingestion wrote it before it took a detector
        manifest = json.loads((out / "corpus.json").read_text())
        del manifest["settings"]["detector"]
        (out / "corpus.json").write_text(json.dumps(manifest))

    forget_the_detector()
    again = ing.ingest("cremad", cremad["src"], out, workers=1, progress=False, detector="haar")
    assert again["new"] == 0 and again["reused"] == cremad["summary"]["ingested"]
    assert json.loads((out / "corpus.json").read_text())["settings"]["detector"] == "haar"
    forget_the_detector()
    pytest.importorskip("facenet_pytorch")  # another detector to refuse
    with pytest.raises(FileExistsError, match=r"other settings \({'detector': \('haar', 'mtcnn'\)}\)"):
        ing.ingest("cremad", cremad["src"], out, workers=1, progress=False, detector="mtcnn")


def test_ingest_with_mtcnn_names_it_in_the_corpus(cremad, tmp_path):
    pytest.importorskip("facenet_pytorch")
    pytest.importorskip("torchvision")
    src = tmp_path / "CREMA-D"
    names = list({n[:4]: n for n in cremad["known"] if n not in (cremad["short"], cremad["long"])}.values())[:2]
    for name in names:  # two clips of the look-alike copy, of two actors
        for folder, ext in (("VideoFlash", "flv"), ("AudioWAV", "wav")):
            (src / folder).mkdir(parents=True, exist_ok=True)
            shutil.copy(cremad["src"] / folder / f"{name}.{ext}", src / folder)
    summary = ing.ingest("cremad", src, tmp_path / "out", workers=2, progress=False, detector="mtcnn")
    assert summary["ingested"] == 2 and summary["workers"] == 2  # in forked workers, torch on one thread each
    manifest = json.loads((tmp_path / "out" / "corpus.json").read_text())
    assert manifest["settings"]["detector"] == "mtcnn" and manifest["detector"].startswith("MTCNN")
    for name in names:
        boxes = np.array(json.loads((tmp_path / "out" / "ingest_log" / f"{name}.json").read_text())["boxes"])
        true = np.array(cremad["known"][name]["box"], float)
        px = 64 / (true[2] - true[0])  # pixels of the 64 px crop per pixel of the frame
        centre = (boxes[:, :2] + boxes[:, 2:]) / 2 - (true[:2] + true[2:]) / 2
        assert np.hypot(*centre.T).mean() * px < 2, name  # the face is where it was put
        # the side: MTCNN's box is converted to the cascade's extent as measured on photographs;
        # on SynthTalk's drawn faces it comes out up to a fifth smaller
        assert 0.7 < np.mean(boxes[:, 2] - boxes[:, 0]) / (true[2] - true[0]) < 1.2, name


# ----------------------------------------------------------------------------------- RAVDESS
def test_ravdess_skips_what_is_not_audiovisual_speech_in_the_vocabulary(ravdess):
    s = ravdess["summary"]
    assert s["skipped_by_reason"] == {"audio-only (modality 03): no face": 1, "video-only (modality 02): no sound": 1,
                                      "song (vocal channel 02)": 1, "calm: not in the shared emotions": 1,
                                      "surprised: not in the shared emotions": 1}
    assert s["ingested"] == len(ravdess["known"]) and s["repaired"] == 0


def test_ravdess_labels_and_speakers(ravdess):
    meta = Corpus(ravdess["out"]).meta
    for rec in meta.itertuples():
        _, _, emo, inten, statement, rep, actor = (int(x) for x in rec.clip.split("-"))
        assert rec.emotion == ing.RAVDESS_EMOTIONS[emo] and rec.intensity == ing.RAVDESS_INTENSITIES[inten]
        assert rec.sentence == ing.RAVDESS_STATEMENTS[statement] and rec.speaker == f"ravdess{actor:02d}"
        assert rec.repetition == rep
    speakers = pd.read_csv(ravdess["out"] / "speakers.csv", dtype={"actor": str})
    assert all((g == "male") == (int(a) % 2 == 1) for a, g in zip(speakers.actor, speakers.gender))


def test_ravdess_faces_and_48k_audio(ravdess):
    errors = _box_errors(ravdess)
    assert len(errors) == len(ravdess["known"])
    assert np.mean(list(errors.values())) < 2.5 and max(errors.values()) < 4.5, errors
    meta = Corpus(ravdess["out"]).meta
    rec = meta.iloc[0]
    audio = load_audio(ravdess["out"] / rec.audio)  # from the mp4's 48 kHz stereo AAC track
    assert len(audio) == rec.frames * 640
    original = load_audio(ravdess["synthtalk"].root / "clips" / f"{ravdess['known'][rec['clip']]['clip']}.wav")
    assert np.corrcoef(audio, original[:len(audio)])[0, 1] > 0.95  # in time with the video, not shifted


# ----------------------------------------------------------------------------------- errors
def test_errors_speak_the_users_language(cremad, ravdess, tmp_path, capsys):
    from s2v_lib.machinery.cli import main

    with pytest.raises(FileNotFoundError, match="no VideoFlash folder: is this a CREMA-D copy"):
        ing.scan_cremad(ravdess["src"])
    with pytest.raises(FileNotFoundError, match="no Actor_NN folders .* is this a RAVDESS copy"):
        ing.scan_ravdess(cremad["src"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ing.scan_ravdess(tmp_path / "nowhere")
    assert main(["ingest", "cremad", str(ravdess["src"]), "--out", str(tmp_path / "x")]) == 2
    assert "is this a CREMA-D copy?" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        ing.ingest("cremad", cremad["src"], tmp_path / "full", progress=False)
