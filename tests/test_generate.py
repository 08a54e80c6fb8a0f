"""Speech -> video: any common audio file, bad input in words, batches, overrides, streaming, the CLI.

The run here has untrained networks (the right shapes, random weights): these tests are about
what goes in and what comes out, not about how the face looks.
"""
import math
import os

import av
import numpy as np
import pytest
import soundfile as sf
import torch

from s2v_lib.machinery import cli, runs
from s2v_lib import inference
from s2v_lib.machinery.audio import AudioError, Recording
from s2v_lib.config import EMOTIONS, GANConfig, GeneratorConfig
from s2v_lib.students import EmotionStudent, IdentityStudent, save_student
from s2v_lib.machinery.synthtalk import speak
from s2v_lib.gan.train import GANData, GANTrainer
from s2v_lib.machinery.video import read_video

SR = 16000


@pytest.fixture(scope="module")
def tiny_run(tiny_cache, tiny_features, tmp_path_factory):
    """A run directory: the tiny cache and teacher features, untrained students and two untrained GANs."""
    run = runs.run_dir(tmp_path_factory.mktemp("generate_run"))
    (run / "cache").symlink_to(tiny_cache.root.resolve())
    (run / "teacher_features").symlink_to(tiny_features.root.resolve())
    torch.manual_seed(0)
    save_student(EmotionStudent(80, width=8, embedding_dim=64), run / "checkpoints" / "emotion_student.pt")
    save_student(IdentityStudent(80, width=8, embedding_dim=128), run / "checkpoints" / "identity_student.pt")
    data = GANData.synthetic(resolution=64)
    for system, changes in (("speech2video", {}), ("static_image_baseline", dict(identity_from="image"))):
        cfg = GANConfig(generator=GeneratorConfig(width=8, **changes), d_width=8)
        GANTrainer(cfg, data, experts=None, resolution=64, dev=torch.device("cpu")).save(
            run / "checkpoints" / f"gan_{system}.pt")
    return run


@pytest.fixture(scope="module")
def model(tiny_run):
    return inference.Speech2VideoModel.from_run(tiny_run)


def speechlike(seconds=1.0, sr=SR, channels=1, seed=0):
    """Voiced bursts: a 120-220 Hz buzz with harmonics under a syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * sr))) / sr
    f0 = 170 + 50 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    buzz = sum(np.sin(k * phase) / k for k in range(1, 8))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    x = 0.25 * buzz * envelope + 0.005 * rng.standard_normal(len(t))
    x = x.astype(np.float32)
    return np.stack([x, 0.8 * x], 1) if channels == 2 else x


def video_facts(path):
    """(video codec, number of frames, audio codec, seconds of audio) of an mp4."""
    frames, fps = read_video(path)
    with av.open(str(path)) as c:
        audio = c.streams.audio[0] if c.streams.audio else None
        return (c.streams.video[0].codec_context.name, len(frames), audio and audio.codec_context.name,
                audio and float(audio.duration * audio.time_base))


# ----------------------------------------------------------------------------------- formats
@pytest.mark.parametrize("name, sr, channels, subtype", [
    ("a.wav", 48000, 2, "PCM_16"), ("b.flac", 22050, 1, "PCM_16"), ("c.ogg", 44100, 1, "VORBIS"),
    ("d.mp3", 44100, 2, "MPEG_LAYER_III"), ("e.wav", 8000, 1, "FLOAT"), ("f.wav", 16000, 1, "PCM_32")])
def test_common_audio_files_become_a_video_with_their_sound(tmp_path, model, name, sr, channels, subtype):
    seconds = 1.23
    sf.write(tmp_path / name, speechlike(seconds, sr, channels), sr, subtype=subtype)
    report = inference.generate_video(tmp_path / name, tmp_path / "out.mp4", model=model, progress=False)
    assert report["source"]["sample_rate"] == sr and report["source"]["channels"] == channels
    assert abs(report["duration_s"] - seconds) < 0.08  # mp3 and vorbis pad a little
    assert report["frames"] == math.ceil(report["duration_s"] * 25 - 1e-9)
    vcodec, n_frames, acodec, audio_s = video_facts(tmp_path / "out.mp4")
    assert (vcodec, acodec) == ("h264", "aac")
    assert n_frames == report["frames"]
    assert abs(audio_s - report["duration_s"]) < 1e-3
    assert report["emotion"] in EMOTIONS and abs(sum(report["emotion_probs"].values()) - 1) < 1e-5
    assert report["realtime_factor"] > 0 and report["notes"] == []


def test_an_array_of_samples_works_like_a_file(tmp_path, tiny_run):
    x = speechlike(0.9, 22050, channels=2)
    report = inference.generate_video(x, tmp_path / "v.mp4", run=tiny_run, sample_rate=22050, progress=False)
    assert report["speech"] == "<array>" and report["frames"] == math.ceil(0.9 * 25)
    assert report["source"] == dict(sample_rate=22050, channels=2, seconds=pytest.approx(0.9, abs=1e-4),
                                    clipped=0.0, nonfinite=0, silent=False)
    as_int16 = inference.generate_video((x * 32767).astype(np.int16), tmp_path / "i.mp4", run=tiny_run,
                                    sample_rate=22050, progress=False)
    assert as_int16["notes"] == [] and as_int16["emotion_probs"] == pytest.approx(report["emotion_probs"], abs=1e-3)


# ----------------------------------------------------------------------------------- odd input
def test_silence_still_gives_a_video_with_a_note(tmp_path, model, monkeypatch):
    monkeypatch.setattr(model, "_prototypes", dict(neutral=np.zeros(64, np.float32)))  # untrained students
    sf.write(tmp_path / "quiet.wav", np.zeros(SR, np.float32), SR)
    report = inference.generate_video(tmp_path / "quiet.wav", tmp_path / "quiet.mp4", model=model, progress=False)
    assert report["frames"] == 25 and (tmp_path / "quiet.mp4").exists()
    assert any("silent" in n for n in report["notes"])
    assert report["emotion_used"] == "neutral"  # silence carries no emotion
    mel = model.log_mel(np.zeros(SR, np.float32))
    assert np.allclose(mel, model.mel_floor[None])  # floored at the corpus's background noise, not log(0)


def test_nan_and_clipped_samples_are_noted_and_the_video_made(tmp_path, model):
    x = speechlike(1.0)
    x[100:150] = np.nan
    sf.write(tmp_path / "nan.wav", x, SR, subtype="FLOAT")
    sf.write(tmp_path / "loud.wav", np.clip(8 * speechlike(1.0), -1, 1), SR)
    nan = inference.generate_video(tmp_path / "nan.wav", tmp_path / "nan.mp4", model=model, progress=False)
    loud = inference.generate_video(tmp_path / "loud.wav", tmp_path / "loud.mp4", model=model, progress=False)
    assert any("50 samples were NaN" in n for n in nan["notes"])
    assert any("clipped" in n for n in loud["notes"]) and not any("clipped" in n for n in nan["notes"])
    assert (tmp_path / "nan.mp4").exists() and (tmp_path / "loud.mp4").exists()


@pytest.mark.parametrize("case, message", [
    ("empty", "contains no audio samples"), ("10ms", "lasts 10 ms, less than one video frame"),
    ("garbage", "cannot read"), ("missing", "not found"), ("folder", "is a folder"), ("0bytes", "is empty \\(0 bytes\\)")])
def test_unusable_audio_is_an_error_in_words(tmp_path, model, case, message):
    path = tmp_path / f"{case}.wav"
    if case == "empty":
        sf.write(path, np.zeros(0, np.float32), SR)
    elif case == "10ms":
        sf.write(path, speechlike(0.01), SR)
    elif case == "garbage":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, np.uint8).tobytes())
    elif case == "folder":
        path.mkdir()
    elif case == "0bytes":
        path.write_bytes(b"")
    with pytest.raises(AudioError, match=message):
        model.generate(path, tmp_path / "out.mp4", progress=False)
    assert not list(tmp_path.glob("out*.mp4"))


# ----------------------------------------------------------------------------------- long input
def test_a_long_recording_streams_in_chunks_and_equals_one_piece(tmp_path, model, monkeypatch):
    written = {}
    original = inference.VideoWriter.write
    monkeypatch.setattr(inference.VideoWriter, "write", lambda self, frames: (
        written.setdefault(self.path.stem, []).append(frames), original(self, frames))[1])
    x = speechlike(2.0)
    monkeypatch.setattr(model, "chunk_frames", 1000)
    whole = model.generate(x, tmp_path / "whole.mp4", progress=False)
    monkeypatch.setattr(model, "chunk_frames", 7)
    chunked = model.generate(x, tmp_path / "chunked.mp4", progress=False)
    assert [len(f) for f in written["whole"]] == [50] and [len(f) for f in written["chunked"]] == [7] * 7 + [1]
    # the same video up to float rounding (convolutions over other batch sizes round differently)
    a, b = (np.concatenate(written[k]).astype(int) for k in ("whole", "chunked"))
    assert np.abs(a - b).max() <= 1 and np.mean(a != b) < 1e-3
    assert whole["emotion_probs"] == chunked["emotion_probs"] and video_facts(tmp_path / "chunked.mp4")[1] == 50


def test_long_sound_is_heard_in_windows_and_blocks(model, monkeypatch):
    x = speechlike(3.03)
    whole_mel = model.log_mel(x)
    assert whole_mel.shape == (4 * math.ceil(3.03 * 25), 80)
    assert model.predict(whole_mel)["windows"] == 1
    mel = model.mel_frames(Recording(x, SR))  # any range, from its own samples, gives the whole's numbers
    for a, b in [(0, 37), (37, 301), (290, len(whole_mel)), (len(whole_mel) - 3, len(whole_mel) + 9), (5, 5)]:
        np.testing.assert_allclose(mel[a:b], whole_mel[a:b], rtol=0, atol=1e-5)
    short = model.mel_frames(Recording(speechlike(1.01), SR))  # 1.01 s: 26 video frames, the last one past the sound
    assert len(short) == 104 and short.n_real == 102
    assert (short[101:] == short[101:102]).all() and (short[103:] == short[101:102]).all()
    monkeypatch.setattr(inference, "STUDENT_WINDOW_S", 1.0)
    pred = model.predict(whole_mel)
    assert pred["windows"] == 4 and abs(np.linalg.norm(pred["identity"]) - 1) < 1e-5


# ----------------------------------------------------------------------------------- options
def test_the_same_seed_gives_the_same_video_and_another_seed_another(tmp_path, model):
    x = speechlike(1.0)
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        model.generate(x, tmp_path / f"{name}.mp4", seed=seed, progress=False)
    a, b, c = (read_video(tmp_path / f"{n}.mp4")[0] for n in "abc")
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()


def test_emotion_override_uses_a_prototype_cached_in_the_run(tmp_path, tiny_run, model):
    x = speechlike(1.0)
    predicted = model.generate(x, tmp_path / "predicted.mp4", progress=False)
    shown = sorted(model.emotion_prototypes())[0]
    override = model.generate(x, tmp_path / "override.mp4", emotion=shown.upper(), progress=False)
    assert override["emotion"] == predicted["emotion"] and override["emotion_used"] == shown
    assert not np.array_equal(read_video(tmp_path / "predicted.mp4")[0], read_video(tmp_path / "override.mp4")[0])
    cached = tiny_run / "checkpoints" / "emotion_prototypes.npz"
    with np.load(cached) as z:
        assert set(z["emotions"]) <= set(EMOTIONS) and z["embeddings"].shape[1] == 64 and z["counts"].sum() > 0
    with pytest.raises(ValueError, match="unknown emotion 'joy'"):
        model.generate(x, tmp_path / "joy.mp4", emotion="joy", progress=False)
    # a newer emotion student makes the prototypes again
    student = tiny_run / "checkpoints" / "emotion_student.pt"
    before = cached.stat().st_mtime_ns
    os.utime(student, ns=(before + 10 ** 9, before + 10 ** 9))
    inference.Speech2VideoModel.from_run(tiny_run).emotion_prototypes()
    assert cached.stat().st_mtime_ns > before


def test_the_static_image_baseline_needs_a_picture(tmp_path, tiny_run):
    from PIL import Image

    baseline = inference.Speech2VideoModel.from_run(tiny_run, "static_image_baseline")
    x = speechlike(0.6)
    with pytest.raises(ValueError, match="--baseline-image"):
        baseline.generate(x, tmp_path / "v.mp4", progress=False)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (60, 90, 3), np.uint8)).save(tmp_path / "face.png")
    report = baseline.generate(x, tmp_path / "v.mp4", baseline_image=tmp_path / "face.png", progress=False)
    assert report["frames"] == 15 and video_facts(tmp_path / "v.mp4")[1] == 15
    (tmp_path / "bad.png").write_bytes(b"not a picture")
    with pytest.raises(ValueError, match="cannot read .*bad.png as an image"):
        baseline.generate(x, tmp_path / "v.mp4", baseline_image=tmp_path / "bad.png", progress=False)
    assert inference.face_image(np.zeros((50, 80, 3), np.uint8), 64).shape == (1, 3, 64, 64)


def test_a_typed_sentence_said_by_a_synthtalk_voice(tmp_path, model):
    audio = speak("The baker found a bright lamp.", speaker_index=2, emotion="anger", intensity="HI")
    assert audio.dtype == np.float32 and 0.8 < len(audio) / SR < 5 and np.abs(audio).max() <= 1
    assert np.array_equal(audio, speak("The baker found a bright lamp.", 2, "anger", "high"))
    assert not np.array_equal(audio[:16000], speak("The baker found a bright lamp.", 2, "sad", "high")[:16000])
    report = model.generate(audio, tmp_path / "said.mp4", progress=False)
    assert report["frames"] == math.ceil(len(audio) / 640)
    for bad, message in ((dict(text=" "), "empty"), (dict(emotion="joy"), "unknown emotion"),
                         (dict(intensity="XL"), "unknown intensity")):
        with pytest.raises(ValueError, match=message):
            speak(**{"text": "Hello.", **bad})


# ----------------------------------------------------------------------------------- command line
def test_cli_makes_a_video_and_prints_what_it_heard(tmp_path, tiny_run, capsys):
    sf.write(tmp_path / "hi.wav", speechlike(1.0), SR)
    rc = cli.main(["generate", str(tmp_path / "hi.wav"), "-o", str(tmp_path / "out" / "hi.mp4"),
                   "--run", str(tiny_run), "--seed", "2", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0 and (tmp_path / "out" / "hi.mp4").exists()
    assert "emotion heard:" in out and "x real time" in out
    # into an existing folder, with the same generator named by its checkpoint file: the same video
    first = (tmp_path / "out" / "hi.mp4").read_bytes()
    (tmp_path / "out" / "hi.mp4").unlink()
    rc = cli.main(["generate", str(tmp_path / "hi.wav"), "-o", str(tmp_path / "out"), "--run", str(tiny_run),
                   "--checkpoint", str(tiny_run / "checkpoints" / "gan_speech2video.pt"), "--seed", "2", "--quiet"])
    assert rc == 0 and (tmp_path / "out" / "hi.mp4").read_bytes() == first


def test_cli_does_a_folder_and_skips_a_bad_file(tmp_path, tiny_run, capsys):
    src = tmp_path / "talks"
    src.mkdir()
    sf.write(src / "one.wav", speechlike(0.5), SR)
    sf.write(src / "two.flac", speechlike(0.7, 22050), 22050)
    (src / "broken.mp3").write_bytes(b"\x00" * 3000)
    (src / "readme.txt").write_text("not audio")
    rc = cli.main(["generate", str(src), "-o", str(tmp_path / "videos"), "--run", str(tiny_run), "--quiet"])
    out = capsys.readouterr().out
    assert rc == 1
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == ["one.mp4", "two.mp4"]
    assert "broken.mp3: failed" in out and "2 of 3 videos written, 1 failed" in out
    (src / "broken.mp3").unlink()
    assert cli.main(["generate", str(src), "-o", str(tmp_path / "videos"), "--run", str(tiny_run), "--quiet"]) == 0


def _cli_error(capsys, *argv):
    rc = cli.main(["generate", *map(str, argv), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "Traceback" not in err, err
    return err


def test_cli_errors_are_one_line_and_status_2(tmp_path, tiny_run, capsys):
    sf.write(tmp_path / "ok.wav", speechlike(0.5), SR)
    (tmp_path / "junk.wav").write_bytes(b"RIFF garbage")
    (tmp_path / "empty").mkdir()
    out = tmp_path / "o.mp4"
    assert "not found" in _cli_error(capsys, tmp_path / "nothing.wav", "-o", out, "--run", tiny_run)
    assert "cannot read" in _cli_error(capsys, tmp_path / "junk.wav", "-o", out, "--run", tiny_run)
    assert "no audio files" in _cli_error(capsys, tmp_path / "empty", "-o", tmp_path / "v", "--run", tiny_run)
    assert "notebook 01" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", tmp_path / "norun")
    assert "notebook 04" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", tiny_run, "--system", "no_sync")
    assert "unknown system" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", tiny_run, "--system", "x")
    assert "unknown emotion" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", tiny_run,
                                           "--emotion", "bored")
    assert "--baseline-image" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", tiny_run,
                                            "--system", "static_image_baseline")
    assert "baseline image not found" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", tiny_run,
                                                    "--system", "static_image_baseline", "--baseline-image",
                                                    tmp_path / "me.jpg")
    (tmp_path / "broken.pt").write_bytes(b"not torch")
    assert "not a readable torch checkpoint" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", tiny_run,
                                                           "--checkpoint", tmp_path / "broken.pt")
    no_students = runs.run_dir(tmp_path / "half")
    (no_students / "cache").symlink_to((tiny_run / "cache").resolve())
    assert "notebook 03" in _cli_error(capsys, tmp_path / "ok.wav", "-o", out, "--run", no_students)
    assert not out.exists()


# ----------------------------------------------------------------------------------- the demo form
def test_demo_form_speaks_animates_and_refuses_an_empty_sentence(tmp_path, model):
    from s2v_lib.machinery.demo import DemoForm

    form = DemoForm(model, tmp_path / "form", corpus_seed=7)
    form.text.value = "   "
    form.go.click()
    assert "Cannot say that" in form.message.value and not form.reports and not (tmp_path / "form").exists()
    form.text.value = "Hello there."
    form.voice.value, form.emotion.value, form.intensity.value = 2, "sad", "low"
    form.go.click()
    report = form.reports[-1]
    assert report["frames"] > 0 and len(form.video.value) > 1000 and form.video.layout.display is None
    assert report["emotion"] in form.message.value and "voice 2 speaking sad" in form.message.value
    assert (tmp_path / "form" / "demo_01_voice2_sad.wav").exists() and "one-time set-up" in form.message.value
    form.go.click()
    assert "one-time set-up" not in form.message.value  # only the first generation pays for it
    form.text.value = ""  # a refusal hides the video of the sentence before
    form.go.click()
    assert "Cannot say that" in form.message.value and form.video.layout.display == "none"
    assert form.go.layout.width == "auto"  # the label is never cut


def test_unsigned_8_bit_samples_are_centred():
    from s2v_lib.machinery.audio import to_mono

    x = np.array([128, 255, 0, 128], np.uint8)
    assert np.allclose(to_mono(x, 16000, quiet=True), [0.0, 127 / 128, -1.0, 0.0])
