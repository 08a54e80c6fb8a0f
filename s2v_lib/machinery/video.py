"""Video: mp4 writing and reading with PyAV (its own FFmpeg, H.264 + AAC), and face cropping."""
from __future__ import annotations

import glob
import logging
import os
import secrets
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def write_video(path, frames: np.ndarray, fps: int, audio: np.ndarray | None = None,
                sample_rate: int | None = None, crf: int = 18) -> Path:
    """Write (T, H, W, 3) uint8 frames as H.264 (yuv420p), with an AAC audio track if given."""
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
    h, w = frames.shape[1:3]
    with VideoWriter(path, fps, w, h, audio, sample_rate, crf) as writer:
        writer.write(frames)
    return writer.path


#: the comment every video of this project carries, so that a later run may replace it without asking
MARK = "made by speech2video"


def is_project_video(path) -> bool:
    """Whether ``path`` is an mp4 this project wrote (its comment says so)."""
    import av

    try:
        with av.open(str(path)) as container:
            return container.metadata.get("comment", "") == MARK
    except Exception:  # noqa: BLE001  (not a video at all)
        return False


def _exclusive(path: Path):
    """Hold ``.<name>.lock`` beside ``path`` for as long as it is written; a second writer is refused."""
    import fcntl

    try:  # the user gave the video's path: an error names it, not the lock beside it
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(f".{path.name}.lock"), "w")
    except OSError as exc:
        raise type(exc)(exc.errno, f"{exc.strerror} (cannot write in {path.parent})", str(path)) from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise FileExistsError(f"another process is writing {path} right now; wait for it or choose another "
                              f"output") from None
    return lock


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files a killed writer of ``path`` left (its process is gone); say so."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp.mp4"):
        pid = tmp.name[len(path.name) + 2:].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
            log.info("removed %s, left by an interrupted run", tmp)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VideoWriter:
    """An mp4 written a few frames at a time, for videos too long to hold in memory::

        with VideoWriter("out.mp4", 25, 64, 64, audio, 16000) as out:
            for chunk in chunks:          # (t, H, W, 3) uint8
                out.write(chunk)

    H.264 (yuv420p, one x264 thread: the same frames give the same bytes) and, if ``audio`` is
    given (mono samples, or an ``audio.Recording``, read a block at a time), an AAC mono track of it,
    encoded when the writer closes. The file is written under a
    temporary name of this process's own and renamed at the end: an error or an interrupt leaves no
    half-written video. With ``exclusive``, a second process writing the same path is refused while
    this one writes, and temporary files of a killed writer of the path are removed.
    """

    def __init__(self, path, fps: int, width: int, height: int, audio: np.ndarray | None = None,
                 sample_rate: int | None = None, crf: int = 18, exclusive: bool = False):
        import av

        if height % 2 or width % 2:
            raise ValueError(f"H.264 in yuv420p needs even frame sizes, got {width}x{height}")
        self.path = Path(path)
        self.size = (height, width)
        self.frames_written = 0
        self._audio, self._sample_rate = audio, sample_rate
        # a user's output (exclusive): one writer at a time, and what a killed run left is removed; the
        # corpus writes thousands of clips of its own into one folder and needs neither
        self._lock = _exclusive(self.path) if exclusive else None
        if exclusive:
            remove_stale_temporaries(self.path)
        # a name of this process's own: two writers of one path never write into one file
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}-{secrets.token_hex(3)}.tmp.mp4")
        try:
            self._out = av.open(str(self._tmp), "w", format="mp4")
        except BaseException:
            self._release()
            raise
        self._out.metadata["comment"] = MARK
        vs = self._out.add_stream("libx264", rate=int(fps))
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        # one x264 thread and no lookahead threads: otherwise the same frames can encode to
        # different bytes from one call to the next (seen here); the corpus must be reproducible,
        # and it is generated in parallel across clips anyway
        vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1",
                      "x264-params": "rc-lookahead=0:sync-lookahead=0:sliced-threads=0"}
        self._video = vs
        self._aus = None
        if audio is not None:
            self._aus = self._out.add_stream("aac", rate=int(sample_rate))
            self._aus.layout = "mono"

    def write(self, frames: np.ndarray) -> None:
        """Append (t, H, W, 3) uint8 frames (or one (H, W, 3) frame)."""
        import av

        frames = np.asarray(frames)
        if frames.ndim == 3:
            frames = frames[None]
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be uint8 of shape (T, H, W, 3), got {frames.dtype} {frames.shape}")
        if frames.shape[1:3] != self.size:
            raise ValueError(f"frames of {frames.shape[2]}x{frames.shape[1]} px in a "
                             f"{self.size[1]}x{self.size[0]} video")
        for frame in frames:
            vf = av.VideoFrame.from_ndarray(rgb_to_yuv420p(frame), format="yuv420p")
            vf.pts = self.frames_written
            for packet in self._video.encode(vf):
                self._out.mux(packet)
            self.frames_written += 1

    def close(self) -> Path:
        """Flush the video, encode the audio track, and give the file its name (an interrupt here too
        leaves nothing behind)."""
        try:
            self._finish()
            self._tmp.replace(self.path)
        except BaseException:
            self._tmp.unlink(missing_ok=True)
            raise
        finally:
            self._release()
        return self.path

    def _finish(self) -> None:
        import av

        for packet in self._video.encode():
            self._out.mux(packet)
        if self._aus is not None:
            sr = int(self._sample_rate)
            step, start = 1024 * 16, 0
            if hasattr(self._audio, "blocks"):  # an audio.Recording: read a block at a time
                blocks = self._audio.blocks(step)
            else:
                samples = np.asarray(self._audio, np.float32).reshape(-1)
                blocks = (samples[i:i + step] for i in range(0, len(samples), step))
            for block in blocks:
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(block, np.float32).reshape(1, -1),
                                                format="flt", layout="mono")
                af.sample_rate = sr
                af.pts = start
                start += len(block)
                for packet in self._aus.encode(af):
                    self._out.mux(packet)
            for packet in self._aus.encode():
                self._out.mux(packet)
        self._out.close()

    def abort(self) -> None:
        """Stop and delete the temporary file: no video is written."""
        try:
            self._out.close()
        except Exception:  # noqa: BLE001  (a half-written container may not close cleanly)
            pass
        finally:
            self._tmp.unlink(missing_ok=True)
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            Path(self._lock.name).unlink(missing_ok=True)
            self._lock.close()
            self._lock = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


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
