"""Corpus reading, the feature cache and the datasets."""
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from s2v_lib.machinery.audio import load_audio, log_mel
from s2v_lib.config import FeatureConfig
from s2v_lib.data import (Corpus, CorpusError, FeatureCache, build_cache, split_index)
from s2v_lib.machinery.video import read_video


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
    first = fewer.frames[0].copy()
    clip = root / meta.video.iloc[0]
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10 ** 9))  # a file edited in place
    edited = build_cache(Corpus(root), tmp_path / "cache", 32, progress=False)
    assert (tmp_path / "cache" / "frames.u8").stat().st_mtime_ns != stamp and np.array_equal(edited.frames[0], first)
    assert edited.info["fingerprint"] == fewer.info["fingerprint"]  # the same data: networks need not retrain


def test_the_fingerprint_names_the_data_not_the_copy(tiny_corpus, tiny_cache, tmp_path):
    shutil.copytree(tiny_corpus.root, tmp_path / "elsewhere")  # new folder, new file times
    moved = build_cache(Corpus(tmp_path / "elsewhere"), tmp_path / "cache", tiny_cache.resolution, progress=False)
    assert moved.info["fingerprint"] == tiny_cache.info["fingerprint"]
    assert moved.info["stamp"] != tiny_cache.info["stamp"] and moved.corpus().root == (tmp_path / "elsewhere").resolve()


def test_split_index(tiny_cache):
    idx = tiny_cache.index
    b_train = split_index(idx, "B", "train")
    expected = idx[(idx.pool == "B") & (idx.split == "train")]
    assert len(b_train) > 0 and set(b_train.pool) == {"B"} and set(b_train.split) == {"train"}
    assert list(b_train["clip"]) == list(expected["clip"])  # every such clip, in the cache's order
    assert list(b_train.index) == list(range(len(b_train)))  # renumbered from 0
    a = split_index(idx, "A")
    assert set(a.pool) == {"A"} and set(a.split) == {"train", "val"} and len(a) == (idx.pool == "A").sum()
    assert split_index(idx, "C", "train").empty  # pool C holds test clips only
    pd.testing.assert_frame_equal(split_index(idx), idx.reset_index(drop=True))


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
    pd.testing.assert_frame_equal(again.index, tiny_cache.index)
    clip = tiny_cache.index["clip"].iloc[-1]
    assert np.array_equal(again.clip_frames(clip), tiny_cache.clip_frames(clip))
    assert np.array_equal(again.clip_mel(clip), tiny_cache.clip_mel(clip))
    assert np.array_equal(again.mel_mean, tiny_cache.mel_mean) and again.mel_per_frame == 4
    # the index places each clip right after the previous one, frames and mel frames alike
    idx = again.index
    assert (idx.frame_start.to_numpy()[1:] == (idx.frame_start + idx.n_frames).to_numpy()[:-1]).all()
    assert (idx.mel_start == 4 * idx.frame_start).all()
    assert idx.frame_start.iloc[-1] + idx.n_frames.iloc[-1] == len(again.frames)
