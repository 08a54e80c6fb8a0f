#!/usr/bin/env python
"""Benchmark: ``generate_video`` on a long recording, time and memory.

Synthesises a speech-like recording (voiced syllables with a wandering pitch, pauses, a little
noise) of each of ``--minutes`` (default 1 and 10 minutes), writes each as a 44.1 kHz stereo 16-bit
wav, and turns it into a video in a fresh process, which reports the seconds taken, the
real-time factor (audio seconds per second of work) and its peak memory (``ru_maxrss``). Decoding,
resampling, features, students, generator and writer all stream (the converted sound waits in an
anonymous temporary file), so the peak should not grow with the recording: the last row compares
the longest recording's peak with the shortest's (the target: within 10 %).

Without ``--run`` the networks are untrained ones of the course sizes (speed and memory do not
depend on the weights); with ``--run`` they are that run's.

    OMP_NUM_THREADS=1 python benchmarks/bench_generate.py [--minutes 1 10 30] [--run runs/course]
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def speechlike(seconds: float, sr: int, seed: int = 0) -> np.ndarray:
    """Syllables of a harmonic buzz (100-250 Hz, wandering) at 3-6 per second, with pauses and noise: (n, 2) int16."""
    rng = np.random.default_rng(seed)
    n = int(seconds * sr)
    out = np.empty((n, 2), np.int16)
    block = 10 * sr
    phase = 0.0
    for start in range(0, n, block):  # 10 s at a time, so the parent's memory stays small too
        t = (start + np.arange(min(block, n - start))) / sr
        f0 = 170 + 60 * np.sin(2 * np.pi * 0.23 * t) + 20 * np.sin(2 * np.pi * 1.7 * t)
        ph = phase + 2 * np.pi * np.cumsum(f0) / sr
        phase = float(ph[-1])
        buzz = sum(np.sin(k * ph) / k for k in range(1, 10))
        syllables = np.clip(np.sin(2 * np.pi * (4 + np.sin(2 * np.pi * 0.1 * t)) * t), 0, None) ** 2
        pauses = (np.sin(2 * np.pi * 0.15 * t + rng.uniform(0, 6)) > -0.6).astype(float)
        x = 0.2 * buzz * syllables * pauses + 0.01 * rng.standard_normal(len(t))
        out[start:start + len(t)] = np.clip(np.stack([x, 0.9 * x], 1) * 32767, -32768, 32767).astype(np.int16)
    return out


def untrained_model():
    """Speech2VideoModel with untrained networks of the course sizes, the default log-mel settings,
    unit normalisation and no noise floor (speed and memory do not depend on these numbers)."""
    import dataclasses

    import torch

    from s2v_lib import get_profile
    from s2v_lib.config import device
    from s2v_lib.gan.generator import Generator
    from s2v_lib.inference import Speech2VideoModel
    from s2v_lib.students import EmotionStudent, IdentityStudent

    cfg = get_profile("course")
    n_mels, m = cfg.features.n_mels, cfg.mel_per_frame
    torch.manual_seed(0)
    emo = EmotionStudent(n_mels, cfg.students.width, cfg.students.emotion_embedding_dim,
                         mel_per_frame=m).to(device()).eval()
    ident = IdentityStudent(n_mels, cfg.students.width, cfg.teachers.identity_embedding_dim,
                            mel_per_frame=m).to(device()).eval()
    gen = Generator(cfg.corpus.resolution, cfg.teachers.identity_embedding_dim, cfg.students.emotion_embedding_dim,
                    n_mels, m, **dataclasses.asdict(cfg.gan.generator)).to(device()).eval()
    return Speech2VideoModel(emo, ident, gen, features=cfg.features, fps=cfg.corpus.fps,
                             sample_rate=cfg.corpus.sample_rate, mel_mean=0.0, mel_std=1.0, mel_floor=None,
                             name="untrained course-size")


def one(wav: str, run: str | None, system: str) -> dict:
    from s2v_lib.inference import Speech2VideoModel, generate_video

    model = untrained_model() if run is None else Speech2VideoModel.from_run(run, system)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "video.mp4"
        report = generate_video(wav, out, model=model, progress=False)
        size = out.stat().st_size
    return dict(audio_s=report["duration_s"], frames=report["frames"], seconds=report["seconds"],
                realtime_factor=report["realtime_factor"], student_windows=report["student_windows"],
                mib_after_loading=loaded, peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                video_mib=size / 2 ** 20, system=model.name)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, nargs="+", default=[1.0, 10.0, 30.0],
                    help="lengths of the recordings, in minutes (default: 1, 10 and 30; 0.05 for a quick check)")
    ap.add_argument("--run", help="a run directory with trained networks (default: untrained ones)")
    ap.add_argument("--system", default="speech2video")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.run, args.system)))
        return
    print(f"speech -> video on a long recording, {os.cpu_count()} cores, OMP_NUM_THREADS="
          f"{os.environ.get('OMP_NUM_THREADS', 'unset')}")
    peaks = {}
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in sorted(set(args.minutes)):
            import soundfile as sf

            wav = Path(tmp) / f"talk_{minutes:g}min.wav"
            t0 = time.perf_counter()
            sf.write(wav, speechlike(60 * minutes, 44100), 44100, subtype="PCM_16")
            made = time.perf_counter() - t0
            cmd = [sys.executable, __file__, "--one", str(wav), "--system", args.system]
            if args.run:
                cmd += ["--run", args.run]
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"the {minutes:g}-minute run failed (exit code {done.returncode}):\n{done.stderr}")
            res = json.loads(done.stdout.splitlines()[-1])
            print(f"  {minutes:4g} min ({wav.stat().st_size / 2 ** 20:.1f} MB wav, made in {made:.1f} s): "
                  f"{res['frames']} frames in {res['seconds']:.1f} s = {res['realtime_factor']:.1f}x real time; "
                  f"students in {res['student_windows']} windows; peak memory {res['peak_rss_mib']:.0f} MiB "
                  f"({res['mib_after_loading']:.0f} MiB after loading the networks); video {res['video_mib']:.1f} MB "
                  f"[{res['system']}]")
            peaks[minutes] = res["peak_rss_mib"]
            wav.unlink()
    if len(peaks) > 1:
        short, long = min(peaks), max(peaks)
        growth = peaks[long] / peaks[short] - 1
        print(f"  peak memory, {long:g} min against {short:g} min: {peaks[long]:.0f} / {peaks[short]:.0f} MiB "
              f"= {100 * growth:+.1f} % ({'within' if abs(growth) <= 0.10 else 'NOT within'} the 10 % target)")


if __name__ == "__main__":
    main()
