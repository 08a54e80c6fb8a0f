"""The code a lesson shows is the code the library runs.

A lesson cell (tagged ``lesson:<module>.<name>``, see ``s2v_lib.machinery.lesson``) must hold the
library object's source; a function redefined in a notebook and handed to a stage's training is
what gets trained; the self-check helpers say PASS and MISS where they should.
"""
import dataclasses
import json

import numpy as np
import pytest
import torch

from s2v_lib import students, teachers
from s2v_lib.config import StudentConfig, TeacherConfig
from s2v_lib.data import split_index
from s2v_lib.machinery import lesson
from s2v_lib.machinery.course import NOTEBOOK_DIR, NOTEBOOKS

from conftest import TINY_TEACHER_SETTINGS  # noqa: E402

#: the mechanisms each lesson must show as library code (issue 12)
REQUIRED = {
    "01_data_preparation.ipynb": ["s2v_lib.machinery.synthtalk.speaker_voice", "s2v_lib.machinery.audio.mel_transform",
                                  "s2v_lib.machinery.audio.log_mel", "s2v_lib.machinery.detect.crop_box",
                                  "s2v_lib.probes.r_squared", "s2v_lib.probes.speaker_folds",
                                  "s2v_lib.probes.grouped_r2", "s2v_lib.probes.normalize_per_group"],
    "02_teacher_features.ipynb": ["s2v_lib.teachers.emotion_teacher_loss", "s2v_lib.teachers.cosface_loss",
                                  "s2v_lib.teachers.identity_teacher_loss"],
    "03_distillation.ipynb": ["s2v_lib.students.kd_loss", "s2v_lib.students.identity_loss",
                              "s2v_lib.students._GradReverse", "s2v_lib.students.grad_reverse"],
    "04_gan_training.ipynb": ["s2v_lib.gan.sync.contrastive_loss", "s2v_lib.gan.discriminators.sync_expert_loss",
                              "s2v_lib.gan.generator.FiLMBlock", "s2v_lib.gan.discriminators.FrameDiscriminator",
                              "s2v_lib.gan.discriminators.SequenceDiscriminator",
                              "s2v_lib.gan.discriminators.d_hinge_loss", "s2v_lib.gan.discriminators.g_hinge_loss",
                              "s2v_lib.gan.discriminators.reconstruction_loss", "s2v_lib.gan.train.GANTrainer.after_step"],
    "05_evaluation.ipynb": ["s2v_lib.evaluation.metrics.psnr", "s2v_lib.evaluation.metrics.ssim",
                            "s2v_lib.evaluation.metrics.lmd", "s2v_lib.evaluation.metrics.frechet_distance",
                            "s2v_lib.evaluation.metrics.bootstrap_ci", "s2v_lib.evaluation.scoring.paired",
                            "s2v_lib.evaluation.metrics.mcnemar", "s2v_lib.gan.sync.offset_profile"],
    "06_inference_demo.ipynb": ["s2v_lib.inference.Speech2VideoModel.normalize", "s2v_lib.inference.corpus_mel_floor",
                                "s2v_lib.gan.generator.Generator.generate_chunks"],
}


def _cells(name):
    return json.loads((NOTEBOOK_DIR / name).read_text())["cells"]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_lesson_cells_hold_the_library_source(name):
    mismatches = lesson.check_notebook(NOTEBOOK_DIR / name)
    assert not mismatches, "\n\n".join(map(str, mismatches)) + (
        "\n\nchange the library or the cell so that they agree; to copy the library's source into the cells: "
        f"python -m s2v_lib.machinery.lesson notebooks/{name} --write")


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_a_lesson_cell_defines_exactly_what_its_tags_name(name):
    for i, names, code in lesson.lesson_cells(NOTEBOOK_DIR / name):
        assert lesson.defined_names(code) == [n.rsplit(".", 1)[-1] for n in names], \
            f"{name} cell {i}: a lesson cell holds only the definitions its tags name, in their order"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_the_lessons_show_their_mechanisms(name):
    shown = [n for _, names, _ in lesson.lesson_cells(NOTEBOOK_DIR / name) for n in names]
    missing = [n for n in REQUIRED[name] if n not in shown]
    assert not missing, f"{name} shows no lesson cell for {missing}"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_exercises_have_collapsed_solutions_that_ci_runs(name):
    cells = _cells(name)
    heading = next(i for i, c in enumerate(cells) if c["cell_type"] == "markdown"
                   and "## Exercises" in lesson.cell_source(c))
    solutions = [i for i, c in enumerate(cells) if lesson.SOLUTION_TAG in c.get("metadata", {}).get("tags", [])]
    assert len(solutions) >= 2, f"{name}: at least two exercises with a worked solution"
    for i in solutions:
        assert i > heading, f"{name} cell {i}: a solution cell before the Exercises heading"
        assert cells[i]["metadata"].get("jupyter", {}).get("source_hidden") is True, \
            f"{name} cell {i}: solution cells are collapsed (metadata jupyter.source_hidden)"
        text = lesson.cell_source(cells[i - 1])
        assert cells[i - 1]["cell_type"] == "markdown" and "<summary>Hint</summary>" in text \
            and "<summary>Worked solution</summary>" in text, f"{name} cell {i}: its exercise needs a hint and a solution"
    guard = [lesson.cell_source(c) for c in cells[heading:] if c["cell_type"] == "code"]
    assert "lesson.snapshot(" in guard[0] and "lesson.unchanged(" in guard[-1], \
        f"{name}: the exercises start with lesson.snapshot and end with lesson.unchanged"


# ----------------------------------------------------------------------------------- the checker itself
def test_the_checker_finds_a_changed_line_and_write_puts_the_library_back(tmp_path):
    src = NOTEBOOK_DIR / "03_distillation.ipynb"
    nb = json.loads(src.read_text())
    cell = next(c for c in nb["cells"] if "lesson:s2v_lib.students.kd_loss" in c["metadata"].get("tags", []))
    text = lesson.cell_source(cell)
    assert "temperature ** 2" in text
    cell["source"] = text.replace("temperature ** 2", "temperature")  # a learner's edit, committed by mistake
    path = tmp_path / "edited.ipynb"
    path.write_text(json.dumps(nb))
    [found] = lesson.check_notebook(path)
    assert found.names == ["s2v_lib.students.kd_loss"]
    assert "-    return kl.mean() * temperature ** 2" in found.diff and "+    return kl.mean() * temperature" in found.diff
    assert lesson.write_notebook(path) == 1
    assert lesson.check_notebook(path) == []
    # trailing spaces and blank lines at the ends are not differences
    cell = next(c for c in json.loads(path.read_text())["cells"] if lesson.lesson_names(c) == ["s2v_lib.students.kd_loss"])
    assert lesson.normalise("\n" + lesson.cell_source(cell).replace("\n", "   \n") + "\n\n") == \
        lesson.source(students.kd_loss)


def test_a_tag_naming_nothing_says_which_tag_to_fix():
    with pytest.raises(LookupError, match="lesson:s2v_lib.students.kd_los.*has no kd_los"):
        lesson.resolve("s2v_lib.students.kd_los")
    assert lesson.resolve("s2v_lib.teachers.CosFaceHead.forward") is teachers.CosFaceHead.forward


def test_only_lesson_and_solution_cells_may_define_functions():
    assert lesson.defines_functions("def f(x):\n    return x")
    assert lesson.defines_functions("for i in range(3):\n    class A:\n        pass")
    assert not lesson.defines_functions("%matplotlib inline\nf = lambda x: x\nundefined = 1  # def in a comment")


# ----------------------------------------------------------------------------------- what the learner changes trains
def _exec_lesson(notebook, qualname, edit=None):
    """Run a notebook's lesson cell, optionally edited, in a namespace like the notebook's; return the function."""
    [(_, names, code)] = [c for c in lesson.lesson_cells(NOTEBOOK_DIR / notebook) if qualname in c[1]]
    if edit:
        assert edit[0] in code
        code = code.replace(*edit)
    module = __import__(qualname.rsplit(".", 1)[0], fromlist=["_"])
    namespace = dict(vars(module))  # the names the library module sees (torch, F, nn, ...)
    exec(compile(code, f"<lesson {qualname}>", "exec"), namespace)
    return namespace[qualname.rsplit(".", 1)[1]]


def test_an_edited_kd_cell_is_what_the_students_train_with(tiny_cache, tiny_features):
    utts = students.Utterances.load(tiny_cache, tiny_features, pools=("B",), temperature=2.0)
    cfg = StudentConfig(steps=4, batch_size=4, width=16, crop_frames=12, temperature=2.0)
    as_shown = _exec_lesson("03_distillation.ipynb", "s2v_lib.students.kd_loss")
    halved = _exec_lesson("03_distillation.ipynb", "s2v_lib.students.kd_loss",
                          ("return kl.mean() * temperature ** 2", "return 0.5 * kl.mean() * temperature ** 2"))
    library = students.train_students(utts, cfg, seed=3, progress=False)[2]
    shown = students.train_students(utts, cfg, seed=3, progress=False, emotion_loss=as_shown)[2]
    edited = students.train_students(utts, cfg, seed=3, progress=False, emotion_loss=halved)[2]
    np.testing.assert_array_equal(shown.emotion_loss, library.emotion_loss)  # the cell is the library's loss
    # same weights and batch at the first step: the edited cell's loss, half the library's
    assert edited.emotion_loss.iloc[0] == pytest.approx(0.5 * library.emotion_loss.iloc[0], rel=1e-5)


def test_an_edited_identity_loss_cell_is_what_the_students_train_with(tiny_cache, tiny_features):
    utts = students.Utterances.load(tiny_cache, tiny_features, pools=("B",))
    cfg = StudentConfig(steps=3, batch_size=4, width=16, crop_frames=12)
    no_l2 = _exec_lesson("03_distillation.ipynb", "s2v_lib.students.identity_loss",
                         ("+ l2 * ((pred - target)", "+ 0 * l2 * ((pred - target)"))
    library = students.train_students(utts, cfg, seed=1, progress=False)[2]
    edited = students.train_students(utts, cfg, seed=1, progress=False, identity_loss=no_l2)[2]
    assert edited.identity_loss.iloc[0] < library.identity_loss.iloc[0]  # the L2 term is gone from the first step


def test_an_edited_cosface_cell_reaches_the_identity_teacher(tiny_cache):
    cfg = TeacherConfig(**TINY_TEACHER_SETTINGS)
    index = split_index(tiny_cache.index, "A", "train")
    notebook = "02_teacher_features.ipynb"
    # the learner edits cosface_loss (no margin) and re-runs identity_teacher_loss's cell, which calls it
    namespace = dict(vars(teachers))
    for qualname, edit in [("s2v_lib.teachers.cosface_loss", ("margin * F.one_hot", "0 * margin * F.one_hot")),
                           ("s2v_lib.teachers.identity_teacher_loss", None)]:
        [(_, _, code)] = [c for c in lesson.lesson_cells(NOTEBOOK_DIR / notebook) if qualname in c[1]]
        exec(compile(code.replace(*edit) if edit else code, qualname, "exec"), namespace)
    library = teachers.train_identity_teacher(tiny_cache, index, cfg, seed=0, progress=False)[1]
    edited = teachers.train_identity_teacher(tiny_cache, index, cfg, seed=0, progress=False,
                                             loss=namespace["identity_teacher_loss"])[1]
    no_margin = teachers.train_identity_teacher(tiny_cache, index, dataclasses.replace(cfg, cosface_margin=0.0),
                                                seed=0, progress=False)[1]
    np.testing.assert_allclose(edited.loss, no_margin.loss, rtol=1e-6)  # the edit is exactly "no margin"
    assert edited.loss.iloc[0] < library.loss.iloc[0]  # a margin raises the loss


def test_the_cosface_lesson_equation_holds():
    cos = torch.tensor([[0.8, 0.5, 0.1], [0.2, 0.9, 0.3]])
    y = torch.tensor([0, 1])
    s, m = 24.0, 0.3
    true = torch.exp(s * (cos[torch.arange(2), y] - m))
    others = (torch.exp(s * cos) * (1 - torch.nn.functional.one_hot(y, 3))).sum(1)
    assert teachers.cosface_loss(cos, y, s, m).item() == pytest.approx(-torch.log(true / (true + others)).mean().item())
    assert teachers.cosface_loss(torch.tensor([[0.8, 0.5]]), torch.tensor([0]), s, m).item() == \
        pytest.approx(np.log(2), rel=1e-6)


def test_the_voice_lesson_formulas_hold_and_the_speakers_stay_the_same():
    """Notebook 01: ``speaker_voice`` without idiosyncrasies is its formulas; drawn inside ``make_speaker``
    it gives every corpus the speakers it had before the voice was a function of its own."""
    from s2v_lib.machinery import synthtalk

    v0, rate0 = synthtalk.speaker_voice(np.zeros(6), False, np.random.default_rng(0), jitter=0.0)
    assert v0.pitch_base == pytest.approx(155.0) and v0.formants == pytest.approx((100.0,) * 5)
    assert v0.pitch_range == pytest.approx(96.875) and rate0 == pytest.approx(172 * np.exp(-0.06))
    v1, _ = synthtalk.speaker_voice(np.array([1.0, 0, 0, 0, 0, 0]), True, np.random.default_rng(0), jitter=0.0)
    assert v1.pitch_base == pytest.approx(155 * np.exp(-0.3)) and v1.gender == "female"
    s = synthtalk.make_speaker(3, 7, "B")  # values from before the refactor: the same random draws, in order
    assert (s.voice.pitch_base, s.voice.formants[0], s.rate_wpm) == pytest.approx(
        (137.50716001490625, 96.65748085642949, 183.22216952009688), rel=1e-12)
    assert (s.face.face_w, s.face.skin_tone, s.voice.roughness, s.voice.breath, s.gender) == \
        (pytest.approx(0.33779067323549333, rel=1e-12), pytest.approx(0.31272974275945, rel=1e-12), 4, 2, "male")


def test_the_log_mel_lesson_equation_holds_and_an_edited_transform_reaches_it():
    """Notebook 01: log_mel = log(H^T |STFT|^2) (Slaney filterbank H); a 1 kHz tone is loudest in the band
    whose filter is highest at 1 kHz; the log_mel cell, re-run after an edited mel_transform cell, uses the edit."""
    import torchaudio

    from s2v_lib.config import FeatureConfig
    from s2v_lib.machinery import audio

    f, sr = FeatureConfig(), 16000
    hop, win = f.hop_length(sr), f.win_length(sr)
    tone = (0.5 * np.sin(2 * np.pi * 1000.0 * np.arange(sr) / sr)).astype(np.float32)
    X = torch.stft(torch.from_numpy(tone), f.n_fft, hop, win, torch.hann_window(win), center=True,
                   pad_mode="reflect", return_complex=True)
    H = torchaudio.functional.melscale_fbanks(f.n_fft // 2 + 1, f.fmin, f.fmax, f.n_mels, sr, norm="slaney",
                                              mel_scale="slaney")
    L = audio.log_mel(tone, sr, f)
    np.testing.assert_allclose(L, torch.log(((X.abs() ** 2).T @ H).clamp_min(1e-10)).numpy(), atol=1e-4)
    assert L.shape == (1 + sr // hop, f.n_mels) and L.mean(0).argmax() == H[32].argmax()
    namespace = dict(vars(audio))
    for qualname, edit in [("s2v_lib.machinery.audio.mel_transform", ("power=2.0", "power=1.0")),
                           ("s2v_lib.machinery.audio.log_mel", None)]:
        [(_, _, code)] = [c for c in lesson.lesson_cells(NOTEBOOK_DIR / "01_data_preparation.ipynb") if qualname in c[1]]
        exec(compile(code.replace(*edit) if edit else code, qualname, "exec"), namespace)
    magnitude = namespace["log_mel"](tone, sr, f)  # log of H^T |STFT|: the edited transform
    np.testing.assert_allclose(magnitude, torch.log(((X.abs()).T @ H).clamp_min(1e-10)).numpy(), atol=1e-4)


def test_the_r_squared_lesson_values():
    from s2v_lib import probes

    y = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    assert probes.r_squared(y, y) == pytest.approx([1.0])
    assert probes.r_squared(y, np.zeros_like(y)) == pytest.approx([0.0])
    assert probes.r_squared(y, -y) == pytest.approx([-3.0])
    assert np.isnan(probes.r_squared(np.ones((3, 1)), np.zeros((3, 1)))[0])  # a constant target: nothing to explain


# ----------------------------------------------------------------------------------- self-check helpers
def test_check_says_pass_and_miss_and_names_the_profile(capsys):
    assert lesson.check("accuracy", 0.96, at_least=0.95, needs="course")
    assert not lesson.check("eer", 0.2, at_most=0.05)
    assert not lesson.check("nan never passes", float("nan"), at_least=0.0)
    assert lesson.check("inside a band", 0.5, at_least=0.4, at_most=0.6)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "PASS  accuracy: 0.960 (target >= 0.95)  [a course-profile target]"
    assert lines[1] == "MISS  eer: 0.200 (target <= 0.05)"
    assert lines[2].startswith("MISS") and lines[3].startswith("PASS")
    with pytest.raises(ValueError, match="at_least, at_most"):
        lesson.check("no threshold", 1.0)


def test_compare_tells_exact_from_approximate_from_different(capsys):
    x = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert lesson.compare("same", x, x.clone())
    assert lesson.compare("close", x, x + 1e-8)
    assert not lesson.compare("far", x, x + 1e-3)
    assert not lesson.compare("shape", x, torch.ones(3))
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in out] == ["exact", "approximate", "DIFFERENT", "DIFFERENT"]


def test_unchanged_catches_a_rewritten_added_or_removed_file(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    (folder / "a.pt").write_bytes(b"12")
    (folder / "b.pt").write_bytes(b"34")
    before = lesson.snapshot(folder)
    assert lesson.unchanged(before)
    (folder / "a.pt").write_bytes(b"123")
    with pytest.raises(AssertionError, match="a.pt"):
        lesson.unchanged(before)
    before = lesson.snapshot(folder)
    (folder / "c.pt").write_bytes(b"5")
    with pytest.raises(AssertionError, match="c.pt"):
        lesson.unchanged(before)
    before = lesson.snapshot(folder)
    (folder / "b.pt").unlink()
    with pytest.raises(AssertionError, match="b.pt"):
        lesson.unchanged(before)
    with pytest.raises(AssertionError, match="nothing to compare"):
        lesson.unchanged(lesson.snapshot(tmp_path / "missing"))


def test_show_prints_the_library_source_with_its_place():
    shown = lesson.show(students.train_students).data
    assert shown.startswith("# s2v_lib/students.py, lines ") and shown.split("\n")[0].endswith(": train_students")
    assert "emotion_loss(out[\"logits\"], soft, cfg.temperature)" in shown
