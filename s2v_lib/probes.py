"""Probes: simple models that ask whether a signal carries some information.

Every score is cross-validated over *groups* (speakers), so a probe is always tested on
speakers it never saw: a voice-to-face regression that memorised speakers scores nothing.
"""
from __future__ import annotations

import numpy as np


def normalize_per_group(X: np.ndarray, groups) -> np.ndarray:
    """Z-score each feature within each group (speaker normalisation, standard in emotion recognition)."""
    X = np.asarray(X, float).copy()
    groups = np.asarray(groups)
    for g in np.unique(groups):
        m = groups == g
        X[m] = (X[m] - X[m].mean(0)) / (X[m].std(0) + 1e-8)
    return X


def speaker_folds(groups, n_splits: int = 5):
    """``GroupKFold`` over ``groups`` (speakers), min(``n_splits``, number of speakers) folds: each fold
    holds out whole speakers, so that every prediction is for a speaker its model did not train on."""
    from sklearn.model_selection import GroupKFold

    n = len(np.unique(groups))
    if n < 2:
        raise ValueError("a grouped probe needs at least two groups (speakers)")
    return GroupKFold(n_splits=min(n_splits, n))


def r_squared(Y, pred) -> np.ndarray:
    """The coefficient of determination of predictions ``pred`` of ``Y`` (n, k), per column:

        R^2 = 1 - sum_i (y_i - yhat_i)^2 / sum_i (y_i - mean y)^2

    1: perfect; 0: no better than predicting the mean of y; negative: worse than that.
    NaN for a column whose y is constant (there is nothing to explain).
    """
    Y, pred = np.asarray(Y, float), np.asarray(pred, float)
    ss_res = ((Y - pred) ** 2).sum(0)
    ss_tot = ((Y - Y.mean(0)) ** 2).sum(0)
    return np.where(ss_tot > 0, 1 - ss_res / np.maximum(ss_tot, 1e-12), np.nan)


def grouped_r2(X, Y, groups, n_splits: int = 5, names=None) -> dict:
    """Ridge regression X -> Y, cross-validated over groups. R^2 of the pooled held-out predictions.

    R^2 = 1 - sum (y - y_hat)^2 / sum (y - mean y)^2, per target; 0 is chance (predicting the
    mean), negative is worse than chance. Returns ``r2`` (mean over targets), ``per_target``
    and ``predictions``.
    """
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, Y = np.asarray(X, float), np.asarray(Y, float)
    groups = np.asarray(groups)
    if Y.ndim == 1:
        Y = Y[:, None]
    alphas = np.logspace(-1, 4, 11)

    def fit(Xt, Yt, alpha):
        ys = StandardScaler().fit(Yt)
        model = make_pipeline(StandardScaler(), Ridge(alpha=alpha)).fit(Xt, ys.transform(Yt))
        return lambda Xe: ys.inverse_transform(model.predict(Xe).reshape(len(Xe), -1))

    pred = np.zeros_like(Y)
    for tr, te in speaker_folds(groups, n_splits).split(X, Y, groups):
        # the penalty is chosen by an inner split over the training speakers: choosing it on
        # single clips would let a speaker's other clips leak into the choice
        # (one penalty per target: a face attribute the voice does not predict gets a large
        # one and falls back towards the mean, a predictable one keeps its detail)
        inner = speaker_folds(groups[tr], n_splits)
        err = np.array([sum(((Y[tr][b] - fit(X[tr][a], Y[tr][a], alpha)(X[tr][b])) ** 2).sum(0)
                            for a, b in inner.split(X[tr], Y[tr], groups[tr])) for alpha in alphas])
        best = err.argmin(0)
        for k in np.unique(best):
            cols = best == k
            pred[np.ix_(te, cols)] = fit(X[tr], Y[tr], alphas[k])(X[te])[:, cols]
    r2 = r_squared(Y, pred)
    names = list(names) if names is not None else [f"y{i}" for i in range(Y.shape[1])]
    return dict(r2=float(np.nanmean(r2)), per_target=dict(zip(names, map(float, r2))), predictions=pred)


def chance_accuracy(y) -> float:
    """Accuracy of always guessing the most frequent class."""
    _, counts = np.unique(np.asarray(y), return_counts=True)
    return float(counts.max() / counts.sum())


def grouped_accuracy(X, y, groups, n_splits: int = 5, labels=None) -> dict:
    """Logistic regression X -> y, cross-validated over groups: ``accuracy``, ``chance``, ``confusion``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import confusion_matrix
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = np.asarray(X, float), np.asarray(y)
    pred = np.empty_like(y)
    for tr, te in speaker_folds(groups, n_splits).split(X, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
        model.fit(X[tr], y[tr])
        pred[te] = model.predict(X[te])
    labels = list(labels) if labels is not None else sorted(np.unique(y))
    return dict(accuracy=float((pred == y).mean()), chance=chance_accuracy(y),
                confusion=confusion_matrix(y, pred, labels=labels), labels=labels, predictions=pred)


def split_accuracy(X_train, y_train, X_test, y_test) -> dict:
    """Logistic regression fitted on one set and scored on another: ``accuracy`` and ``chance``.

    Used when the groups must be shared (e.g. which speaker said a held-out utterance: the
    probe has to have heard that speaker before). Chance is the most frequent test class.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
    model.fit(np.asarray(X_train, float), np.asarray(y_train))
    pred = model.predict(np.asarray(X_test, float))
    return dict(accuracy=float((pred == np.asarray(y_test)).mean()), chance=chance_accuracy(y_test))
