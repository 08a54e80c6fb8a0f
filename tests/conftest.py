"""Shared fixtures: a tiny SynthTalk corpus and its feature cache, made once per test session."""
import os

os.environ.setdefault("OMP_NUM_THREADS", "2")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep: a shared CI runner stays fast

import pytest  # noqa: E402

from s2v_lib.config import CorpusConfig  # noqa: E402


@pytest.fixture(scope="session")
def tiny_cfg():
    return CorpusConfig(n_speakers=5, clips_per_speaker=4, n_sentences=12, seed=7)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory, tiny_cfg):
    from s2v_lib.data import Corpus
    from s2v_lib.machinery.synthtalk import generate_corpus

    root = generate_corpus(tmp_path_factory.mktemp("corpus") / "synthtalk", tiny_cfg, workers=2, progress=False)
    return Corpus(root)


@pytest.fixture(scope="session")
def tiny_cache(tmp_path_factory, tiny_corpus, tiny_cfg):
    from s2v_lib.config import FeatureConfig
    from s2v_lib.data import build_cache

    return build_cache(tiny_corpus, tmp_path_factory.mktemp("cache") / "cache", tiny_cfg.resolution,
                       FeatureConfig(), progress=False)


#: tiny teachers: a few steps, enough to exercise every path (not to be accurate)
TINY_TEACHER_SETTINGS = dict(steps=4, identity_steps=3, batch_size=8, width=8)


@pytest.fixture(scope="session")
def tiny_teachers(tiny_cache, tmp_path_factory):
    """A run directory with two briefly trained teachers: (run, VisualTeachers, (histories))."""
    from s2v_lib.machinery import runs
    from s2v_lib import teachers
    from s2v_lib.config import TeacherConfig

    cfg = TeacherConfig(**TINY_TEACHER_SETTINGS)
    run = runs.run_dir(tmp_path_factory.mktemp("run"))
    emo, h1 = teachers.get_teacher("emotion_teacher", tiny_cache, run, cfg, progress=False)
    ident, h2 = teachers.get_teacher("identity_teacher", tiny_cache, run, cfg, progress=False)
    return run, teachers.VisualTeachers(emo, ident, temperature=2.0), (h1, h2)


@pytest.fixture(scope="session")
def tiny_features(tiny_cache, tiny_teachers):
    """The tiny teachers' features of pools B and C, in the tiny run directory."""
    from s2v_lib import teachers

    run, visual, _ = tiny_teachers
    return teachers.extract_features(visual, tiny_cache, run / "teacher_features", progress=False)
