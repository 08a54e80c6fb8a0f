"""Metrics: numbers that say how well a stage worked, each with its chance level where one exists.

Verification (EER) scores the identity teacher; retrieval (top-k) scores the identity student;
later stages add image, landmark and sync metrics here.
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
