"""Evaluation (notebook 05): every system's video of held-out speech, scored by frozen judges.

For each clip of a set (pool B's held-out sentences: observed speakers, the paper's protocol;
pool C: unseen speakers, beyond it) every system generates the video from the clip's sound, and
the judges look at it and at the real video of the same moment:

========================  =====================================================  ==========
metric                    how                                                    better
========================  =====================================================  ==========
``psnr``, ``ssim``        against the real frames (``metrics.psnr``, ``ssim``)   higher
``lmd_mouth/face``        landmark regressor on both, mean point distance (px),  lower
                          mouth centred on itself, face on the rigid points
``lse_d``, ``lse_c``      the frozen sync expert, offsets of +-15 frames         lower/higher
``emotion_acc``           an emotion teacher's reading against the true emotion  higher
``csim``                  cosine of identity-teacher embeddings, fake vs real    higher
``fd``                    Frechet distance of both teachers' frame features      lower
``blinks_per_s``          eye closures found by the landmark regressor           near real
``head_motion``           squared motion of the rigid landmarks (px^2 / frame)   near real
========================  =====================================================  ==========

A generator can learn to please a judge it was trained against: notebook 05 therefore judges
emotion, identity and FD with teachers trained again with another seed (networks the GAN never
saw), and the landmark judge is new too; only the sync expert is the one the generator trained
against (as in Wav2Lip), so LSE says how well it satisfied its own expert. The row ``real`` scores the real clips where a metric means something without a reference
(sync, emotion, blinks, head motion). Means come with 95 % bootstrap intervals over clips;
systems are compared on the same clips with paired tests.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import landmarks
from . import metrics
from ..config import EMOTIONS, CorpusConfig
from ..config import progress as progress_bar
from ..gan.sync import sync_scores
from ..gan.train import generate_clip

#: name -> (direction: +1 higher is better, -1 lower is better, 0 closest to real is better; meaningful for real clips; label)
METRICS = {
    "psnr": (+1, False, "PSNR (dB)"),
    "ssim": (+1, False, "SSIM"),
    "lmd_mouth": (-1, False, "LMD mouth (px)"),
    "lmd_face": (-1, False, "LMD face (px)"),
    "lse_d": (-1, True, "LSE-D"),
    "lse_c": (+1, True, "LSE-C"),
    "emotion_acc": (+1, True, "emotion accuracy"),
    "csim": (+1, False, "CSIM"),
    "fd": (-1, False, "Frechet distance"),
    "blinks_per_s": (0, True, "blinks per second"),
    "head_motion": (0, True, "head motion (px²/frame)"),
}


@dataclasses.dataclass
class Judges:
    """The frozen models that score a video: the two teachers, the sync expert, the landmark regressor."""

    teachers: object        # teachers.VisualTeachers
    sync: torch.nn.Module   # sync.SyncExpert
    landmarks: torch.nn.Module | None  # landmarks.LandmarkRegressor or pretrained.DlibLandmarkJudge; None: no
    #                                    landmark metrics (no judge fit to judge: landmarks.get_landmark_judge)
    fps: int = CorpusConfig.fps

    def look(self, frames: np.ndarray, mel: np.ndarray) -> dict:
        """What the judges see in one video (T, R, R, 3) uint8 with its normalised log-mels."""
        probs, _, emb = self.teachers.emotion(frames)
        ident = self.teachers.identity(frames)
        lm = landmarks.find_landmarks(self.landmarks, frames) if self.landmarks is not None else None
        s = sync_scores(self.sync, frames, mel)
        return dict(probs=probs.mean(0).numpy(), features=np.concatenate([emb.numpy(), ident.numpy()], 1),
                    identity=F.normalize(ident.mean(0), dim=0).numpy(), landmarks=lm,
                    lse_d=s["lse_d"], lse_c=s["lse_c"], offset=s["offset"])


def score_clip(seen: dict, real_seen: dict | None, fake: np.ndarray | None, real: np.ndarray | None,
               emotion: str, fps: int) -> dict:
    """One clip's row: a generated video against the real one (``real_seen`` None: the real clip itself)."""
    lm = seen["landmarks"]
    row = dict(lse_d=seen["lse_d"], lse_c=seen["lse_c"], sync_offset=seen["offset"],
               emotion_pred=EMOTIONS[int(seen["probs"].argmax())],
               blinks_per_s=np.nan if lm is None else landmarks.count_blinks(landmarks.eye_openness(lm)) * fps / len(lm),
               head_motion=np.nan if lm is None else landmarks.head_motion(lm))
    row["emotion_acc"] = float(row["emotion_pred"] == emotion)
    row.update(psnr=np.nan, ssim=np.nan, lmd_mouth=np.nan, lmd_face=np.nan, csim=np.nan)
    if real_seen is not None:
        row.update(psnr=metrics.psnr(fake, real), ssim=metrics.ssim(fake, real), csim=float(seen["identity"] @ real_seen["identity"]))
        if lm is not None:
            row.update(lmd_mouth=metrics.lmd(*landmarks.aligned(lm, real_seen["landmarks"], landmarks.MOUTH), landmarks.MOUTH),
                       lmd_face=metrics.lmd(*landmarks.aligned(lm, real_seen["landmarks"], landmarks.RIGID)))
    return row


@dataclasses.dataclass
class Evaluation:
    """Per-clip scores of every system on one set of clips, and the frame features behind FD."""

    name: str
    scores: pd.DataFrame     # one row per (system, clip)
    features: dict           # system -> list of (T, D) per clip, in clip order
    identity: dict = dataclasses.field(default_factory=dict)  # system -> (clips, D): the identity judge's unit
    #                                                            vector of each clip (what CSIM compares)

    @property
    def systems(self) -> list:
        return list(dict.fromkeys(self.scores.system))


def evaluate_systems(generators: dict, data, judges: Judges, name: str = "observed", seed: int = 0,
             progress: bool = True) -> Evaluation:
    """Generate every clip of ``data`` (``train.GANData`` with ``meta``) with each generator and score it.

    The static-image baseline gets ``data.reference`` (a frame of the speaker from another clip);
    the others get the students' embeddings of the clip's sound. Generation is seeded per clip.
    """
    if data.meta is None:
        raise ValueError("evaluation needs clips with their metadata (train.GANData.from_run)")
    rows, features, identity = [], {s: [] for s in ["real", *generators]}, {s: [] for s in ["real", *generators]}
    for k in progress_bar(range(len(data.frames)), progress, desc=f"evaluating {name}", unit="clip"):
        meta = data.meta.iloc[k]
        real, mel = np.asarray(data.frames[k]), data.mel[k]
        real_seen = judges.look(real, mel)
        features["real"].append(real_seen["features"])
        identity["real"].append(real_seen["identity"])
        rows.append(dict(system="real", clip=meta["clip"], speaker=meta.speaker, emotion=meta.emotion,
                         **score_clip(real_seen, None, None, None, meta.emotion, judges.fps)))
        for system, g in generators.items():
            fake = generate_clip(g, data, k, seed)
            seen = judges.look(fake, mel)
            features[system].append(seen["features"])
            identity[system].append(seen["identity"])
            rows.append(dict(system=system, clip=meta["clip"], speaker=meta.speaker, emotion=meta.emotion,
                             **score_clip(seen, real_seen, fake, real, meta.emotion, judges.fps)))
    return Evaluation(name, pd.DataFrame(rows), features, {k: np.stack(v) for k, v in identity.items() if v})


def emotion_swap(generator, data, judges: Judges, seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """A control at equal training: each clip generated with the emotion embedding of another clip
    (the next one with a different true emotion), everything else its own. Returns per clip the
    emotion the teacher reads, its own (``emotion``) and the swapped-in one (``swapped``)."""
    emotions = data.meta.emotion.to_numpy()
    rows = []
    for k in progress_bar(range(len(data.frames)), progress, desc="emotion swap", unit="clip"):
        others = [(k + d) % len(emotions) for d in range(1, len(emotions))]
        j = next((i for i in others if emotions[i] != emotions[k]), None)
        if j is None:
            raise ValueError("an emotion swap needs clips of at least two emotions")
        fake = generate_clip(generator, data, k, seed, emotion_of=j)
        probs = judges.teachers.emotion(fake)[0].mean(0).numpy()
        rows.append(dict(clip=data.meta["clip"].iloc[k], emotion=emotions[k], swapped=emotions[j],
                         read=EMOTIONS[int(probs.argmax())]))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------- tables
class _Moments:
    """Per-clip sums of frame features and of their outer products, so that the mean and covariance
    of any resample of clips cost one weighted sum (the bootstrap of the Frechet distance)."""

    def __init__(self, clips: list, mu: np.ndarray, sd: np.ndarray):
        z = [(c - mu) / sd for c in clips]
        self.n = np.array([len(c) for c in z], np.float64)
        self.s = np.stack([c.sum(0) for c in z])
        self.ss = np.stack([(c.T @ c).ravel() for c in z])

    def __call__(self, idx):
        w = np.bincount(idx, minlength=len(self.n)).astype(np.float64)
        n = w @ self.n
        mean = (w @ self.s) / n
        cov = ((w @ self.ss).reshape(len(mean), len(mean)) - n * np.outer(mean, mean)) / (n - 1)
        return mean, cov


def _fd_statistic(real: list, fake: list):
    """Frechet distance of frame features over a resample of clips; features standardised by the real frames
    (the two teachers' embeddings differ in scale: standardising lets neither dominate)."""
    allreal = np.concatenate(real)
    mu, sd = allreal.mean(0), allreal.std(0) + 1e-6
    r, f = _Moments(real, mu, sd), _Moments(fake, mu, sd)
    return lambda idx: metrics.frechet_from_moments(*r(idx), *f(idx))


def summary_table(ev: Evaluation, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per system: each metric's mean with its 95 % bootstrap interval (``<metric>``,
    ``<metric>_lo``, ``<metric>_hi``) and the number of clips."""
    out = {}
    for system in ev.systems:
        s = ev.scores[ev.scores.system == system]
        row = {"clips": len(s)}
        for m, (_, for_real, _) in METRICS.items():
            if m == "fd":
                if system == "real":
                    est = lo = hi = np.nan
                else:
                    stat = _fd_statistic(ev.features["real"], ev.features[system])
                    est, lo, hi = metrics.bootstrap_statistic(stat, len(s), max(n_boot // 5, 50), seed)
            elif system == "real" and not for_real:
                est = lo = hi = np.nan
            else:
                est, lo, hi = metrics.bootstrap_ci(s[m].to_numpy(), n_boot, seed)
            row.update({m: est, f"{m}_lo": lo, f"{m}_hi": hi})
        out[system] = row
    return pd.DataFrame(out).T


def formatted(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """The summary as text: ``mean [low, high]`` per metric, '-' where it does not apply."""
    out = {}
    for m in METRICS:
        col = []
        for _, r in table.iterrows():
            if not np.isfinite(r[m]):
                col.append("-")
            else:
                col.append(f"{r[m]:.{digits}g} [{r[m + '_lo']:.{digits}g}, {r[m + '_hi']:.{digits}g}]")
        out[METRICS[m][2]] = col
    return pd.DataFrame(out, index=table.index)


def to_metrics(table: pd.DataFrame) -> dict:
    """``{system: {metric: mean, metric_ci95: [low, high], clips: n}}`` for metrics.json (NaN left out)."""
    out = {}
    for system, r in table.iterrows():
        d = {"clips": int(r["clips"])}
        for m in METRICS:
            if np.isfinite(r[m]):
                d[m] = float(r[m])
                d[f"{m}_ci95"] = [float(r[f"{m}_lo"]), float(r[f"{m}_hi"])]
        out[system] = d
    return out


# ----------------------------------------------------------------------------------- comparisons
def paired(ev: Evaluation, metric: str, a: str, b: str, n_boot: int = 1000, seed: int = 0,
           level: float = 0.95) -> dict:
    """System ``a`` minus system ``b`` on the same clips: mean difference, its bootstrap interval at
    ``level``, and the Wilcoxon signed-rank p-value (two-sided). NaN where the metric was not measured."""
    from scipy.stats import wilcoxon

    s = ev.scores
    x = s[s.system == a].set_index("clip")[metric]
    y = s[s.system == b].set_index("clip")[metric].reindex(x.index)
    x, y = x.to_numpy(np.float64), y.to_numpy(np.float64)
    with np.errstate(invalid="ignore"):
        d = np.where(x == y, 0.0, x - y)  # equal scores differ by 0
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return dict(metric=metric, a=a, b=b, mean_a=np.nan, mean_b=np.nan, difference=np.nan, low=np.nan,
                    high=np.nan, p_value=np.nan, clips=0)
    est, lo, hi = metrics.bootstrap_ci(d, n_boot, seed, level)
    p = float(wilcoxon(d).pvalue) if len(d) and np.any(d != 0) else 1.0
    return dict(metric=metric, a=a, b=b, mean_a=float(np.nanmean(x)), mean_b=float(np.nanmean(y)), difference=est,
                low=lo, high=hi, p_value=p, clips=len(d))


def own_face(ev: Evaluation, system: str = "speech2video", n_boot: int = 1000, seed: int = 0,
             alpha: float = 0.01) -> dict:
    r"""Is a generated face closer to its speaker's real face than to other speakers'? (unseen speakers)

    For each generated clip :math:`k` of speaker :math:`s`, with :math:`g_k` the identity judge's unit
    vector of the generated clip and :math:`r_j` that of real clip :math:`j`:
    :math:`\Delta_k = \operatorname{mean}_{j \ne k,\, s_j = s} g_k \cdot r_j - \operatorname{mean}_{s_j \ne s} g_k \cdot r_j`
    (the speaker's *other* real clips, so that the clip's own pose and expression do not count). The
    clips of one speaker are not independent: the test is over speakers, the mean :math:`\Delta` of
    each, by a one-sided Wilcoxon signed-rank test (``holds``: mean above 0 with p < ``alpha``), with a
    bootstrap interval (95 %) over speakers. ``top1``: the fraction of speakers whose generated clips
    are, on average, nearest to their own real clips among all speakers' (chance ``1 / speakers``).
    Speakers with a single clip are left out (they have no other real clip).
    """
    from scipy.stats import wilcoxon

    if system not in ev.identity or "real" not in ev.identity:
        raise ValueError(f"no identity vectors of {system!r} in this evaluation (scoring.evaluate_systems keeps them)")
    speakers = ev.scores[ev.scores.system == "real"].speaker.to_numpy()
    g, r = ev.identity[system].astype(np.float64), ev.identity["real"].astype(np.float64)
    cos = g @ r.T  # generated clip k against real clip j
    names = [n for n in dict.fromkeys(speakers) if (speakers == n).sum() > 1]
    if len(names) < 2:
        return dict(system=system, speakers=len(names), clips=0, difference=np.nan, low=np.nan, high=np.nan,
                    p_value=np.nan, own=np.nan, others=np.nan, top1=np.nan, chance=np.nan, holds=False)
    per_speaker, own_all, others_all, nearest = [], [], [], []
    for name in names:
        ks = np.flatnonzero(speakers == name)
        own = [cos[k, ks[ks != k]].mean() for k in ks]
        others = [cos[k, speakers != name].mean() for k in ks]
        per_speaker.append(np.mean(own) - np.mean(others))
        own_all += own
        others_all += others
        # mean cosine of this speaker's generated clips to each speaker's real clips (own: the other clips)
        to = {n: np.mean([cos[k, np.flatnonzero((speakers == n) & (np.arange(len(speakers)) != k))].mean()
                          for k in ks]) for n in names}
        nearest.append(max(to, key=to.get) == name)
    d = np.asarray(per_speaker)
    est, lo, hi = metrics.bootstrap_ci(d, n_boot, seed, 0.95)
    p = float(wilcoxon(d, alternative="greater").pvalue) if np.any(d != 0) else 1.0
    return dict(system=system, speakers=len(names), clips=int(sum((speakers == n).sum() for n in names)),
                difference=est, low=lo, high=hi, p_value=p, own=float(np.mean(own_all)),
                others=float(np.mean(others_all)), top1=float(np.mean(nearest)), chance=1.0 / len(names),
                holds=bool(est > 0 and p < alpha))


def emotion_chance(ev: Evaluation) -> float:
    """Emotion accuracy of always answering the most common true emotion of the set."""
    truth = ev.scores[ev.scores.system == "real"].emotion
    return float(truth.value_counts().iloc[0] / len(truth))


def _motion_claim(ev: Evaluation, table: pd.DataFrame, blinks: np.ndarray, alpha: float) -> dict:
    """Claim 2 (spontaneous motion), when the landmark judge measured blinks and head motion."""
    s2v, systems = "speech2video", ev.systems
    head = table.loc[[s2v, "real"], "head_motion"].to_numpy(float)
    nums = dict(blinks_per_s=blinks[0], blinks_low=blinks[1], real_blinks_per_s=table.loc["real", "blinks_per_s"],
                head_motion=head[0], real_head_motion=head[1])
    holds = bool(blinks[1] > 0 and head[0] >= 0.25 * head[1])
    extra = ""
    if "no_noise" in systems:
        c = paired(ev, "head_motion", s2v, "no_noise")
        nums.update(no_noise_head_motion=c["mean_b"], p_value_vs_no_noise=c["p_value"])
        holds = holds and c["difference"] > 0 and c["p_value"] < alpha
        extra = (f"; without the noise input {c['mean_b']:.3g} (paired difference {c['difference']:+.3g}, "
                 f"p = {c['p_value']:.2g})")
    return dict(claim="2. spontaneous motion", holds=holds, numbers=nums, verdict=(
        f"{'holds' if holds else 'not shown'}: speech2video blinks {blinks[0]:.2f} [{blinks[1]:.2f}, {blinks[2]:.2f}] "
        f"times per second (real clips {nums['real_blinks_per_s']:.2f}); head motion {head[0]:.3g} px²/frame "
        f"(real {head[1]:.3g}){extra}"))


def claims(ev: Evaluation, table: pd.DataFrame, swap: pd.DataFrame | None = None, margin: float = 0.10,
           alpha: float = 0.05) -> list:
    """The paper's claims (docs/method.md), each as ``dict(claim, holds, verdict, numbers)`` measured on ``ev``.

    1. emotion from speech alone: the emotion judge reads the intended emotion in speech2video's
       video more often than chance (exact binomial test);
    2. spontaneous motion: speech2video blinks (interval above 0) and moves its head, with head
       motion at least a quarter of the real clips' and, where ``no_noise`` was trained, more than it;
    3. almost indistinguishable from the static-image baseline: on each image/sync/identity metric,
       the paired difference's 90 % interval lies within +-``margin`` of the baseline's value (two
       one-sided tests at 5 %, TOST);
    4. better emotion expression than without the emotion pathway (``no_emotion``): McNemar's exact
       test on the clips each system gets right. ``no_emotion`` trains on the ablations' shorter
       budget, so with ``swap`` (``emotion_swap``: the same speech2video weights fed another
       clip's emotion embedding) the verdict also says whether the face follows the embedding.
    """
    from scipy.stats import binomtest

    out, s2v = [], "speech2video"
    systems = ev.systems
    if s2v not in systems:
        return out
    sc = ev.scores
    # 1
    right = sc[sc.system == s2v].emotion_acc.to_numpy()
    chance = emotion_chance(ev)
    p = binomtest(int(right.sum()), len(right), chance, alternative="greater").pvalue
    acc, lo, hi = table.loc[s2v, ["emotion_acc", "emotion_acc_lo", "emotion_acc_hi"]]
    real_acc = table.loc["real", "emotion_acc"]
    holds = bool(p < alpha)
    out.append(dict(claim="1. emotion from speech alone", holds=holds, numbers=dict(
        accuracy=acc, low=lo, high=hi, chance=chance, p_value=p, real=real_acc), verdict=(
        f"{'holds' if holds else 'not shown'}: the emotion judge reads the intended emotion in {acc:.0%} "
        f"[{lo:.0%}, {hi:.0%}] of speech2video's clips (chance {chance:.0%}, p = {p:.2g}; real clips {real_acc:.0%})")))
    # 2
    blinks = table.loc[s2v, ["blinks_per_s", "blinks_per_s_lo", "blinks_per_s_hi"]].to_numpy(float)
    if not np.isfinite(blinks[0]):
        out.append(dict(claim="2. spontaneous motion", holds=None, numbers={}, verdict=(
            "not measured: blinks and head motion need a landmark judge, and this run has none fit to judge "
            "(the regressor trained on SynthTalk's ground-truth landmarks, or dlib's pretrained 68 points for a "
            "corpus without them, must pass its check on real frames first: section 1 of notebook 05)")))
    else:
        out.append(_motion_claim(ev, table, blinks, alpha))
    # 3
    if "static_image_baseline" in systems:
        rows, close = [], []
        for m in ("psnr", "ssim", "lmd_mouth", "lmd_face", "lse_d", "lse_c", "csim"):
            c = paired(ev, m, s2v, "static_image_baseline", level=0.90)  # TOST at 5 %: the 90 % interval
            if not np.isfinite(c["difference"]):  # not measured (no landmark judge)
                continue
            tol = margin * abs(c["mean_b"])
            c["equivalent"] = bool(-tol <= c["low"] and c["high"] <= tol)
            rows.append(c)
            close.append(c["equivalent"])
        differ = [f"{c['metric']} ({c['mean_a']:.3g} vs {c['mean_b']:.3g})" for c in rows if not c["equivalent"]]
        holds = all(close)
        out.append(dict(claim="3. almost indistinguishable from the static-image baseline", holds=holds,
                        numbers=dict(comparisons=rows, margin=margin), verdict=(
            f"{'holds' if holds else 'not shown'}: {sum(close)} of {len(close)} metrics within ±{margin:.0%} of the "
            f"baseline (equivalence: 90 % interval of the paired difference, TOST at 5 %)" + (f"; outside: {', '.join(differ)}" if differ else ""))))
    # 4
    if "no_emotion" in systems:
        a = sc[sc.system == s2v].set_index("clip").emotion_acc
        b = sc[sc.system == "no_emotion"].set_index("clip").emotion_acc.reindex(a.index)
        t = metrics.mcnemar(a.to_numpy() > 0.5, b.to_numpy() > 0.5)
        holds = bool(t["accuracy_a"] > t["accuracy_b"] and t["p_value"] < alpha)
        extra = ""
        if swap is not None and len(swap):
            follows, own = float((swap.read == swap.swapped).mean()), float((swap.read == swap.emotion).mean())
            t.update(swap_follows=follows, swap_own=own, swap_clips=len(swap))
            holds = holds and follows > own
            extra = (f"; the same speech2video fed another clip's emotion embedding shows that clip's emotion in "
                     f"{follows:.0%} of clips and the speech's own in {own:.0%}")
        out.append(dict(claim="4. better emotion than without the emotion pathway", holds=holds, numbers=t, verdict=(
            f"{'holds' if holds else 'not shown'}: emotion accuracy {t['accuracy_a']:.0%} with the emotion pathway, "
            f"{t['accuracy_b']:.0%} without (only one right: {t['only_a']} vs {t['only_b']} clips, McNemar "
            f"p = {t['p_value']:.2g}; the ablation had the ablations' shorter training budget){extra}")))
    return out


# ----------------------------------------------------------------------------------- rating videos
def rating_pairs(generators: dict, data, clips: list, out_dir, sound, fps: int, sample_rate: int,
                 seed: int = 0) -> list:
    """Videos with sound of ``clips`` (indices into ``data``) by the two systems of ``generators``,
    written to ``out_dir``, as ``rating.Pair`` items for the workshop form. ``sound(clip_name)``
    returns the clip's audio at ``sample_rate``."""
    from pathlib import Path

    from .rating import Pair
    from ..machinery.video import write_video

    if len(generators) != 2:
        raise ValueError(f"a rating pair compares two systems, got {list(generators)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    pairs = []
    for k in clips:
        meta = data.meta.iloc[k]
        audio = sound(meta["clip"])
        videos = {system: write_video(out_dir / f"{meta['clip']}_{system}.mp4", generate_clip(g, data, k, seed), fps,
                                      audio, sample_rate) for system, g in generators.items()}
        pairs.append(Pair(meta["clip"], meta.emotion, videos))
    return pairs
