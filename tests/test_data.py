"""Corpus reading, the feature cache and the datasets."""
import shutil

import numpy as np
import pandas as pd
import pytest

from s2v_lib.audio import load_audio, log_mel
from s2v_lib.config import FeatureConfig
from s2v_lib.data import (Corpus, CorpusError, FeatureCache, WindowDataset, build_cache, split_index)
from s2v_lib.video import read_video


def test_cache_shapes_and_alignment(tiny_corpus, tiny_cache):
    meta = tiny_corpus.meta
    assert tiny_cache.frames.shape == (meta.frames.sum(), 64, 64, 3)
    assert tiny_cache.mel.shape == (4 * meta.frames.sum(), 80)
    clip = meta["clip"].iloc[2]
    frames, _ = read_video(tiny_corpus.path(clip, "video"))
    assert np.array_equal(tiny_cache.clip_frames(clip), frames)  # SynthTalk's box is the whole frame
    audio = load_audio(tiny_corpus.path(clip, "audio"))
    mel = log_mel(audio, 16000, FeatureConfig(), n_frames=4 * len(frames))
    assert np.allclose(tiny_cache.clip_mel(clip), mel, atol=1e-5)


def test_cache_is_reused_and_rebuilt_when_inputs_change(tiny_corpus, tmp_path):
    root = tmp_path / "corpus"
    shutil.copytree(tiny_corpus.root, root)
    corpus = Corpus(root)
    cache = build_cache(corpus, tmp_path / "cache", 64, progress=False)
    stamp = (tmp_path / "cache" / "frames.u8").stat().st_mtime_ns
    again = build_cache(corpus, tmp_path / "cache", 64, progress=False)
    assert (tmp_path / "cache" / "frames.u8").stat().st_mtime_ns == stamp and again.frames.shape == cache.frames.shape
    small = build_cache(corpus, tmp_path / "cache", 32, progress=False)  # a setting changed
    assert small.frames.shape[1:] == (32, 32, 3)
    meta = corpus.meta.iloc[:3]
    meta.to_csv(root / "metadata.csv", index=False)  # the inputs changed
    fewer = build_cache(Corpus(root), tmp_path / "cache", 32, progress=False)
    assert len(fewer.index) == 3 and fewer.frames.shape[0] == meta.frames.sum()


def test_window_dataset_items(tiny_cache):
    ds = WindowDataset(tiny_cache, window=5)
    item = ds[len(ds) // 2]
    assert item["frames"].shape == (5, 3, 64, 64) and item["mel"].shape == (20, 80)
    assert 0 <= float(item["frames"].min()) and float(item["frames"].max()) <= 1
    r = ds.index.iloc[item["clip"]]
    raw = tiny_cache.clip_mel(r["clip"])[4 * item["start"]:4 * item["start"] + 20]
    assert np.allclose(item["mel"].numpy() * tiny_cache.mel_std + tiny_cache.mel_mean, raw, atol=1e-4)
    assert ds.speakers[item["speaker"]] == r.speaker
    with pytest.raises(ValueError, match="shorter than the window"):
        WindowDataset(tiny_cache, window=10_000)


def test_split_index(tiny_cache):
    b_train = split_index(tiny_cache.index, "B", "train")
    assert set(b_train.pool) <= {"B"} and set(b_train.split) <= {"train"}
    assert len(split_index(tiny_cache.index)) == len(tiny_cache.index)


def test_corpus_errors_are_readable(tmp_path, tiny_corpus):
    with pytest.raises(CorpusError, match="metadata.csv is missing"):
        Corpus(tmp_path)
    meta = tiny_corpus.meta.copy()
    bad = tmp_path / "bad"
    bad.mkdir()
    meta.assign(emotion="boredom").to_csv(bad / "metadata.csv", index=False)
    with pytest.raises(CorpusError, match="unknown emotion"):
        Corpus(bad)
    two = meta.copy()
    two.loc[two.index[0], "pool"] = "C" if two.pool.iloc[0] != "C" else "A"
    two.to_csv(bad / "metadata.csv", index=False)
    with pytest.raises(CorpusError, match="more than one pool"):
        Corpus(bad)
    meta.drop(columns=["split"]).to_csv(bad / "metadata.csv", index=False)
    with pytest.raises(CorpusError, match="split"):
        Corpus(bad)


def test_ground_truth(tiny_corpus):
    clip = tiny_corpus.meta["clip"].iloc[0]
    gt = tiny_corpus.ground_truth(clip)
    n = int(tiny_corpus.row(clip).frames)
    assert gt["landmarks"].shape == (n, 68, 2) and gt["blink"].shape == (n,) and gt["head_pose"].shape == (n, 3)
    with pytest.raises(KeyError, match="no clip named"):
        tiny_corpus.row("nope")


def test_feature_cache_reopens(tiny_cache):
    again = FeatureCache(tiny_cache.root)
    assert again.frames.shape == tiny_cache.frames.shape
    assert isinstance(again.index, pd.DataFrame)
