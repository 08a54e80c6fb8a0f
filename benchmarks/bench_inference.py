"""Speech-to-video inference speed: frames per second for one utterance, features + students + generator.

For each face size, a fresh process times: log-mel features of a 10 s recording, the emotion
and identity students on it, and the generator over all 250 frames (one batch, in chunks of
250), with untrained weights of the course settings (speed does not depend on the weights).
Prints frames per second (25 fps is real time) and the process's peak memory.

    python benchmarks/bench_inference.py [--resolution 64 128 256] [--seconds 10]

Target (the GAN issue): at least 250 frames/s at 64 px on 2 CPU cores (10x real time).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time


def one(resolution: int, seconds: float, repeats: int = 3) -> dict:
    import numpy as np
    import torch

    from s2v_lib import get_profile, students
    from s2v_lib.audio import log_mel
    from s2v_lib.config import device
    from s2v_lib.generator import Generator

    dev = device()
    cfg = get_profile("course")
    sr = 16000
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * sr))).astype(np.float32)
    emo = students.EmotionStudent(80, cfg.students.width, cfg.students.emotion_embedding_dim).to(dev).eval()
    ident = students.IdentityStudent(80, cfg.students.width, 128).to(dev).eval()
    gen = Generator(resolution=resolution).to(dev).eval()
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        mel = torch.from_numpy(log_mel(audio, sr)[None]).to(dev)
        mel = mel[:, :mel.shape[1] // 4 * 4]
        with torch.no_grad():
            e = emo(mel)["embedding"]
            i = ident(mel)
            video = gen.generate(mel, i, e)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        best = dt if best is None else min(best, dt)
    frames = video.shape[1]
    return dict(resolution=resolution, frames=frames, seconds=round(best, 3), fps=round(frames / best, 1),
                realtime=round(frames / best / 25, 1), device=str(dev), threads=torch.get_num_threads(),
                peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.seconds)))
        return
    print(f"speech -> video, one {args.seconds:g} s utterance, {os.cpu_count()} cores")
    for r in args.resolution:
        out = subprocess.run([sys.executable, __file__, "--one", str(r), "--seconds", str(args.seconds)],
                             capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {r:4d} px  {res['fps']:8.1f} frames/s  ({res['realtime']:5.1f}x real time, {res['device']}, "
              f"{res['threads']} threads)  peak memory {res['peak_rss_mib']:7.1f} MiB")


if __name__ == "__main__":
    main()
