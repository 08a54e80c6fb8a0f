import pytest

from s2v_lib.config import EMOTIONS, PROFILES, CorpusConfig, GANConfig, TeacherConfig, get_profile


def _leaves(tree, path=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, path + (key,))
        else:
            yield path + (key,), value


@pytest.mark.parametrize("name", ["smoke", "workshop", "course", "paper"])
def test_profiles_are_valid(name):
    p = get_profile(name)
    assert p.corpus.resolution in (64, 128) and p.mel_per_frame == 4
    assert set(p.corpus.emotions) == set(EMOTIONS)
    # every setting the profile names reaches the nested config it belongs to
    for path, value in _leaves(PROFILES[name]):
        obj = p
        for key in path:
            obj = getattr(obj, key)
        assert obj == value, (name, path)
    # and the settings it does not name keep their defaults
    assert p.teachers.lr == TeacherConfig().lr and p.gan.w_l1 == GANConfig().w_l1


def test_profile_sizes_grow():
    s, w, c, p = (get_profile(n).corpus for n in ("smoke", "workshop", "course", "paper"))
    assert s.n_speakers < w.n_speakers < c.n_speakers < p.n_speakers
    budgets = [get_profile(n).gan.steps for n in ("smoke", "workshop", "course")]
    assert budgets == sorted(budgets) and len(set(budgets)) == 3
    assert (s.n_speakers, c.n_speakers) == (8, 24) and p.n_speakers >= 200 and c.n_sentences >= 40


def test_overrides_and_seed():
    p = get_profile("smoke", seed=5, corpus={"n_speakers": 3, "resolution": 128})
    assert (p.corpus.n_speakers, p.corpus.resolution, p.corpus.seed) == (3, 128, 5)


@pytest.mark.parametrize("overrides, message", [
    ({"n_speakers": 0}, "n_speakers must be at least 1"),
    ({"emotions": ("anger", "boredom")}, "unknown emotion"),
    ({"resolution": 60}, "must be one of"),
    ({"intensities": ("extreme",)}, "unknown intensity"),
    ({"clips_per_speaker": 0}, "clips_per_speaker must be at least 1"),
])
def test_bad_settings_say_what_is_wrong(overrides, message):
    with pytest.raises(ValueError, match=message):
        get_profile("smoke", corpus=overrides)


def test_unknown_profile_and_unknown_setting():
    with pytest.raises(ValueError, match="unknown profile"):
        get_profile("huge")
    with pytest.raises(ValueError, match="unknown setting 'speakers'"):
        get_profile("smoke", corpus={"speakers": 3})


def test_validate_directly():
    with pytest.raises(ValueError, match="n_speakers"):
        CorpusConfig(n_speakers=0).validate()


def test_environment_yml_pins_what_pyproject_pins():
    """conda users get the same versions: every pin of pyproject.toml is in environment.yml."""
    import re
    import tomllib
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parent.parent
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    pins = project["dependencies"] + [d for ds in project["optional-dependencies"].values() for d in ds]
    env = yaml.safe_load((root / "environment.yml").read_text())["dependencies"]
    listed = {}
    for dep in env:
        for item in (dep["pip"] if isinstance(dep, dict) else [dep]):
            m = re.match(r"([A-Za-z0-9_.\-]+)\s*=?=\s*([0-9][^\s#]*)", item)
            if m:
                listed[m.group(1).lower()] = m.group(2)
    conda_names = {"soundfile": "pysoundfile"}
    for pin in pins:
        name, version = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", pin).groups()
        name = conda_names.get(name.lower(), name.lower())
        assert listed.get(name) == version, f"environment.yml should pin {name} {version} (pyproject.toml does)"
