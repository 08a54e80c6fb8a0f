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

    from .runs import checkout, machine, run_dir, update_metrics

    run = run_dir(run)
    # where and from what the figures come: scripts/report.py prints it above the README's figures
    update_metrics(run, "run", dict(machine(), commit=checkout(), profile=profile, seed=int(seed),
                                    settings=dict(settings or {})))
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
        try:
            pm.execute_notebook(str(src), str(out), parameters=params, cwd=str(out.parent), kernel_name="python3",
                                progress_bar=not log_output, log_output=log_output,
                                kernel_manager_class=_kernel_manager(out.with_suffix(".kernel.log")))
        except pm.PapermillExecutionError as exc:  # the error in one line; the executed copy shows the cell
            raise NotebookFailed(f"{name} stopped in cell {exc.exec_count}: {exc.ename}: {exc.evalue} "
                                 f"(the executed copy, with the cell's output: {out})") from None
        timings[name] = round(time.perf_counter() - t0, 1)
        trust(out)
        _save_timings(run, profile, timings)  # after each notebook: a crash or Ctrl-C later keeps these
        print(f"[course] {name} done in {timings[name]:.0f} s", flush=True)
    return timings


class NotebookFailed(RuntimeError):
    """A notebook of the course raised an error: which one, in which cell, and where its executed copy is."""


def _save_timings(run: Path, profile: str, timings: dict) -> None:
    from .runs import atomic_write

    path = run / "course_timings.json"
    try:
        old = json.loads(path.read_text()) if path.exists() else {}
    except ValueError:  # a damaged file from an old run: its times are lost, these are not
        old = {}
    seconds = dict(old.get("seconds", {})) if old.get("profile") == profile else {}
    seconds.update(timings)  # a notebook re-run alone keeps the others' times
    text = json.dumps(dict(profile=profile, seconds=seconds), indent=1).encode()
    atomic_write(path, lambda f: f.write(text))


def _kernel_manager(log: Path):
    """A kernel manager whose kernel writes its own stderr (start-up warnings, the noise of a kernel
    stopped by Ctrl-C) to ``log`` instead of the terminal: the course's output stays its progress lines
    and, on an interrupt or an error, one line. Cell output still reaches the notebook (and the terminal
    with ``--log-output``)."""
    from jupyter_client.manager import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw["stderr"] = open(log, "ab")  # the kernel process keeps its copy of the descriptor
            try:
                return await super()._async_launch_kernel(kernel_cmd, **kw)
            finally:
                kw["stderr"].close()

    return QuietKernelManager


def trust(path) -> None:
    """Mark an executed notebook trusted for this user (``jupyter trust``), so that JupyterLab shows its saved
    widgets (progress bars, the rating and demo forms) and not their text. What we executed ourselves we trust."""
    import nbformat
    from nbformat.sign import NotebookNotary

    nb = nbformat.read(str(path), as_version=4)
    NotebookNotary().sign(nb)


def export_html(run) -> list[Path]:
    """The executed notebooks of a run as web pages, ``<run>/html/NN_name.html`` with an ``index.html``: their
    text, code, tables, figures and (embedded) videos, readable without Jupyter or running anything."""
    import html

    import nbformat
    from nbconvert import HTMLExporter

    run = Path(run)
    executed = [run / "notebooks" / name for name in NOTEBOOKS if (run / "notebooks" / name).exists()]
    if not executed:
        raise FileNotFoundError(f"no executed notebooks in {run / 'notebooks'}: run the course first "
                                f"(make course RUN={run})")
    out_dir = run / "html"
    out_dir.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter()
    pages = []
    for path in executed:
        body, _ = exporter.from_notebook_node(nbformat.read(str(path), as_version=4))
        page = out_dir / path.with_suffix(".html").name
        page.write_text(body, encoding="utf-8")
        pages.append(page)
    links = "\n".join(f'<li><a href="{p.name}">{html.escape(p.stem)}</a></li>' for p in pages)
    (out_dir / "index.html").write_text(f"<!doctype html><meta charset='utf-8'><title>{html.escape(run.name)}</title>"
                                        f"<h1>speech2video: run {html.escape(run.name)}</h1><ol>{links}</ol>\n",
                                        encoding="utf-8")
    return pages


class NotebookParameterError(ValueError):
    """A notebook parameter that is misspelt or has a value the course cannot use. In Jupyter and papermill
    it shows as its one line, not as a traceback."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def _assigned(source: str) -> list[str]:
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [t.id for node in tree.body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)]


def check_parameters(namespace: dict | None = None, history: list[str] | None = None) -> None:
    """The first thing a notebook's set-up cell does: refuse, in one line, a parameter it does not have
    (papermill would only warn and run with the defaults) and a profile or settings the course cannot use.

    The parameters given are those of papermill's injected cell (it begins ``# Parameters``); the
    notebook's own are the names its parameters cell, the cell executed just before it, assigns.
    ``namespace`` and ``history`` default to the IPython kernel's (``In``); outside IPython this checks
    the values only.
    """
    import difflib

    from ..config import get_profile

    if namespace is None or history is None:
        try:
            ip = get_ipython()  # type: ignore[name-defined]  # noqa: F821
        except NameError:
            ip = None
        namespace = namespace if namespace is not None else (ip.user_ns if ip else {})
        history = history if history is not None else list(namespace.get("In", []))
    injected = [i for i, cell in enumerate(history) if cell.lstrip().startswith("# Parameters")]
    if injected and injected[-1] > 0:
        known = _assigned(history[injected[-1] - 1])
        for name in _assigned(history[injected[-1]]):
            if known and name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                raise NotebookParameterError(
                    f"this notebook has no parameter {name!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
                    + f"; its parameters are {', '.join(known)}")
    profile = namespace.get("profile", "course")
    settings = namespace.get("settings", {})
    if not isinstance(settings, dict):
        raise NotebookParameterError(f"settings must be a dict of nested overrides such as "
                                     f"{{'features': {{'n_mels': 64}}}}, got {settings!r}")
    try:
        get_profile(profile, settings=settings)
    except (ValueError, TypeError) as exc:
        raise NotebookParameterError(str(exc)) from None
