"""Metrics: numbers that say how well a stage worked, each with its chance level where one exists.

Verification (EER) scores the identity teacher; retrieval (top-k) scores the identity student;
PSNR, SSIM, LMD and the Frechet distance score generated video against real video (notebook 05),
with bootstrap intervals and paired tests to compare systems. The sync measures (LSE-D/C) are
in ``sync``; blinks and head motion, measured on landmarks, in ``landmarks``.
"""
from __future__ import annotations

import numpy as np


def eer(scores, same) -> float:
    """Equal error rate of a verifier: the rate at which false accepts equal false rejects.

    ``scores`` (N,) similarity of each pair (higher = more alike); ``same`` (N,) bool, True for
    pairs of one person. Sweeping a threshold t: FAR(t) = P(score >= t | different),
    FRR(t) = P(score < t | same); EER is where the two curves cross (linearly interpolated).
    0 is a perfect verifier, 0.5 is chance.
    """
    scores = np.asarray(scores, float)
    same = np.asarray(same, bool)
    if same.all() or not same.any():
        raise ValueError("EER needs both genuine (same) and impostor (different) pairs")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], same[order]
    # accept the first k pairs (highest scores), k = 0..N
    far = np.concatenate([[0.0], np.cumsum(~y) / (~y).sum()])
    frr = np.concatenate([[1.0], 1 - np.cumsum(y) / y.sum()])
    # only thresholds between distinct scores are realisable
    keep = np.concatenate([[True], np.r_[s[1:] != s[:-1], True]])
    far, frr = far[keep], frr[keep]
    d = far - frr
    k = int(np.argmax(d >= 0))
    if k == 0:
        return float(far[0])
    t = d[k - 1] / (d[k - 1] - d[k])  # d crosses zero between k-1 and k
    return float(far[k - 1] + t * (far[k] - far[k - 1]))


def sample_pairs(ids, n_pairs: int, seed: int = 0, groups=None):
    """Index pairs (i, j) for verification: half of one identity, half of two.

    With ``groups`` (e.g. the clip of each frame), genuine pairs come from different groups, so
    two frames of one clip (nearly the same picture) are never a genuine pair.
    Returns ``(i, j, same)``.
    """
    ids = np.asarray(ids)
    groups = np.arange(len(ids)) if groups is None else np.asarray(groups)
    rng = np.random.default_rng(seed)
    half = n_pairs // 2
    by_id = {u: np.flatnonzero(ids == u) for u in np.unique(ids)}
    usable = [u for u, m in by_id.items() if len(np.unique(groups[m])) > 1]
    if not usable or len(by_id) < 2:
        raise ValueError("verification pairs need at least two identities, one with two groups")
    gi, gj = [], []
    while len(gi) < half:
        u = usable[rng.integers(len(usable))]
        a, b = rng.choice(by_id[u], 2, replace=False)
        if groups[a] != groups[b]:
            gi.append(a)
            gj.append(b)
    ii, jj = rng.integers(len(ids), size=(2, 4 * half + 16))
    diff = ids[ii] != ids[jj]
    ii, jj = ii[diff][:n_pairs - half], jj[diff][:n_pairs - half]
    i = np.concatenate([gi, ii]).astype(int)
    j = np.concatenate([gj, jj]).astype(int)
    return i, j, ids[i] == ids[j]


def retrieval_ranks(queries, query_ids, gallery, gallery_ids) -> np.ndarray:
    """Rank (1 = best) of each query's own identity in the gallery, by cosine similarity; ties count against it.

    ``queries`` (Q, D), ``gallery`` (G, D) with one row per identity in ``gallery_ids``.
    """
    q = np.asarray(queries, float)
    g = np.asarray(gallery, float)
    q = q / (np.linalg.norm(q, axis=1, keepdims=True) + 1e-12)
    g = g / (np.linalg.norm(g, axis=1, keepdims=True) + 1e-12)
    gallery_ids = list(gallery_ids)
    missing = sorted(set(query_ids) - set(gallery_ids))
    if missing:
        raise ValueError(f"queries of identities {missing[:5]} have no gallery entry")
    sim = q @ g.T
    own = np.array([gallery_ids.index(u) for u in query_ids])
    own_sim = sim[np.arange(len(q)), own]
    # ties count against the query: a collapsed embedding (all similarities equal) ranks last
    return (sim >= own_sim[:, None]).sum(1)


def top_k(ranks, k: int) -> float:
    """Fraction of queries whose identity is among the ``k`` nearest gallery entries."""
    return float((np.asarray(ranks) <= k).mean())


def top_k_chance(n_gallery: int, k: int) -> float:
    """Top-k accuracy of a random ranking of ``n_gallery`` identities."""
    return min(k, n_gallery) / n_gallery


# ----------------------------------------------------------------------------------- images
def psnr(fake, real, peak: float = 255.0, cap_db: float = 100.0) -> float:
    """Peak signal-to-noise ratio in dB, per frame, averaged over frames: 10 log10(peak^2 / MSE).

    ``fake`` and ``real``: (T, H, W, 3) (or (H, W, 3)) on the scale of ``peak``. A frame off by one
    level everywhere gives 48.13 dB at peak 255; identical frames (infinite PSNR) count as
    ``cap_db``, so that means and intervals over clips stay finite.
    """
    a, b = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"PSNR needs frames of one shape, got {a.shape} and {b.shape}")
    a, b = a.reshape((-1,) + a.shape[-3:]), b.reshape((-1,) + b.shape[-3:])
    mse = ((a - b) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return float(np.mean(np.minimum(10 * np.log10(peak ** 2 / mse), cap_db)))


def ssim(fake, real, peak: float = 255.0, sigma: float = 1.5) -> float:
    """Structural similarity (Wang et al. 2004), per frame and colour channel, averaged.

    Gaussian-weighted local statistics (sigma 1.5, truncated at 3.5 sigma: an 11 x 11 window),
    K1 = 0.01, K2 = 0.03, population covariances, the border of half a window left out: the
    settings of the paper, which ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
    use_sample_covariance=False, data_range=peak, channel_axis=-1)`` also uses. 1 for identical frames.
    """
    from scipy.ndimage import gaussian_filter

    a, b = np.asarray(fake, np.float64), np.asarray(real, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"SSIM needs frames of one shape, got {a.shape} and {b.shape}")
    a, b = a.reshape((-1,) + a.shape[-3:]), b.reshape((-1,) + b.shape[-3:])
    sig = (0, sigma, sigma, 0)  # smooth within each frame and channel only
    blur = lambda x: gaussian_filter(x, sig, truncate=3.5, mode="reflect")  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * peak) ** 2, (0.03 * peak) ** 2
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    pad = int(3.5 * sigma + 0.5)
    return float(s[:, pad:-pad, pad:-pad].mean())


def lmd(fake_landmarks, real_landmarks, points=None) -> float:
    """Landmark distance: mean Euclidean distance between corresponding points, over points and frames.

    ``(T, P, 2)`` arrays in pixels; ``points`` selects some (e.g. the mouth, 48-67). In pixels of
    the frames the landmarks were found on.
    """
    a, b = np.asarray(fake_landmarks, np.float64), np.asarray(real_landmarks, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"LMD needs landmarks of one shape, got {a.shape} and {b.shape}")
    if points is not None:
        a, b = a[:, points], b[:, points]
    return float(np.linalg.norm(a - b, axis=-1).mean())


def frechet_distance(x, y) -> float:
    """Frechet distance between Gaussians fitted to two sets of feature vectors (as FID does).

    ``||mu_x - mu_y||^2 + tr(S_x + S_y - 2 (S_x S_y)^(1/2))``; 0 for one distribution, the squared
    distance of the means for two that differ only by a shift.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"Frechet distance needs two (N, D) feature sets, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError("Frechet distance needs at least two vectors per set")
    return frechet_from_moments(x.mean(0), np.atleast_2d(np.cov(x, rowvar=False)),
                                y.mean(0), np.atleast_2d(np.cov(y, rowvar=False)))


def frechet_from_moments(mx, sx, my, sy) -> float:
    """The Frechet distance of two Gaussians given by their means and covariances."""
    # tr((S_x S_y)^(1/2)) = tr((S_x^(1/2) S_y S_x^(1/2))^(1/2)) (similar matrices): two symmetric
    # eigen-decompositions instead of a general matrix square root, several times faster
    w, v = np.linalg.eigh(sx)
    half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    root_trace = np.sqrt(np.clip(np.linalg.eigvalsh(half @ sy @ half), 0, None)).sum()
    return float(max(((mx - my) ** 2).sum() + np.trace(sx) + np.trace(sy) - 2 * root_trace, 0.0))


# ----------------------------------------------------------------------------------- statistics
def bootstrap_ci(values, n_boot: int = 1000, seed: int = 0, level: float = 0.95):
    """``(mean, low, high)``: the mean of per-item ``values`` (NaN left out) and its percentile
    bootstrap interval (items resampled with replacement ``n_boot`` times)."""
    v = np.asarray(values, np.float64)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    boots = v[np.random.default_rng(seed).integers(len(v), size=(n_boot, len(v)))].mean(1)
    lo, hi = np.percentile(boots, [50 * (1 - level), 50 * (1 + level)])
    return float(v.mean()), float(lo), float(hi)


def bootstrap_statistic(statistic, n: int, n_boot: int = 200, seed: int = 0, level: float = 0.95):
    """``(estimate, low, high)`` of a statistic over ``n`` items that is not a mean (e.g. a Frechet
    distance): ``statistic(idx)`` on all items, and the percentile interval of ``n_boot`` resamples
    re-centred on the estimate. A resample repeats items, which inflates such a statistic (a
    Frechet distance grows as the sample's diversity shrinks), so the resamples' mean shift is
    taken off: the interval shows the spread, around the estimate. Floored at 0."""
    rng = np.random.default_rng(seed)
    est = float(statistic(np.arange(n)))
    boots = np.array([statistic(rng.integers(n, size=n)) for _ in range(n_boot)])
    boots -= boots.mean() - est
    q_lo, q_hi = np.percentile(boots, [50 * (1 - level), 50 * (1 + level)])
    return est, float(max(q_lo, 0.0)), float(max(q_hi, 0.0))


def mcnemar(correct_a, correct_b) -> dict:
    """Exact McNemar test: do two systems judged on the same items differ in accuracy?

    Only the discordant items count: ``b`` where only A is right, ``c`` where only B is right;
    under the null each is equally likely, so the two-sided p-value is the binomial test of
    ``b`` successes in ``b + c`` trials at 0.5.
    """
    from scipy.stats import binomtest

    a, b_ = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    if a.shape != b_.shape:
        raise ValueError("McNemar's test needs the two systems' results on the same items")
    only_a, only_b = int((a & ~b_).sum()), int((~a & b_).sum())
    p = binomtest(only_a, only_a + only_b, 0.5).pvalue if only_a + only_b else 1.0
    return dict(accuracy_a=float(a.mean()), accuracy_b=float(b_.mean()), only_a=only_a, only_b=only_b,
                items=int(len(a)), p_value=float(p))
