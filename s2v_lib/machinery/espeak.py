"""A small ctypes binding to libespeak-ng: speech with the phonemes actually spoken, and their times.

The espeak-ng command line cannot give phoneme timings without MBROLA, but the library
reports an ``espeakEVENT_PHONEME`` event (phoneme name, position in ms) for every phoneme it
synthesises when it is initialised with ``espeakINITIALIZE_PHONEME_EVENTS``. SynthTalk drives
its lips from those events.

Voices: each speaker gets its own *voice variant* (a small text file, see ``VoiceSpec``)
written into a private copy of the espeak-ng data folder (links to the system files plus
our variants), so that base pitch, pitch range, formant frequencies, roughness and breath
follow the speaker's latent identity.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import multiprocessing.util
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass, field

import numpy as np

# espeak_EVENT_TYPE values (speak_lib.h)
_EV_LIST_TERMINATED, _EV_WORD, _EV_PHONEME = 0, 1, 7
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
# espeak_PARAMETER values
_RATE, _VOLUME, _PITCH, _RANGE = 1, 2, 3, 4

_INSTALL_HINT = ("install it with `sudo apt-get install espeak-ng` (Debian/Ubuntu), "
                 "`brew install espeak-ng` (macOS) or `conda install -c conda-forge espeak-ng`")


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass
class VoiceSpec:
    """One espeak-ng voice variant.

    ``pitch_base``/``pitch_range`` are in Hz; ``formants`` are percentages of the default
    frequency of formants 1..5 (a longer vocal tract lowers them all); ``roughness`` 0-7
    (creak), ``breath`` 0-10 (breathiness added to the higher formants), ``flutter`` a slow
    pitch tremor.
    """

    name: str
    gender: str = "male"
    pitch_base: float = 110.0
    pitch_range: float = 140.0
    formants: tuple[float, ...] = (100, 100, 100, 100, 100)
    roughness: int = 0
    breath: int = 0
    flutter: int = 0  # pitch tremor (espeak's default voice uses 64)

    def variant_text(self) -> str:
        lines = ["language variant", f"name {self.name}", f"gender {self.gender}",
                 f"pitch {int(round(self.pitch_base))} {int(round(self.pitch_base + self.pitch_range))}",
                 f"roughness {int(np.clip(self.roughness, 0, 7))}",
                 f"flutter {int(max(self.flutter, 0))}"]
        for i, pct in enumerate(self.formants, start=1):
            lines.append(f"formant {i} {int(round(pct))} 100 100")
        # every keyword is written, zeros too: a value left out may keep the previous voice's
        b = int(np.clip(self.breath, 0, 10))
        lines.append("breath 0 " + " ".join(str(max(0, b - k // 3)) for k in range(7)))
        lines.append("breathw 0 0 0 0 0 0 0 0")
        lines.append("echo 0 0")
        lines.append("tone 600 170 1200 135 2000 110")
        return "\n".join(lines) + "\n"


@dataclass
class Utterance:
    """Synthesised speech: audio (float32, mono, ``sample_rate`` Hz), phonemes and words with start times in seconds."""

    audio: np.ndarray
    sample_rate: int
    phonemes: list[tuple[float, str]] = field(default_factory=list)
    words: list[tuple[float, str]] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


_ROOT_PREFIX = "s2v-espeak-"


def remove_stale_data_folders(older_than_s: float = 3600.0) -> int:
    """Remove the private data folders (``s2v-espeak-<pid>-*`` in the temporary folder) of processes that
    are gone: a pool worker ended by its pool, or a killed run, never runs its exit handlers. Folders
    without a process number (older versions) are removed when older than ``older_than_s``. Returns
    how many were removed."""
    import time

    removed = 0
    for entry in os.scandir(tempfile.gettempdir()):
        if not entry.name.startswith(_ROOT_PREFIX) or not entry.is_dir(follow_symlinks=False):
            continue
        pid = entry.name[len(_ROOT_PREFIX):].split("-")[0]
        try:
            if hasattr(os, "getuid") and entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            if pid.isdigit():
                try:
                    os.kill(int(pid), 0)
                    continue  # its process still runs
                except ProcessLookupError:
                    pass
                except PermissionError:
                    continue
            elif time.time() - entry.stat(follow_symlinks=False).st_mtime < older_than_s:
                continue
            shutil.rmtree(entry.path)
            removed += 1
        except OSError:  # another process removed it first, or it is not ours to remove
            continue
    return removed


class Espeak:
    """The espeak-ng library, initialised once per process (it keeps global state).

    Its private data folder (``s2v-espeak-<pid>-*``, links to the system's plus our voice variants) is
    removed when the process exits, and by the next engine when the process was killed or ended
    without exit handlers (``remove_stale_data_folders``).
    """

    _instance: "Espeak | None" = None

    def __init__(self, language: str = "en-us"):
        path = ctypes.util.find_library("espeak-ng")
        if path is None:
            raise RuntimeError(f"the espeak-ng library (libespeak-ng) was not found; {_INSTALL_HINT}")
        self.lib = ctypes.CDLL(path)
        self.language = language
        remove_stale_data_folders()
        self._root = tempfile.mkdtemp(prefix=f"{_ROOT_PREFIX}{os.getpid()}-")
        # removed at exit: multiprocessing's finalizers run in a pool worker that ends normally, where
        # atexit handlers do not (and in the main process, from atexit)
        multiprocessing.util.Finalize(None, shutil.rmtree, args=(self._root, True), exitpriority=10)
        self._variants_dir = self._private_data_folder(self._root)
        self.lib.espeak_Initialize.restype = ctypes.c_int
        self.sample_rate = self.lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self._root.encode(),
                                                      _INITIALIZE_PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise RuntimeError("libespeak-ng failed to initialise (is the espeak-ng-data package installed?)")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[int, int, str, int, int]] = []
        self._callback = _Callback(self._on_audio)  # keep a reference: ctypes does not
        self.lib.espeak_SetSynthCallback(self._callback)
        # espeak-ng draws its noise (breath, fricatives, jitter) from the C library's rand():
        # seeding it before each utterance makes synthesis reproducible
        self._libc = ctypes.CDLL(ctypes.util.find_library("c"))

    @classmethod
    def get(cls) -> "Espeak":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    @staticmethod
    def _system_data_folder() -> str:
        candidates = [os.environ.get("ESPEAK_DATA_PATH", "")]
        for libdir in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib",
                       "/usr/lib64", "/usr/local/lib", "/usr/share", "/opt/homebrew/share",
                       os.path.join(os.environ.get("CONDA_PREFIX", "/nonexistent"), "share")):
            candidates.append(os.path.join(libdir, "espeak-ng-data"))
        for c in candidates:
            if c and os.path.isfile(os.path.join(c, "phontab")):
                return c
        raise RuntimeError("espeak-ng's data folder (espeak-ng-data) was not found; set ESPEAK_DATA_PATH "
                           f"to it, or {_INSTALL_HINT}")

    def _private_data_folder(self, root: str) -> str:
        """Link the system espeak-ng-data into ``root`` with a writable ``voices/!v`` for our variants."""
        src = self._system_data_folder()
        dst = os.path.join(root, "espeak-ng-data")
        os.makedirs(os.path.join(dst, "voices", "!v"))
        for name in os.listdir(src):
            if name != "voices":
                os.symlink(os.path.join(src, name), os.path.join(dst, name))
        for name in os.listdir(os.path.join(src, "voices")):
            if name != "!v":
                os.symlink(os.path.join(src, "voices", name), os.path.join(dst, "voices", name))
        return os.path.join(dst, "voices", "!v")

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            e = events[i]
            if e.type == _EV_PHONEME:
                self._events.append((e.type, e.audio_position, e.id.string.decode("utf-8", "replace"), 0, 0))
            elif e.type == _EV_WORD:
                self._events.append((e.type, e.audio_position, "", e.text_position, e.length))
            i += 1
        return 0

    def _select(self, voice: VoiceSpec | None) -> None:
        """Select the language voice, with ``voice`` as its variant.

        The variant file lives only while it is selected: espeak-ng keeps a fixed-size list of
        the voice files it finds (350), and a folder holding hundreds of variants (one per
        speaker and emotion) made selection fail.
        """
        name = self.language
        path = None
        if voice is not None:
            if not voice.name.isalnum():
                raise ValueError(f"voice names must be letters and digits, got {voice.name!r}")
            path = os.path.join(self._variants_dir, voice.name)
            with open(path, "w") as f:
                f.write(voice.variant_text())
            name = f"{self.language}+{voice.name}"
        try:
            if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
                raise RuntimeError(f"espeak-ng could not select the voice {name!r}")
        finally:
            if path is not None:
                os.remove(path)

    def speak(self, text: str, voice: VoiceSpec | None = None, rate: int = 175, pitch: int = 50,
              pitch_range: int = 50, volume: int = 100, seed: int = 0) -> Utterance:
        """Synthesise ``text``. ``rate`` in words per minute (80-450), ``pitch`` and ``pitch_range``
        0-100 relative to the voice (50 = as the voice says), ``volume`` 0-200 (100 = normal).

        The same arguments and ``seed`` give the same samples. libespeak-ng keeps state from one
        utterance to the next (the same call was seen to last 9 ms longer after some sentences),
        so where the system can fork, each utterance is spoken by a forked copy of the engine
        while this one stays untouched: every utterance starts from the same state.
        """
        args = (text, voice, rate, pitch, pitch_range, volume, seed)
        if not hasattr(os, "fork"):
            return self._speak(*args)
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: speak, send the result, leave without running any cleanup
            status = 0
            try:
                os.close(read_end)
                try:
                    result = ("ok", self._speak(*args))
                except Exception as exc:  # noqa: BLE001 - re-raised in the parent
                    result = ("error", f"{type(exc).__name__}: {exc}")
                with os.fdopen(write_end, "wb") as f:
                    pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:  # noqa: BLE001
                status = 1
            finally:
                os._exit(status)
        os.close(write_end)
        with os.fdopen(read_end, "rb") as f:
            payload = f.read()
        os.waitpid(pid, 0)
        if not payload:
            raise RuntimeError(f"espeak-ng died while synthesising {text!r}")
        kind, value = pickle.loads(payload)
        if kind == "error":
            raise RuntimeError(value)
        return value

    def _speak(self, text, voice, rate, pitch, pitch_range, volume, seed) -> Utterance:
        self._select(voice)
        for param, value, lo, hi in ((_RATE, rate, 80, 450), (_PITCH, pitch, 0, 100),
                                     (_RANGE, pitch_range, 0, 100), (_VOLUME, volume, 0, 200)):
            self.lib.espeak_SetParameter(param, int(np.clip(round(value), lo, hi)), 0)
        self._chunks, self._events = [], []
        self._libc.srand(ctypes.c_uint(int(seed) & 0xFFFFFFFF))
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
        if err != 0:
            raise RuntimeError(f"espeak-ng failed to synthesise {text!r} (error {err})")
        audio = (np.concatenate(self._chunks).astype(np.float32) / 32768.0 if self._chunks
                 else np.zeros(0, np.float32))
        phonemes, words = [], []
        for kind, ms, ph, pos, length in self._events:
            if kind == _EV_PHONEME:
                phonemes.append((ms / 1000.0, ph))
            else:  # text_position is 1-based, in characters
                words.append((ms / 1000.0, text[pos - 1:pos - 1 + length]))
        return Utterance(audio, self.sample_rate, phonemes, words)
