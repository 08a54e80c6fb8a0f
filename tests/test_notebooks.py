"""The notebooks: structure checks, then each one run in order by papermill (smoke profile) and
re-checked by nbval in lax mode (cells tagged ``nbval-check-output`` must give the same output).

A notebook joins the suite by being added to ``s2v_lib.machinery.course.NOTEBOOKS``.
"""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from s2v_lib.machinery import lesson
from s2v_lib.machinery.course import NOTEBOOK_DIR, NOTEBOOKS

SANITIZE = Path(__file__).with_name("nbval_sanitize.cfg")


def _cells(name):
    return json.loads((NOTEBOOK_DIR / name).read_text())["cells"]


def test_every_notebook_on_disk_is_in_the_course():
    on_disk = sorted(p.name for p in NOTEBOOK_DIR.glob("*.ipynb"))
    assert on_disk == sorted(NOTEBOOKS), "add new notebooks to s2v_lib.machinery.course.NOTEBOOKS"
    assert NOTEBOOKS == sorted(NOTEBOOKS), "the course runs notebooks in the order of their numbers"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_structure(name):
    cells = _cells(name)
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name}: exactly one cell must be tagged 'parameters'"
    params = "".join(tagged[0]["source"])
    for knob in ("profile", "run_dir", "corpus_dir", "seed"):
        assert f"{knob} =" in params, f"{name}: the parameters cell lacks {knob}"
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    code = [c for c in cells if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), \
        f"{name}: committed with outputs; strip them"
    # functions belong in s2v_lib: a notebook defines one only in a lesson cell (the library's own source,
    # checked by tests/test_lessons.py) or in an exercise's worked solution
    for i, c in enumerate(cells):
        if c["cell_type"] == "code" and lesson.defines_functions(lesson.cell_source(c)):
            assert lesson.lesson_names(c) or lesson.SOLUTION_TAG in c.get("metadata", {}).get("tags", []), \
                f"{name} cell {i}: functions belong in s2v_lib (or in a lesson cell tagged lesson:<module>.<name>)"
    text = " ".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "Exercises" in text and "Summary" in text


#: the metrics.json section each notebook writes
SECTIONS = dict(zip(NOTEBOOKS, ("data", "teachers", "distillation", "gan", "evaluation", "inference")))

#: another feature setting that validates must run every notebook: 64 mel bands and a 20 ms hop
#: (2 mel frames per video frame instead of 4), on a smaller corpus and shorter trainings
VARIANT = dict(features=dict(n_mels=64, hop_ms=20.0), corpus=dict(clips_per_speaker=12),
               gan=dict(steps=12, baseline_steps=8, ablation_steps=4), sync=dict(steps=20), landmarks=dict(steps=30),
               evaluation=dict(unseen_clips=6, bootstrap=50, rating_pairs=2))


def _execute(name, state, settings):
    """Run one notebook of the course into ``state["run"]``; a failure fails every later notebook too."""
    import papermill as pm

    if state["failed"]:
        pytest.fail(f"notebook {state['failed']} failed first: {name} needs its files")
    run = state["run"]
    out = run / "notebooks" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(NOTEBOOK_DIR / name), str(out), cwd=str(out.parent), kernel_name="python3",
                            parameters=dict(profile="smoke", run_dir=str(run), corpus_dir="", seed=0,
                                            settings=settings, **(dict(workers=2) if name == NOTEBOOKS[0] else {})),
                            progress_bar=False)
    except Exception:
        state["failed"] = name
        raise
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics.get(SECTIONS[name]), f"{name} wrote no '{SECTIONS[name]}' section to metrics.json"
    return out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    return {"run": tmp_path_factory.mktemp("smoke_run"), "failed": None}


@pytest.fixture(scope="module")
def variant_run(tmp_path_factory):
    return {"run": tmp_path_factory.mktemp("variant_run"), "failed": None}


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_the_smoke_profile(name, smoke_run):
    out = _execute(name, smoke_run, {})
    # nbval (lax): run the executed notebook again; tagged cells must reproduce their outputs
    res = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                          "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZE), str(out)],
                         capture_output=True, text=True, cwd=str(out.parent))
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]


@pytest.mark.notebooks
def test_data_notebook_proves_the_signal(smoke_run):
    metrics_path = smoke_run["run"] / "metrics.json"
    assert metrics_path.exists(), "notebook 01 did not run"
    data = json.loads(metrics_path.read_text())["data"]
    assert data["n_speakers"] == 8 and data["n_emotions"] == 6
    assert data["prosody_emotion_acc"] > 2 * data["prosody_emotion_chance"]
    assert data["voice_to_face_r2"] > 0


@pytest.mark.notebooks
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_other_mel_settings(name, variant_run):
    _execute(name, variant_run, VARIANT)
    if name == NOTEBOOKS[0]:
        info = json.loads((variant_run["run"] / "cache" / "cache.json").read_text())
        assert (info["mel_per_frame"], info["features"]["n_mels"]) == (2, 64)


@pytest.mark.notebooks
def test_a_restored_bundle_lets_the_notebooks_train_nothing_it_holds(smoke_run, tmp_path_factory):
    """The workshop path: a lecturer's run packed, restored on a 'laptop' (a fresh run directory, the corpus
    made again there by notebook 01), and the course run: nothing the bundle holds is trained again."""
    from s2v_lib.machinery import bundle, runs

    if smoke_run["failed"] or not (smoke_run["run"] / "notebooks" / NOTEBOOKS[-1]).exists():
        pytest.fail("the smoke run did not finish: nothing to bundle")
    where = tmp_path_factory.mktemp("bundle")
    packed = bundle.pack(smoke_run["run"], where / "smoke.s2v.tar")
    run_bytes = sum(p.stat().st_size for p in smoke_run["run"].rglob("*") if p.is_file())
    assert packed.stat().st_size < 0.5 * run_bytes, (packed.stat().st_size, run_bytes)
    laptop = {"run": where / "laptop", "failed": None}
    held = {Path(name).stem for name in bundle.restore(packed, laptop["run"])["files"]}
    for name in NOTEBOOKS:
        _execute(name, laptop, {})
    retrained = [line for line in runs.trained_log(laptop["run"]) if line["trained"] in held]
    assert not retrained, retrained
