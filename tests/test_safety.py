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


def test_a_killed_gan_run_resumes_with_its_history_and_snapshots(tmp_path):
    """Kill -9 a run after its first checkpoint; the resumed run's history and snapshots equal an unbroken one's."""
    script = textwrap.dedent(f"""
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
                  snapshots=4, trainer_class=slow)
    """)
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", script, str(killed)], env=dict(os.environ, OMP_NUM_THREADS="1"))
    history = killed / "checkpoints" / "gan_speech2video_history.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (history.exists() and (killed / "checkpoints" / "gan_speech2video.pt").exists()):
        time.sleep(0.1)
    time.sleep(1.5)  # a few steps past the checkpoint
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run finished before it could be killed"
    assert history.exists(), "no history was written before the kill"
    data = train.GANData.synthetic(n_clips=2, n_frames=8, resolution=32)
    _, resumed = train.fit("speech2video", CFG, data, {}, killed, 8, resolution=32, progress=False, watch=data,
                           snapshots=4)
    torch.manual_seed(0)
    _, whole = _fit(tmp_path / "whole", 8, data)
    assert resumed.step.tolist() == list(range(1, 9))
    losses = [c for c in whole.columns if c not in ("step", "step_seconds")]
    # the killed run used one thread, this process may use two: sums round a little differently
    # (test_train checks that a resume in one process is bit-identical)
    np.testing.assert_allclose(resumed[losses].to_numpy(), whole[losses].to_numpy(), rtol=2e-3, atol=1e-4)
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
