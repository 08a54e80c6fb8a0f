"""Run bundles: what a run's notebooks trained, packed into one file and restored on another machine.

A lecturer runs the course once (``make course``) and packs the run::

    python -m s2v_lib bundle runs/course            # -> runs/course.s2v.tar

A learner restores it into a fresh run directory and runs the course, whose notebooks then load
instead of train (notebook 01 still generates the corpus and its feature cache: they are large and
made in a minute or two, always the same for the same profile and seed)::

    python -m s2v_lib restore course.s2v.tar --run runs/course
    make course

What is packed: ``checkpoints/`` (teachers, students, sync expert, landmark judge, every GAN with
its history and snapshots; a GAN checkpoint without its optimisers' state, which is more than half
its size and only needed to train it further) and ``teacher_features/`` (the teachers' outputs on
pools B and C).
Networks are keyed by the data they learned from (``data.fingerprint``: the corpus's metadata and the
feature settings, not its folder or file times), so they load wherever the same corpus is made again;
anything an exercise changes still trains.
"""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from pathlib import Path

#: The folders of a run a bundle holds.
BUNDLED = ("checkpoints", "teacher_features")
MANIFEST = "bundle.json"
FORMAT = 1


class BundleError(ValueError):
    """A bundle that cannot be made or restored, with the reason in words."""


def _files(run: Path) -> list[Path]:
    out = []
    for folder in BUNDLED:
        root = run / folder
        if root.is_dir():
            out += sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")
                          and ".tmp" not in p.name)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def pack(run, out=None) -> Path:
    """Pack ``run``'s trained networks and teacher features into ``out`` (default ``<run>.s2v.tar``), written
    whole or not at all. Returns the bundle's path."""
    from .runs import atomic_write, first_line, read_metrics

    run = Path(run).resolve()
    files = _files(run)
    if not any(p.suffix == ".pt" for p in files):
        raise BundleError(f"{run} has no trained networks (no checkpoints/*.pt): run the course first")
    out = Path(out) if out is not None else run.with_name(run.name + ".s2v.tar")
    cache = run / "cache" / "cache.json"
    timings = run / "course_timings.json"
    recorded = read_metrics(run).get("run") or {}  # what the course recorded when it ran (run_course)
    manifest = dict(format=FORMAT, made=time.strftime("%Y-%m-%d %H:%M:%S"), run=run.name,
                    profile=recorded.get("profile") or (json.loads(timings.read_text()).get("profile")
                                                        if timings.exists() else None),
                    seed=recorded.get("seed"), commit=recorded.get("commit"),
                    cache=json.loads(cache.read_text()).get("fingerprint") if cache.exists() else None,
                    files={})
    payloads = {}
    for p in files:
        name = str(p.relative_to(run))
        payloads[name] = _slim(p) if p.parent.name == "checkpoints" and p.name.startswith("gan_") \
            and p.suffix == ".pt" else None
        manifest["files"][name] = dict(bytes=len(payloads[name]) if payloads[name] is not None else p.stat().st_size,
                                       sha256=hashlib.sha256(payloads[name]).hexdigest()
                                       if payloads[name] is not None else _sha256(p))

    def write(f):
        with tarfile.open(fileobj=f, mode="w") as tar:
            for name, data in [(MANIFEST, json.dumps(manifest, indent=1).encode())] + \
                    [(n, d) for n, d in payloads.items() if d is not None]:
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), int(time.time())
                tar.addfile(info, io.BytesIO(data))
            for name, data in payloads.items():
                if data is None:
                    tar.add(run / name, arcname=name, recursive=False)

    try:
        return atomic_write(out, write)
    except OSError as exc:
        raise BundleError(f"cannot write {out}: {first_line(exc)}") from None


def _slim(path: Path) -> bytes:
    """A GAN checkpoint without its optimisers' state (more than half its size): what the notebooks need to
    load a finished system. Training it further starts its optimisers afresh."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "opt_g" in state:
        state = dict(state, opt_g=None, opt_d=None)
    out = io.BytesIO()
    torch.save(state, out)
    return out.getvalue()


def read_manifest(bundle) -> dict:
    """The manifest of a bundle (what it holds, from which run), or ``BundleError`` in words."""
    bundle = Path(bundle)
    if not bundle.is_file():
        raise BundleError(f"no bundle at {bundle}")
    try:
        with tarfile.open(bundle) as tar:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member is not None else None
    except (tarfile.TarError, KeyError, OSError, json.JSONDecodeError, EOFError) as exc:
        raise BundleError(f"{bundle} is not a speech2video run bundle ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "files" not in manifest:
        raise BundleError(f"{bundle} is not a speech2video run bundle of format {FORMAT}")
    return manifest


def restore(bundle, run, overwrite: bool = False) -> dict:
    """Unpack a bundle into the run directory ``run``; returns its manifest with ``seconds`` taken.

    Every file is checked against the manifest's checksum; nothing is written outside ``run``'s
    bundled folders. A file of the run that differs from the bundle's is refused unless ``overwrite``
    (it may be a network the learner trained)."""
    from .runs import atomic_write, run_dir

    t0 = time.perf_counter()
    manifest = read_manifest(bundle)
    run = run_dir(run)
    names = manifest["files"]
    for name in names:
        parts = Path(name).parts
        if Path(name).is_absolute() or ".." in parts or not parts or parts[0] not in BUNDLED:
            raise BundleError(f"{bundle}: refusing {name!r}, which points outside the run's {'/'.join(BUNDLED)}")
    clashes = [n for n in names if (run / n).exists() and _sha256(run / n) != names[n]["sha256"]]
    if clashes and not overwrite:
        raise BundleError(f"{run} already holds {len(clashes)} file(s) that differ from the bundle's (e.g. "
                          f"{clashes[0]}); restore into a fresh run directory, or pass --overwrite")
    with tarfile.open(bundle) as tar:
        for name, facts in names.items():
            member = tar.extractfile(name)
            if member is None:
                raise BundleError(f"{bundle} lists {name} but does not hold it")
            data = member.read()
            if hashlib.sha256(data).hexdigest() != facts["sha256"]:
                raise BundleError(f"{bundle}: {name} is damaged (its checksum differs from the manifest's)")
            (run / name).parent.mkdir(parents=True, exist_ok=True)
            atomic_write(run / name, lambda f: f.write(data))
    return dict(manifest, seconds=time.perf_counter() - t0, into=str(run))


def describe(manifest: dict) -> str:
    total = sum(f["bytes"] for f in manifest["files"].values())
    made_by = ", ".join(f"{k} {manifest[k]}" for k in ("profile", "seed", "commit") if manifest.get(k) is not None)
    return (f"{len(manifest['files'])} files, {total / 2 ** 20:.1f} MiB, from run {manifest.get('run')!r} "
            f"({made_by or 'profile, seed and commit not recorded'}; packed {manifest.get('made')})")
