"""Speech-to-video inference speed: frames per second for one utterance, features + students + generator.

For each face size, a fresh process times: log-mel features of a 10 s recording (``--seconds``),
the emotion and identity students on it, and the generator over all its frames (250: one batch,
in the generator's default chunks, 250 frames at 64 px), with untrained weights of the course
settings (speed does not depend on the weights); the fastest of ``--repeats`` runs counts.
Prints frames per second (25 fps is real time) and the process's peak memory.

    python benchmarks/bench_inference.py [--resolution 64 128 256] [--seconds 10] [--repeats 3]

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
    import dataclasses

    import numpy as np
    import torch

    from s2v_lib import get_profile, students
    from s2v_lib.machinery.audio import log_mel
    from s2v_lib.config import device
    from s2v_lib.gan.generator import Generator

    dev = device()
    cfg = get_profile("course")
    sr, n_mels, m = cfg.corpus.sample_rate, cfg.features.n_mels, cfg.mel_per_frame
    audio = (0.1 * np.random.default_rng(0).standard_normal(int(seconds * sr))).astype(np.float32)
    torch.manual_seed(0)
    emo = students.EmotionStudent(n_mels, cfg.students.width, cfg.students.emotion_embedding_dim,
                                  mel_per_frame=m).to(dev).eval()
    ident = students.IdentityStudent(n_mels, cfg.students.width, cfg.teachers.identity_embedding_dim,
                                     mel_per_frame=m).to(dev).eval()
    gen = Generator(resolution, cfg.teachers.identity_embedding_dim, cfg.students.emotion_embedding_dim, n_mels, m,
                    **dataclasses.asdict(cfg.gan.generator)).to(dev).eval()
    best = None
    for _ in range(repeats):
        t0 = time.perf_counter()
        mel = torch.from_numpy(log_mel(audio, sr, cfg.features)[None]).to(dev)
        mel = mel[:, :mel.shape[1] // m * m]
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
                realtime=round(frames / best / cfg.corpus.fps, 1), device=str(dev), threads=torch.get_num_threads(),
                peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--resolution", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the utterance (1 for a quick check)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size; the fastest counts")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.seconds, args.repeats)))
        return
    print(f"speech -> video, one {args.seconds:g} s utterance, {os.cpu_count()} cores")
    for r in args.resolution:
        out = subprocess.run([sys.executable, __file__, "--one", str(r), "--seconds", str(args.seconds),
                              "--repeats", str(args.repeats)], capture_output=True, text=True)
        if out.returncode:
            sys.exit(f"the {r} px run failed (exit code {out.returncode}):\n{out.stderr}")
        res = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"  {r:4d} px  {res['fps']:8.1f} frames/s  ({res['realtime']:5.1f}x real time, {res['device']}, "
              f"{res['threads']} threads)  peak memory {res['peak_rss_mib']:7.1f} MiB")


if __name__ == "__main__":
    main()
