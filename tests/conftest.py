"""Shared fixtures: a tiny SynthTalk corpus and its feature cache, made once per test session."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402

from s2v_lib.config import CorpusConfig  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cfg():
    return CorpusConfig(n_speakers=5, clips_per_speaker=4, n_sentences=12, seed=7)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_cfg):
    from s2v_lib.data import Corpus
    from s2v_lib.synthtalk import generate_corpus

    root = generate_corpus(tmp_path_factory.mktemp("corpus") / "synthtalk", tiny_cfg, workers=2, progress=False)
    return Corpus(root)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, tiny_corpus, tiny_cfg):
    from s2v_lib.config import FeatureConfig
    from s2v_lib.data import build_cache

    return build_cache(tiny_corpus, tmp_path_factory.mktemp("cache") / "cache", tiny_cfg.resolution,
                       FeatureConfig(), progress=False)
