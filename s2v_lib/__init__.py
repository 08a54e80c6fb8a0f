"""speech2video: a notebook-first replication of Speech2Video (Si et al., Interspeech 2021).

Modules, one per concept: ``config`` (profiles, seeding), ``espeak`` (speech with phoneme
times), ``faces`` (parametric faces), ``synthtalk`` (the generated corpus), ``audio``,
``video``, ``data`` (corpus, feature cache, datasets), ``probes``, ``viz``, ``runs`` (the run
directory and metrics.json), ``course`` (the notebooks in order), ``cli``.
"""
from .config import EMOTIONS, device, get_profile, set_seed

__version__ = "0.1.0"
__all__ = ["EMOTIONS", "device", "get_profile", "set_seed", "__version__"]
