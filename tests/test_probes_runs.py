"""Probes score known cases as expected; metrics.json is written section by section."""
import json

import numpy as np

from s2v_lib import probes
from s2v_lib.machinery import runs


def _grouped(n_groups=10, per=20, d=6, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per)
    return rng, groups, rng.standard_normal((n_groups * per, d))


def test_r2_of_a_linear_signal_and_of_noise():
    rng, groups, X = _grouped()
    W = rng.standard_normal((6, 2))
    Y = X @ W + 0.05 * rng.standard_normal((len(X), 2))
    assert probes.grouped_r2(X, Y, groups)["r2"] > 0.95
    noise = probes.grouped_r2(X, rng.standard_normal((len(X), 2)), groups)
    assert noise["r2"] < 0.05


def test_accuracy_of_separable_classes_and_of_noise():
    rng, groups, X = _grouped()
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] > 0).astype(int)
    assert probes.grouped_accuracy(X, y, groups)["accuracy"] > 0.9
    res = probes.grouped_accuracy(X, rng.integers(0, 4, len(X)), groups)
    assert abs(res["accuracy"] - 0.25) < 0.08 and res["confusion"].shape == (4, 4)


def test_per_group_normalisation():
    _, groups, X = _grouped()
    Z = probes.normalize_per_group(X + groups[:, None] * 10, groups)
    for g in np.unique(groups):
        assert np.allclose(Z[groups == g].mean(0), 0, atol=1e-9)


def test_chance_is_the_majority_class():
    assert probes.chance_accuracy([0, 0, 0, 1]) == 0.75


def test_metrics_sections_merge_and_nan_is_null(tmp_path):
    run = runs.run_dir(tmp_path / "r")
    runs.update_metrics(run, "data", dict(n=np.int64(3), r2=np.float32(0.5)))
    runs.update_metrics(run, "teachers", dict(acc=float("nan"), eer=np.array([0.1, 0.2])))
    text = (run / "metrics.json").read_text()
    assert "NaN" not in text  # strict JSON: NaN is written as null
    m = json.loads(text)
    assert m == {"data": {"n": 3, "r2": 0.5}, "teachers": {"acc": None, "eer": [0.1, 0.2]}}
    assert list(m) == ["data", "teachers"]  # sections in the order the stages wrote them
    # writing a section again replaces that section whole and leaves the others as they were
    runs.update_metrics(run, "data", dict(n=4, inf=float("inf")))
    m = json.loads((run / "metrics.json").read_text())
    assert m == {"data": {"n": 4, "inf": "inf"}, "teachers": {"acc": None, "eer": [0.1, 0.2]}}
    assert runs.read_metrics(run) == m
    assert all((run / d).is_dir() for d in ("figures", "videos", "checkpoints", "notebooks"))
