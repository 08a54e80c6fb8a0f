"""Video: mp4 writing and reading with PyAV (its own FFmpeg, H.264 + AAC), and face cropping."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(path, frames: np.ndarray, fps: int, audio: np.ndarray | None = None,
                sample_rate: int | None = None, crf: int = 18) -> Path:
    """Write (T, H, W, 3) uint8 frames as H.264 (yuv420p), with an AAC audio track if given."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise ValueError(f"H.264 in yuv420p needs even frame sizes, got {w}x{h}")
    path = Path(path)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)
    with av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=int(fps))
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        # one x264 thread and no lookahead threads: otherwise the same frames can encode to
        # different bytes from one call to the next (seen here); the corpus must be reproducible,
        # and it is generated in parallel across clips anyway
        vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                      "x264-params": "rc-lookahead=0:sync-lookahead=0:sliced-threads=0"}
        aus = None
        if audio is not None:
            aus = out.add_stream("aac", rate=int(sample_rate))
            aus.layout = "mono"
        for i, frame in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
            vf.pts = i
            for packet in vs.encode(vf):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None:
            samples = np.asarray(audio, np.float32).reshape(1, -1)
            step = 1024 * 16
            for start in range(0, samples.shape[1], step):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + step]),
                                                format="flt", layout="mono")
                af.sample_rate = int(sample_rate)
                af.pts = start
                for packet in aus.encode(af):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    tmp.replace(path)
    return path


def rgb_to_yuv420p(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 / 2, W) uint8 planar YUV 4:2:0, BT.601 limited range.

    Done here rather than by FFmpeg's swscale, whose conversion was seen to give different
    bytes for the same frame from one call to the next; the corpus must be reproducible.
    """
    f = frame.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b
    h, w = y.shape
    u = u.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    v = v.reshape(h // 2, 2, w // 2, 2).mean((1, 3))
    planes = np.concatenate([y.ravel(), u.ravel(), v.ravel()])
    return np.clip(np.round(planes), 0, 255).astype(np.uint8).reshape(h * 3 // 2, w)


def read_video(path, fps: float | None = None) -> tuple[np.ndarray, float]:
    """Decode every frame of a video file: ((T, H, W, 3) uint8 RGB, frames per second).

    With ``fps`` the frames are resampled to that rate: output frame k (at k / fps seconds) is
    the source frame nearest in time, by the frames' own timestamps (so a 29.97 fps or a
    variable-rate file works too), and the clip keeps its length: 2.5 s at 30 fps gives 62
    frames at 25 fps, about one source frame in six dropped (while decoding, to save memory).
    """
    import av

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"video file not found: {path}")
    frames, times = [], []
    with av.open(str(path)) as container:
        if not container.streams.video:
            raise ValueError(f"{path} has no video track")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        for f in container.decode(stream):
            times.append(f.time if f.time is not None else len(times) / rate)
            frames.append(f.to_ndarray(format="rgb24"))
            if fps and len(frames) > 1 and not _is_needed(times, len(times) - 2, fps):
                frames[-2] = None
    if not frames:
        raise ValueError(f"{path} has a video track with no frames")
    if not fps:
        return np.stack(frames), rate
    t = np.asarray(times, np.float64) - times[0]
    n_out = max(1, int(round((t[-1] + 1.0 / rate) * fps)))  # the last frame lasts one frame
    src = np.searchsorted((t[1:] + t[:-1]) / 2, np.arange(n_out) / fps, side="right")
    kept = np.array([f is not None for f in frames])
    src = [i if kept[i] else int(np.flatnonzero(kept)[np.argmin(np.abs(np.flatnonzero(kept) - i))]) for i in src]
    return np.stack([frames[i] for i in src]), float(fps)


def _is_needed(times: list, i: int, fps: float) -> bool:
    """Whether source frame ``i`` (not the last) is the nearest to some output time k / fps."""
    t = np.asarray(times[max(i - 1, 0):i + 2], np.float64) - times[0]
    lo = (t[0] + t[1]) / 2 if i > 0 else -np.inf
    hi = (t[-2] + t[-1]) / 2
    k = np.arange(max(np.floor(lo * fps) - 1, 0) if i > 0 else 0, np.ceil(hi * fps) + 2)
    return bool(np.any((k / fps >= lo) & (k / fps < hi)))


def square_boxes(boxes: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """(T, 4) x0, y0, x1, y1 boxes -> squares around the same centres, side = scale * max(w, h)."""
    b = np.asarray(boxes, np.float32)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]) * scale
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Crop each frame to its box (x0, y0, x1, y1 in pixels; one box or one per frame) and
    resize to ``size`` x ``size``. Parts of a box outside the frame are filled with the edge."""
    from PIL import Image

    frames = np.asarray(frames)
    boxes = np.asarray(boxes, np.float32)
    if boxes.ndim == 1:
        boxes = np.repeat(boxes[None], len(frames), 0)
    if len(boxes) != len(frames):
        raise ValueError(f"{len(frames)} frames but {len(boxes)} boxes")
    out = np.empty((len(frames), size, size, 3), np.uint8)
    h, w = frames.shape[1:3]
    for i, (frame, box) in enumerate(zip(frames, boxes)):
        x0, y0, x1, y1 = [int(round(v)) for v in box]
        if (x0, y0, x1, y1) == (0, 0, w, h) and w == h == size:
            out[i] = frame
            continue
        if x1 <= x0 or y1 <= y0:
            raise ValueError(f"empty face box {box.tolist()} in frame {i}")
        pad = max(0, -x0, -y0, x1 - w, y1 - h)
        src = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else frame
        crop = src[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
        out[i] = np.asarray(Image.fromarray(crop).resize((size, size), Image.Resampling.BILINEAR,
                                                         reducing_gap=2.0))
    return out
