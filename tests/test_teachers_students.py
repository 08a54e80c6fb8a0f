"""Teachers, students, their losses and the metrics that score them."""
import dataclasses

import numpy as np
import pytest
import torch

from s2v_lib.evaluation import metrics
from s2v_lib.machinery.runs import CheckpointError
from s2v_lib import probes, students, teachers
from s2v_lib.config import EMOTIONS, StudentConfig, TeacherConfig
from s2v_lib.data import split_index

from conftest import TINY_TEACHER_SETTINGS  # noqa: E402

TINY_TEACHERS = TeacherConfig(**TINY_TEACHER_SETTINGS)
TINY_STUDENTS = StudentConfig(steps=4, batch_size=4, width=16, crop_frames=12)


# ----------------------------------------------------------------------------------- shapes
@pytest.mark.parametrize("size", [64, 128])
def test_teacher_shapes(size):
    torch.manual_seed(0)
    x = torch.rand(3, 3, size, size)
    emotion = teachers.EmotionTeacher(width=8).eval()
    logits, emb = emotion(x)
    assert logits.shape == (3, len(EMOTIONS)) and emb.shape == (3, 64)
    identity = teachers.IdentityTeacher(width=8, embedding_dim=32).eval()
    ident = identity(x)
    assert ident.shape == (3, 32)
    # in eval mode a face's outputs do not depend on the rest of its batch (batch norm uses its running
    # statistics), and different faces get different outputs
    assert torch.allclose(emotion(x[1:2])[0], logits[1:2], atol=1e-5)
    assert torch.allclose(identity(x[1:2]), ident[1:2], atol=1e-5)
    assert not torch.allclose(ident[0], ident[1], atol=1e-4)


def test_student_shapes_and_bad_input():
    mel = torch.randn(2, 4 * 30, 80)
    out = students.EmotionStudent(width=16, embedding_dim=24).eval()(mel)
    assert out["logits"].shape == (2, 30, len(EMOTIONS)) and out["embedding"].shape == (2, 24)
    assert students.IdentityStudent(width=16, embedding_dim=40).eval()(mel).shape == (2, 40)
    with pytest.raises(ValueError, match="4T"):
        students.EmotionStudent(width=16)(torch.randn(2, 121, 80))


def test_frames_must_be_images():
    with pytest.raises(ValueError, match=r"\(N, H, W, 3\)"):
        teachers.as_batch(np.zeros((4, 64, 64), np.uint8))


# ----------------------------------------------------------------------------------- losses
def test_kd_loss_is_zero_for_identical_distributions_and_positive_otherwise():
    z = torch.randn(5, 7, 6)
    for T in (1.0, 3.0):
        p = torch.softmax(z / T, -1)
        assert students.kd_loss(z, p, T).abs().item() < 1e-6
        assert students.kd_loss(z + torch.randn_like(z), p, T).item() > 1e-3


def test_identity_loss_zero_at_target():
    y = torch.nn.functional.normalize(torch.randn(4, 16), dim=-1)
    assert students.identity_loss(y, y).abs().item() < 1e-6
    assert students.identity_loss(-y, y).item() == pytest.approx(2 + 0.5 * 4, rel=1e-4)


def test_gradient_reversal_flips_the_gradient():
    x = torch.ones(3, requires_grad=True)
    (students.grad_reverse(x, 2.0) * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-2.0, -4.0, -6.0]))


def test_cosface_margin_raises_the_loss():
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(8, 16), dim=-1)
    y = torch.arange(8) % 4
    head = teachers.CosFaceHead(16, 4, scale=10, margin=0.3)
    plain = teachers.CosFaceHead(16, 4, scale=10, margin=0.0)
    plain.weight.data = head.weight.data.clone()
    assert head(emb, y).item() > plain(emb, y).item()


# ----------------------------------------------------------------------------------- metrics
def test_eer_known_cases():
    same = np.array([1, 1, 1, 0, 0, 0], bool)
    assert metrics.eer([0.9, 0.8, 0.7, 0.3, 0.2, 0.1], same) == 0.0
    assert metrics.eer([0.1, 0.2, 0.3, 0.7, 0.8, 0.9], same) == 1.0
    # one genuine pair below one impostor pair out of three each: EER = 1/3
    assert metrics.eer([0.9, 0.8, 0.4, 0.5, 0.2, 0.1], same) == pytest.approx(1 / 3)
    rng = np.random.default_rng(0)
    assert abs(metrics.eer(rng.random(4000), rng.random(4000) < 0.5) - 0.5) < 0.05
    with pytest.raises(ValueError):
        metrics.eer([0.1, 0.2], [True, True])


def test_pairs_are_balanced_and_genuine_pairs_cross_groups():
    ids = np.repeat(np.arange(4), 10)
    groups = np.repeat(np.arange(8), 5)
    i, j, same = metrics.sample_pairs(ids, 200, seed=1, groups=groups)
    assert same.sum() == 100 and (~same).sum() == 100
    assert (groups[i[same]] != groups[j[same]]).all() and (ids[i[~same]] != ids[j[~same]]).all()


def test_retrieval_ranks_on_a_hand_made_gallery():
    gallery = np.eye(4)
    queries = np.array([[1.0, 0.1, 0, 0],     # closest to a: rank 1
                        [0.9, 0.5, 0, 0],     # own b is second after a: rank 2
                        [0.3, 0.2, 0.1, 0.9]])  # own c comes after d, a, b: rank 4
    ranks = metrics.retrieval_ranks(queries, ["a", "b", "c"], gallery, ["a", "b", "c", "d"])
    assert list(ranks) == [1, 2, 4]
    assert metrics.top_k(ranks, 1) == pytest.approx(1 / 3) and metrics.top_k(ranks, 2) == pytest.approx(2 / 3)
    assert metrics.top_k_chance(10, 5) == 0.5
    ex = students.retrieval(queries[2], ["a", "b", "c", "d"], gallery, k=2)
    assert ex["speakers"] == ["d", "a"]
    # a collapsed embedding (all similarities tie) is not top-1: ties count against the query
    assert list(metrics.retrieval_ranks(np.zeros((2, 4)), ["a", "b"], gallery, ["a", "b", "c", "d"])) == [4, 4]


def test_probes_on_random_embeddings_sit_near_chance():
    rng = np.random.default_rng(0)
    y_train, y_test = rng.integers(6, size=600), rng.integers(6, size=600)
    res = probes.split_accuracy(rng.normal(size=(600, 32)), y_train, rng.normal(size=(600, 32)), y_test)
    assert abs(res["accuracy"] - 1 / 6) < 0.06 and res["chance"] < 0.22
    # and a probe on an embedding that does carry the label finds it
    X = np.eye(6)[y_test] + 0.1 * rng.normal(size=(600, 6))
    assert probes.split_accuracy(X[:300], y_test[:300], X[300:], y_test[300:])["accuracy"] > 0.95


# ----------------------------------------------------------------------------------- checkpoints
def test_teacher_checkpoint_round_trip_and_clear_errors(tmp_path):
    model = teachers.IdentityTeacher(width=8, embedding_dim=16).eval()
    path = teachers.save_teacher(model, tmp_path / "identity.pt")
    loaded = teachers.load_teacher(path, "identity_teacher")
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(model(x), loaded(x))
    with pytest.raises(CheckpointError, match="no identity teacher weights"):
        teachers.load_teacher(tmp_path / "missing.pt", "identity_teacher")
    with pytest.raises(CheckpointError, match="not a 'emotion_teacher'"):
        teachers.load_teacher(path, "emotion_teacher")
    payload = torch.load(path, weights_only=True)
    payload["config"]["embedding_dim"] = 32
    torch.save(payload, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        teachers.load_teacher(tmp_path / "mismatch.pt", "identity_teacher")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        teachers.load_teacher(tmp_path / "garbage.pt", "identity_teacher")


# ----------------------------------------------------------------------------------- end to end, tiny
class _Constant(torch.nn.Module):
    """An 'identity teacher' that sees nothing: the same unit embedding for every face."""

    def __init__(self, dim):
        super().__init__()
        self.e = torch.nn.Parameter(torch.nn.functional.normalize(torch.ones(dim), dim=0), requires_grad=False)

    def forward(self, x):
        return self.e.expand(len(x), -1)


def test_teachers_train_save_and_reload(tiny_cache, tiny_teachers):
    run, visual, (h1, h2) = tiny_teachers
    assert len(h1) == TINY_TEACHERS.steps and np.isfinite(h1.loss).all() and np.isfinite(h2.loss).all()
    ckpt = run / "checkpoints" / "emotion_teacher.pt"
    stamp = ckpt.stat().st_mtime_ns
    again, history = teachers.get_teacher("emotion_teacher", tiny_cache, run, TINY_TEACHERS, progress=False)
    assert ckpt.stat().st_mtime_ns == stamp, "a matching checkpoint must be loaded, not trained again"
    assert len(history) == TINY_TEACHERS.steps
    # a setting of the other teacher does not retrain this one; one of its own does
    teachers.get_teacher("emotion_teacher", tiny_cache, run, dataclasses.replace(TINY_TEACHERS, identity_steps=5,
                                                                                 cosface_margin=0.4), progress=False)
    assert ckpt.stat().st_mtime_ns == stamp
    x = torch.rand(2, 3, 64, 64)
    assert torch.allclose(again(x)[0], visual.emotion_model(x)[0])
    probs, logits, _ = visual.emotion(tiny_cache.frames[:5])
    assert torch.allclose(probs, torch.softmax(logits / 2.0, -1)) and torch.allclose(probs.sum(1), torch.ones(5))


def test_seeded_teacher_training_is_reproducible(tiny_cache):
    index = split_index(tiny_cache.index, "A", "train")
    a, _ = teachers.train_emotion_teacher(tiny_cache, index, TINY_TEACHERS, seed=3, progress=False)
    b, _ = teachers.train_emotion_teacher(tiny_cache, index, TINY_TEACHERS, seed=3, progress=False)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_teacher_scores_and_features(tiny_cache, tiny_teachers, tiny_features):
    run, visual, _ = tiny_teachers
    b = split_index(tiny_cache.index, "B")
    emo = teachers.evaluate_emotion(visual, tiny_cache, b)
    assert emo["frames"] == int(((b.n_frames + 1) // 2).sum())  # every 2nd frame of each clip
    assert emo["confusion"].sum() == emo["frames"]
    assert emo["accuracy"] == pytest.approx(np.trace(emo["confusion"]) / emo["frames"])
    frames_per_emotion = emo["confusion"].sum(1)
    assert emo["chance"] == pytest.approx(frames_per_emotion.max() / emo["frames"])
    for e, n in zip(EMOTIONS, frames_per_emotion):  # the confusion matrix's rows are the true emotions
        assert n == int(((b.n_frames[b.emotion == e] + 1) // 2).sum()), e
    ident = teachers.evaluate_identity(visual, tiny_cache, split_index(tiny_cache.index), n_pairs=200)
    assert ident["pairs"] == 200 and ident["embeddings"].shape[0] == len(ident["speakers"])
    # a known case: an identity teacher that gives every face the same embedding verifies at chance
    collapsed = teachers.VisualTeachers(visual.emotion_model, _Constant(ident["embeddings"].shape[1]), 2.0)
    blind = teachers.evaluate_identity(collapsed, tiny_cache, split_index(tiny_cache.index), n_pairs=200)
    assert blind["eer"] == pytest.approx(0.5) and blind["genuine_mean"] == pytest.approx(blind["impostor_mean"])
    feats = tiny_features
    n = int(feats.index.n_frames.sum())
    assert feats.probs.shape == (n, len(EMOTIONS)) and feats.identity.shape[0] == n
    clip = feats.index["clip"].iloc[0]
    assert np.allclose(feats.soft_targets(clip).sum(1), 1, atol=1e-5)
    assert np.allclose(feats.soft_targets(clip, 1.0), torch.softmax(torch.from_numpy(
        np.array(feats.logits[feats.rows(clip)])), -1).numpy(), atol=1e-5)
    pools_bc = tiny_cache.index[tiny_cache.index.pool.isin(["B", "C"])]
    assert set(feats.index.pool) == {"B", "C"} and list(feats.index["clip"]) == list(pools_bc["clip"])
    stamp = (run / "teacher_features" / "features.json").stat().st_mtime_ns
    teachers.extract_features(visual, tiny_cache, run / "teacher_features", progress=False)
    assert (run / "teacher_features" / "features.json").stat().st_mtime_ns == stamp, "reused, not extracted again"
    other = teachers.VisualTeachers(teachers.EmotionTeacher(width=8).eval(), visual.identity_model, 2.0)
    fresh = teachers.extract_features(other, tiny_cache, run / "features_other", progress=False)
    assert fresh.info["fingerprint"]["sources"]["emotion"] != feats.info["fingerprint"]["sources"]["emotion"]
    with pytest.raises(FileNotFoundError, match="notebook 02"):
        teachers.open_features(run / "elsewhere")


def test_students_train_predict_and_score(tiny_cache, tiny_teachers, tiny_features):
    run, visual, _ = tiny_teachers
    feats = teachers.open_features(run)
    utts = students.Utterances.load(tiny_cache, feats, pools=("B",))
    assert all(len(m) == 4 * len(s) for m, s in zip(utts.mel, utts.soft))
    for variant in students.VARIANTS:
        emo, ident, history = students.get_students(variant, utts, feats, run, TINY_STUDENTS, progress=False)
        assert len(history) == TINY_STUDENTS.steps and np.isfinite(history.emotion_loss).all()
        assert ("adversary_identity_loss" in history) == (variant == "adversarial")
    pred = students.predict_utterances(emo, ident, utts.mel)
    assert pred["probs"].shape == (len(utts), len(EMOTIONS))
    # trained students predict in eval mode: again gives the same (dropout off), and an utterance's
    # prediction does not depend on the others
    again = students.predict_utterances(emo, ident, utts.mel[1:3])
    for key in ("probs", "emotion_embedding", "identity"):
        assert np.allclose(again[key], pred[key][1:3], atol=1e-5), key
    speakers, gallery = feats.speaker_identity(utts.meta["clip"])
    scores = students.evaluate_students(pred, utts, speakers, gallery)
    assert scores["emotion_acc"] == pytest.approx((pred["probs"].argmax(1) == utts.emotion_ids).mean())
    assert scores["identity_top1"] == pytest.approx((scores["ranks"] == 1).mean())
    # known cases: an oracle (the true emotion; the speaker's own gallery face) scores 1, a liar 0
    own = np.array([gallery[list(speakers).index(s)] for s in utts.meta.speaker])
    oracle = dict(pred, probs=np.eye(len(EMOTIONS))[utts.emotion_ids], identity=own)
    perfect = students.evaluate_students(oracle, utts, speakers, gallery)
    assert perfect["emotion_acc"] == 1 and perfect["identity_top1"] == 1
    liar = dict(pred, probs=np.eye(len(EMOTIONS))[(utts.emotion_ids + 1) % len(EMOTIONS)], identity=-own)
    wrong = students.evaluate_students(liar, utts, speakers, gallery)
    assert wrong["emotion_acc"] == 0 and wrong["identity_top1"] == 0
    assert np.isnan(scores["identity_top5"]) == (len(speakers) <= 5)  # top-5 of 5 faces says nothing
    assert scores["identity_top1_chance"] == pytest.approx(1 / len(speakers))
    paths = students.publish(run, "supervised")
    assert students.load_student(paths[0], "emotion_student").config == emo.config
    with pytest.raises(ValueError, match="unknown variant"):
        students.get_students("magic", utts, feats, run, TINY_STUDENTS)


def test_student_training_is_reproducible(tiny_cache, tiny_features):
    feats = tiny_features
    utts = students.Utterances.load(tiny_cache, feats, pools=("B",))
    cfg = dataclasses.replace(TINY_STUDENTS, adversary_weight=1.0)
    a = students.train_students(utts, cfg, seed=5, progress=False)
    b = students.train_students(utts, cfg, seed=5, progress=False)
    assert a[2].drop(columns="step_seconds").equals(b[2].drop(columns="step_seconds"))


def test_students_never_see_labels(tiny_cache, tiny_features):
    """Distilled (and adversarial) training is bit-identical when every label in the metadata is shuffled."""
    utts = students.Utterances.load(tiny_cache, tiny_features, pools=("B", "C"))
    rng = np.random.default_rng(0)
    scrambled = dataclasses.replace(utts, meta=utts.meta.assign(emotion=rng.permutation(utts.meta.emotion.to_numpy()),
                                                                speaker=rng.permutation(utts.meta.speaker.to_numpy()),
                                                                intensity="high"))
    cfg = dataclasses.replace(TINY_STUDENTS, adversary_weight=1.0)
    a = students.train_students(utts, cfg, seed=2, progress=False)[2].drop(columns="step_seconds")
    b = students.train_students(scrambled, cfg, seed=2, progress=False)[2].drop(columns="step_seconds")
    assert a.equals(b)
    sup_a = students.train_students(utts, cfg, "labels", seed=2, progress=False)[2].drop(columns="step_seconds")
    sup_b = students.train_students(scrambled, cfg, "labels", seed=2, progress=False)[2].drop(columns="step_seconds")
    assert not sup_a.equals(sup_b), "the supervised bound does use the labels"


def test_teachers_learn_from_pool_a_training_clips_only(tiny_cache, tiny_teachers):
    import json

    run = tiny_teachers[0]
    pool_a = split_index(tiny_cache.index, "A", "train")
    payload = torch.load(run / "checkpoints" / "identity_teacher.pt", weights_only=True)
    assert payload["trained_on"].startswith(f"pool A train: {len(pool_a)} clips")
    assert json.loads((run / "checkpoints" / "identity_teacher.json").read_text())["key"]["cache"] \
        == tiny_cache.info["fingerprint"]


def test_features_from_another_cache_are_refused(tiny_cache, tiny_teachers, tiny_features, tmp_path):
    import json
    import shutil

    run = tiny_teachers[0]
    with pytest.raises(ValueError, match="re-run notebook 02"):
        stale = json.loads(json.dumps(tiny_cache.info))
        stale["fingerprint"]["data"] = "changed"
        fake = type("Cache", (), {"info": stale})()
        teachers.open_features(run, fake)
    shutil.copytree(run / "teacher_features", tmp_path / "tf")
    info = json.loads((tmp_path / "tf" / "features.json").read_text())
    info["fingerprint"]["cache"]["data"] = "changed"
    (tmp_path / "tf" / "features.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="another feature cache"):
        students.Utterances.load(tiny_cache, teachers.TeacherFeatures(tmp_path / "tf"))
