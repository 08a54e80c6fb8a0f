"""The rating form, driven headless through its widgets, and the analysis of the votes it writes."""
import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest

from s2v_lib.evaluation import rating
from s2v_lib.machinery.video import write_video

matplotlib.use("Agg")

S2V, BASE = "speech2video", "static_image_baseline"


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    """Four tiny mp4 files with different random frames (so each file's bytes are its own)."""
    root = tmp_path_factory.mktemp("videos")
    rng = np.random.default_rng(0)
    return [write_video(root / f"clip{k}.mp4", rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8), fps=25)
            for k in range(4)]


def _pairs(videos, n=3):
    emotions = ["happy", "sad", "angry", "neutral"]
    return [rating.Pair(f"item{k}", emotions[k % 4], {S2V: videos[(2 * k) % 4], BASE: videos[(2 * k + 1) % 4]})
            for k in range(n)]


def _answer(form, natural, emotion):
    form.natural.value, form.emotion.value = natural, emotion
    form.submit.click()


def test_choosing_a_records_the_system_shown_at_a(videos, tmp_path):
    csv = tmp_path / "votes.csv"
    form = rating.RatingForm(_pairs(videos), csv, rater="ada", seed=1)
    shown = []
    for _ in range(3):
        pair, (a, b) = form.current
        assert form.video_a.value == pair.videos[a].read_bytes() and form.video_a.format == "mp4"
        assert form.video_b.value == pair.videos[b].read_bytes()
        assert pair.intended_emotion in form.prompt.value
        shown.append((pair.item_id, a, b))
        _answer(form, "A", "B")
    votes = rating.read_votes(csv)
    assert list(votes.columns) == rating.COLUMNS and len(votes) == 3
    assert list(zip(votes.item_id, votes.system_a, votes.system_b)) == shown
    assert (votes.natural == votes.system_a).all() and (votes.emotion == votes.system_b).all()
    assert (votes.rater == "ada").all() and votes.session.nunique() == 1
    assert pd.to_datetime(votes.timestamp).notna().all()


def test_cant_tell_is_a_tie(videos, tmp_path):
    form = rating.RatingForm(_pairs(videos, 1), tmp_path / "votes.csv", seed=0)
    _answer(form, "tie", "B")
    row = rating.read_votes(tmp_path / "votes.csv").iloc[0]
    assert row.natural == "tie" and row.emotion == row.system_b


def test_incomplete_answer_records_nothing_and_says_so(videos, tmp_path):
    csv = tmp_path / "votes.csv"
    form = rating.RatingForm(_pairs(videos), csv, seed=0)
    first = form.current
    _answer(form, "A", None)
    assert not csv.exists() and form.current == first
    assert "both questions" in form.message.value
    assert form.progress.value == "1 of 3"
    form.emotion.value = "A"
    form.submit.click()
    assert len(rating.read_votes(csv)) == 1 and form.message.value == "" and form.progress.value == "2 of 3"


def test_skip_records_nothing_and_moves_on(videos, tmp_path):
    csv = tmp_path / "votes.csv"
    form = rating.RatingForm(_pairs(videos), csv, seed=0)
    skipped = form.current[0].item_id
    form.skip.click()
    _answer(form, "B", "B")
    votes = rating.read_votes(csv)
    assert len(votes) == 1 and votes.item_id.iloc[0] != skipped


def test_finishing_shows_the_done_message(videos, tmp_path):
    csv = tmp_path / "votes.csv"
    form = rating.RatingForm(_pairs(videos), csv, seed=0)
    _answer(form, "A", "A")
    form.skip.click()
    _answer(form, "B", "tie")
    assert form.done and form.current is None
    assert "Finished" in form.message.value and "2 of 3" in form.message.value and "1 skipped" in form.message.value
    assert form.widget.children and form._repr_mimebundle_()  # displayable
    _answer(form, "A", "A")  # a click after the end records nothing
    assert len(rating.read_votes(csv)) == 2


def test_two_forms_append_under_one_header(videos, tmp_path):
    csv = tmp_path / "run" / "votes.csv"
    for rater in ("ada", "bob"):
        form = rating.RatingForm(_pairs(videos), csv, rater=rater)
        _answer(form, "A", "B")
        _answer(form, "B", "A")
    lines = csv.read_text().splitlines()
    assert sum(line.startswith("timestamp,") for line in lines) == 1 and len(lines) == 5
    votes = rating.read_votes(csv)
    assert votes.rater.tolist() == ["ada", "ada", "bob", "bob"] and votes.session.nunique() == 2


def test_order_is_seeded_and_positions_vary(videos, tmp_path):
    pairs = _pairs(videos, 12)

    def order(seed):
        return [(p.item_id, shown) for p, shown in rating.RatingForm(pairs, tmp_path / "v.csv", seed=seed).order]

    assert order(3) == order(3) and order(3) != order(4)
    assert sorted(i for i, _ in order(3)) == sorted(p.item_id for p in pairs)
    assert [i for i, _ in order(3)] != [p.item_id for p in pairs]  # shuffled
    assert {shown[0] for _, shown in order(3)} == {S2V, BASE}  # either system appears as A


def test_bad_pairs_are_refused(videos, tmp_path):
    with pytest.raises(ValueError, match="exactly two"):
        rating.Pair("x", "happy", {S2V: videos[0]})
    with pytest.raises(FileNotFoundError, match="static_image_baseline"):
        rating.Pair("x", "happy", {S2V: videos[0], BASE: tmp_path / "missing.mp4"})
    with pytest.raises(ValueError, match="unique"):
        rating.RatingForm(_pairs(videos, 1) * 2, tmp_path / "v.csv")


def _votes(natural, emotion=None):
    """Votes from (winner, count) lists, alternating which system was shown at A."""
    emotion = emotion or natural
    nat = [w for w, n in natural for _ in range(n)]
    emo = [w for w, n in emotion for _ in range(n)]
    assert len(nat) == len(emo)
    rows = [dict(timestamp="2025-01-01T10:00:00+00:00", rater=f"r{k % 3}", session="s", item_id=f"i{k}",
                 intended_emotion="happy", system_a=(S2V, BASE)[k % 2], system_b=(BASE, S2V)[k % 2],
                 natural=n, emotion=e) for k, (n, e) in enumerate(zip(nat, emo))]
    return pd.DataFrame(rows, columns=rating.COLUMNS)


def test_analysis_of_known_counts():
    votes = _votes([(S2V, 15), (BASE, 5), ("tie", 3)], [(S2V, 10), (BASE, 10), ("tie", 3)])
    other = dict(votes.iloc[0]) | dict(system_a="other", system_b=BASE, natural="other", emotion="other")
    votes = pd.concat([votes, pd.DataFrame([other])], ignore_index=True)  # another comparison: left out
    s = rating.analyse_votes(votes, S2V, BASE)
    nat, emo = s.loc["natural"], s.loc["emotion"]
    assert (nat.n, nat.wins, nat.losses, nat.ties) == (23, 15, 5, 3)
    assert nat.rate == 0.75 and nat.p_value == pytest.approx(binomtest(15, 20).pvalue) and 0.03 < nat.p_value < 0.05
    z, n, p = 1.959964, 20, 0.75  # Wilson's interval by hand
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert (nat.ci_low, nat.ci_high) == pytest.approx((centre - half, centre + half), abs=1e-5)
    assert nat.verdict == "speech2video preferred (p=0.041, 20 votes)"
    assert emo.rate == 0.5 and emo.verdict.startswith("no significant preference (p=1")
    flipped = rating.analyse_votes(votes, BASE, S2V).loc["natural"]
    assert flipped.rate == 0.25 and flipped.verdict.startswith("speech2video preferred")


def test_few_votes_no_votes_and_unknown_systems(tmp_path):
    few = rating.analyse_votes(_votes([(S2V, 3), ("tie", 4)]), S2V, BASE).loc["natural"]
    assert few.verdict.startswith("too few votes (3 decided, 4 ties")
    empty = rating.analyse_votes(rating.read_votes(tmp_path / "none.csv"), S2V, BASE)
    assert (empty.verdict == "no votes yet").all() and (empty.n == 0).all() and empty.rate.isna().all()
    with pytest.raises(ValueError, match="speech2vidoe"):
        rating.analyse_votes(_votes([(S2V, 3)]), "speech2vidoe", BASE)


def test_votes_per_rater():
    per = rating.votes_per_rater(_votes([(S2V, 4), (BASE, 2)]), S2V, BASE)
    assert per.votes.to_dict() == {"r0": 2, "r1": 2, "r2": 2}
    assert per.natural_wins.sum() == 4 and per.natural_losses.sum() == 2 and per.emotion_ties.sum() == 0


def test_reading_missing_and_malformed_files(tmp_path):
    empty = rating.read_votes(tmp_path / "none.csv")
    assert empty.empty and list(empty.columns) == rating.COLUMNS
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,winner\ni1,speech2video\n")
    with pytest.raises(ValueError, match="lacks the columns"):
        rating.read_votes(bad)
    _votes([(S2V, 2)]).assign(natural=["A", S2V]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"'natural' answer on line\(s\) \[2\]"):
        rating.read_votes(bad)


def test_plot_has_the_rates_and_the_line_of_no_preference(tmp_path):
    import matplotlib.pyplot as plt

    fig = rating.plot_votes(rating.analyse_votes(_votes([(S2V, 6), (BASE, 2)]), S2V, BASE))
    ax = fig.axes[0]
    assert [b.get_height() for b in ax.patches] == [0.75, 0.75]
    assert any(np.allclose(line.get_ydata(), 0.5) for line in ax.lines)
    plt.close(fig)
    fig = rating.plot_votes(rating.analyse_votes(rating.read_votes(tmp_path / "none.csv"), S2V, BASE))
    assert "no votes" in [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)
