"""Lessons that show the library's own code: what a notebook shows is what the library runs.

**Lesson cells.** A notebook code cell tagged ``lesson:<module>.<name>`` (cell metadata ``tags``; one
tag per function or class, in the order they appear in the cell) holds exactly the source of that
library object. The learner reads it beside its equation, can change it and run the cell again:
the cell then defines the changed function in the notebook, and a stage's training function that
takes the loss as an argument (``teachers.train_emotion_teacher(..., loss=)``,
``students.train_students(..., emotion_loss=, identity_loss=)``) trains with it. The committed
notebook must agree with the library: ``tests/test_lessons.py`` fails when a lesson cell's code
differs from ``inspect.getsource`` of the object it names (trailing spaces and blank lines at the
ends aside). After changing the library, copy its source into the cells with::

    python -m s2v_lib.machinery.lesson notebooks/02_teacher_features.ipynb --write

(without ``--write`` it only reports the cells that differ, and exits 1 if any do).

**Shown, not edited.** ``show(obj)`` displays the library source of a long function (a stage's
training step) as the notebook runs, so it cannot drift either.

**Self-checks.** ``check(claim, value, at_least=..., at_most=..., needs="course")`` prints one
``PASS``/``MISS`` line against a stated threshold; ``compare(name, got, expected)`` prints whether
a result equals a reference (exactly, approximately, or not: makemore's ``cmp``); ``snapshot`` and
``unchanged`` prove that the exercises left the files later notebooks load untouched.
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import difflib
import importlib
import inspect
import json
import sys
import textwrap
from pathlib import Path

import numpy as np

#: the tag prefix of a lesson cell: ``lesson:s2v_lib.teachers.cosface_loss``
TAG = "lesson:"
#: the tag of an exercise's worked-solution cell (collapsed in JupyterLab, executed by CI)
SOLUTION_TAG = "solution"


# ----------------------------------------------------------------------------------- lesson cells
def resolve(name: str):
    """The object a lesson tag names: ``s2v_lib.students.kd_loss``, ``s2v_lib.teachers.CosFaceHead.forward``.

    The longest importable prefix is the module; the rest are attributes.
    """
    parts = name.split(".")
    for k in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:k]))
        except ModuleNotFoundError:
            continue
        try:
            for attr in parts[k:]:
                obj = getattr(obj, attr)
        except AttributeError:
            raise LookupError(f"lesson tag {TAG}{name}: {'.'.join(parts[:k])} has no {'.'.join(parts[k:])}; "
                              f"fix the tag in the notebook cell's metadata") from None
        return obj
    raise LookupError(f"lesson tag {TAG}{name}: no importable module in {name!r}")


def normalise(text: str) -> str:
    """Source text compared line by line: trailing spaces and the blank lines at both ends left out."""
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip("\n")


def source(obj) -> str:
    """The library source of ``obj`` (a function, class or method, or the dotted name of one), dedented."""
    if isinstance(obj, str):
        obj = resolve(obj)
    return normalise(textwrap.dedent(inspect.getsource(obj)))


def lesson_names(cell: dict) -> list:
    """The dotted names a cell's ``lesson:`` tags give, in order (empty for other cells)."""
    return [t[len(TAG):] for t in cell.get("metadata", {}).get("tags", []) if t.startswith(TAG)]


def cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def lesson_source(names) -> str:
    """What a lesson cell for ``names`` must hold: their sources in order, two blank lines apart."""
    return "\n\n\n".join(source(n) for n in names)


def defined_names(code: str) -> list:
    """The functions and classes a cell's code defines at its top level, in order."""
    lines = [ln for ln in code.split("\n") if not ln.lstrip().startswith(("%", "!"))]  # IPython magics
    tree = ast.parse("\n".join(lines))
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def defines_functions(code: str) -> bool:
    """Whether code defines a function or class anywhere (lambdas aside)."""
    lines = [ln for ln in code.split("\n") if not ln.lstrip().startswith(("%", "!"))]
    return any(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
               for n in ast.walk(ast.parse("\n".join(lines))))


@dataclasses.dataclass
class Mismatch:
    """A lesson cell that does not hold its library source."""

    notebook: str
    cell: int
    names: list
    diff: str

    def __str__(self) -> str:
        return (f"{self.notebook}, cell {self.cell} ({', '.join(self.names)}): the cell differs from the library "
                f"source (- library, + notebook):\n{self.diff}")


def lesson_cells(notebook) -> list:
    """``(cell number, names, cell source)`` for every lesson cell of a notebook file."""
    cells = json.loads(Path(notebook).read_text())["cells"]
    return [(i, lesson_names(c), cell_source(c)) for i, c in enumerate(cells)
            if c["cell_type"] == "code" and lesson_names(c)]


def check_notebook(notebook) -> list:
    """Every lesson cell of ``notebook`` whose code is not its library source, as ``Mismatch`` (empty: all agree)."""
    out = []
    for i, names, code in lesson_cells(notebook):
        want, got = lesson_source(names), normalise(code)
        if want != got:
            diff = "\n".join(difflib.unified_diff(want.split("\n"), got.split("\n"), "library", "notebook",
                                                  lineterm="", n=1))
            out.append(Mismatch(Path(notebook).name, i, names, diff))
    return out


def write_notebook(notebook) -> int:
    """Copy the library source into every lesson cell of ``notebook`` (metadata kept). Returns the cells changed."""
    path = Path(notebook)
    nb = json.loads(path.read_text())
    changed = 0
    for cell in nb["cells"]:
        names = lesson_names(cell)
        if cell["cell_type"] != "code" or not names:
            continue
        want = lesson_source(names)
        if normalise(cell_source(cell)) != want:
            lines = want.split("\n")
            cell["source"] = [ln + "\n" for ln in lines[:-1]] + [lines[-1]]
            changed += 1
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed


def show(obj):
    """Display the library source of ``obj`` (a function, class, method or dotted name), read as the cell runs.

    For code a lesson shows but does not ask the learner to edit in place (a stage's whole
    training function). Returns an ``IPython.display.Code`` (rendered with syntax colours).
    """
    from IPython.display import Code

    if isinstance(obj, str):
        obj = resolve(obj)
    lines, start = inspect.getsourcelines(obj)
    root = Path(__file__).resolve().parents[2]
    try:
        where = Path(inspect.getsourcefile(obj)).resolve().relative_to(root)
    except ValueError:
        where = Path(inspect.getsourcefile(obj)).name
    header = f"# {where}, lines {start}-{start + len(lines) - 1}: {obj.__qualname__}\n"
    return Code(header + textwrap.dedent("".join(lines)), language="python")


# ----------------------------------------------------------------------------------- self-checks
def check(claim: str, value: float, at_least: float | None = None, at_most: float | None = None,
          needs: str | None = None, digits: int = 3) -> bool:
    """Print ``PASS`` or ``MISS`` for ``claim``: ``value`` against ``at_least`` and/or ``at_most``.

    ``needs``: the profile the threshold is meant for (e.g. ``"course"``), said on the line, so a
    miss on a smaller profile reads as expected. Returns whether it passed.
    """
    if at_least is None and at_most is None:
        raise ValueError(f"check {claim!r}: give at_least, at_most or both")
    value = float(value)
    ok = not np.isnan(value) and (at_least is None or value >= at_least) and (at_most is None or value <= at_most)
    bounds = " and ".join(s for s in (f">= {at_least:g}" if at_least is not None else "",
                                      f"<= {at_most:g}" if at_most is not None else "") if s)
    note = f"  [a {needs}-profile target]" if needs else ""
    print(f"{'PASS' if ok else 'MISS'}  {claim}: {value:.{digits}f} (target {bounds}){note}")
    return ok


def compare(name: str, got, expected, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    """Print whether ``got`` equals ``expected`` exactly, within tolerance, or not (with the largest difference).

    Tensors and arrays of the same shape, or numbers. Returns whether they agree within tolerance.
    """
    a, b = (np.asarray(v.detach().cpu() if hasattr(v, "detach") else v, dtype=np.float64) for v in (got, expected))
    if a.shape != b.shape:
        print(f"{name:40s} DIFFERENT shapes {a.shape} vs {b.shape}")
        return False
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    exact = bool(np.array_equal(a, b))
    close = bool(np.allclose(a, b, atol=atol, rtol=rtol))
    verdict = "exact" if exact else "approximate" if close else "DIFFERENT"
    print(f"{name:40s} {verdict:12s} max diff {diff:.2e}")
    return close


@dataclasses.dataclass
class Snapshot:
    """Size and modification time of every file under some folders (``snapshot``)."""

    roots: list
    files: dict


def _stat(roots) -> dict:
    out = {}
    for p in map(Path, roots):
        for f in sorted([p] if p.is_file() else p.rglob("*") if p.exists() else []):
            if f.is_file():
                st = f.stat()
                out[str(f)] = (st.st_size, st.st_mtime_ns)
    return out


def snapshot(*paths) -> Snapshot:
    """Record every file under ``paths`` (files or folders), to prove later with ``unchanged`` that none changed."""
    return Snapshot([str(p) for p in paths], _stat(paths))


def unchanged(before: Snapshot, what: str = "files later notebooks load") -> bool:
    """Raise if a file under the snapshot's folders was changed, removed or added since; else print a PASS line."""
    after = _stat(before.roots)
    changed = sorted(f for f in set(before.files) | set(after) if before.files.get(f) != after.get(f))
    if changed:
        raise AssertionError(f"{len(changed)} of the {what} were changed, removed or added: "
                             + ", ".join(Path(f).name for f in changed[:5])
                             + "; an exercise must train into memory or into a file of its own elsewhere")
    if not before.files:
        raise AssertionError(f"nothing to compare: no files under {before.roots}")
    print(f"PASS  the exercises left the {len(before.files)} {what} untouched")
    return True


# ----------------------------------------------------------------------------------- command line
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2v_lib.machinery.lesson",
                                     description="Check (or, with --write, refresh) the lesson cells of notebooks "
                                                 "against the library source.")
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--write", action="store_true", help="copy the library source into differing cells")
    args = parser.parse_args(argv)
    bad = 0
    for nb in args.notebooks:
        if args.write:
            print(f"{nb}: {write_notebook(nb)} lesson cell(s) refreshed")
        else:
            for m in check_notebook(nb):
                print(m, end="\n\n")
                bad += 1
            if not bad:
                print(f"{nb}: {len(lesson_cells(nb))} lesson cell(s) agree with the library")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
