"""The course runner's help for learners: parameters checked in one line, executed notebooks trusted,
videos that play wherever a notebook is opened."""
import re

import nbformat
import pytest

from s2v_lib.machinery import course, viz

DEFAULTS = 'profile = "course"            # smoke | course | paper\nrun_dir = "../runs/course"\nseed = 0\nsettings = {}\n'


@pytest.mark.parametrize("injected, message", [
    ('# Parameters\nprofil = "smoke"\n', "no parameter 'profil' (did you mean 'profile'?); its parameters are "
                                         "profile, run_dir, seed, settings"),
    ('# Parameters\nepochs = 3\n', "no parameter 'epochs'; its parameters are"),
])
def test_a_misspelt_parameter_stops_the_notebook_in_one_line(injected, message):
    with pytest.raises(course.NotebookParameterError, match=re.escape(message)) as err:
        course.check_parameters(dict(profile="smoke", settings={}), ["", DEFAULTS, injected])
    assert err.value._render_traceback_() == [f"NotebookParameterError: {err.value}"]  # IPython shows this line


@pytest.mark.parametrize("values, message", [
    (dict(profile="smok", settings={}), "unknown profile 'smok'; choose one of"),
    (dict(profile="smoke", settings={"gan": {"stepz": 3}}), "unknown setting 'stepz' for GANConfig"),
    (dict(profile="smoke", settings={"features": {"n_mels": 2}}), "n_mels must be at least 8"),
    (dict(profile="smoke", settings="n_mels=64"), "settings must be a dict"),
])
def test_an_unusable_profile_or_setting_stops_the_notebook_in_one_line(values, message):
    with pytest.raises(course.NotebookParameterError, match=message):
        course.check_parameters(values, ["", DEFAULTS, '# Parameters\nprofile = "smoke"\n'])


def test_known_parameters_and_no_injection_pass():
    course.check_parameters(dict(profile="smoke", settings={"features": {"n_mels": 64}}),
                            ["", DEFAULTS, '# Parameters\nprofile = "smoke"\nseed = 3\n'])
    course.check_parameters(dict(profile="course", settings={}), ["", DEFAULTS])  # run by hand in Jupyter


def test_executed_notebooks_are_trusted(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    from nbformat.sign import NotebookNotary

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    nbformat.write(nb, tmp_path / "x.ipynb")
    assert not NotebookNotary().check_signature(nbformat.read(tmp_path / "x.ipynb", 4))
    course.trust(tmp_path / "x.ipynb")
    assert NotebookNotary().check_signature(nbformat.read(tmp_path / "x.ipynb", 4))


def test_small_videos_are_embedded_large_ones_linked(tmp_path, monkeypatch):
    import numpy as np

    from s2v_lib.machinery.video import write_video

    path = write_video(tmp_path / "v.mp4", np.zeros((5, 32, 32, 3), np.uint8), 25)
    html = viz.show_video(path)._repr_html_()
    assert "data:video/mp4;base64," in html  # plays from any folder, and in an HTML export
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(viz, "EMBED_VIDEO_BYTES", 10)
    html = viz.show_video(path)._repr_html_()
    assert 'src="v.mp4"' in html and "base64" not in html


# ----------------------------------------------------------------------------------- run bundles
def _fake_run(root):
    (root / "checkpoints").mkdir(parents=True)
    (root / "teacher_features").mkdir()
    (root / "checkpoints" / "emotion_teacher.pt").write_bytes(b"weights" * 100)
    (root / "checkpoints" / "emotion_teacher.json").write_text('{"key": 1}')
    (root / "checkpoints" / ".gan.pt.123-abc.tmp").write_bytes(b"half a file")  # a crash's debris: not packed
    (root / "teacher_features" / "features.json").write_text("{}")
    (root / "cache").mkdir()
    (root / "cache" / "frames.u8").write_bytes(b"\0" * 4096)  # large and remade by notebook 01: not packed
    return root


def test_a_bundle_restores_the_trained_networks_into_a_fresh_run(tmp_path, capsys):
    from s2v_lib.machinery import bundle, cli

    run = _fake_run(tmp_path / "course")
    assert cli.main(["bundle", str(run)]) == 0
    packed = tmp_path / "course.s2v.tar"
    manifest = bundle.read_manifest(packed)
    assert sorted(manifest["files"]) == ["checkpoints/emotion_teacher.json", "checkpoints/emotion_teacher.pt",
                                         "teacher_features/features.json"]
    assert cli.main(["restore", str(packed), "--run", str(tmp_path / "laptop")]) == 0
    assert "next: make course RUN=" in capsys.readouterr().out
    for name in manifest["files"]:
        assert (tmp_path / "laptop" / name).read_bytes() == (run / name).read_bytes()
    assert not (tmp_path / "laptop" / "cache" / "frames.u8").exists()
    assert cli.main(["restore", str(packed), "--run", str(tmp_path / "laptop")]) == 0  # the same files: fine


def test_a_bundle_never_replaces_what_a_learner_trained_unless_asked(tmp_path, capsys):
    from s2v_lib.machinery import cli

    run = _fake_run(tmp_path / "course")
    cli.main(["bundle", str(run), "-o", str(tmp_path / "b.tar")])
    mine = _fake_run(tmp_path / "mine")
    (mine / "checkpoints" / "emotion_teacher.pt").write_bytes(b"my own training")
    capsys.readouterr()
    assert cli.main(["restore", str(tmp_path / "b.tar"), "--run", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "1 file(s) that differ" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (mine / "checkpoints" / "emotion_teacher.pt").read_bytes() == b"my own training"
    assert cli.main(["restore", str(tmp_path / "b.tar"), "--run", str(mine), "--overwrite"]) == 0
    assert (mine / "checkpoints" / "emotion_teacher.pt").read_bytes() == b"weights" * 100


@pytest.mark.parametrize("damage, message", [
    ("not a tar", "is not a speech2video run bundle"),
    ("outside", "points outside the run"),
    ("checksum", "is damaged"),
    ("missing", "no bundle at"),
])
def test_a_bad_bundle_is_refused_in_one_line(tmp_path, capsys, damage, message):
    import io
    import json
    import tarfile

    from s2v_lib.machinery import cli

    path = tmp_path / "b.tar"
    if damage == "not a tar":
        path.write_bytes(b"random bytes" * 50)
    elif damage in ("outside", "checksum"):
        name = "../../etc/evil" if damage == "outside" else "checkpoints/x.pt"
        data = json.dumps(dict(format=1, files={name: dict(bytes=3, sha256="0" * 64)})).encode()
        with tarfile.open(path, "w") as tar:
            for member, payload in (("bundle.json", data), (name, b"abc")):
                info = tarfile.TarInfo(member)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
    assert cli.main(["restore", str(path), "--run", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "etc").exists() and not list((tmp_path / "run").glob("checkpoints/*.pt"))


def test_a_run_without_networks_cannot_be_bundled(tmp_path, capsys):
    from s2v_lib.machinery import cli

    (tmp_path / "empty").mkdir()
    assert cli.main(["bundle", str(tmp_path / "empty")]) == 2
    assert "no trained networks" in capsys.readouterr().err


def test_executed_notebooks_become_web_pages(tmp_path, capsys):
    from s2v_lib.machinery import cli

    assert cli.main(["html", str(tmp_path)]) == 2 and "run the course first" in capsys.readouterr().err
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · Data"),
                                         nbformat.v4.new_code_cell("print(1)", outputs=[
                                             nbformat.v4.new_output("stream", name="stdout", text="1\n")])])
    (tmp_path / "notebooks").mkdir()
    nbformat.write(nb, tmp_path / "notebooks" / course.NOTEBOOKS[0])
    assert cli.main(["html", str(tmp_path)]) == 0
    page = (tmp_path / "html" / course.NOTEBOOKS[0].replace(".ipynb", ".html")).read_text()
    assert "01 · Data" in page and "print" in page
    assert "01_data_preparation.html" in (tmp_path / "html" / "index.html").read_text()


def test_the_course_records_where_and_from_what_its_figures_come(tmp_path, monkeypatch):
    import papermill

    from s2v_lib.machinery import runs

    ran = []
    monkeypatch.setattr(papermill, "execute_notebook", lambda src, out, **kw: (
        ran.append((src, kw["parameters"])), nbformat.write(nbformat.v4.new_notebook(), out)))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "jupyter"))
    course.run_course("smoke", tmp_path / "run", notebooks=course.NOTEBOOKS[:2], seed=3,
                      settings={"gan": {"steps": 5}})
    recorded = runs.read_metrics(tmp_path / "run")["run"]
    assert (recorded["profile"], recorded["seed"], recorded["settings"]) == ("smoke", 3, {"gan": {"steps": 5}})
    assert recorded["cores"] >= 1 and recorded["cpu"] and recorded["commit"]
    assert [p["seed"] for _, p in ran] == [3, 3]


def test_a_bundled_gan_checkpoint_loads_without_its_optimisers(tmp_path):
    import torch

    from s2v_lib.config import GANConfig, GeneratorConfig
    from s2v_lib.gan import train
    from s2v_lib.machinery import bundle

    cfg = GANConfig(batch_size=2, window=6, generator=GeneratorConfig(width=8), d_width=8)
    data = train.GANData.synthetic(n_clips=2, n_frames=8, resolution=32)
    trainer = train.GANTrainer(cfg, data, {}, 32, 0)
    trainer.train(2, progress=False)
    trainer.save(tmp_path / "run" / "checkpoints" / "gan_speech2video.pt")
    full = (tmp_path / "run" / "checkpoints" / "gan_speech2video.pt").stat().st_size
    packed = bundle.pack(tmp_path / "run", tmp_path / "b.tar")
    assert bundle.read_manifest(packed)["files"]["checkpoints/gan_speech2video.pt"]["bytes"] < 0.7 * full
    bundle.restore(packed, tmp_path / "laptop")
    again = train.GANTrainer(cfg, data, {}, 32, 0)
    again.load(tmp_path / "laptop" / "checkpoints" / "gan_speech2video.pt")
    assert again.step_count == 2
    for a, b in zip(trainer.generator.state_dict().values(), again.generator.state_dict().values()):
        assert torch.equal(a, b)
