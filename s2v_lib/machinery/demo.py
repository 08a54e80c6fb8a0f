"""The interactive demo of notebook 06: type a sentence, pick a SynthTalk voice and an emotion, watch the face.

``DemoForm(model, out_dir)`` is an ipywidgets form: the sentence, the voice (a speaker of the
run's corpus, or any other number: a stranger), the emotion and intensity the voice speaks with,
and optionally an emotion for the face to show instead of the one heard. "Speak and animate"
synthesises the sentence with espeak-ng (``synthtalk.speak``), turns it into a video with the
run's networks (``inference.Speech2VideoModel``) and shows it with what the students heard. Bad
input (an empty sentence) is a message in the form, never a traceback. Everything is reachable
as attributes, so a test can fill it in and click.
"""
from __future__ import annotations

from pathlib import Path

from .audio import write_wav
from ..config import EMOTIONS, INTENSITIES


class DemoForm:
    """Sentence + voice + emotion -> a talking-face video, shown in the notebook.

    ``model``: a loaded ``inference.Speech2VideoModel``; ``out_dir``: where the wav and mp4 files go;
    ``corpus_seed``: the seed of the run's corpus, so that voice *k* is its speaker ``S{k+1:04d}``.
    """

    def __init__(self, model, out_dir, corpus_seed: int = 0, n_voices: int = 24, seed: int = 0, width: int = 256):
        import ipywidgets as W

        self.model, self.out_dir, self.corpus_seed, self.seed, self.width = model, Path(out_dir), corpus_seed, seed, width
        self.count = 0
        self.reports: list = []
        self.text = W.Textarea(value="I never said she stole my money.", description="sentence",
                               layout=W.Layout(width="420px"))
        self.voice = W.BoundedIntText(value=0, min=0, max=9999, description="voice",
                                      tooltip=f"0-{n_voices - 1}: the corpus's speakers; more: strangers")
        self.emotion = W.Dropdown(options=list(EMOTIONS), value="happy", description="speaks")
        self.intensity = W.ToggleButtons(options=list(INTENSITIES), value="high", description="intensity")
        try:  # only the emotions the run has a face for
            faces = [e for e in EMOTIONS if e in model.emotion_prototypes()]
        except (ValueError, OSError):
            faces = []
        self.face = W.Dropdown(options=["as heard"] + faces, value="as heard", description="face shows")
        self.go = W.Button(description="Speak and animate", button_style="primary", icon="play",
                           layout=W.Layout(width="auto"))
        self.message = W.HTML()
        self.video = W.Video(format="mp4", autoplay=False, loop=False, controls=True, width=width)
        self.video.layout.display = "none"
        self.go.on_click(lambda _: self.run())
        self.widget = W.VBox([self.text, W.HBox([self.voice, self.emotion]), self.intensity, self.face, self.go,
                              self.message, self.video])

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def run(self) -> dict | None:
        """Synthesise, animate, show. Returns the generation report (None when the input was refused)."""
        from .synthtalk import speak

        try:
            audio = speak(self.text.value, int(self.voice.value), self.emotion.value, self.intensity.value,
                          seed=self.corpus_seed, sample_rate=self.model.sample_rate)
        except (ValueError, RuntimeError, OSError) as exc:  # empty text; espeak-ng missing
            return self._refuse(f"<b>Cannot say that:</b> {exc}")
        self.count += 1
        self.out_dir.mkdir(parents=True, exist_ok=True)
        stem = self.out_dir / f"demo_{self.count:02d}_voice{int(self.voice.value)}_{self.emotion.value}"
        write_wav(stem.with_suffix(".wav"), audio, self.model.sample_rate)
        face = None if self.face.value == "as heard" else self.face.value
        try:
            report = self.model.generate(stem.with_suffix(".wav"), stem.with_suffix(".mp4"), emotion=face,
                                         seed=self.seed, progress=False)
        except (ValueError, OSError, RuntimeError) as exc:
            return self._refuse(f"<b>Cannot animate that:</b> {exc}")
        self.reports.append(report)
        probs = ", ".join(f"{e} {p:.0%}" for e, p in sorted(report["emotion_probs"].items(), key=lambda x: -x[1])[:3])
        self.message.value = (f"voice {int(self.voice.value)} speaking {self.emotion.value} ({self.intensity.value}); "
                              f"the students hear <b>{report['emotion']}</b> ({probs}); the face shows "
                              f"<b>{report['emotion_used']}</b>. {report['duration_s']:.1f} s of speech in "
                              f"{report['seconds']:.1f} s ({report['realtime_factor']:.1f}x real time"
                              + ("; the first one includes one-time set-up" if self.count == 1 else "")
                              + ")."
                              + "".join(f"<br>note: {n}" for n in report["notes"]))
        self.video.value = Path(report["video"]).read_bytes()
        self.video.layout.display = None
        return report

    def _refuse(self, message: str) -> None:
        """Say why, and hide the previous video: it does not belong to this input."""
        self.message.value = message
        self.video.layout.display = "none"
        return None
