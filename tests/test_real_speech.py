"""Real human speech: recordings that ship in packages, through the generator (benchmarks/bench_real_speech.py),
and the GE2E voice front-end for the identity student (s2v_lib.pretrained.voice_identity).

The recordings come from pyannote.audio 3.3.2's wheel (its sample: 30 s of the AMI meeting corpus, two
speakers, with the speaker turns), fetched once with pip into ``$S2V_TEST_DATA`` or
``~/.cache/speech2video``; a test that needs them skips only when the package cannot be fetched. The
run is a tiny one (the conftest corpus, briefly trained teachers and landmark judge, untrained students
and generator): these tests are about the measuring, not about how good the faces are.
"""
import importlib.util
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_real_speech as bench  # noqa: E402

from s2v_lib.pretrained import voice_identity as VI  # noqa: E402


@pytest.fixture(scope="module")
def recordings() -> Path:
    try:
        return bench.prepare_recordings(bench.default_folder(), ["pyannote"], progress=lambda *_: None)
    except (bench.FetchError, OSError) as err:
        pytest.skip(f"the recordings' package could not be fetched: {err}")


@pytest.fixture(scope="module")
def real_run(tiny_cache, tiny_features, tiny_teachers, tmp_path_factory):
    """A run directory: the tiny cache, teacher features and teachers, a landmark judge trained a few steps,
    untrained students and an untrained generator."""
    from s2v_lib.config import GANConfig, GeneratorConfig, LandmarkConfig
    from s2v_lib.evaluation.landmarks import get_landmark_regressor
    from s2v_lib.gan.train import GANData, GANTrainer
    from s2v_lib.machinery import runs
    from s2v_lib.students import EmotionStudent, IdentityStudent, save_student

    teacher_run, _, _ = tiny_teachers
    run = runs.run_dir(tmp_path_factory.mktemp("real_speech_run"))
    (run / "cache").symlink_to(tiny_cache.root.resolve())
    (run / "teacher_features").symlink_to(tiny_features.root.resolve())
    for kind in ("emotion_teacher", "identity_teacher"):
        shutil.copyfile(teacher_run / "checkpoints" / f"{kind}.pt", run / "checkpoints" / f"{kind}.pt")
    torch.manual_seed(0)
    save_student(EmotionStudent(80, width=8, embedding_dim=64), run / "checkpoints" / "emotion_student.pt")
    save_student(IdentityStudent(80, width=8, embedding_dim=128), run / "checkpoints" / "identity_student.pt")
    cfg = GANConfig(generator=GeneratorConfig(width=8), d_width=8)
    GANTrainer(cfg, GANData.synthetic(resolution=64), experts=None, resolution=64, dev=torch.device("cpu")).save(
        run / "checkpoints" / "gan_speech2video.pt")
    get_landmark_regressor(tiny_cache, run, LandmarkConfig(steps=3, width=4, batch_size=8), progress=False)
    return run


def test_speaker_turns_keep_only_stretches_with_one_speaker():
    rttm = ("SPEAKER s 1 0.0 3.0 <NA> <NA> a <NA> <NA>\n"
            "SPEAKER s 1 2.5 4.0 <NA> <NA> b <NA> <NA>\n"      # overlaps a's turn at 2.5-3.0
            "SPEAKER s 1 7.0 1.0 <NA> <NA> a <NA> <NA>\n")     # too short
    turns = bench.speaker_turns(rttm, min_s=2.0, margin=0.1)
    assert [t[0] for t in turns] == ["a", "b"]
    assert turns[0][1:] == pytest.approx((0.0, 2.4)) and turns[1][1:] == pytest.approx((3.1, 6.5))


def test_energy_envelope_and_mouth_opening_are_frame_aligned():
    sr, fps = 16000, 25
    wav = np.zeros(sr, np.float32)
    wav[int(0.4 * sr):int(0.6 * sr)] = 0.5  # loud from frame 10 to frame 14
    e = bench.energy_envelope(wav, sr, 25, fps)
    assert e[11:14].min() > -10 > e[:8].max() and e[17:].max() < -50
    lm = np.zeros((2, 68, 2))
    lm[:, 36], lm[:, 45] = (0, 0), (10, 0)
    lm[1, [61, 62, 63], 1], lm[1, [67, 66, 65], 1] = 0, 3
    assert bench.mouth_opening(lm) == pytest.approx([0.0, 0.3])
    mouth = np.r_[np.zeros(12), np.ones(5), np.zeros(8)]  # the same burst, two frames late
    r, lag = bench.lagged(mouth, e)
    assert lag == 2 and r > bench.correlation(mouth, e)


def test_bench_real_speech_measures_real_recordings_and_synthtalk(recordings, real_run, tmp_path, capsys):
    out = tmp_path / "real_speech.json"
    result = bench.main(["--run", str(real_run), "--recordings", str(recordings), "--quick", "--out", str(out)])
    printed = capsys.readouterr().out
    assert json.loads(out.read_text())["judge"] == "run's landmark regressor" == result["judge"]
    real = result["clips"]["real"]
    names = {c["name"] for c in real}
    assert {"ami_speaker90_1", "ami_speaker90_2", "ami_speaker91_1", "ami_speaker91_2"} <= names
    for c in real:
        assert c["frames"] == c["video_frames_expected"] == math.ceil(round(c["seconds_audio"] * 25, 6))
        assert c["seconds_audio"] <= 2.0 + 1e-6  # --quick cuts every recording to 2 s
        assert -1 <= c["identity_stability_min"] <= c["identity_stability"] <= 1
        if c["speaker"]:  # one speaker's turn: speech rises and falls with syllables and pauses
            assert c["energy_range_db"] > 15
    # the meeting's first 2 s hold no speech (its first turn starts at 6.7 s): background, nearly level
    assert next(c for c in real if c["name"] == "ami_sample_2speakers")["energy_range_db"] < 10
    # the rate variants: every rate read, and resampling back to 16 kHz keeps what the student hears
    rates = {r["kind"]: r for r in result["rates"]}
    assert set(rates) == {f"rate {k} Hz" for k in bench.RATES} | {"telephone 300-3400 Hz"}
    assert rates["rate 16000 Hz"]["voice_cos_to_16k"] == pytest.approx(1.0, abs=1e-5)
    for k in (44100, 48000):
        assert rates[f"rate {k} Hz"]["voice_cos_to_16k"] > 0.99
        assert abs(rates[f"rate {k} Hz"]["frames"] - rates["rate 16000 Hz"]["frames"]) <= 1
    # two speakers, each twice: 2 same-speaker pairs and 4 different-speaker pairs of recordings
    pairs = result["columns"]["real speech"]["face_pairs"]
    assert (pairs["n_same"], pairs["n_different"]) == (2, 4) and 0 <= pairs["auc"] <= 1
    synth = [k for k in result["columns"] if k.startswith("SynthTalk")]
    assert synth, "no SynthTalk clip was measured"
    for k in synth:
        col = result["columns"][k]
        assert 1 <= col["n_clips"] <= 2
        assert col["truth_mouth_energy_r"] > 0.2  # SynthTalk's true mouth opens with the sound: aligned frames
        assert 0 <= col["emotion_acc"] <= 1 and -1 <= col["csim_to_real_face"] <= 1
        assert k in printed
    assert "real speech" in printed and "mouth~energy r (lag 0)" in printed and "[rate] telephone_8000" in printed


def test_voice_to_face_maps_voices_to_their_faces_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    n_spk, per = 6, 12
    voice_centres = rng.standard_normal((n_spk, 256))
    faces = rng.standard_normal((n_spk, 32))
    faces /= np.linalg.norm(faces, axis=1, keepdims=True)

    def utterances(k):
        v = np.repeat(voice_centres, k, 0) + 0.3 * rng.standard_normal((n_spk * k, 256))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32), np.repeat(np.arange(n_spk), k)

    v_train, s_train = utterances(per)
    v_test, s_test = utterances(4)
    mapping, history = VI.train_voice_to_face(v_train, faces[s_train], VI.VoiceToFaceConfig(steps=300), seed=0)
    assert np.mean(history[-20:]) < 0.5 * np.mean(history[:20])
    pred = mapping.predict(v_test)
    np.testing.assert_allclose(np.linalg.norm(pred, axis=1), 1, atol=1e-5)
    speakers = [f"s{k}" for k in range(n_spk)]
    scores = VI.retrieval_scores(pred, [speakers[k] for k in s_test], speakers, faces)
    assert scores["identity_top1"] == 1.0 and scores["identity_top1_chance"] == pytest.approx(1 / 6)
    assert scores["identity_top5_chance"] == pytest.approx(5 / 6) and scores["mean_rank"] == 1.0
    shuffled = VI.retrieval_scores(pred, [speakers[(k + 1) % n_spk] for k in s_test], speakers, faces)
    assert shuffled["identity_top1"] == 0.0
    path = VI.save_voice_to_face(mapping, tmp_path / "voice_to_face.pt")
    np.testing.assert_allclose(VI.load_voice_to_face(path).predict(v_test), pred, atol=1e-6)
    with pytest.raises(ValueError, match="same N"):
        VI.train_voice_to_face(v_train, faces[s_train][:-1])


def test_ge2e_hears_one_real_speaker_twice_nearer_than_two_speakers(recordings):
    if importlib.util.find_spec("resemblyzer") is None:
        pytest.skip("resemblyzer is not installed (pip install -e '.[pretrained]')")
    names = ["ami_speaker90_1", "ami_speaker90_2", "ami_speaker91_1", "ami_speaker91_2"]
    v = VI.voice_embeddings([recordings / f"{n}.wav" for n in names])
    assert v.shape == (4, 256)
    sim = v @ v.T
    same = [sim[0, 1], sim[2, 3]]
    different = [sim[0, 2], sim[0, 3], sim[1, 2], sim[1, 3]]
    assert min(same) > max(different)
    student = VI.GE2EIdentityStudent(VI.VoiceToFace(face_dim=16))
    import soundfile as sf

    wav, sr = sf.read(str(recordings / "rate_44100_ami_speaker90_1.wav"), dtype="float32")
    assert student.embed(wav, sr).shape == (16,)
