"""Nothing of the user's is lost: atomic bookkeeping, resumable GAN runs after a kill, spreadsheet-safe
votes, corpora confined to their folder, errors that name their file."""
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from s2v_lib.config import GANConfig, GeneratorConfig
from s2v_lib.data import Corpus, CorpusError
from s2v_lib.evaluation import rating
from s2v_lib.gan import train
from s2v_lib.machinery.runs import CheckpointError, atomic_write

ROOT = Path(__file__).resolve().parent.parent
CFG = GANConfig(batch_size=2, window=6, generator=GeneratorConfig(width=8), d_width=8, checkpoint_every=2)


def test_atomic_write_leaves_the_old_file_whole_when_writing_fails(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("old\n")

    def fail(f):
        f.write(b"half a fi")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, fail)
    assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["history.csv"]


def _fit(run, steps, data):
    torch.manual_seed(0)
    return train.fit("speech2video", CFG, data, {}, run, steps, resolution=32, progress=False, watch=data,
                     snapshots=4)


def test_gan_bookkeeping_is_written_at_every_checkpoint(tmp_path):
    data = train.GANData.synthetic(n_clips=2, n_frames=8, resolution=32)
    _fit(tmp_path, 4, data)
    ckpt = tmp_path / "checkpoints"
    history = pd.read_csv(ckpt / "gan_speech2video_history.csv")
    assert history.step.tolist() == [1, 2, 3, 4]
    assert train.snapshots(tmp_path, "speech2video")["steps"].tolist() == [1, 2, 3, 4]


_FIT_SCRIPT = textwrap.dedent(f"""
    import sys, time, torch
    sys.path.insert(0, {str(ROOT)!r})
    from s2v_lib.config import GANConfig, GeneratorConfig
    from s2v_lib.gan import train
    cfg = GANConfig(batch_size=2, window=6, generator=GeneratorConfig(width=8), d_width=8, checkpoint_every=2)
    data = train.GANData.synthetic(n_clips=2, n_frames=8, resolution=32)
    slow = type("Slow", (train.GANTrainer,), dict(after_step=lambda self, n: (
        train.GANTrainer.after_step(self, n), time.sleep(1.0 if n > 2 else 0))))
    torch.manual_seed(0)
    train.fit("speech2video", cfg, data, {{}}, sys.argv[1], 8, resolution=32, progress=False, watch=data,
              snapshots=4, trainer_class=slow if sys.argv[2] == "slow" else train.GANTrainer)
""")


def _fit_process(run, pace="fast"):
    """The 8-step run in a fresh process on one thread. Every run of this comparison is started the same way:
    a run inside pytest's process rounds differently (its thread pool and kernels were set up for other
    thread counts), and the test is about the resume, not about that."""
    return subprocess.Popen([sys.executable, "-c", _FIT_SCRIPT, str(run), pace],
                            env=dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1"))


def test_a_killed_gan_run_resumes_with_its_history_and_snapshots(tmp_path):
    """Kill -9 a run after its first checkpoint; the resumed run's history and snapshots equal an unbroken one's."""
    killed = tmp_path / "killed"
    proc = _fit_process(killed, "slow")
    history = killed / "checkpoints" / "gan_speech2video_history.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (history.exists() and (killed / "checkpoints" / "gan_speech2video.pt").exists()):
        time.sleep(0.1)
    time.sleep(1.5)  # a few steps past the checkpoint
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert history.exists(), "no history was written before the kill"
    before = pd.read_csv(history)
    assert 2 <= before.step.max() < 8, f"killed at step {before.step.max()}, not between checkpoint and end"
    assert _fit_process(killed).wait() == 0  # the resume
    assert _fit_process(tmp_path / "whole").wait() == 0
    resumed = pd.read_csv(history)
    whole = pd.read_csv(tmp_path / "whole" / "checkpoints" / "gan_speech2video_history.csv")
    assert resumed.step.tolist() == list(range(1, 9))
    losses = [c for c in whole.columns if c not in ("step", "step_seconds")]
    np.testing.assert_array_equal(resumed[losses].to_numpy(), whole[losses].to_numpy())
    assert len(train.snapshots(killed, "speech2video")["steps"]) == len(train.snapshots(tmp_path / "whole",
                                                                                         "speech2video")["steps"])


def test_unreadable_gan_files_are_refused_by_name(tmp_path):
    data = train.GANData.synthetic(n_clips=2, n_frames=8, resolution=32)
    ckpt = tmp_path / "checkpoints"
    ckpt.mkdir()
    (ckpt / "gan_speech2video.pt").write_bytes(os.urandom(300))
    with pytest.raises(CheckpointError, match="gan_speech2video.pt is not a readable GAN checkpoint"):
        _fit(tmp_path, 2, data)
    (ckpt / "gan_speech2video.pt").unlink()
    (ckpt / "gan_speech2video_snapshots.npz").write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CheckpointError, match="gan_speech2video_snapshots.npz is not a readable snapshots file"):
        _fit(tmp_path, 2, data)


@pytest.mark.parametrize("name", ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "'=quoted", "O'Brien"])
def test_votes_are_spreadsheet_safe_and_read_back_unchanged(tmp_path, name):
    votes = tmp_path / "votes.csv"
    row = {c: "" for c in rating.COLUMNS} | dict(rater=name, system_a="speech2video", system_b="static_image_baseline",
                                                 natural="speech2video", emotion="tie")
    rating.append_vote(votes, row)
    raw = votes.read_text().splitlines()[1]
    assert not any(cell.startswith(rating.FORMULA_STARTS) for cell in raw.split(","))
    assert rating.read_votes(votes).rater.tolist() == [name]


@pytest.mark.parametrize("where", ["/etc/passwd", "../outside.mp4", "clips/../../outside.mp4"])
def test_a_corpus_reads_only_files_inside_its_folder(tiny_corpus, tmp_path, where):
    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus.root, root)
    meta = pd.read_csv(root / "metadata.csv")
    meta.loc[2, "video"] = where
    meta.to_csv(root / "metadata.csv", index=False)
    with pytest.raises(CorpusError, match=f"row 4 \\(clip {meta['clip'][2]!r}\\): video .* outside the corpus folder"):
        Corpus(root)


def test_cli_names_the_path_of_an_io_error(tmp_path, capsys):
    from s2v_lib.machinery.cli import describe_os_error

    try:
        open(tmp_path / "missing" / "x.wav")
    except OSError as exc:
        line = describe_os_error(exc)
    assert line.startswith("No such file or directory: ") and str(tmp_path / "missing" / "x.wav") in line


# ----------------------------------------------------------------------------------- the CLI's output
from test_generate import SR, speechlike, tiny_run  # noqa: E402,F401  (the tiny run fixture)


def _generate(capsys, *args):
    from s2v_lib.machinery import cli

    rc = cli.main(["generate", *map(str, args), "--quiet"])
    return rc, capsys.readouterr()


def test_the_recording_is_never_replaced_by_its_video(tmp_path, tiny_run, capsys):
    import soundfile as sf

    wav = tmp_path / "talk.wav"
    sf.write(wav, speechlike(0.5), SR)
    before = wav.read_bytes()
    for out in (wav, tmp_path / "." / "talk.wav"):
        rc, io = _generate(capsys, wav, "-o", out, "--run", tiny_run, "--overwrite")
        assert rc == 2 and "is the recording itself" in io.err and len(io.err.strip().splitlines()) == 1
    mp4 = tmp_path / "talk.mp4"  # a recording in mp4 (sound only would do): still not replaced
    mp4.write_bytes(before)
    rc, io = _generate(capsys, mp4, "-o", mp4, "--run", tiny_run, "-y")
    assert rc == 2 and wav.read_bytes() == before == mp4.read_bytes()


def test_a_file_that_is_not_our_video_is_replaced_only_when_asked(tmp_path, tiny_run, capsys):
    import soundfile as sf

    wav = tmp_path / "talk.wav"
    sf.write(wav, speechlike(0.5), SR)
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    rc, io = _generate(capsys, wav, "-o", notes, "--run", tiny_run)
    assert rc == 2 and "name it notes.mp4" in io.err and notes.read_text() == "my notes"
    theirs = tmp_path / "holiday.mp4"
    theirs.write_bytes(b"someone's video")
    rc, io = _generate(capsys, wav, "-o", theirs, "--run", tiny_run)
    assert rc == 2 and "not a video made by speech2video" in io.err and "--overwrite" in io.err
    assert theirs.read_bytes() == b"someone's video"
    assert _generate(capsys, wav, "-o", theirs, "--run", tiny_run, "--overwrite")[0] == 0
    assert _generate(capsys, wav, "-o", theirs, "--run", tiny_run)[0] == 0  # ours now: redone without asking
    rc, io = _generate(capsys, wav, "-o", notes / "v.mp4", "--run", tiny_run)
    assert rc == 2 and "is a file, not a folder" in io.err


def test_a_second_writer_of_one_output_is_refused_and_stale_temporaries_go(tmp_path):
    from s2v_lib.machinery.video import VideoWriter

    out = tmp_path / "v.mp4"
    stale = tmp_path / ".v.mp4.999999999-abc123.tmp.mp4"  # a process id that cannot be running
    stale.write_bytes(b"half a video")
    frames = np.zeros((3, 32, 32, 3), np.uint8)
    with VideoWriter(out, 25, 32, 32, exclusive=True) as first:
        assert not stale.exists()
        first.write(frames)
        with pytest.raises(FileExistsError, match="another process is writing"):
            VideoWriter(out, 25, 32, 32, exclusive=True)
    assert out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]


def test_an_output_folder_that_cannot_be_written_is_named(tmp_path):
    from s2v_lib.machinery.cli import describe_os_error
    from s2v_lib.machinery.video import VideoWriter

    out = Path("/proc/s2v-test/v.mp4")  # not writable even for root (chmod does not stop root)
    with pytest.raises(OSError) as caught:
        VideoWriter(out, 25, 32, 32, exclusive=True)
    line = describe_os_error(caught.value)
    assert line.endswith(f": {out}") and "cannot write in /proc/s2v-test" in line and ".lock" not in line


def test_an_interrupt_leaves_no_temporary_file(tmp_path, monkeypatch):
    from s2v_lib.machinery import video

    out = tmp_path / "v.mp4"

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(video.VideoWriter, "_finish", interrupted)  # Ctrl-C during the final encode
    with pytest.raises(KeyboardInterrupt):
        with video.VideoWriter(out, 25, 32, 32) as writer:
            writer.write(np.zeros((2, 32, 32, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_sigterm_ends_the_cli_in_one_line_without_debris(tmp_path, tiny_run):
    import soundfile as sf

    wav = tmp_path / "long.wav"
    sf.write(wav, speechlike(60.0), SR)
    proc = subprocess.Popen([sys.executable, "-m", "s2v_lib", "generate", str(wav), "-o", str(tmp_path / "v.mp4"),
                             "--run", str(tiny_run), "--quiet"], cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, OMP_NUM_THREADS="1"))
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".v.mp4.*")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".v.mp4.*")), "the video was never started"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("interrupted:") and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.wav"]


def test_a_failing_notebook_ends_the_course_in_one_line_and_keeps_the_finished_times(tmp_path):
    import json

    import nbformat

    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name, code in (("a.ipynb", "x = 1"), ("b.ipynb", "raise ValueError('the corpus has no pool B')")):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("profile = 'smoke'", metadata=dict(
            tags=["parameters"])), nbformat.v4.new_code_cell(code)], metadata=dict(
            kernelspec=dict(name="python3", display_name="Python 3", language="python"),
            language_info=dict(name="python")))
        nbformat.write(nb, folder / name)
    # in a fresh process: the CLI configures logging for its own process, and papermill logs through it
    script = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from s2v_lib.machinery import cli, course; "
              f"course.NOTEBOOK_DIR = __import__('pathlib').Path({str(folder)!r}); "
              f"course.NOTEBOOKS = ['a.ipynb', 'b.ipynb']; "
              f"sys.exit(cli.main(['course', '--profile', 'smoke', '--run', {str(tmp_path / 'run')!r}]))")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    rc, err = done.returncode, done.stderr
    assert rc == 2 and "Traceback" not in err
    line = err.strip().splitlines()[-1]
    # cell [3] of the executed copy: papermill puts its injected parameters cell after ours
    assert line.startswith("error: b.ipynb stopped in cell 3: ValueError: the corpus has no pool B")
    assert str(tmp_path / "run" / "notebooks" / "b.ipynb") in line
    timings = json.loads((tmp_path / "run" / "course_timings.json").read_text())
    assert list(timings["seconds"]) == ["a.ipynb"]  # the finished notebook's time survives the failure
    assert "Kernel is running" not in err  # the kernel's own stderr went to its log
    assert (tmp_path / "run" / "notebooks" / "a.kernel.log").exists()


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_pool_of_workers_ends_in_one_line(tmp_path, how):
    """Corpus generation's (and ingestion's) workers leave Ctrl-C to the parent, and stop quietly when the pool
    terminates them with SIGTERM: one line, no traceback per worker."""
    reset = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    proc = subprocess.Popen([sys.executable, "-c", reset, sys.executable, "-m", "s2v_lib", "synthtalk", "--out",
                             str(tmp_path / "corpus"), "--profile", "smoke", "--workers", "2"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "corpus").glob("clips/*")):
        time.sleep(0.1)
    assert list((tmp_path / "corpus").glob("clips/*")), "no clip was ever started"
    if how == "ctrl-c":
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal does: the whole group
    else:
        proc.send_signal(signal.SIGTERM)  # what a scheduler does: the parent only
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert err.strip().splitlines()[-1].startswith("interrupted: synthtalk stopped")
