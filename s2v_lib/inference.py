"""Inference: any speech recording -> a talking-face video with its sound, in one call::

    report = generate_video("hello.wav", "hello.mp4", run="runs/course")

The test-time path of METHOD.md: the recording as 16 kHz mono; log-mels normalised as in
training; the emotion and identity students on the sound (utterance embeddings); the
generator, chunk by chunk (its motion GRU carries over); H.264 video and the original sound
as AAC, written as the frames come. Memory does not grow with the recording (a two-hour
lecture needs what a sentence needs): the sound is decoded and resampled a block at a time
into an anonymous temporary file (``audio.Recording``), log-mels are computed for the rows
asked (``MelFrames``), the students hear windows of at most ``STUDENT_WINDOW_S`` seconds one
at a time and their predictions are averaged, and the generator and the writer stream.
A run whose notebook 03 chose the GE2E voice front-end (``StudentConfig.voice_front_end = "ge2e"``)
takes the identity from ``pretrained.voice_identity.GE2EIdentityStudent`` on the same windows' samples
(a running mean of their GE2E embeddings, one window in memory at a time); the emotion student stays
on the log-mels.

``Speech2VideoModel`` keeps a run's networks loaded for many recordings (``generate_folder``);
``python -m s2v_lib generate`` is the command line of both.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch

from .machinery.audio import AudioError, Recording, log_mel, stream_audio, to_mono
from .config import EMOTIONS, VOICE_FRONT_ENDS, FeatureConfig, device
from .config import progress as progress_bar
from .gan.train import to_uint8
from .machinery.video import VideoWriter

#: What a folder of recordings is searched for (by file name extension, any case).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aac")
#: A recording whose level (RMS) is below this is silent.
SILENCE_DBFS = -60.0
#: A recording with more than this fraction of its samples at full scale (|x| >= 0.999) is clipped.
CLIPPED_FRACTION = 0.01
#: The students hear at most this many seconds at once; longer recordings are cut into windows.
STUDENT_WINDOW_S = 10.0
#: Video frames the generator makes at once at 64 px (proportionally fewer at larger sizes): 2 s.
#: On a CPU this was 1.7x faster than the generator's default of 10 s and needed 500 MB less memory.
CHUNK_FRAMES_64PX = 50


class Speech2VideoModel:
    """Two audio students, one generator and the log-mel settings and normalisation they were trained with.

    ``generate(speech, out_path, ...)`` turns one recording into a video (see ``generate_video``);
    ``from_run(run, system)`` loads the networks a run's notebooks 03 and 04 trained, with its feature
    cache's settings. The constructor takes the networks and those settings explicitly, so that any
    networks can be used (untrained ones of the course sizes, in ``benchmarks/bench_generate.py``):
    ``features`` (a ``FeatureConfig`` or its fields as a dict), ``fps`` and ``sample_rate`` (the video
    and audio rates), ``mel_mean`` and ``mel_std`` (per band, or scalars: ``normalize`` z-scores each
    band with them), ``mel_floor`` (the normalised log-mel each band is floored at, ``corpus_mel_floor``;
    None: no floor). ``run`` (a run directory) and ``cache`` (its ``FeatureCache``) are needed only
    for ``emotion_prototypes``. ``voice_identity``: a ``GE2EIdentityStudent`` that gives the identity from the
    samples instead (the identity student then only answers for a recording with no sound at all).
    ``chunk_frames``: how many video frames the generator makes at once (``CHUNK_FRAMES_64PX``).
    """

    def __init__(self, emotion_student, identity_student, generator, *, features, fps: int, sample_rate: int,
                 mel_mean, mel_std, mel_floor=None, run=None, cache=None, name: str = "speech2video",
                 voice_identity=None):
        self.emotion_student, self.identity_student, self.generator = emotion_student, identity_student, generator
        self.voice_identity = voice_identity
        self.voice_front_end = "scratch" if voice_identity is None else "ge2e"
        self.cache, self.name = cache, name
        self.run = None if run is None else Path(run)
        self.features = features if isinstance(features, FeatureConfig) else FeatureConfig(**features)
        self.fps, self.sample_rate = int(fps), int(sample_rate)
        self.mel_per_frame = self.features.mel_per_frame(self.sample_rate, self.fps)
        n_mels = self.features.n_mels
        self.mel_mean = np.broadcast_to(np.asarray(mel_mean, np.float32), (n_mels,)).copy()
        self.mel_std = np.broadcast_to(np.asarray(mel_std, np.float32), (n_mels,)).copy()
        self.mel_floor = (np.full(n_mels, -np.inf, np.float32) if mel_floor is None
                          else np.broadcast_to(np.asarray(mel_floor, np.float32), (n_mels,)).copy())
        self.resolution = generator.resolution
        self.chunk_frames = max(4, CHUNK_FRAMES_64PX * 64 ** 2 // self.resolution ** 2)
        self._prototypes: dict | None = None
        sizes = dict(features=n_mels, emotion_student=emotion_student.config["n_mels"],
                     identity_student=identity_student.config["n_mels"], generator=generator.n_mels)
        if len(set(sizes.values())) > 1:
            raise ValueError(f"the feature cache and the networks disagree on the number of mel bands ({sizes}): "
                             f"were they made in the same run?")
        embeddings = [("emotion", emotion_student, generator.emotion_dim),
                      ("identity", identity_student, generator.identity_dim)]
        if voice_identity is not None:
            embeddings.append(("GE2E identity", voice_identity, generator.identity_dim))
        for what, student, dim in embeddings:
            if student.config["embedding_dim"] != dim:
                raise ValueError(f"the generator expects a {dim}-d {what} embedding but the {what} student gives "
                                 f"{student.config['embedding_dim']}-d: re-run notebook 04 after notebook 03")

    @classmethod
    def from_run(cls, run="runs/course", system: str = "speech2video", checkpoint=None,
                 voice_front_end: str | None = None) -> "Speech2VideoModel":
        """The students of ``<run>/checkpoints`` and the generator of ``gan_<system>.pt`` there (or of
        ``checkpoint``, any file ``train.GANTrainer.save`` wrote), with the run's feature cache: its
        log-mel settings, rates, normalisation and noise floor (``corpus_mel_floor``).

        The identity comes from the front-end the run's notebook 03 chose (``students.run_voice_front_end``),
        or from ``voice_front_end`` ("scratch" or "ge2e") when given: for "ge2e" the GE2E encoder and
        ``checkpoints/voice_to_face.pt``. A missing file is an error that names the notebook that makes it;
        resemblyzer's package missing is ``PretrainedModelMissing``, with the pip line.
        """
        from .data import open_cache
        from .students import load_student, run_voice_front_end
        from .gan.train import SYSTEMS, load_generator

        run = Path(run)
        if voice_front_end not in (None, *VOICE_FRONT_ENDS):
            raise ValueError(f"voice_front_end must be one of {list(VOICE_FRONT_ENDS)} (or None: the run's choice), "
                             f"got {voice_front_end!r}")
        if checkpoint is None and system not in SYSTEMS:
            raise ValueError(f"unknown system {system!r}; choose one of {list(SYSTEMS)} (or give a checkpoint file)")
        cache = open_cache(run)
        ckpt = run / "checkpoints"
        emo = load_student(ckpt / "emotion_student.pt", "emotion_student")
        ident = load_student(ckpt / "identity_student.pt", "identity_student")
        gan = Path(checkpoint) if checkpoint is not None else ckpt / f"gan_{system}.pt"
        generator = load_generator(gan, map_location=device())
        voice_identity = None
        if (voice_front_end or run_voice_front_end(run)) == "ge2e":
            from .pretrained import PretrainedModelMissing
            from .pretrained.voice_identity import load_ge2e_identity_student

            try:
                voice_identity = load_ge2e_identity_student(ckpt / "voice_to_face.pt", map_location=device())
            except PretrainedModelMissing as err:
                raise PretrainedModelMissing(f"the run {run} hears the identity with GE2E "
                                             f"(students.voice_front_end='ge2e'): {err}") from None
        return cls(emo, ident, generator, features=cache.info["features"], fps=cache.info["fps"],
                   sample_rate=cache.info["sample_rate"], mel_mean=cache.mel_mean, mel_std=cache.mel_std,
                   mel_floor=corpus_mel_floor(cache), run=run, cache=cache,
                   name=system if checkpoint is None else gan.stem, voice_identity=voice_identity)

    def __repr__(self) -> str:
        return (f"Speech2VideoModel({self.name}: {self.resolution} px at {self.fps} fps"
                + (", identity heard by GE2E" if self.voice_identity is not None else "")
                + (f", run {self.run}" if self.run is not None else "") + ")")

    # ------------------------------------------------------------------ the steps
    def read(self, speech, sample_rate: int | None = None, quiet: bool = False) -> tuple[Recording, dict, list]:
        """A file (any format, rate, channels) or an array ((n,) or (n, channels) at ``sample_rate``, default
        the run's) -> ``(recording, source, notes)``: a ``Recording`` of the mono samples at the run's rate,
        what the input held, and warnings in words. A file is decoded and resampled as a stream into an
        anonymous temporary file (close the recording, or use it in a ``with``), so memory does not grow
        with its length. Raises ``AudioError`` for input with less than one video frame of sound.
        """
        source: dict = {}
        if isinstance(speech, (str, Path)):
            name = Path(speech).name
            recording = Recording.of(stream_audio(speech, self.sample_rate, quiet=quiet, report=source),
                                     self.sample_rate)
        else:
            name = "the recording"
            recording = Recording(to_mono(speech, sample_rate or self.sample_rate, self.sample_rate, name, quiet,
                                          source), self.sample_rate)
        try:
            if len(recording) == 0:
                raise AudioError(f"{name} contains no audio samples")
            if len(recording) < self.sample_rate // self.fps:
                raise AudioError(f"{name} lasts {1000 * recording.seconds:.0f} ms, less than one video "
                                 f"frame ({1000 / self.fps:.0f} ms): there is nothing to animate")
        except AudioError:
            recording.close()
            raise
        notes = []
        if source["nonfinite"]:
            notes.append(f"{source['nonfinite']} samples were NaN or infinite and were set to zero")
        if source["clipped"] > CLIPPED_FRACTION:
            notes.append(f"{100 * source['clipped']:.1f} % of the samples are at full scale: the recording is "
                         f"clipped (distorted), which can mislead the emotion prediction")
        level = 20 * math.log10(recording.rms) if recording.rms > 0 else -math.inf
        source["silent"] = level < SILENCE_DBFS
        if source["silent"]:
            notes.append(f"the recording is silent (level {level:.0f} dBFS): expect a face that barely moves, "
                         f"and an emotion prediction that means nothing")
        return recording, source, notes

    def mel_frames(self, recording: Recording) -> "MelFrames":
        """The normalised log-mels of a recording as a sequence computed on demand (``MelFrames``)."""
        return MelFrames(self, recording)

    def log_mel(self, audio: np.ndarray) -> np.ndarray:
        """Normalised log-mels (mT, n_mels), m = ``mel_per_frame``, for T = ceil(duration * fps) video frames,
        as the networks saw in training (mono samples at the run's rate; ``MelFrames`` of them, all at once)."""
        return self.mel_frames(Recording(audio, self.sample_rate))[:]

    def normalize(self, mel) -> np.ndarray:
        """Log-mels as the networks see them: each band z-scored by ``mel_mean`` and ``mel_std``, float32."""
        return ((np.asarray(mel) - self.mel_mean) / self.mel_std).astype(np.float32)

    def predict(self, mel, recording: Recording | None = None) -> dict:
        """Both students on normalised log-mels (mT, n_mels), m = ``mel_per_frame`` (an array or ``MelFrames``):
        ``probs`` (6,), ``emotion_embedding`` (De,), ``identity`` (Di,) unit vector, ``windows`` (how many
        pieces the students heard), ``voice_front_end`` (what gave the identity: "scratch" or "ge2e").

        Up to ``STUDENT_WINDOW_S`` seconds this is ``students.predict_utterances`` on the whole utterance; a longer
        recording is cut into near-equal windows, heard one at a time, and their predictions averaged, weighted
        by length. With a GE2E front-end (``voice_identity``) the identity is instead heard on the samples of the
        same windows, read one at a time from ``recording`` (default: the ``MelFrames``' own): the running mean
        of every window's GE2E embeddings (``GE2EVoiceEncoder.embed_pieces``), mapped to a face; all of a long
        recording is heard, never more than one window in memory. A recording with no sound at all (only zeros)
        gives GE2E nothing: its identity then comes from the identity student.
        """
        from .students import predict_utterances

        n_frames = len(mel) // self.mel_per_frame
        k = math.ceil(n_frames / int(STUDENT_WINDOW_S * self.fps))
        edges = np.linspace(0, n_frames, k + 1).round().astype(int) * self.mel_per_frame
        pieces = (np.ascontiguousarray(mel[a:b]) for a, b in zip(edges[:-1], edges[1:]))
        pred = predict_utterances(self.emotion_student, self.identity_student, pieces)
        w = np.diff(edges).astype(np.float64)[:, None] / edges[-1]
        identity = (w * pred["identity"]).sum(0)
        out = dict(probs=(w * pred["probs"]).sum(0).astype(np.float32),
                   emotion_embedding=(w * pred["emotion_embedding"]).sum(0).astype(np.float32),
                   identity=(identity / np.linalg.norm(identity)).astype(np.float32), windows=k,
                   voice_front_end="scratch")
        if self.voice_identity is not None:
            recording = recording if recording is not None else getattr(mel, "recording", None)
            if recording is None:
                raise ValueError("this model hears the identity with GE2E, on the samples: give predict the "
                                 "recording (predict(model.mel_frames(recording)), or recording=)")
            samples = edges // self.mel_per_frame * (self.sample_rate // self.fps)
            voice = self.voice_identity.embed_pieces((recording.read(a, b) for a, b in zip(samples[:-1], samples[1:])),
                                                     self.sample_rate)
            if voice is not None:
                out.update(identity=voice.astype(np.float32), voice_front_end="ge2e")
        return out

    def emotion_prototypes(self) -> dict[str, np.ndarray]:
        """One emotion embedding per emotion, to make a face show an emotion the voice does not:
        the mean emotion-student embedding of the run's pool B training utterances, grouped by the
        emotion the emotion teacher reads on each utterance's face (its mean distribution over the
        clip's frames; no label is used). The teacher reads faces better than the student hears
        voices, so every emotion it ever reads gets a prototype, even one the student rarely predicts.

        Computed once from the run's cache and teacher features (notebook 02) and kept in
        ``<run>/checkpoints/emotion_prototypes.npz``, computed again when the emotion student or the
        teacher features are newer. Emotions the teacher never reads there have no prototype.
        """
        from .students import Utterances, predict_utterances
        from .teachers import open_features

        if self._prototypes is not None:
            return self._prototypes
        if self.run is None:
            raise ValueError("emotion prototypes come from a run directory: load the model with "
                             "Speech2VideoModel.from_run")
        if self.cache is None:
            from .data import open_cache

            self.cache = open_cache(self.run)
        path = self.run / "checkpoints" / "emotion_prototypes.npz"
        student = self.run / "checkpoints" / "emotion_student.pt"
        features = open_features(self.run, self.cache)
        newest = max(student.stat().st_mtime_ns, max(f.stat().st_mtime_ns for f in Path(features.root).iterdir()))
        if not path.exists() or path.stat().st_mtime_ns < newest:
            utts = Utterances.load(self.cache, features, pools=("B",), splits=("train",))
            pred = predict_utterances(self.emotion_student, self.identity_student, utts.mel)
            guess = np.array([soft.mean(0).argmax() for soft in utts.soft])
            found = sorted(set(guess.tolist()))
            tmp = path.with_suffix(".tmp.npz")
            np.savez(tmp, emotions=np.array([EMOTIONS[i] for i in found]),
                     embeddings=np.stack([pred["emotion_embedding"][guess == i].mean(0) for i in found]),
                     counts=np.array([int((guess == i).sum()) for i in found]))
            tmp.replace(path)
        with np.load(path) as z:
            self._prototypes = {str(e): v.astype(np.float32) for e, v in zip(z["emotions"], z["embeddings"])}
        return self._prototypes

    def check_options(self, emotion: str | None = None, baseline_image=None) -> tuple:
        """Validate ``generate``'s options before any sound is read: ``(emotion embedding or None, image
        tensor or None, notes)``. Errors in words for an unknown emotion, one without a prototype, and a
        missing or unreadable picture (required by the static-image baseline)."""
        notes, embedding, image = [], None, None
        if emotion is not None:
            if str(emotion).lower() not in EMOTIONS:
                raise ValueError(f"unknown emotion {emotion!r}; choose one of {list(EMOTIONS)}")
            prototypes = self.emotion_prototypes()
            if str(emotion).lower() not in prototypes:
                raise ValueError(f"no prototype for {emotion!r}: the emotion teacher never reads it on the run's "
                                 f"pool B training clips; choose one of {sorted(prototypes)}")
            embedding = prototypes[str(emotion).lower()]
            if not self.generator.cfg.use_emotion:
                notes.append(f"the {self.name} generator was trained without the emotion: the emotion override "
                             f"changes nothing")
        if self.generator.cfg.identity_from == "image":
            if baseline_image is None:
                raise ValueError(f"the {self.name} system makes the face from a picture of the speaker: give one "
                                 f"with --baseline-image IMG (baseline_image= in Python)")
            image = face_image(baseline_image, self.resolution)
        elif baseline_image is not None:
            notes.append(f"the {self.name} system makes the face from the voice: the baseline image is not used")
        return embedding, image, notes

    # ------------------------------------------------------------------ all of it
    def generate(self, speech, out_path, emotion: str | None = None, seed: int = 0, baseline_image=None,
                 sample_rate: int | None = None, progress: bool = True, overwrite: bool = False) -> dict:
        """One recording -> ``out_path`` (mp4: H.264 video, the recording as AAC). See ``generate_video``.

        ``out_path`` is checked first (``check_output``): never the recording itself, and an existing
        file that is not one of this project's videos only with ``overwrite``. The sound is heard twice,
        a block at a time: by the students (the whole recording's emotion and identity), then by the
        generator as it makes the frames; memory does not grow with the recording's length.
        """
        t0 = time.perf_counter()
        check_output(out_path, speech, overwrite)
        override, image, notes = self.check_options(emotion, baseline_image)
        recording, source, more = self.read(speech, sample_rate, quiet=not progress)
        with recording:
            notes += more
            mel = self.mel_frames(recording)
            pred = self.predict(mel)
            if pred["voice_front_end"] != self.voice_front_end:
                notes.append("the recording holds no sound for the GE2E voice encoder to hear: the face comes from "
                             "the run's identity student")
            predicted = EMOTIONS[int(pred["probs"].argmax())]
            used = predicted if emotion is None else str(emotion).lower()
            if source["silent"] and override is None and self.run is not None:
                try:  # silence carries no emotion: show the neutral face rather than a guess
                    override, used = self.emotion_prototypes()["neutral"], "neutral"
                    notes.append("silence carries no emotion: the face shows the run's neutral expression")
                except (ValueError, OSError, KeyError):
                    pass
            n_frames = len(mel) // self.mel_per_frame
            out_path = check_output(out_path, speech, overwrite)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            label = Path(speech).name if isinstance(speech, (str, Path)) else "recording"
            chunks = self.generator.generate_chunks(
                mel.batched(), torch.from_numpy(pred["identity"][None]),
                torch.from_numpy((pred["emotion_embedding"] if override is None else override)[None]),
                identity_image=image, chunk_frames=self.chunk_frames, seed=seed)
            with progress_bar(None, progress, total=n_frames, desc=label, unit="frame") as bar, \
                    VideoWriter(out_path, self.fps, self.resolution, self.resolution, recording, self.sample_rate,
                                exclusive=True) as writer:
                for chunk in chunks:
                    writer.write(to_uint8(chunk))
                    bar.update(chunk.shape[1])
        seconds = time.perf_counter() - t0
        duration = recording.seconds
        return dict(speech=str(speech) if isinstance(speech, (str, Path)) else "<array>", video=str(out_path),
                    system=self.name, seed=seed, duration_s=duration, frames=n_frames, fps=self.fps,
                    resolution=self.resolution, emotion=predicted,
                    emotion_probs={e: float(p) for e, p in zip(EMOTIONS, pred["probs"])},
                    emotion_used=used, voice_front_end=pred["voice_front_end"],
                    student_windows=pred["windows"], seconds=seconds, realtime_factor=duration / seconds,
                    source=source, notes=notes)


class MelFrames:
    """A recording's normalised log-mels (mT, n_mels), floored at the model's ``mel_floor``, for
    T = ceil(duration * fps) video frames, computed for the rows asked (``mel[a:b]``; ``mel[:]`` is all
    of them): each range from its samples with ``n_fft`` whole hops of sound on either side, so any
    range gives the numbers the whole recording gives (up to float rounding). The last video frame's
    mel frames past the end of the sound repeat the last one. ``batched()``: the same as (1, mT, n_mels)
    torch tensors, as ``Generator.generate_chunks`` reads them.
    """

    def __init__(self, model: Speech2VideoModel, recording: Recording):
        self.model, self.recording = model, recording
        self.hop = model.features.hop_length(model.sample_rate)
        n_frames = math.ceil(len(recording) / (model.sample_rate // model.fps))
        self.length = model.mel_per_frame * n_frames
        self.n_real = len(recording) // self.hop + 1  # frames of the sound itself (centred STFT)
        self.margin = -(-model.features.n_fft // self.hop) * self.hop  # whole hops beyond each range's edges
        self.shape = (self.length, model.features.n_mels)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, rows) -> np.ndarray:
        if not isinstance(rows, slice) or rows.step not in (None, 1):
            raise TypeError("MelFrames are read as contiguous ranges: mel[a:b]")
        a, b, _ = rows.indices(self.length)
        b, f1 = max(a, b), min(max(a, b), self.n_real)
        mel = self._log_mel(a, f1) if f1 > a else np.zeros((0, self.shape[1]), np.float32)
        if b > max(a, f1):  # past the end of the sound: its last frame again
            last = mel[-1:] if len(mel) else self._log_mel(self.n_real - 1, self.n_real)
            mel = np.concatenate([mel, np.repeat(last, b - max(a, f1), 0)])
        return np.maximum(self.model.normalize(mel), self.model.mel_floor)

    def _log_mel(self, a: int, b: int) -> np.ndarray:
        """Log-mel frames a..b of the sound itself (b <= n_real), not normalised."""
        s0 = max(0, a * self.hop - self.margin)
        sound = self.recording.read(s0, b * self.hop + self.margin)
        mel = log_mel(sound, self.model.sample_rate, self.model.features)
        return mel[(a * self.hop - s0) // self.hop:(b * self.hop - s0) // self.hop]

    def batched(self) -> "_Batched":
        return _Batched(self)


class _Batched:
    """``MelFrames`` as a (1, mT, n_mels) tensor that is only ever sliced as ``[:, a:b]``."""

    def __init__(self, mel: MelFrames):
        self.mel, self.shape = mel, (1, *mel.shape)

    def __getitem__(self, index) -> torch.Tensor:
        batch, rows = index
        if batch != slice(None):
            raise TypeError("batched MelFrames are read as [:, a:b]")
        return torch.from_numpy(self.mel[rows][None])


def corpus_mel_floor(cache) -> np.ndarray:
    """The quietest normalised log-mel of each band in a feature cache's training sound (its noise floor:
    the 0.1st percentile), (n_mels,) float32: what ``Speech2VideoModel`` floors log-mels at.

    Digital silence (log of ~0) lies far below anything the networks saw, and they answer it with
    nonsense (a pale face, "fear"); floored at the corpus's background noise, silence reads as
    the pauses between words do.
    """
    mel = cache.mel
    step = max(1, len(mel) // 200_000)  # a subsample of the frames is plenty for a minimum
    # the 0.1st percentile rather than the minimum: one digitally silent clip in a real corpus
    # would put the minimum at log(1e-10), and silence would again be far out of range
    return cache.normalize(np.percentile(np.asarray(mel[::step]), 0.1, axis=0)).astype(np.float32)


def face_image(image, resolution: int) -> torch.Tensor:
    """A picture of the speaker for the static-image baseline, from a file or an (H, W, 3) uint8 array:
    centre-cropped to a square and resized to ``resolution``: (1, 3, R, R) float in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    if isinstance(image, (str, Path)):
        path = Path(image)
        if not path.is_file():
            raise FileNotFoundError(f"baseline image not found: {path}" + (" (a folder)" if path.is_dir() else ""))
        try:
            with Image.open(path) as im:
                picture = im.convert("RGB")
        except (UnidentifiedImageError, OSError) as exc:
            raise ValueError(f"cannot read {path} as an image ({type(exc).__name__}: {exc})") from None
    else:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"a baseline image array must be (H, W, 3) uint8, got {arr.dtype} {arr.shape}")
        picture = Image.fromarray(arr)
    w, h = picture.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    picture = picture.resize((resolution, resolution), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    return torch.from_numpy(np.array(picture)).permute(2, 0, 1)[None].float() / 255


def generate_video(speech, out_path, run="runs/course", system: str = "speech2video", emotion: str | None = None,
                   seed: int = 0, baseline_image=None, checkpoint=None, sample_rate: int | None = None,
                   progress: bool = True, model: Speech2VideoModel | None = None, overwrite: bool = False) -> dict:
    """Speech -> a talking-face video (mp4: H.264, and the recording as AAC) at ``out_path``.

    ``speech``: an audio file of any common format, rate and channel count, or an array of samples
    ((n,) or (n, channels) at ``sample_rate``, default the run's 16 kHz). The video has
    ceil(duration * fps) frames, so it covers the whole sound. ``emotion``: show this emotion instead
    of the one heard (``Speech2VideoModel.emotion_prototypes``); ``seed``: the spontaneous motion
    (blinks, head); ``baseline_image``: the picture the static-image baseline needs; ``checkpoint``:
    a GAN checkpoint to use instead of ``<run>/checkpoints/gan_<system>.pt``; ``model``: networks
    already loaded (``Speech2VideoModel.from_run``), to skip loading for each of many recordings.

    Returns a report: ``emotion`` (predicted) with ``emotion_probs``, ``emotion_used``, ``frames``,
    ``duration_s``, ``seconds`` taken, ``realtime_factor`` (duration / seconds), ``notes`` (warnings
    in words: silence, clipping, NaN samples...), ``source`` (rate and channels read), ``video``.
    """
    model = model or Speech2VideoModel.from_run(run, system, checkpoint)
    return model.generate(speech, out_path, emotion=emotion, seed=seed, baseline_image=baseline_image,
                          overwrite=overwrite,
                          sample_rate=sample_rate, progress=progress)


def audio_files(folder) -> list[Path]:
    """The audio files (by ``AUDIO_EXTENSIONS``) directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"no folder at {folder}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
    if not files:
        raise AudioError(f"no audio files ({' '.join(e[1:] for e in AUDIO_EXTENSIONS)}) in {folder}")
    return files


class OutputError(ValueError):
    """An output path the tool will not write, with the reason and the way out."""


def check_output(out_path, speech=None, overwrite: bool = False) -> Path:
    """``out_path`` if a video may be written there, else ``OutputError`` saying why.

    Refused: a path that is (or resolves to) the recording ``speech``; a name that does not end in
    .mp4; a folder; a parent that is a file; an existing file that this project did not write
    (unless ``overwrite``). An existing video of this project is replaced (the run is redone).
    """
    from .machinery.video import is_project_video

    out = Path(out_path)
    if isinstance(speech, (str, Path)) and out.resolve() == Path(speech).resolve():
        raise OutputError(f"{out} is the recording itself: writing the video there would destroy it; "
                          f"choose another output")
    if out.suffix.lower() != ".mp4":
        raise OutputError(f"the video is an mp4: name it {out.with_suffix('.mp4').name}, not {out.name}")
    if out.is_dir():
        raise OutputError(f"{out} is a folder; give a file name ending in .mp4")
    if any(parent.exists() and not parent.is_dir() for parent in out.parents):
        raise OutputError(f"{next(p for p in out.parents if p.exists() and not p.is_dir())} is a file, "
                          f"not a folder: {out} cannot be written")
    if out.exists() and not overwrite and not is_project_video(out):
        raise OutputError(f"{out} exists and is not a video made by speech2video; pass --overwrite (-y) to "
                          f"replace it")
    return out


def generate_folder(folder, out_dir, model: Speech2VideoModel, on_report=None, **options) -> list[dict]:
    """Every audio file in ``folder`` -> ``out_dir/<stem>.mp4`` (``<name>.mp4`` where two share a stem).

    A file that fails gets a report with its ``error`` and the rest go on; ``on_report(report)`` is
    called after each file. ``options`` are ``Speech2VideoModel.generate``'s, checked once first.
    """
    from collections import Counter

    files = audio_files(folder)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file: give a folder for the videos of a folder of recordings")
    model.check_options(options.get("emotion"), options.get("baseline_image"))
    stems = Counter(p.stem for p in files)
    reports = []
    for path in files:
        out = out_dir / f"{path.stem if stems[path.stem] == 1 else path.name}.mp4"
        try:
            report = model.generate(path, out, **options)
        except (ValueError, OSError, RuntimeError) as exc:
            report = dict(speech=str(path), video=None, error=str(exc))
        reports.append(report)
        if on_report is not None:
            on_report(report)
    return reports


def describe(report: dict) -> str:
    """One report in words: what was made, the emotion heard, time taken, real-time factor, notes."""
    name = Path(report["speech"]).name
    if report.get("error"):
        return f"{name}: failed: {report['error']}"
    probs = report["emotion_probs"]
    line = (f"{name} -> {report['video']}: {report['duration_s']:.1f} s, {report['frames']} frames; "
            f"emotion heard: {report['emotion']} ({100 * probs[report['emotion']]:.0f} %)")
    if report["emotion_used"] != report["emotion"]:
        line += f", shown: {report['emotion_used']}"
    line += f"; {report['seconds']:.1f} s ({report['realtime_factor']:.1f}x real time)"
    return "\n".join([line] + [f"  note: {n}" for n in report["notes"]])


def batch_summary(reports: list[dict]) -> str:
    """A table of a folder's reports: file, status, duration, emotion, seconds, real-time factor."""
    rows = [("file", "status", "audio s", "emotion", "seconds", "x real time")]
    for r in reports:
        name = Path(r["speech"]).name
        if r.get("error"):
            rows.append((name, "failed", "", "", "", ""))
        else:
            rows.append((name, "ok" + (" (notes)" if r["notes"] else ""), f"{r['duration_s']:.1f}", r["emotion_used"],
                         f"{r['seconds']:.1f}", f"{r['realtime_factor']:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    failed = sum(bool(r.get("error")) for r in reports)
    lines.append(f"{len(reports) - failed} of {len(reports)} videos written" + (f", {failed} failed" if failed else ""))
    return "\n".join(lines)
