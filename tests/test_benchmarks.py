"""Every benchmark runs, at a tiny size, and prints its figures: none of them can rot unnoticed.

Each script runs as on a fresh clone (``python benchmarks/<name>.py``, from the repository root,
in its own process) with a size argument that makes it take seconds; the test reads the figures
back out of what it printed. The numbers themselves are machine-dependent: only that they are
there and make sense (positive, the right counts) is checked.
"""
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


def run_benchmark(name: str, *args: str, timeout: float = 300) -> str:
    """``python benchmarks/<name>.py args`` from the repository root, one thread: its standard output."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", CI="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{name} failed (exit code {done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def figures(pattern: str, out: str) -> list[tuple[float, ...]]:
    """Every match of ``pattern`` in ``out``, its groups as numbers; at least one match."""
    found = [tuple(float(g) for g in m.groups()) for m in re.finditer(pattern, out)]
    assert found, f"no line matching {pattern!r} in:\n{out}"
    return found


def test_bench_synthtalk_prints_generation_and_preprocessing_rates():
    out = run_benchmark("bench_synthtalk", "--speakers", "2", "--clips", "2", "--workers", "2")
    [(clips, seconds, frames)] = figures(rf"\[64px\] {NUMBER} clips, {NUMBER} s of data, {NUMBER} frames", out)
    assert clips == 4 and seconds > 0 and frames > 0
    for stage in ("generation", "preprocessing"):
        [(wall, rate)] = figures(rf"{stage}:\s+{NUMBER} s wall ->\s+{NUMBER} s of data per second", out)
        assert wall > 0 and rate > 0


def test_bench_ingest_prints_throughput_and_box_errors_for_both_layouts():
    out = run_benchmark("bench_ingest", "--clips", "1", "--workers", "2")
    for kind in ("cremad", "ravdess"):
        [(n, _, ingested)] = figures(rf"\[{kind}\] {NUMBER} clips of {NUMBER} s: {NUMBER} ingested", out)
        assert n == 1 and ingested == 1
        [(wall, per_minute)] = figures(rf"\[{kind}\]\s+{NUMBER} s wall ->\s+{NUMBER} clips per minute", out)
        [(cpu, idle)] = figures(rf"\[{kind}\] CPU {NUMBER} s per clip -> on 2 idle cores about\s+{NUMBER}", out)
        assert wall > 0 and per_minute > 0 and cpu > 0 and idle > 0
        [(edges, _, centre, _)] = figures(rf"\[{kind}\] face box .*: edges {NUMBER} mean \(worst clip {NUMBER}\), "
                                          rf"centre {NUMBER} mean \(worst clip {NUMBER}\)", out)
        assert edges < 16 and centre < 16  # a quarter of the 64 px crop: the face was found where it was put


def test_bench_training_prints_every_network_including_the_gan_step():
    out = run_benchmark("bench_training", "--steps", "1", "--warmup", "1")
    rows = ["emotion teacher (frames/s)", "identity teacher (frames/s)", "students, both (60-frame utterance crops/s)",
            "sync expert (mouth windows/s", "GAN, GANTrainer.step (8-frame training windows/s)",
            "seconds per GAN step", "seconds for the profile's teacher + student steps",
            "seconds for the profile's 3000 GAN steps (6 systems)"]
    for row in rows:
        [(value,)] = figures(re.escape(row) + rf"[^\n]*?\s{NUMBER}\n", out)[:1]
        assert value > 0, row


def test_bench_training_times_todays_gan_step_beside_the_default_one_and_each_lever():
    out = run_benchmark("bench_training", "--gan-only", "--steps", "2", "--warmup", "1", "--resolution", "32")
    ladder = re.findall(rf"GAN step, ([^\n]+?)\s+{NUMBER} s =\s+{NUMBER} steps/s,\s+{NUMBER}x the rung above,\s+"
                        rf"{NUMBER}x today's", out)
    assert [label for label, *_ in ladder] == [
        "today's (StepOptions.reference())", "+ generate once", "+ discriminators frozen in G's update",
        "+ sub-pixel upsampling conv", "+ mixed precision = the default step"], out
    seconds, rates, x_above, x_today = (np.array(column, float) for column in list(zip(*ladder))[1:])
    assert (seconds > 0).all() and rates == pytest.approx(1 / seconds, rel=0.01)
    assert x_today == pytest.approx(seconds[0] / seconds, rel=0.02)
    assert x_above == pytest.approx(np.r_[seconds[0], seconds[:-1]] / seconds, rel=0.02)
    [(default,)] = figures(rf"seconds per GAN step\s+{NUMBER}\n", out)
    [(today,)] = figures(rf"seconds per GAN step, today's step\s+{NUMBER}\n", out)
    [(speedup,)] = figures(rf"GAN speed-up, default step against today's \(x\)\s+{NUMBER}\n", out)
    assert today == pytest.approx(seconds[0], rel=0.01) and default == pytest.approx(seconds[-1], rel=0.01)
    assert speedup == pytest.approx(today / default, rel=0.02)
    assert re.search(r"GAN default step's precision\s+(bfloat16 autocast|float32 \(this CPU has no native "
                     r"bfloat16\))", out), out


def test_bench_inference_prints_frames_per_second():
    out = run_benchmark("bench_inference", "--resolution", "64", "--seconds", "1", "--repeats", "1")
    [(res, fps, realtime, peak)] = figures(rf"{NUMBER} px\s+{NUMBER} frames/s\s+\(\s*{NUMBER}x real time.*"
                                           rf"peak memory\s+{NUMBER} MiB", out)
    assert res == 64 and fps > 0 and realtime == pytest.approx(fps / 25, abs=0.1) and peak > 0


def test_bench_generate_turns_a_recording_into_a_video_with_untrained_networks():
    out = run_benchmark("bench_generate", "--minutes", "0.05", "0.3")
    rows = figures(rf"{NUMBER} min .*: {NUMBER} frames in {NUMBER} s = {NUMBER}x real time; students in "
                   rf"{NUMBER} windows; peak memory {NUMBER} MiB", out)
    assert [(minutes, frames, windows) for minutes, frames, _, _, windows, _ in rows] == [
        (0.05, math.ceil(0.05 * 60 * 25), 1), (0.3, math.ceil(0.3 * 60 * 25), 2)]
    assert all(seconds > 0 and realtime > 0 and peak > 0 for _, _, seconds, realtime, _, peak in rows)
    [(long, short, long_peak, short_peak, growth)] = figures(
        rf"peak memory, {NUMBER} min against {NUMBER} min: {NUMBER} / {NUMBER} MiB = ([+-][0-9.]+) %", out)
    assert (long, short) == (0.3, 0.05)
    assert long_peak == pytest.approx(rows[1][5], abs=1) and short_peak == pytest.approx(rows[0][5], abs=1)
    # the growth is computed from the peaks before they are printed rounded to 1 MiB: allow that rounding
    rounding = 100 * 0.5 * (1 / short_peak + long_peak / short_peak ** 2) + 0.05
    assert growth == pytest.approx(100 * (long_peak / short_peak - 1), abs=rounding)
    assert "[untrained course-size]" in out


def test_bench_trackers_compares_the_detectors_on_real_video_and_lookalikes():
    out = run_benchmark("bench_trackers", "--frames", "8", "--lookalike-clips", "1")
    ran = [name for name in ("haar", "dlib", "mtcnn") if f"[{name}] skipped" not in out]
    assert "haar" in ran  # ingestion's fallback needs no optional package
    for name in ran:
        videos = [r"lookalike:\S+"] + (["carphone", "carphone-2x"] if "[carphone] skipped" not in out else [])
        for video in videos:
            [(frames, found, centre, side, ms, missing)] = figures(
                rf"\[{name}\] {video} {NUMBER} frames \d+x\d+: found\s+{NUMBER} %, jitter centre {NUMBER} % "
                rf"side {NUMBER} % of the face width, {NUMBER} ms per frame; tracked: {NUMBER} missing", out)
            assert frames == 8 and found == 100 and missing == 0 and ms > 0  # one face in view throughout
            assert centre < 20 and side < 40  # boxes that follow the face, not ones that jump about
        [(clips, _, error, _)] = figures(rf"\[{name}\] look-alikes, {NUMBER} clips: found\s+{NUMBER} %, "
                                         rf"crop box error {NUMBER} px of 64, {NUMBER} ms per frame", out)
        assert clips == 1 and error < 12  # the crop lands on the face it should (a fifth of the crop at most)
