#!/usr/bin/env python
"""Benchmark: real-corpus ingestion throughput, on look-alike copies of CREMA-D and RAVDESS.

The copies are made from SynthTalk clips in the real formats and sizes (CREMA-D: 480x360 FLV1
at 30 fps, 2.5 s, mp3 + 16 kHz wav; RAVDESS: 1280x720 H.264 at 29.97 fps, 3.5 s, 48 kHz stereo
AAC), faces pasted at known places. Prints clips ingested per minute, seconds per clip, the
time per 1,000 clips it implies, and how far the recovered face boxes are from the known ones
(in pixels of the 64 px output crop). Making the copies is not timed. The CPU time per clip
is printed too, with the rate it gives on idle cores: wall-clock figures on a machine shared
with other work are slower than that.

    python benchmarks/bench_ingest.py [--clips 24] [--workers N] [--detector auto|haar|dlib|mtcnn]

``--clips 1`` is a quick check that both layouts go through (tests/test_benchmarks.py); one clip
says little about the rates.
"""
import argparse
import json
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from s2v_lib.config import CorpusConfig
from s2v_lib.data import Corpus
from s2v_lib.machinery.detect import DETECTORS, resolve_detector_name
from s2v_lib.machinery.ingest import ingest, write_lookalike
from s2v_lib.machinery.synthtalk import generate_corpus

LAYOUTS = {"cremad": 2.5, "ravdess": 3.5}  # typical clip length of each corpus, seconds
REAL_SIZES = {"cremad": 7442, "ravdess": 1056}  # clips each corpus yields (RAVDESS: AV speech, 6 emotions)


def box_errors(out: Path, known: dict, resolution: int = 64) -> tuple[list[float], list[float]]:
    """Mean absolute edge error and centre error of each ingested clip's crop box, in output pixels."""
    edges, centres = [], []
    for name, truth in known.items():
        result = json.loads((out / "ingest_log" / f"{name}.json").read_text())
        if result["status"] != "ok":
            continue
        box, true = np.array(result["boxes"]), np.array(truth["box"], float)
        err = (box - true) * resolution / (true[2] - true[0])
        edges.append(float(np.abs(err).mean()))
        centres.append(float(np.hypot((err[:, 0] + err[:, 2]) / 2, (err[:, 1] + err[:, 3]) / 2).mean()))
    return edges, centres


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (the ingest workers)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=24, help="clips per layout")
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--detector", choices=DETECTORS, default="auto", help="ingestion's face detector")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}, workers: {args.workers}, detector: {resolve_detector_name(args.detector)}")
    tmp = Path(tempfile.mkdtemp(prefix="s2v-bench-ingest-"))
    try:
        n_speakers = max(8, args.clips // 2)
        cfg = CorpusConfig(n_speakers=n_speakers, clips_per_speaker=4, n_sentences=12, seed=123)
        corpus = Corpus(generate_corpus(tmp / "synthtalk", cfg, workers=args.workers, progress=False))
        # the Haar cascade misses SynthTalk's drawn faces with glasses or a beard; real faces are
        # found (notebook-free check: tests/test_ingest.py, the astronaut photograph)
        plain = corpus.speakers[(corpus.speakers.glasses == 0) & (corpus.speakers.beard == 0)].speaker
        clips = list(corpus.meta[corpus.meta.speaker.isin(plain)]["clip"][:args.clips])
        for kind, seconds in LAYOUTS.items():
            known = write_lookalike(kind, corpus, tmp / kind, clips=clips, seconds=seconds)
            t0, c0 = time.perf_counter(), cpu_seconds()
            summary = ingest(kind, tmp / kind, tmp / f"{kind}-out", workers=args.workers, progress=False,
                             detector=args.detector)
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            n = len(known)
            per_min = 60 * n / wall
            edges, centres = box_errors(tmp / f"{kind}-out", known)
            print(f"[{kind}] {n} clips of {seconds} s: {summary['ingested']} ingested, {summary['repaired']} repaired, "
                  f"{summary['skipped']} skipped {summary['skipped_by_reason'] or ''}")
            print(f"[{kind}] {wall:6.1f} s wall -> {per_min:5.1f} clips per minute, {wall / n:.2f} s per clip "
                  f"({wall * args.workers / n:.2f} core-seconds); 1,000 clips: {1000 / per_min:.0f} min; "
                  f"the real corpus ({REAL_SIZES[kind]} clips): {REAL_SIZES[kind] / per_min / 60:.1f} h")
            idle = 60 * args.workers * n / cpu
            print(f"[{kind}] CPU {cpu / n:.2f} s per clip -> on {args.workers} idle cores about {idle:5.1f} clips per "
                  f"minute; 1,000 clips: {1000 / idle:.0f} min; the real corpus: {REAL_SIZES[kind] / idle / 60:.1f} h")
            if edges:
                print(f"[{kind}] face box vs the known one, in px of the 64 px crop: edges {np.mean(edges):.2f} "
                      f"mean (worst clip {np.max(edges):.2f}), centre {np.mean(centres):.2f} mean "
                      f"(worst clip {np.max(centres):.2f})")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
