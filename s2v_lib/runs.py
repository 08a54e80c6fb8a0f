"""The run directory: where every stage reads its inputs and writes its outputs.

    runs/<name>/
        corpus/          SynthTalk (unless the run points at another corpus)
        cache/           preprocessed face crops and log-mels
        figures/  videos/  checkpoints/  notebooks/ (executed copies)
        metrics.json     one section per stage
"""
from __future__ import annotations

import json
import math
import os
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
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        v = float(v)
        return v if math.isfinite(v) else (None if math.isnan(v) else ("inf" if v > 0 else "-inf"))
    return v


def read_metrics(run) -> dict:
    path = Path(run) / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else {}


def update_metrics(run, section: str, values: dict) -> dict:
    """Replace one stage's section of ``metrics.json`` (atomically: temp file, then rename)."""
    path = Path(run) / "metrics.json"
    metrics = read_metrics(run)
    metrics[section] = _plain(values)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(metrics, indent=2, sort_keys=False))
    os.replace(tmp, path)
    return metrics


def save_figure(fig, run, name: str) -> Path:
    path = Path(run) / "figures" / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    return path
