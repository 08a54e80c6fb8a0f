"""The workshop's user study: a form where people compare two renderings of an utterance, and its analysis.

Each comparison item (a ``Pair``) is one utterance rendered by two systems, e.g. speech2video
and the static-image baseline. ``RatingForm`` shows the items in random order, the two videos
side by side as "A" and "B" (which system is which is drawn at random per item and hidden from
the rater), and asks two questions, as the paper's user study did:

    Which looks more natural?                     A / B / can't tell
    Which shows the intended emotion better?      A / B / can't tell

Each answer is appended at once to a CSV file in the run directory, one row per vote, with the
systems' names (not the letters), so several notebooks can rate into the same file and
``analyse_votes`` needs no knowledge of the order. ``analyse_votes`` turns the votes into
preference rates with a 95 % Wilson interval and a two-sided binomial test against 0.5.
"""
from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

#: the columns of the votes file, in order
COLUMNS = ["timestamp", "rater", "session", "item_id", "intended_emotion", "system_a", "system_b",
           "natural", "emotion"]
#: the two questions: the column each answer goes to, and the words the rater reads
QUESTIONS = {"natural": "Which looks more natural?",
             "emotion": "Which shows the intended emotion better?"}
#: the answer recorded when the rater cannot tell the two apart
TIE = "tie"


@dataclass(frozen=True)
class Pair:
    """One comparison item: the same utterance rendered by exactly two systems.

    ``videos`` maps each system's name to its mp4 file (with sound), e.g.
    ``{"speech2video": ".../s2v_07.mp4", "static_image_baseline": ".../base_07.mp4"}``.
    """
    item_id: str
    intended_emotion: str
    videos: dict

    def __post_init__(self):
        if len(self.videos) != 2:
            raise ValueError(f"item {self.item_id!r} has {len(self.videos)} videos ({sorted(self.videos)}); "
                             f"a pair compares exactly two systems")
        if TIE in self.videos:
            raise ValueError(f"item {self.item_id!r}: {TIE!r} is the answer 'can't tell', not a system name")
        for system, path in self.videos.items():
            if not Path(path).is_file():
                raise FileNotFoundError(f"no video of system {system!r} for item {self.item_id!r} at {path}")


class RatingForm:
    """An ipywidgets form that walks one rater through ``pairs`` and appends the votes to ``votes_csv``.

    The items come in an order drawn from ``seed``, and so does, per item, which system is
    shown as "A" (``self.order``: a list of ``(pair, (system_a, system_b))``); the same seed gives
    the same sequence. Show the form with ``display(form)`` or by ending a cell with it.

    The widgets are attributes, so the form can be driven without a browser (as the tests do):
    ``natural`` and ``emotion`` (ToggleButtons whose values are "A", "B" or "tie"), ``rater``
    (Text), ``submit`` and ``skip`` (Buttons: ``form.submit.click()``), ``video_a`` and
    ``video_b``, ``prompt`` (the intended emotion), ``progress`` and ``message``.
    """

    def __init__(self, pairs, votes_csv, rater: str = "", seed: int | None = None, width: int = 256):
        import ipywidgets as w

        pairs = list(pairs)
        if not pairs:
            raise ValueError("no pairs to rate")
        ids = [p.item_id for p in pairs]
        if len(set(ids)) != len(ids):
            raise ValueError(f"item ids must be unique; repeated: {sorted({i for i in ids if ids.count(i) > 1})}")
        self.votes_csv = Path(votes_csv)
        self.session = uuid.uuid4().hex[:8]
        rng = np.random.default_rng(seed)
        swap = rng.random(len(pairs)) < 0.5
        self.order = [(pairs[i], tuple(reversed(list(pairs[i].videos))) if swap[i] else tuple(pairs[i].videos))
                      for i in rng.permutation(len(pairs))]
        self.position = 0
        self.n_rated = 0

        choices = [("A", "A"), ("B", "B"), ("can't tell", TIE)]
        self.natural = w.ToggleButtons(options=choices, value=None)
        self.emotion = w.ToggleButtons(options=choices, value=None)
        self.rater = w.Text(value=rater, description="Your name", placeholder="name or initials")
        self.submit = w.Button(description="Submit and next", button_style="primary")
        self.skip = w.Button(description="Skip")
        self.submit.on_click(lambda _: self._on_submit())
        self.skip.on_click(lambda _: self._next())
        self.prompt = w.HTML()
        self.progress = w.Label()
        self.message = w.HTML()
        video = dict(autoplay=False, loop=False, controls=True, width=str(width))
        self.video_a, self.video_b = w.Video(**video), w.Video(**video)
        self._item = w.VBox([
            self.prompt,
            w.HBox([w.VBox([w.HTML("<b>A</b>"), self.video_a]), w.VBox([w.HTML("<b>B</b>"), self.video_b])]),
            w.Label(QUESTIONS["natural"]), self.natural,
            w.Label(QUESTIONS["emotion"]), self.emotion,
            w.HBox([self.submit, self.skip, self.progress]),
        ])
        self.widget = w.VBox([self.rater, self._item, self.message])
        self._show()

    @property
    def done(self) -> bool:
        return self.position >= len(self.order)

    @property
    def current(self) -> tuple | None:
        """The item on screen and its systems as shown ``(pair, (system_a, system_b))``; None when done."""
        return None if self.done else self.order[self.position]

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _show(self):
        """Put the current item on screen with blank answers, or the closing message when all are done."""
        self.natural.value = self.emotion.value = None
        if self.done:
            self._item.layout.display = "none"
            self.video_a.value = self.video_b.value = b""
            skipped = len(self.order) - self.n_rated
            self.message.value = (f"<b>Finished, thank you!</b> You rated {self.n_rated} of {len(self.order)} pairs"
                                  + (f" ({skipped} skipped)" if skipped else "")
                                  + f"; the votes are in {self.votes_csv}.")
            return
        pair, shown = self.current
        for widget, system in zip((self.video_a, self.video_b), shown):
            path = Path(pair.videos[system])
            widget.format = path.suffix.lstrip(".").lower() or "mp4"
            widget.value = path.read_bytes()
        self.prompt.value = f"The speaker should sound and look: <b>{pair.intended_emotion}</b>"
        self.progress.value = f"{self.position + 1} of {len(self.order)}"

    def _next(self):
        self.message.value = ""
        self.position += 1
        self._show()

    def _on_submit(self):
        """Append one row for the current item if both questions are answered, then show the next one."""
        if self.done:
            return
        if self.natural.value is None or self.emotion.value is None:
            self.message.value = "Please answer both questions (or press <i>Skip</i>)."
            return
        pair, shown = self.current
        named = {"A": shown[0], "B": shown[1], TIE: TIE}
        row = dict(timestamp=datetime.now().astimezone().isoformat(timespec="seconds"),
                   rater=self.rater.value.strip(), session=self.session, item_id=pair.item_id,
                   intended_emotion=pair.intended_emotion, system_a=shown[0], system_b=shown[1],
                   natural=named[self.natural.value], emotion=named[self.emotion.value])
        append_vote(self.votes_csv, row)
        self.n_rated += 1
        self._next()


#: a cell starting with one of these becomes a formula in a spreadsheet (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value) -> str:
    """A cell a spreadsheet shows as text: a leading quote before a formula start (and before a leading
    quote, so that ``read_votes`` gives back exactly what was written)."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS + ("'",)) else text


def from_spreadsheet_safe(text: str) -> str:
    """The inverse of ``spreadsheet_safe``."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_STARTS + ("'",)) else text


def append_vote(votes_csv, row: dict) -> Path:
    """Append one vote to the CSV file (the header first if the file is new), opening and closing it each time.

    The row goes out in one write, so forms in several notebooks can append to the same file. Cells
    are written spreadsheet-safe (``spreadsheet_safe``): a rater called ``=HYPERLINK(...)`` stays text.
    """
    path = Path(votes_csv)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="", encoding="utf-8") as f:
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=COLUMNS)
        if f.tell() == 0:
            writer.writeheader()
        writer.writerow({k: spreadsheet_safe(v) for k, v in row.items()})
        f.write(buf.getvalue())
    return path


def read_votes(votes_csv):
    """The votes file as a DataFrame of strings (COLUMNS); an empty frame with those columns if there is none yet."""
    import pandas as pd

    path = Path(votes_csv)
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame(columns=COLUMNS, dtype=str)
    try:
        votes = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable votes file: {str(exc).strip()}") from exc
    votes = votes.apply(lambda column: column.map(from_spreadsheet_safe))
    missing = [c for c in COLUMNS if c not in votes.columns]
    if missing:
        raise ValueError(f"{path} lacks the columns {missing}; a votes file written by RatingForm has {COLUMNS}")
    for q in QUESTIONS:
        bad = ~votes[q].isin([TIE]) & (votes[q] != votes.system_a) & (votes[q] != votes.system_b)
        if bad.any():
            lines = (np.flatnonzero(bad.to_numpy()) + 2).tolist()[:5]  # + header line, 1-based
            raise ValueError(f"{path}: the {q!r} answer on line(s) {lines} names neither of the two systems shown "
                             f"nor {TIE!r}")
    return votes


def _between(votes, system: str, against: str):
    """The votes on items that compared ``system`` with ``against`` (in either position)."""
    if len(votes):
        seen = set(votes.system_a) | set(votes.system_b)
        for name in (system, against):
            if name not in seen:
                raise ValueError(f"no votes involve a system called {name!r}; the votes compare {sorted(seen)}")
    a, b = votes.system_a, votes.system_b
    return votes[((a == system) & (b == against)) | ((a == against) & (b == system))]


def analyse_votes(votes, system: str, against: str, alpha: float = 0.05, min_decided: int = 5):
    """Preference for ``system`` over ``against``, one row per question (natural, emotion).

    Ties ("can't tell") are counted but left out of the rate: with w wins and l losses,
    rate = w / (w + l). The 95 % interval is Wilson's score interval,

        (p + z^2/2n -/+ z sqrt(p(1 - p)/n + z^2/4n^2)) / (1 + z^2/n),   n = w + l, z = 1.96,

    and p_value is the two-sided exact binomial test of rate = 0.5 (``scipy.stats.binomtest``).
    The verdict names the preferred system when p_value < ``alpha``; with fewer than
    ``min_decided`` decided votes it says "too few votes".
    """
    import pandas as pd
    from scipy.stats import binomtest

    pair = _between(votes, system, against)
    rows = []
    for q in QUESTIONS:
        wins, losses = int((pair[q] == system).sum()), int((pair[q] == against).sum())
        decided = wins + losses
        rate = low = high = p = np.nan
        if decided:
            test = binomtest(wins, decided, 0.5)
            ci = test.proportion_ci(confidence_level=0.95, method="wilson")
            rate, low, high, p = wins / decided, ci.low, ci.high, test.pvalue
        if len(pair) == 0:
            verdict = "no votes yet"
        elif decided < min_decided:
            verdict = f"too few votes ({decided} decided, {len(pair) - decided} ties; need {min_decided})"
        elif p < alpha:
            verdict = f"{system if wins > losses else against} preferred (p={p:.2g}, {decided} votes)"
        else:
            verdict = f"no significant preference (p={p:.2g}, {decided} votes)"
        rows.append(dict(question=q, system=system, against=against, n=len(pair), wins=wins, losses=losses,
                         ties=len(pair) - decided, rate=rate, ci_low=low, ci_high=high, p_value=p,
                         verdict=verdict))
    return pd.DataFrame(rows).set_index("question")


def votes_per_rater(votes, system: str, against: str):
    """Per rater (by name): votes cast and, per question, wins / losses / ties of ``system`` against ``against``."""
    import pandas as pd

    pair = _between(votes, system, against).assign(rater=lambda d: d.rater.replace("", "(no name)"))
    out = {"votes": pair.groupby("rater").size()}
    for q in QUESTIONS:
        for name, value in (("wins", system), ("losses", against), ("ties", TIE)):
            out[f"{q}_{name}"] = (pair[q] == value).groupby(pair.rater).sum()
    return pd.DataFrame(out).fillna(0).astype(int).rename_axis("rater")


def plot_votes(summary):
    """The preference rate per question with its 95 % interval, and the line of no preference at 0.5."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.2, 3))
    x = np.arange(len(summary))
    rate = summary.rate.to_numpy(float)
    err = np.nan_to_num(np.stack([rate - summary.ci_low.to_numpy(float), summary.ci_high.to_numpy(float) - rate]))
    ax.bar(x, np.nan_to_num(rate), yerr=err, capsize=6, color="tab:blue", width=0.55)
    ax.axhline(0.5, color="tab:red", ls="--", label="no preference")
    for k, (_, row) in enumerate(summary.iterrows()):
        label = (f"{row.wins}:{row.losses}" + (f", {row.ties} ties" if row.ties else "")) if row.n else "no votes"
        ax.text(k, 0.02, label, ha="center", va="bottom", fontsize=8, color="white" if rate[k] > 0.1 else "black")
    ax.set_xticks(x, [QUESTIONS[q].removeprefix("Which ").rstrip("?") for q in summary.index], fontsize=8)
    ax.set_ylim(0, 1)
    system, against = summary.system.iloc[0], summary.against.iloc[0]
    ax.set_ylabel(f"{system} preferred")
    ax.set_title(f"{system} vs {against}", fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
