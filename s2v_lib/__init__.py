"""speech2video: a notebook-first replication of Speech2Video (Si et al., Interspeech 2021).

One module or package per stage of the course: ``data`` (01), ``teachers`` (02), ``students``
(03), ``gan`` (04), ``evaluation`` (05), ``inference`` (06); every setting in ``config``; the
one training loop in ``trainer``; what the lessons use but do not teach (the SynthTalk corpus,
audio and video I/O, ingestion of real corpora, the run directory, plots, the CLI) in
``machinery``. The method, equation by equation: docs/method.md.
"""
from .config import EMOTIONS, device, get_profile, set_seed

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "device", "get_profile", "set_seed", "__version__"]
