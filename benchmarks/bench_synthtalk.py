#!/usr/bin/env python
"""Benchmark: SynthTalk generation and preprocessing throughput.

Prints seconds of audio-visual data produced per wall-clock second (generation: speech,
rendering, H.264/AAC encoding, ground truth; preprocessing: decoding, cropping, log-mels).
Target on 2 cores at 64 px: generation >= 20 s of data per second.

    python benchmarks/bench_synthtalk.py [--speakers 8] [--clips 12] [--resolution 64] [--workers N]

``--speakers 2 --clips 2`` is a quick check that it runs (tests/test_benchmarks.py); the rates of so
small a corpus are dominated by start-up costs.
"""
import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from s2v_lib.config import CorpusConfig, FeatureConfig
from s2v_lib.data import Corpus, build_cache
from s2v_lib.machinery.synthtalk import generate_corpus


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--speakers", type=int, default=8)
    ap.add_argument("--clips", type=int, default=12, help="clips per speaker")
    ap.add_argument("--resolution", type=int, nargs="+", default=[64])
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}, workers: {args.workers}")
    for res in args.resolution:
        tmp = Path(tempfile.mkdtemp(prefix="s2v-bench-"))
        try:
            cfg = CorpusConfig(n_speakers=args.speakers, clips_per_speaker=args.clips, resolution=res, seed=123)
            t0 = time.perf_counter()
            generate_corpus(tmp / "corpus", cfg, workers=args.workers, progress=False)
            gen = time.perf_counter() - t0
            corpus = Corpus(tmp / "corpus")
            seconds = float(corpus.meta.duration.sum())
            frames = int(corpus.meta.frames.sum())
            size = sum(f.stat().st_size for f in (tmp / "corpus" / "clips").iterdir())
            t0 = time.perf_counter()
            build_cache(corpus, tmp / "cache", res, FeatureConfig(), progress=False)
            pre = time.perf_counter() - t0
            print(f"[{res}px] {len(corpus.meta)} clips, {seconds:.0f} s of data, {frames} frames, "
                  f"{size / 2**20:.1f} MiB on disk")
            print(f"[{res}px] generation:    {gen:6.1f} s wall -> {seconds / gen:6.1f} s of data per second "
                  f"({frames / gen:.0f} frames/s)")
            print(f"[{res}px] preprocessing: {pre:6.1f} s wall -> {seconds / pre:6.1f} s of data per second "
                  f"({len(corpus.meta) / pre:.1f} clips/s, {frames / pre:.0f} frames/s)")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
