"""scripts/report.py: the README's figures from a run's metrics.json, between markers, with where they were measured."""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("report", ROOT / "scripts" / "report.py")
report = importlib.util.module_from_spec(spec)
spec.loader.exec_module(report)


def _system(psnr=None, ssim=None, emotion_acc=0.58, csim=None, blinks=0.0, head=0.0091, lse_d=0.481):
    """One system's row as scoring.to_metrics writes it (NaN metrics left out)."""
    row = {"clips": 45}
    for name, value in dict(psnr=psnr, ssim=ssim, lse_d=lse_d, emotion_acc=emotion_acc, csim=csim, blinks_per_s=blinks,
                            head_motion=head).items():
        if value is not None:
            row[name], row[f"{name}_ci95"] = value, [round(value * 0.9, 4), round(value * 1.1, 4)]
    return row


def smoke_metrics(emotion_acc=0.58) -> dict:
    """The sections the six notebooks write, shaped as they write them (values of a smoke-sized run)."""
    return {
        "data": dict(n_clips=144, n_speakers=8, n_emotions=6, hours=0.125, speakers_per_pool={"A": 3, "B": 3, "C": 2},
                     resolution=64, frames=11250, voice_to_face_r2=0.06, voice_to_face_r2_chance=0.0,
                     voice_to_face_r2_per_attribute={"face_width": 0.4}, prosody_emotion_acc=0.67,
                     prosody_emotion_chance=0.17),
        "teachers": dict(emotion_acc_pool_a=0.99, emotion_acc_pool_a_chance=0.31, emotion_acc_pool_b=0.911,
                         emotion_acc_pool_b_chance=0.19, emotion_clip_acc_pool_b=0.966, identity_eer_pool_b=0.026,
                         identity_eer_chance=0.5, temperature=3.0, frames_scored_pool_b=4000,
                         training_seconds=dict(emotion=60.0, identity=20.0)),
        "distillation": dict(students="distilled", emotion_acc_observed=0.69, emotion_acc_observed_chance=0.21,
                             emotion_acc_unseen=0.61, emotion_acc_unseen_chance=0.17, teacher_agreement=0.69,
                             teacher_agreement_unseen=0.6, identity_top1_observed=0.77,
                             identity_top1_observed_chance=0.11, identity_top5_observed=0.99,
                             identity_top5_observed_chance=0.56, identity_top1_unseen=0.06,
                             identity_top1_unseen_chance=0.2, identity_top5_unseen=0.5, identity_top5_unseen_chance=0.9,
                             probe_emotion_from_identity=0.19, probe_emotion_from_identity_chance=0.21,
                             probe_speaker_from_emotion=0.21, probe_speaker_from_emotion_chance=0.11,
                             supervised=dict(emotion_acc_observed=0.74, emotion_acc_unseen=0.59,
                                             identity_top1_observed=0.78, identity_top5_observed=0.99,
                                             identity_top1_unseen=0.1)),
        "gan": dict(steps=30, seconds=12.3, final_losses={"l1": 0.05}, heldout_l1=0.035,
                    sync_expert=dict(pair_accuracy=0.934, pair_chance=0.5, offset_zero=1.0, real_lse_d=0.49,
                                     real_lse_c=0.64),
                    systems={"speech2video": dict(steps=1000.0, seconds=535.2, final_l1=0.029, final_d_loss=3.1,
                                                  heldout_l1=0.035),
                             "static_image_baseline": dict(steps=1000.0, seconds=542.0, final_l1=0.03,
                                                           final_d_loss=3.0, heldout_l1=0.024)}),
        "evaluation": dict(
            systems={"real": _system(emotion_acc=0.98, blinks=0.36, head=0.0302, lse_d=0.493),
                     "speech2video": _system(psnr=25.5, ssim=0.741, emotion_acc=emotion_acc, csim=0.824),
                     "static_image_baseline": _system(psnr=27.4, ssim=0.804, emotion_acc=0.56, csim=0.913)},
            unseen={"speech2video": _system(psnr=16.2, ssim=0.448, csim=-0.094)},
            claims={"observed": [dict(claim="1. emotion captured from speech alone", holds=True,
                                      verdict="holds: the judge reads 58 % | of clips"),
                                 dict(claim="2. spontaneous motion", holds=False, verdict="not shown: no blinks"),
                                 dict(claim="3. almost indistinguishable", holds=None, verdict="not measured")]},
            clips=dict(observed=45, unseen=60),
            landmark_regressor=dict(error_px=0.729, mouth_error_px=0.70, nme=0.0329, mean_shape_error_px=1.1675,
                                    frames=3356, blinks_true=0.35, blinks_found=0.417, head_motion_true=0.032,
                                    head_motion_found=0.0331),
            landmark_judge=dict(source="trained", fit=True, reason="error 62% of the mean face's"),
            judges=dict(seed=1, emotion_accuracy=0.9084, identity_eer=0.002),
            emotion_swap=dict(follows=0.6, own=0.1111)),
        "inference": dict(system="speech2video", realtime_factor=dict(heldout=11.3, typed=9.87), heldout_clip="c1",
                          heldout_emotion_heard="happy", heldout_emotion_true="happy"),
    }


def make_run(path: Path, metrics: dict, seed: int = 3) -> Path:
    (path / "notebooks").mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (path / "course_timings.json").write_text(json.dumps(dict(profile="smoke", seconds={
        "01_data_preparation.ipynb": 23.0, "04_gan_training.ipynb": 139.4})))
    nb = dict(cells=[], nbformat=4, nbformat_minor=5, metadata=dict(papermill=dict(parameters=dict(
        profile="smoke", run_dir=str(path), corpus_dir="", seed=seed, settings={}))))
    (path / "notebooks" / "01_data_preparation.ipynb").write_text(json.dumps(nb))
    return path


def run_report(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "report.py"), *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, env=dict(os.environ))


README = "# speech2video\n\nProse above.\n\n<!-- report:begin -->\nold figures\n<!-- report:end -->\n\nProse below.\n"


def test_the_block_between_the_markers_holds_the_runs_figures_and_where_they_were_measured(tmp_path):
    run = make_run(tmp_path / "smoke", smoke_metrics())
    readme = tmp_path / "README.md"
    readme.write_text(README)
    done = run_report(run, "--readme", readme)
    assert done.returncode == 0, done.stderr
    text = readme.read_text()
    head, rest = text.split(report.BEGIN)
    block, tail = rest.split(report.END)
    assert head == "# speech2video\n\nProse above.\n\n" and tail == "\n\nProse below.\n"  # nothing else changes
    assert "old figures" not in block
    here = report.machine()
    assert f"Measured on **{here['cpu']}, {here['cores']} cores**, commit `{report.checkout()}`" in block
    assert "profile `smoke`, seed 3; machine and commit are this checkout's: the run recorded none" in block
    assert "| emotion teacher, frames of pool B (people it never saw) | 0.911 (clips: 0.966) | 0.19 |" in block
    assert "| voice -> face retrieval top-1 / top-5, pool B | 0.77 / 0.99 | 0.11 / 0.56 |" in block
    assert "| speech2video | 1,000 | 535 | 0.029 | 0.035 |" in block
    assert "| speech2video | 25.5 [22.9, 28.1] | 0.741 [0.667, 0.815] | - | - |" in block  # LMD not measured
    assert "Unseen speakers (60 clips" in block and "-0.094 [-0.085, -0.103]" in block
    assert "| 1. emotion captured from speech alone | **holds** | holds: the judge reads 58 % / of clips |" in block
    assert "| 2. spontaneous motion | **not shown** |" in block and "| not measured |" in block
    assert ("Landmark judge (trained; fit to judge: yes) on 3,356 real held-out frames: mean error 0.73 px (mouth "
            "0.70 px, NME 0.033) against 1.17 px for the mean face; blinks 0.42/s found where the true landmarks "
            "give 0.35/s") in block
    assert "the emotion judge reads 0.908 of frames and the identity judge has an EER of 0.002" in block
    assert "shows that clip's emotion in 0.60 of clips and the speech's own in 0.11" in block
    assert "held-out recording 11.3x, typed sentence 9.9x" in block
    assert "| 04_gan_training | 2 min 19 s |" in block and "| all | 2 min 42 s |" in block
    assert "Not in this run" not in block
    again = run_report(run, "--readme", readme)
    assert again.returncode == 0 and "already up to date" in again.stdout and readme.read_text() == text


def test_a_recorded_machine_wins_and_several_runs_give_the_spread(tmp_path):
    recorded = dict(smoke_metrics(), run=dict(cpu="Test CPU 9000", cores=4, commit="abc1234", profile="course",
                                              seed=0))
    first = make_run(tmp_path / "seed0", recorded)
    second = make_run(tmp_path / "seed1", dict(smoke_metrics(emotion_acc=0.42), run=dict(recorded["run"], seed=1)))
    done = run_report(first, second, "--stdout")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert ("Measured on **Test CPU 9000, 4 cores**, commit `abc1234`, profile `course`, seed 0; machine and commit "
            "as the run recorded them (`seed0/metrics.json`)") in out
    assert "Spread over: `seed1` (Test CPU 9000, 4 cores, commit `abc1234`, profile `course`, seed 1)" in out
    assert "| speech2video emotion accuracy, observed (judge) | 0.58 (0.42 to 0.58) |" in out
    assert "| emotion teacher, frames of pool B | 0.911 (0.911 to 0.911) |" in out
    assert "| speech2video SSIM / baseline SSIM, observed | 0.741 (0.741 to 0.741) / 0.804 (0.804 to 0.804) |" in out


def test_several_runs_set_each_claims_verdict_and_figure_side_by_side(tmp_path):
    def with_claims(holds, accuracy, p_face):
        m = smoke_metrics(emotion_acc=accuracy)
        m["evaluation"]["claims"]["observed"][0] = dict(
            claim="1. emotion from speech alone", holds=holds, verdict="...",
            numbers=dict(accuracy=accuracy, real=0.9, p_value=1e-5 if holds else 0.2, chance=0.3))
        m["evaluation"]["claims"]["observed"][1]["numbers"] = dict(blinks_per_s=None, real_head_motion=None)
        m["evaluation"]["unseen_face"] = {"speech2video": dict(difference=0.05, p_value=p_face, holds=p_face < 0.01)}
        return m

    first = make_run(tmp_path / "seed0", with_claims(True, 0.72, 3e-6), seed=0)
    second = make_run(tmp_path / "seed1", with_claims(False, 0.36, 0.2), seed=1)
    out = run_report(first, second, "--stdout").stdout
    assert "| claim | seed0 (seed 0) | seed1 (seed 1) |" in out
    assert ("| 1. emotion from speech alone, observed | holds: 0.72, 0.80 of real; p = 1e-05 | "
            "not shown: 0.36, 0.40 of real; p = 0.2 |") in out
    assert "| 2. spontaneous motion, observed | not shown | not shown |" in out  # nulls: the verdict alone
    assert "| unseen speakers: the face is the speaker's | holds: 0.050, p = 3e-06 | not shown: 0.050, p = 0.2 |" in out
    assert "| ... its one-sided Wilcoxon p over speakers | 3e-06 (3e-06 to 0.2) |" in out
    assert "The claims in each run" not in run_report(first, "--stdout").stdout  # one run: its tables say it


def test_a_partial_run_says_what_is_missing_and_errors_name_the_fix(tmp_path):
    run = make_run(tmp_path / "partial", {"data": smoke_metrics()["data"]})
    done = run_report(run, "--stdout")
    assert done.returncode == 0, done.stderr
    assert "Not in this run's metrics.json yet: teachers, distillation, gan, evaluation, inference" in done.stdout
    assert "### Data (notebook 01): 144 clips of 8 speakers, 0.12 h" in done.stdout

    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    bad = run_report(run, "--readme", readme)
    assert bad.returncode == 2 and "needs the markers <!-- report:begin --> and <!-- report:end -->" in bad.stderr
    assert readme.read_text() == "# no markers here\n"
    missing = run_report(tmp_path / "nowhere", "--stdout")
    assert missing.returncode == 2 and "does not exist: run the course first (make course RUN=" in missing.stderr
    (run / "metrics.json").write_text("{not json")
    broken = run_report(run, "--stdout")
    assert broken.returncode == 2 and "is not valid JSON" in broken.stderr


def test_replace_block_keeps_everything_outside_the_markers():
    assert report.replace_block(README, "new\n") == README.replace("old figures\n", "new\n")
    with pytest.raises(report.ReportError, match="once each and in that order"):
        report.replace_block(report.END + report.BEGIN, "x\n")
