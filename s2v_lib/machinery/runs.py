"""The run directory: where every stage reads its inputs and writes its outputs.

    runs/<name>/
        corpus/          SynthTalk (unless the run points at another corpus)
        cache/           preprocessed face crops and log-mels
        figures/  videos/  checkpoints/  notebooks/ (executed copies)
        metrics.json     one section per stage
        trained.log      one line per network trained: what, when, how long (``note_training``)
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import time
from pathlib import Path

import numpy as np


def run_dir(path, create: bool = True) -> Path:
    p = Path(path).expanduser().resolve()
    if create:
        for sub in ("figures", "videos", "checkpoints", "notebooks"):
            (p / sub).mkdir(parents=True, exist_ok=True)
    return p


def _plain(v):
    """Numbers as plain JSON numbers (NaN and inf as null or strings JSON can hold)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_plain(x) for x in list(v)]
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else (None if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    return v


def atomic_write(path, write) -> Path:
    """Write a file whole or not at all: ``write(f)`` fills a temporary file (binary, unique to this
    process) beside ``path``, which then replaces ``path`` in one rename. A crash or a second writer
    never leaves half a file under the final name; the temporary file is removed on any error."""
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_metrics(run) -> dict:
    path = Path(run) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def update_metrics(run, section: str, values: dict) -> dict:
    """Replace one stage's section of ``metrics.json`` (atomically: temp file, then rename)."""
    path = Path(run) / "metrics.json"
    metrics = read_metrics(run)
    metrics[section] = _plain(values)
    atomic_write(path, lambda f: f.write(json.dumps(metrics, indent=2, sort_keys=False).encode()))
    return metrics


def save_figure(fig, run, name: str) -> Path:
    path = Path(run) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path


# ----------------------------------------------------------------------------------- checkpoints
CHECKPOINT_FORMAT = 1


class CheckpointError(ValueError):
    """A weights file that cannot be used, with the reason in words."""


def first_line(exc: BaseException, limit: int = 120) -> str:
    """An error's message in a few words: torch's unpickling errors run to a paragraph about
    ``weights_only`` that says nothing about a file that is simply not a checkpoint."""
    import pickle

    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in str(exc):
        return "its bytes are not a file torch.save wrote"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def save_model(model, path, **extra) -> Path:
    """Write a module's weights plus the config that made it (temp file, then rename: never half a file).

    The module needs ``kind`` (a name) and ``config`` (its constructor's keyword arguments).
    ``extra`` holds plain values (numbers, strings, lists, dicts) such as what it was trained on.
    """
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(kind=model.kind, format=CHECKPOINT_FORMAT, config=dict(model.config),
                   state_dict={k: v.detach().cpu() for k, v in model.state_dict().items()}, **extra)
    return atomic_write(path, lambda f: torch.save(payload, f))


def load_model(path, kind: str, classes: dict, hint: str = "", map_location="cpu"):
    """Load a module saved by ``save_model`` with ``torch.load(weights_only=True)``, in eval mode, on ``map_location``.

    ``classes`` maps kind names to module classes. A missing file, a file of another kind, or
    weights that do not fit the network raise ``CheckpointError`` with the reason.
    """
    import torch

    path = Path(path)
    if kind not in classes:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {sorted(classes)}")
    what = kind.replace("_", " ")
    if not path.exists():
        raise CheckpointError(f"no {what} weights at {path}" + (f": {hint}" if hint else ""))
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001  (pickle, zip and torch errors alike)
        raise CheckpointError(f"{path} is not a readable torch weights file ({type(exc).__name__}: "
                              f"{first_line(exc)})") from exc
    if not isinstance(payload, dict) or "state_dict" not in payload:
        raise CheckpointError(f"{path} holds no model checkpoint (expected a dict with 'kind', 'config' and "
                              f"'state_dict', as s2v_lib.machinery.runs.save_model writes)")
    if payload.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {payload.get('kind')!r} checkpoint, not a {kind!r} one")
    try:
        model = classes[kind](**payload.get("config", {}))
        model.load_state_dict(payload["state_dict"])
        model.to(map_location)
    except (TypeError, RuntimeError) as exc:
        raise CheckpointError(f"the weights in {path} do not fit a {what}: {str(exc).splitlines()[0]}") from exc
    return model.eval()


def trained(path, key: dict, train, load, retrain: bool = False):
    """Load if present, else compute: the model at ``path`` when it was trained on ``key``, else train it.

    ``key`` (plain values: data fingerprint, settings, seed) is kept in ``<path>.json`` beside
    the weights with the training history in ``<path>_history.csv``. ``train()`` must return
    ``(model_or_models, history_dataframe)`` and save the weights to ``path``; ``load()``
    returns the model(s). Returns ``(model_or_models, history, was_trained)``.
    """
    import pandas as pd

    path = Path(path)
    sidecar = path.with_suffix(".json")
    hist = path.with_name(path.stem + "_history.csv")
    if not retrain and path.exists() and sidecar.exists() and json.loads(sidecar.read_text()).get("key") == _plain(key):
        return load(), (pd.read_csv(hist) if hist.exists() else None), False
    sidecar.unlink(missing_ok=True)  # a crash while training must not leave an old key beside new weights
    t0 = time.perf_counter()
    models, history = train()
    note_training(path.parent.parent, path.stem, time.perf_counter() - t0)
    atomic_write(hist, lambda f: history.to_csv(f, index=False))
    atomic_write(sidecar, lambda f: f.write(json.dumps(dict(key=_plain(key)), indent=1).encode()))
    return models, history, True


def note_training(run, what: str, seconds: float, **facts) -> None:
    """Add a line to ``<run>/trained.log``: what this run trained, when, and for how long (a restored bundle's
    run, whose notebooks should train nothing, shows it there)."""
    line = dict(time=time.strftime("%Y-%m-%d %H:%M:%S"), trained=what, seconds=round(float(seconds), 1), **facts)
    try:
        with open(Path(run) / "trained.log", "a") as f:
            f.write(json.dumps(_plain(line)) + "\n")
    except OSError:  # the log is a convenience; a read-only run must not fail for it
        pass


def trained_log(run) -> list[dict]:
    """The lines of ``<run>/trained.log`` (``note_training``), oldest first."""
    path = Path(run) / "trained.log"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def trained_model(path, key: dict, fit, load, trained_on: str, retrain: bool = False):
    """``trained`` for one network: ``fit()`` returns ``(model, history)``; the model is saved to ``path``
    with ``trained_on`` (what it learned from) by ``save_model``. Returns ``(model, history)``."""
    def train():
        model, history = fit()
        save_model(model, path, trained_on=trained_on)
        return model, history

    model, history, _ = trained(path, key, train, load, retrain)
    return model, history


def require(run, folder: str, marker: str, notebook: str) -> Path:
    """``<run>/<folder>`` when an earlier stage made it (``marker`` exists there), else an error naming that stage."""
    root = Path(run) / folder
    if not (root / marker).exists():
        raise FileNotFoundError(f"no {folder.replace('_', ' ')} in {Path(run)}: run notebook {notebook} with "
                                f"run_dir={str(run)!r} first")
    return root


# ----------------------------------------------------------------------------------- provenance
_ROOT = Path(__file__).resolve().parents[2]


def machine() -> dict:
    """This machine: CPU model, logical cores, OS; the GPU when torch sees one."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return dict(cpu=cpu, cores=os.cpu_count(), os=f"{platform.system()} {platform.release()}")


def checkout(root: Path = _ROOT) -> str:
    """The commit of ``root`` (short hash), with "+ uncommitted changes" when the work tree differs from it."""
    def git(*args):
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30).stdout
    try:
        head = git("rev-parse", "--short=10", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--untracked-files=no").strip())
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return (head or "unknown (not a git checkout)") + (" + uncommitted changes" if head and dirty else "")
