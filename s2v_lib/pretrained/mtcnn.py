"""MTCNN (Zhang et al. 2016) from ``facenet-pytorch`` 2.6.0, as a face detector for ingestion.

Three small CNNs in a cascade (P-net proposes faces over an image pyramid, R-net and O-net refine
and score them); the weights ship in the wheel (``facenet_pytorch/data/{p,r,o}net.pt``, 2 MB, MIT).
Install it with ``pip install --no-deps facenet-pytorch==2.6.0``: its metadata pins an old torch and
numpy, which this project does not need (it runs on the project's torch and its torchvision). Under
numpy 2 its ``detect`` returns object arrays (None where no face); ``candidates`` turns them into
plain float arrays.

Boxes are converted to the Haar cascade's extent (``MTCNN_TO_HAAR``, measured on the same
photographs as ``dlib_models.HOG_TO_HAAR``) so that ``detect.crop_box`` frames them as ingestion does.
"""
from __future__ import annotations

import numpy as np

from . import import_or_explain
from .dlib_models import hog_to_haar, in_frame, search_region

#: MTCNN box -> the Haar cascade's box of the same face: width x 1.158, centre raised by 0.034 widths
MTCNN_TO_HAAR = (1.158, -0.034)


class MTCNNFaceDetector:
    """Faces by MTCNN, with ``detect.FaceDetector``'s interface: ``candidates(frame, near=None)`` ->
    boxes (K, 4) x0, y0, x1, y1 in pixels and O-net's probability each; ``detector(frame)`` the best.

    Frames are scaled so that their longer side is ``max_side``; faces smaller than
    ``min_face_fraction`` of the shorter side are not looked for (fewer pyramid levels: faster).
    """

    def __init__(self, max_side: int = 360, min_face_fraction: float = 0.12, threshold: float = 0.9):
        import_or_explain("torchvision", "MTCNN (facenet-pytorch)")
        facenet = import_or_explain("facenet_pytorch", "MTCNN")
        self.max_side, self.min_face_fraction, self.threshold = max_side, min_face_fraction, threshold
        self.mtcnn = facenet.MTCNN(keep_all=True, device="cpu", min_face_size=20)

    def __call__(self, frame: np.ndarray):
        boxes, scores = self.candidates(frame)
        return boxes[int(np.argmax(scores))] if len(boxes) else None

    def candidates(self, frame: np.ndarray, near: np.ndarray | None = None):
        frame, x0, y0, scale = search_region(frame, near, self.max_side, upscale=False)
        self.mtcnn.min_face_size = max(12, int(self.min_face_fraction * min(frame.shape[:2])))
        boxes, probs = self.mtcnn.detect(np.ascontiguousarray(frame))
        if boxes is None or len(boxes) == 0 or boxes[0] is None:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes = np.asarray(np.stack([np.asarray(b, np.float32) for b in boxes]), np.float32).reshape(-1, 4)
        probs = np.asarray([float(p) for p in np.ravel(probs)], np.float32)
        keep = probs >= self.threshold
        return in_frame(hog_to_haar(boxes[keep] / scale, MTCNN_TO_HAAR), x0, y0), probs[keep]
