"""The GE2E voice front-end as a run's identity student (``StudentConfig.voice_front_end = "ge2e"``).

The setting, the mapping fitted and saved by ``students.get_students`` (and loaded, not fitted, the second
time), ``Speech2VideoModel`` hearing the identity on the samples (any rate, a window at a time), the command
line, and the scratch front-end left as it was. The run is the tiny one of conftest (briefly trained
teachers, students of 4 steps, an untrained generator): these tests are about the wiring, not the faces.
Tests that need resemblyzer's weights file skip without it (``pip install --no-deps resemblyzer==0.1.4``).
"""
import dataclasses
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from s2v_lib import inference, students
from s2v_lib.config import GANConfig, GeneratorConfig, StudentConfig, get_profile
from s2v_lib.gan.train import GANData, GANTrainer
from s2v_lib.machinery import cli, runs
from s2v_lib.machinery.audio import Recording

from test_generate import speechlike  # noqa: E402

SR = 16000
GE2E_STUDENTS = StudentConfig(steps=4, batch_size=4, width=8, crop_frames=12, voice_front_end="ge2e")


# ----------------------------------------------------------------------------------- the setting
def test_the_setting_defaults_to_scratch_and_refuses_unknown_values(tmp_path, capsys):
    assert get_profile("smoke").students.voice_front_end == "scratch" == StudentConfig().voice_front_end
    assert get_profile("smoke", settings={"students": {"voice_front_end": "ge2e"}}).students.voice_front_end == "ge2e"
    with pytest.raises(ValueError, match=r"students.voice_front_end must be one of \['scratch', 'ge2e'\].*'GE2E'"):
        get_profile("smoke", students={"voice_front_end": "GE2E"})
    with pytest.raises(ValueError, match="voice_front_end must be one of"):
        students.get_students("distilled", None, None, tmp_path, StudentConfig(voice_front_end="wav2vec"))
    # make course SET="students.voice_front_end=..." refuses it before the first notebook, in one line
    rc = cli.main(["course", "--profile", "smoke", "--run", str(tmp_path / "run"), "--set",
                   "students.voice_front_end=pretrained"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: students.voice_front_end must be one of") and err.count("\n") == 1
    assert not (tmp_path / "run").exists()
    with pytest.raises(ValueError, match="voice_front_end must be one of"):
        inference.Speech2VideoModel.from_run(tmp_path, voice_front_end="mfcc")


# ----------------------------------------------------------------------------------- a ge2e run
@pytest.fixture(scope="module")
def ge2e_weights():
    from s2v_lib.pretrained import PretrainedModelMissing, package_file

    try:
        return package_file("resemblyzer", "pretrained.pt", "the GE2E voice encoder")
    except PretrainedModelMissing as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def pool_b_train(tiny_cache, tiny_features):
    pool_b = students.Utterances.load(tiny_cache, tiny_features, pools=("B",))
    train = pool_b.subset(pool_b.meta.split.eq("train"))
    assert len(train) >= 2 and train.meta.speaker.nunique() >= 2
    return train


def _run(path, tiny_cache, tiny_features):
    run = runs.run_dir(path)
    (run / "cache").symlink_to(tiny_cache.root.resolve())
    (run / "teacher_features").symlink_to(tiny_features.root.resolve())
    return run


@pytest.fixture(scope="module")
def ge2e_run(ge2e_weights, tiny_cache, tiny_features, pool_b_train, tmp_path_factory):
    """A run whose notebook 03 chose GE2E: distilled students of 4 steps, the mapping, an untrained generator."""
    run = _run(tmp_path_factory.mktemp("ge2e_run"), tiny_cache, tiny_features)
    torch.manual_seed(0)
    students.get_students("distilled", pool_b_train, tiny_features, run, GE2E_STUDENTS, progress=False)
    students.publish(run, "distilled")
    cfg = GANConfig(generator=GeneratorConfig(width=8), d_width=8)
    GANTrainer(cfg, GANData.synthetic(resolution=64), experts=None, resolution=64, dev=torch.device("cpu")).save(
        run / "checkpoints" / "gan_speech2video.pt")
    return run


@pytest.fixture(scope="module")
def ge2e_model(ge2e_run):
    return inference.Speech2VideoModel.from_run(ge2e_run)


def test_ge2e_fits_the_mapping_saves_it_and_loads_it_the_second_time(ge2e_run, pool_b_train, tiny_features):
    from s2v_lib.pretrained import voice_identity

    ckpt = ge2e_run / "checkpoints"
    assert students.run_voice_front_end(ge2e_run) == "ge2e"
    assert json.loads((ckpt / "voice_front_end.json").read_text())["mapping"] == "voice_to_face.pt"
    trained = [line["trained"] for line in runs.trained_log(ge2e_run)]
    assert trained.count("voice_to_face") == 1 and trained.count("distilled_emotion_student") == 1
    # fitted on pool B's training utterances' face targets: the loss falls, and the mapped voices point at them
    history = pd.read_csv(ckpt / "voice_to_face_history.csv")
    assert len(history) == voice_identity.VoiceToFaceConfig().steps
    assert history.identity_loss.tail(100).mean() < 0.5 * history.identity_loss.head(100).mean()
    with np.load(ckpt / "ge2e_voices.npz") as z:  # the GE2E embeddings of the clips' sound, cached
        voices = dict(zip(z["clips"].tolist(), z["embeddings"]))
    assert set(voices) == set(pool_b_train.meta["clip"])
    mapping = voice_identity.load_voice_to_face(ckpt / "voice_to_face.pt")
    pred = mapping.predict(np.stack([voices[c] for c in pool_b_train.meta["clip"]]))
    assert np.mean(np.sum(pred * pool_b_train.face, 1)) > 0.9
    # again, and for the adversarial variant (same utterances, same targets): the mapping is loaded, not fitted
    stamp = (ckpt / "voice_to_face.pt").stat().st_mtime_ns
    students.get_students("distilled", pool_b_train, tiny_features, ge2e_run, GE2E_STUDENTS, progress=False)
    students.get_students("adversarial", pool_b_train, tiny_features, ge2e_run, GE2E_STUDENTS, progress=False)
    again = [line["trained"] for line in runs.trained_log(ge2e_run)][len(trained):]
    assert again == ["adversarial_emotion_student"]
    assert (ckpt / "voice_to_face.pt").stat().st_mtime_ns == stamp


def test_the_model_of_a_ge2e_run_hears_the_identity_on_the_samples_at_any_rate(ge2e_run, ge2e_model):
    model = ge2e_model
    assert model.voice_front_end == "ge2e" and "GE2E" in repr(model)
    direct = model.voice_identity.embed(speechlike(1.5, SR), SR)
    scratch = inference.Speech2VideoModel.from_run(ge2e_run, voice_front_end="scratch")
    for sr in (8000, 16000, 44100):
        recording, _, _ = model.read(speechlike(1.5, sr), sr)
        with recording:
            mel = model.mel_frames(recording)
            pred, plain = model.predict(mel), scratch.predict(mel)
        assert pred["voice_front_end"] == "ge2e" and pred["identity"].shape == (128,)
        assert abs(np.linalg.norm(pred["identity"]) - 1) < 1e-5
        assert float(pred["identity"] @ direct) > 0.99, sr  # the same voice at another rate: the same face
        # the emotion student stays on the log-mels; the identity is no longer the scratch student's
        assert plain["voice_front_end"] == "scratch" and np.allclose(pred["probs"], plain["probs"])
        assert float(pred["identity"] @ plain["identity"]) < 0.99
        own = students.predict_utterances(model.emotion_student, model.identity_student, [mel[:]])["identity"][0]
        np.testing.assert_allclose(plain["identity"], own, atol=1e-5)
    with pytest.raises(ValueError, match="give predict the recording"):
        model.predict(model.log_mel(speechlike(0.5)))


def test_a_long_recording_is_heard_by_ge2e_a_window_at_a_time(ge2e_model, monkeypatch):
    model = ge2e_model
    x = speechlike(3.2)
    whole = model.voice_identity.embed(x, SR)
    heard = []
    original = model.voice_identity.encoder.partial_embeddings
    monkeypatch.setattr(model.voice_identity.encoder, "partial_embeddings",
                        lambda wav, sr=SR: (heard.append(len(wav)), original(wav, sr))[1])
    monkeypatch.setattr(inference, "STUDENT_WINDOW_S", 1.0)
    pred = model.predict(model.mel_frames(Recording(x, SR)))
    assert pred["windows"] == 4 and heard == [SR * 80 // 100] * 4  # 80 video frames in 4 windows of 0.8 s
    assert pred["voice_front_end"] == "ge2e" and float(pred["identity"] @ whole) > 0.98
    # a window of digital silence is skipped; a recording of nothing but silence falls back to the identity student
    heard.clear()
    gap = np.concatenate([x[:len(x) // 2], np.zeros(len(x) - len(x) // 2, np.float32)])
    assert model.predict(model.mel_frames(Recording(gap, SR)))["voice_front_end"] == "ge2e" and len(heard) == 2
    silent = model.predict(model.mel_frames(Recording(np.zeros(SR, np.float32), SR)))
    assert silent["voice_front_end"] == "scratch"


def test_generate_and_the_cli_take_the_front_end_from_the_run(ge2e_run, ge2e_model, tmp_path, capsys, monkeypatch):
    from s2v_lib.pretrained import PIP, PretrainedModelMissing, voice

    sf.write(tmp_path / "hi.wav", speechlike(0.8, 22050), 22050)
    rc = cli.main(["generate", str(tmp_path / "hi.wav"), "-o", str(tmp_path / "hi.mp4"), "--run", str(ge2e_run),
                   "--quiet"])
    assert rc == 0 and (tmp_path / "hi.mp4").exists() and "emotion heard:" in capsys.readouterr().out
    report = ge2e_model.generate(tmp_path / "hi.wav", tmp_path / "again.mp4", progress=False)
    assert report["voice_front_end"] == "ge2e" and report["notes"] == []
    monkeypatch.setattr(ge2e_model, "_prototypes", dict(neutral=np.zeros(64, np.float32)))
    quiet = ge2e_model.generate(np.zeros(SR, np.float32), tmp_path / "quiet.mp4", progress=False)
    assert quiet["voice_front_end"] == "scratch" and any("GE2E" in n for n in quiet["notes"])

    def missing(package, relative, what):
        raise PretrainedModelMissing(f"{what} needs the package {package} (not installed): {PIP[package]}")

    monkeypatch.setattr(voice, "package_file", missing)
    rc = cli.main(["generate", str(tmp_path / "hi.wav"), "-o", str(tmp_path / "no.mp4"), "--run", str(ge2e_run),
                   "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert "students.voice_front_end='ge2e'" in err and PIP["resemblyzer"] in err
    assert not (tmp_path / "no.mp4").exists()


# ----------------------------------------------------------------------------------- scratch unchanged
def test_scratch_is_unchanged_and_switching_front_end_trains_no_student(ge2e_run, pool_b_train, tiny_cache,
                                                                        tiny_features, tmp_path):
    # the students' key is what it was before the setting existed: runs and bundles trained then still load
    key = json.loads((ge2e_run / "checkpoints" / "distilled_emotion_student.json").read_text())["key"]
    assert set(key["config"]) == {f.name for f in dataclasses.fields(StudentConfig)} - {"voice_front_end"}
    run = _run(tmp_path / "run", tiny_cache, tiny_features)
    shutil.copytree(ge2e_run / "checkpoints", run / "checkpoints", dirs_exist_ok=True)
    scratch_cfg = dataclasses.replace(GE2E_STUDENTS, voice_front_end="scratch")
    emo, ident, _ = students.get_students("distilled", pool_b_train, tiny_features, run, scratch_cfg, progress=False)
    assert runs.trained_log(run) == []  # loaded: the front-end is not part of the students' key
    assert students.run_voice_front_end(run) == "scratch" and not (run / "checkpoints" / "voice_front_end.json").exists()
    model = inference.Speech2VideoModel.from_run(run)
    assert model.voice_front_end == "scratch" and model.voice_identity is None
    x = speechlike(1.0)
    pred = model.predict(model.log_mel(x))  # an array is enough: the scratch student hears log-mels
    own = students.predict_utterances(emo, ident, [model.log_mel(x)])["identity"][0]
    np.testing.assert_allclose(pred["identity"], own, atol=1e-5)
    # choosing ge2e again loads the mapping kept in the run
    students.get_students("distilled", pool_b_train, tiny_features, run, GE2E_STUDENTS, progress=False)
    assert runs.trained_log(run) == [] and students.run_voice_front_end(run) == "ge2e"
