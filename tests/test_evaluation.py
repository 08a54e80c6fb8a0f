"""Evaluation metrics on known cases, the landmark judge, and the evaluation of systems end to end."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from s2v_lib.evaluation import scoring as E
from s2v_lib.evaluation import landmarks as L
from s2v_lib.evaluation import metrics as M
from s2v_lib.config import LandmarkConfig
from s2v_lib.gan.train import GANData

RNG = np.random.default_rng(0)


def _frames(t=6, r=32):
    return RNG.integers(0, 256, (t, r, r, 3)).astype(np.uint8)


# ----------------------------------------------------------------------------------- images
def test_psnr_known_cases():
    a = _frames()
    assert M.psnr(a, a) == 100.0 and M.psnr(a, a, cap_db=np.inf) == np.inf  # identical: capped
    b = np.full((2, 8, 8, 3), 100, np.uint8)
    assert M.psnr(b + 1, b) == pytest.approx(10 * np.log10(255 ** 2), abs=1e-9)  # 48.13 dB: off by one level
    assert M.psnr(b + 10, b) == pytest.approx(10 * np.log10(255 ** 2 / 100), abs=1e-9)
    with pytest.raises(ValueError, match="one shape"):
        M.psnr(a, a[:, :16])


def test_ssim_matches_scikit_image_and_its_known_cases():
    from skimage.metrics import structural_similarity

    a = _frames(3, 48)
    noisy = np.clip(a.astype(int) + RNG.integers(-40, 40, a.shape), 0, 255).astype(np.uint8)
    ref = np.mean([structural_similarity(a[i], noisy[i], gaussian_weights=True, sigma=1.5, data_range=255,
                                         use_sample_covariance=False, channel_axis=-1) for i in range(3)])
    assert M.ssim(noisy, a) == pytest.approx(ref, abs=1e-10)
    assert M.ssim(a, a) == pytest.approx(1.0)
    smooth = np.repeat(np.repeat(RNG.integers(0, 256, (3, 6, 6, 3)), 8, 1), 8, 2).astype(np.uint8)
    shifted = np.roll(smooth, 1, axis=2)  # a frame shifted by one pixel: similar, not the same
    assert 0.5 < M.ssim(shifted, smooth) < 0.999
    assert M.ssim(shifted, smooth) > M.ssim(_frames(3, 48), smooth)


def test_lmd_of_landmarks_shifted_by_one_pixel_is_one():
    lm = RNG.uniform(0, 64, (10, 68, 2))
    assert M.lmd(lm, lm) == 0
    assert M.lmd(lm + [1.0, 0.0], lm) == pytest.approx(1.0)
    assert M.lmd(lm + [0.0, 3.0], lm, L.MOUTH) == pytest.approx(3.0)
    moved = lm.copy()
    moved[:, L.MOUTH] += [0.0, 2.0]
    assert M.lmd(moved, lm, L.MOUTH) == pytest.approx(2.0) and M.lmd(moved, lm) == pytest.approx(2.0 * 20 / 68)


def test_frechet_distance_known_cases():
    from scipy import linalg

    x = RNG.normal(size=(4000, 5))
    assert M.frechet_distance(x, x) == pytest.approx(0, abs=1e-6)
    assert M.frechet_distance(x, x + [1, 2, 0, 0, 0]) == pytest.approx(5.0, abs=1e-6)  # a shift: |d|^2
    y = RNG.normal(size=(3000, 5)) @ RNG.normal(size=(5, 5)) + 0.3
    sx, sy = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    ref = ((x.mean(0) - y.mean(0)) ** 2).sum() + np.trace(sx + sy - 2 * linalg.sqrtm(sx @ sy).real)
    assert M.frechet_distance(x, y) == pytest.approx(ref, rel=1e-8)
    with pytest.raises(ValueError):
        M.frechet_distance(x, x[:, :3])


def test_bootstrap_intervals_and_mcnemar():
    assert M.bootstrap_ci(np.full(20, 0.7)) == pytest.approx((0.7, 0.7, 0.7))
    v = RNG.normal(1.0, 1.0, 200)
    est, lo, hi = M.bootstrap_ci(np.r_[v, np.nan])
    assert lo < est < hi and est == pytest.approx(v.mean()) and 0.1 < hi - lo < 0.5
    assert np.isnan(M.bootstrap_ci([np.nan])[0])
    est, lo, hi = M.bootstrap_statistic(lambda idx: v[idx].std(), len(v))
    assert lo < est < hi
    t = M.mcnemar([True] * 12 + [False] * 8, [False] * 10 + [True] * 2 + [False] * 8)
    assert (t["only_a"], t["only_b"]) == (10, 0) and t["p_value"] == pytest.approx(2 * 0.5 ** 10)
    assert M.mcnemar([True, False], [True, False])["p_value"] == 1.0


# ----------------------------------------------------------------------------------- sync
class _OracleExpert(torch.nn.Module):
    """Embeds a window by its 5 per-frame values: mouth brightness for video, mel energy for sound."""

    window, mel_per_frame = 5, 4

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def embed_video(self, mouths):
        x = mouths.mean((2, 3, 4))
        return torch.nn.functional.normalize(x - x.mean(1, keepdim=True), dim=-1)

    def embed_audio(self, mel):
        x = mel.reshape(len(mel), 5, 4, -1).mean((2, 3))
        return torch.nn.functional.normalize(x - x.mean(1, keepdim=True), dim=-1)


def test_lse_finds_an_audio_track_shifted_by_five_frames():
    from s2v_lib.gan.sync import sync_scores

    t = 80
    signal = RNG.uniform(0.1, 0.9, t + 10)
    frames = (np.broadcast_to(signal[5:5 + t, None, None, None], (t, 32, 32, 3)) * 255).round().astype(np.uint8)
    in_sync = np.repeat(signal[5:5 + t], 4)[:, None] * np.ones((1, 80), np.float32)
    late = np.repeat(signal[:t], 4)[:, None] * np.ones((1, 80), np.float32)  # the sound 5 frames late
    expert = _OracleExpert()
    ok, off = sync_scores(expert, frames, in_sync), sync_scores(expert, frames, late)
    assert ok["offset"] == 0 and ok["lse_d"] < 0.02 and ok["lse_c"] > 0.5
    assert off["offset"] == 5 and off["lse_d"] < 0.02
    assert sync_scores(expert, frames, late, max_offset=3)["lse_d"] > 0.5  # out of the search range: no match


# ----------------------------------------------------------------------------------- landmarks
def test_blinks_and_head_motion_known_cases():
    still = np.tile(RNG.uniform(10, 50, (1, 68, 2)), (50, 1, 1))
    assert L.count_blinks(L.eye_openness(still)) == 0 and L.head_motion(still) == 0  # a constant video
    blinking = still.copy()
    for f in (10, 11, 30):  # two closures: frames 10-11 and frame 30
        for eye in (L.LEFT_EYE, L.RIGHT_EYE):
            centre = blinking[f, eye, 1].mean()
            blinking[f, eye, 1] = centre
    assert L.count_blinks(L.eye_openness(blinking)) == 2
    drifting = still + np.arange(50)[:, None, None] * np.array([1.0, 0.0])  # 1 px per frame sideways
    assert L.head_motion(drifting) == pytest.approx(1.0)


def test_landmark_regressor_trains_scores_and_reloads(tiny_cache, tmp_path):
    from s2v_lib.data import split_index

    clip = tiny_cache.index["clip"].iloc[0]
    marks = L.crop_landmarks(tiny_cache.corpus().ground_truth(clip), tiny_cache.resolution, clip)
    assert marks.shape[1:] == (68, 2) and 0 <= marks.min() and marks.max() <= tiny_cache.resolution
    model, hist = L.get_landmark_regressor(tiny_cache, tmp_path, LandmarkConfig(steps=6, batch_size=8, width=8),
                                           progress=False)
    assert len(hist) == 6 and np.isfinite(hist.loss).all()
    pred = L.find_landmarks(model, np.asarray(tiny_cache.clip_frames(clip)))
    assert pred.shape == marks.shape
    scores = L.evaluate_landmarks(model, tiny_cache, split_index(tiny_cache.index, "B"))
    assert scores["error_px"] > 0 and scores["mean_shape_error_px"] > 0 and scores["frames"] == \
        split_index(tiny_cache.index, "B").n_frames.sum()
    good = dict(error_px=0.7, mean_shape_error_px=1.2, blinks_true=0.35, blinks_found=0.40)
    assert L.fit_to_judge(good)[0]
    assert not L.fit_to_judge({**good, "error_px": 1.0})[0]  # hardly better than the mean face
    assert "blinks" in L.fit_to_judge({**good, "blinks_found": 0.0})[1]  # blind to blinks
    again, _ = L.get_landmark_regressor(tiny_cache, tmp_path, LandmarkConfig(steps=6, batch_size=8, width=8),
                                        progress=False)
    assert np.allclose(L.find_landmarks(again, np.asarray(tiny_cache.clip_frames(clip))), pred, atol=1e-5)


# ----------------------------------------------------------------------------------- systems
class _Replay(torch.nn.Module):
    """A 'generator' that returns given videos in order: the real ones make a perfect system."""

    def __init__(self, videos):
        super().__init__()
        self.videos, self.k = videos, 0
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def generate(self, mel, identity=None, emotion=None, identity_image=None, seed=0):
        v = torch.from_numpy(np.asarray(self.videos[self.k % len(self.videos)])).movedim(-1, 1).float() / 255
        self.k += 1
        return v[None]


@pytest.fixture(scope="module")
def judged():
    from s2v_lib.gan.sync import SyncExpert
    from s2v_lib.teachers import EmotionTeacher, IdentityTeacher, VisualTeachers

    torch.manual_seed(0)
    data = GANData.synthetic(n_clips=8, n_frames=20, resolution=32)
    data.meta = pd.DataFrame(dict(clip=[f"c{k}" for k in range(8)], speaker=["s1", "s2"] * 4,
                                  emotion=["happy", "sad", "anger", "happy", "neutral", "sad", "fear", "disgust"]))
    judges = E.Judges(VisualTeachers(EmotionTeacher(width=8), IdentityTeacher(width=8)), SyncExpert(width=8),
                      L.LandmarkRegressor(32, width=8))
    still = [np.repeat(np.asarray(f[:1]), len(f), 0) for f in data.frames]
    gens = {"speech2video": _Replay(data.frames), "static_image_baseline": _Replay(data.frames),
            "no_emotion": _Replay(still), "no_noise": _Replay(still)}
    return data, judges, E.evaluate_systems(gens, data, judges, progress=False)


def test_a_system_that_returns_the_real_video_scores_perfectly(judged):
    data, _, ev = judged
    s = ev.scores
    assert len(s) == 8 * 5 and ev.systems == ["real", "speech2video", "static_image_baseline", "no_emotion",
                                              "no_noise"]
    perfect = s[s.system == "speech2video"]
    assert (perfect.psnr == 100).all() and np.allclose(perfect.ssim, 1) and np.allclose(perfect.lmd_face, 0)
    assert np.allclose(perfect.csim, 1, atol=1e-5)
    real = s[s.system == "real"].reset_index(drop=True)
    for col in ("lse_d", "lse_c", "emotion_acc", "blinks_per_s", "head_motion"):
        assert np.allclose(perfect[col].to_numpy(), real[col].to_numpy(), atol=1e-5), col
    assert real.psnr.isna().all()  # no reference for the real clip itself
    frozen = s[s.system == "no_noise"]
    assert (frozen.head_motion == 0).all() and (frozen.blinks_per_s == 0).all()  # a still picture


def test_summary_table_metrics_and_claims(judged):
    _, _, ev = judged
    table = E.summary_table(ev, n_boot=100)
    assert list(table.index) == ev.systems
    assert table.loc["speech2video", "fd"] == pytest.approx(0, abs=1e-6)
    assert table.loc["no_emotion", "fd"] > 0 and np.isnan(table.loc["real", "fd"])
    assert table.loc["real", "head_motion_lo"] < table.loc["real", "head_motion"] < table.loc["real", "head_motion_hi"]
    found = E.to_metrics(table)
    json.dumps(found)
    assert "psnr" not in found["real"] and "lse_d_ci95" in found["real"] and found["no_noise"]["clips"] == 8
    text = E.formatted(table)
    assert text.loc["real", "PSNR (dB)"] == "-"
    swap = pd.DataFrame(dict(clip=["c0"], emotion=["happy"], swapped=["sad"], read=["sad"]))
    verdicts = {c["claim"][0]: c for c in E.claims(ev, table, swap)}
    assert set(verdicts) == {"1", "2", "3", "4"}
    assert all(isinstance(c["holds"], bool) and c["verdict"].startswith(("holds", "not shown"))
               for c in verdicts.values())
    assert verdicts["3"]["holds"]  # two identical systems are indistinguishable
    scores = ev.scores.set_index("system")
    four = verdicts["4"]["numbers"]  # speech2video replays the real clips, no_emotion still pictures
    assert four["accuracy_a"] == pytest.approx(scores.loc["real", "emotion_acc"].mean())
    assert four["accuracy_b"] == pytest.approx(scores.loc["no_emotion", "emotion_acc"].mean())
    assert four["swap_follows"] == 1.0 and four["swap_own"] == 0.0
    one = verdicts["1"]["numbers"]
    assert one["accuracy"] == pytest.approx(one["real"]) and one["chance"] == pytest.approx(0.25)
    d = E.paired(ev, "head_motion", "speech2video", "no_noise")
    assert d["difference"] == pytest.approx(d["mean_a"] - d["mean_b"])


def test_own_face_tells_a_face_of_the_right_speaker_from_one_of_anybody(judged):
    _, _, ev = judged
    assert ev.identity["speech2video"].shape == (8, ev.identity["real"].shape[1])
    assert np.allclose(ev.identity["speech2video"], ev.identity["real"], atol=1e-5)  # it replays the real clips
    found = E.own_face(ev, "speech2video", n_boot=100)
    assert found["speakers"] == 2 and found["clips"] == 8 and found["chance"] == 0.5

    # known cases: 12 speakers x 3 clips, each speaker a direction; the real clips scatter around it
    rng = np.random.default_rng(0)
    n, per, dim = 12, 3, 32
    speakers = np.repeat([f"s{i}" for i in range(n)], per)
    centre = rng.normal(size=(n, dim))
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)  # noqa: E731
    real = unit(np.repeat(centre, per, 0) + 0.5 * rng.normal(size=(n * per, dim)))
    scores = pd.DataFrame(dict(system=["real"] * (n * per), clip=[f"c{k}" for k in range(n * per)], speaker=speakers))
    systems = {"right": unit(np.repeat(centre, per, 0) + 0.5 * rng.normal(size=(n * per, dim))),  # its speaker's face
               "anybody": unit(rng.normal(size=(n * per, dim))),                                   # a face of nobody
               "wrong": unit(np.roll(np.repeat(centre, per, 0), per, 0))}                           # the next speaker's
    ev = E.Evaluation("toy", scores, {}, dict(real=real, **systems))
    right, anybody, wrong = (E.own_face(ev, s, n_boot=200) for s in systems)
    assert right["holds"] and right["p_value"] < 1e-3 and right["low"] > 0 and right["top1"] == 1.0
    assert right["own"] > right["others"] and right["chance"] == pytest.approx(1 / 12)
    assert not anybody["holds"] and abs(anybody["difference"]) < 0.1 and anybody["top1"] < 0.5
    assert not wrong["holds"] and wrong["difference"] < 0 and wrong["top1"] == 0.0
    with pytest.raises(ValueError, match="no identity vectors"):
        E.own_face(E.Evaluation("old", scores, {}), "right")


def test_emotion_swap_reports_what_the_teacher_reads(judged):
    data, judges, _ = judged
    swap = E.emotion_swap(_Replay(data.frames), data, judges, progress=False)
    assert len(swap) == 8 and (swap.emotion != swap.swapped).all()
    emotions = list(data.meta.emotion)
    assert list(swap.emotion) == emotions and list(swap["clip"]) == list(data.meta["clip"])
    # the swapped-in emotion is the next clip's (every neighbour here differs)
    assert list(swap.swapped) == emotions[1:] + emotions[:1]
    # _Replay ignores the emotion and returns the real clip: the teacher's reading of the real frames
    read = [E.EMOTIONS[int(judges.teachers.emotion(np.asarray(f))[0].mean(0).argmax())] for f in data.frames]
    assert list(swap.read) == read


def test_evaluation_refuses_data_without_metadata(judged):
    _, judges, _ = judged
    with pytest.raises(ValueError, match="metadata"):
        E.evaluate_systems({}, GANData.synthetic(n_clips=2, n_frames=8, resolution=32), judges, progress=False)


def test_without_a_landmark_judge_the_landmark_metrics_are_not_measured(judged):
    data, judges, _ = judged
    blind = E.Judges(judges.teachers, judges.sync, None)
    ev = E.evaluate_systems({"speech2video": _Replay(data.frames), "static_image_baseline": _Replay(data.frames)}, data, blind,
                    progress=False)
    s = ev.scores
    assert s[["lmd_mouth", "lmd_face", "blinks_per_s", "head_motion"]].isna().all().all()
    assert np.isfinite(s[s.system == "speech2video"].ssim).all()
    verdicts = {c["claim"][0]: c for c in E.claims(ev, E.summary_table(ev, n_boot=50))}
    assert verdicts["2"]["verdict"].startswith("not measured") and verdicts["2"]["holds"] is None
    assert all(c["metric"] not in ("lmd_mouth", "lmd_face") for c in verdicts["3"]["numbers"]["comparisons"])
