"""Audio and video I/O, log-mels, face cropping."""
import numpy as np
import pytest
import soundfile as sf

from s2v_lib.machinery.audio import (AudioError, Recording, StreamResampler, load_audio, log_mel, resample,
                                     stream_audio, to_mono, voice_statistics)
from s2v_lib.config import FeatureConfig
from s2v_lib.machinery.video import crop_faces, read_video, write_video


def _tone(freq=440.0, sr=16000, seconds=1.0):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_int16_44k_becomes_mono_16k(tmp_path):
    sr = 44100
    left, right = _tone(300, sr), _tone(300, sr) * 0.5
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], 1), sr, subtype="PCM_16")
    audio = load_audio(path, 16000)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 16000) <= 2
    assert np.isclose(np.abs(audio).max(), 0.375, atol=0.02)  # the mean of the two channels


@pytest.mark.parametrize("fmt, subtype", [("FLAC", "PCM_24"), ("OGG", "VORBIS"), ("WAV", "FLOAT")])
def test_common_formats(tmp_path, fmt, subtype):
    path = tmp_path / f"x.{fmt.lower()}"
    sf.write(path, _tone(), 16000, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert abs(len(audio) - 16000) < 400 and np.abs(audio).max() > 0.3


def test_bad_audio_files_say_why(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "missing.wav")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="no audio samples"):
        load_audio(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioError, match="cannot read"):
        load_audio(junk)
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)


def test_nan_samples_are_zeroed(tmp_path):
    x = _tone()
    x[100:200] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, x, 16000, subtype="FLOAT")
    audio = load_audio(path)
    assert np.isfinite(audio).all() and np.all(audio[100:200] == 0)


def test_audio_track_of_a_video_is_read(tmp_path):
    frames = np.zeros((25, 32, 32, 3), np.uint8)
    path = write_video(tmp_path / "v.mp4", frames, 25, _tone(500), 16000)
    audio = load_audio(path)
    assert abs(len(audio) - 16000) < 2048 and np.abs(audio).max() > 0.2


@pytest.mark.parametrize("orig_sr", [8000, 11025, 22050, 44100, 48000, 96000])
def test_resampling_a_stream_in_pieces_equals_resampling_it_whole(orig_sr):
    rng = np.random.default_rng(orig_sr)
    x = (0.3 * rng.standard_normal(int(1.37 * orig_sr))).astype(np.float32)
    whole = resample(x, orig_sr, 16000)
    for piece in (1, 997, orig_sr // 3, len(x)):  # pieces far shorter, and longer, than the kernel
        rs = StreamResampler(orig_sr, 16000)
        out = np.concatenate([rs.push(x[i:i + piece]) for i in range(0, len(x), piece)] + [rs.flush()])
        assert out.shape == whole.shape
        np.testing.assert_allclose(out, whole, rtol=0, atol=2e-6)


def test_a_file_streams_in_blocks_with_the_whole_file_numbers(tmp_path):
    sr = 44100
    x = np.stack([_tone(220, sr, 3.3), _tone(330, sr, 3.3)], 1)
    x[1000:1010, 0] = 1.0  # a few samples at full scale
    path = tmp_path / "talk.wav"
    sf.write(path, x, sr, subtype="FLOAT")
    report, whole_report = {}, {}
    blocks = list(stream_audio(path, 16000, quiet=True, report=report, block_s=0.25))
    assert len(blocks) >= 12 and max(len(b) for b in blocks) < 16000  # a quarter of a second at a time
    whole = to_mono(x, sr, 16000, quiet=True, report=whole_report)
    np.testing.assert_allclose(np.concatenate(blocks), resample(x.mean(1), sr, 16000), rtol=0, atol=2e-6)
    np.testing.assert_allclose(np.concatenate(blocks), whole, rtol=0, atol=2e-6)
    assert report == whole_report and report["channels"] == 2 and report["sample_rate"] == sr
    assert report["clipped"] == 10 / x.size and abs(report["seconds"] - 3.3) < 1e-6


def test_a_recording_is_kept_in_a_file_not_in_memory(tmp_path):
    path = tmp_path / "talk.flac"
    sf.write(path, _tone(300, 48000, 2.0), 48000)
    with Recording.of(stream_audio(path, 16000, quiet=True, block_s=0.1), 16000) as rec:
        assert rec._array is None and len(rec) == 32000 and abs(rec.seconds - 2.0) < 1e-9
        np.testing.assert_allclose(rec.read(), load_audio(path, quiet=True), rtol=0, atol=2e-6)
        np.testing.assert_array_equal(np.concatenate(list(rec.blocks(999))), rec.read())
        assert np.isclose(rec.rms, 0.5 / np.sqrt(2), rtol=1e-3) and len(rec.read(31990, 40000)) == 10
        assert rec.read(5, 5).shape == (0,) and rec.read().flags.writeable


def test_log_mel_shape_alignment_and_peak():
    f = FeatureConfig()
    mel = log_mel(_tone(1000.0), 16000, f, n_frames=4 * 25)
    assert mel.shape == (100, 80) and mel.dtype == np.float32
    import librosa
    centres = librosa.mel_frequencies(n_mels=f.n_mels + 2, fmin=f.fmin, fmax=f.fmax, htk=False)[1:-1]
    assert abs(centres[mel[50].argmax()] - 1000) < 80
    assert log_mel(_tone(), 16000, f, n_frames=120).shape == (120, 80)  # padded at the end


def test_video_round_trip_keeps_frames(tmp_path):
    rng = np.random.default_rng(0)
    frames = np.repeat(np.repeat((rng.random((12, 8, 8, 3)) * 255).astype(np.uint8), 8, 1), 8, 2)
    path = write_video(tmp_path / "v.mp4", frames, 25)
    back, fps = read_video(path)
    assert back.shape == frames.shape and fps == 25
    mse = np.mean((back.astype(float) - frames) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 28
    with pytest.raises(ValueError, match="even"):
        write_video(tmp_path / "odd.mp4", np.zeros((2, 33, 33, 3), np.uint8), 25)


def test_crop_recovers_a_known_box_and_pads_outside():
    frames = np.zeros((3, 100, 120, 3), np.uint8)
    frames[:, 20:60, 30:70] = 255  # the "face"
    crops = crop_faces(frames, np.array([30, 20, 70, 60]), 16)
    assert crops.shape == (3, 16, 16, 3) and crops.min() == 255
    edge = crop_faces(frames, np.array([-10, -10, 30, 30]), 8)  # partly outside: edge-padded
    assert edge.shape == (3, 8, 8, 3)
    with pytest.raises(ValueError, match="3 frames but 2 boxes"):
        crop_faces(frames, np.zeros((2, 4)), 8)


def test_voice_statistics_see_pitch():
    low = voice_statistics(_tone(110.0) + 0.01 * _tone(220.0))
    high = voice_statistics(_tone(220.0) + 0.01 * _tone(440.0))
    assert high["f0_median"] - low["f0_median"] == pytest.approx(12.0, abs=0.5)  # an octave
