"""The course: notebooks 01-06 in order, executed by papermill into the run directory."""
from __future__ import annotations

import json
import time
from pathlib import Path

#: The ordered lessons. A notebook on disk that is not here is an error (tests check it).
NOTEBOOKS = [
    "01_data_preparation.ipynb",
    "02_teacher_features.ipynb",
    "03_distillation.ipynb",
    "04_gan_training.ipynb",
    "05_evaluation.ipynb",
    "06_inference_demo.ipynb",
]

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def run_course(profile: str = "course", run="runs/course", corpus: str | None = None,
               notebooks: list[str] | None = None, seed: int = 0, settings: dict | None = None,
               log_output: bool = False) -> dict:
    """Execute the notebooks in order with ``profile``; executed copies go to ``<run>/notebooks``.

    Each notebook receives ``profile``, ``run_dir`` (absolute), ``corpus_dir``, ``seed`` and ``settings``
    (nested overrides of the profile, e.g. ``{"features": {"n_mels": 64}}``).
    Returns the wall-clock seconds of each notebook (also saved to ``<run>/course_timings.json``).
    """
    import papermill as pm

    from .runs import run_dir

    run = run_dir(run)
    params = dict(profile=profile, run_dir=str(run), corpus_dir=str(Path(corpus).resolve()) if corpus else "",
                  seed=int(seed), settings=dict(settings or {}))
    timings = {}
    for name in notebooks or NOTEBOOKS:
        src = NOTEBOOK_DIR / name
        if not src.exists():
            raise FileNotFoundError(f"notebook {src} not found")
        out = run / "notebooks" / name
        print(f"[course] {name}  profile={profile}  ->  {out}", flush=True)
        t0 = time.perf_counter()
        pm.execute_notebook(str(src), str(out), parameters=params, cwd=str(out.parent), kernel_name="python3",
                            progress_bar=not log_output, log_output=log_output)
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"[course] {name} done in {timings[name]:.0f} s", flush=True)
    path = run / "course_timings.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    seconds = dict(old.get("seconds", {})) if old.get("profile") == profile else {}
    seconds.update(timings)  # a notebook re-run alone keeps the others' times
    path.write_text(json.dumps(dict(profile=profile, seconds=seconds), indent=1))
    return timings
