"""The README's measured figures, written from a run's ``metrics.json``: ``make report [RUN=runs/course]``.

    python scripts/report.py runs/course [runs/course-seed1 ...] [--readme README.md] [--stdout]

Reads ``<run>/metrics.json`` (one section per stage, written by the notebooks), ``<run>/course_timings.json``
(``make course``) and the parameters papermill recorded in the executed notebooks (``<run>/notebooks/``),
and writes one markdown block between the README's markers::

    <!-- report:begin -->
    <!-- report:end -->

replacing what was between them and nothing else. The block says on which machine (CPU model,
cores), commit, profile and seed its figures were measured: the run's own record where it has
one (a ``run`` section of ``metrics.json`` with ``cpu``, ``cores``, ``commit``, ``profile``,
``seed``), else the profile and seed papermill recorded and this machine and checkout, marked as
such. With several runs (the same profile with other seeds, or on another machine) the tables
show the first, and the headline figures add the spread over all of them (min to max).
The same metrics give the same block, byte for byte.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from s2v_lib.machinery.runs import checkout, machine  # noqa: E402  (the run records the same)
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
NOTEBOOKS = ["01_data_preparation", "02_teacher_features", "03_distillation", "04_gan_training",
             "05_evaluation", "06_inference_demo"]
#: evaluation metrics: key -> (column, decimals), in the README's order
METRICS = {"psnr": ("PSNR dB", 1), "ssim": ("SSIM", 3), "lmd_mouth": ("LMD mouth", 2), "lmd_face": ("LMD face", 2),
           "lse_d": ("LSE-D", 3), "lse_c": ("LSE-C", 3), "emotion_acc": ("emotion acc.", 2), "csim": ("CSIM", 3),
           "fd": ("FD", 1), "blinks_per_s": ("blinks/s", 2), "head_motion": ("head motion", 4)}


class ReportError(ValueError):
    """A run or README the report cannot use, with the fix in words (the script exits with code 2)."""


# ----------------------------------------------------------------------------------- reading a run
def papermill_parameters(run: Path) -> dict:
    """The parameters papermill gave the run's executed notebooks (profile, seed, settings), from the first found."""
    for name in NOTEBOOKS:
        path = run / "notebooks" / f"{name}.ipynb"
        if path.exists():
            try:
                params = json.loads(path.read_text())["metadata"]["papermill"]["parameters"]
            except (ValueError, KeyError, TypeError):
                continue
            return dict(params)
    return {}


def read_run(run) -> dict:
    """``metrics``, ``timings`` (notebook -> seconds) and ``provenance`` of one run directory."""
    run = Path(run)
    path = run / "metrics.json"
    if not path.exists():
        raise ReportError(f"{path} does not exist: run the course first (make course RUN={run})")
    try:
        metrics = json.loads(path.read_text())
    except ValueError as exc:
        raise ReportError(f"{path} is not valid JSON ({exc}); run the notebooks again to rewrite it") from exc
    if not isinstance(metrics, dict) or not metrics:
        raise ReportError(f"{path} holds no sections: run the notebooks (make course RUN={run})")
    timings_path, timings = run / "course_timings.json", {}
    if timings_path.exists():
        try:
            timings = json.loads(timings_path.read_text())
        except ValueError:
            timings = {}
    params = papermill_parameters(run)
    recorded = metrics.get("run") if isinstance(metrics.get("run"), dict) else {}
    here = machine()
    prov = dict(profile=recorded.get("profile", params.get("profile", timings.get("profile", run.name))),
                seed=recorded.get("seed", params.get("seed", "not recorded")),
                settings=recorded.get("settings", params.get("settings") or {}))
    if "cpu" in recorded:
        prov.update(cpu=recorded["cpu"], cores=recorded.get("cores", "?"),
                    commit=recorded.get("commit", "not recorded"), where="machine and commit as the run recorded them")
    else:
        prov.update(cpu=here["cpu"], cores=here["cores"], commit=checkout(),
                    where="machine and commit are this checkout's: the run recorded none")
    return dict(path=run, metrics=metrics, timings=timings.get("seconds", {}), provenance=prov)


# ----------------------------------------------------------------------------------- formatting
def number(value, decimals: int = 3) -> str:
    """A figure as the README writes it: ``-`` when missing, thousands separated."""
    if value is None or isinstance(value, str):
        return "-" if value is None else value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if decimals == "g":  # a p-value: two significant digits
        return f"{value:.2g}"
    return f"{value:,.{decimals}f}"


def get(metrics: dict, dotted: str):
    """``metrics["a"]["b"]`` for ``"a.b"``; None when any part is missing."""
    value = metrics
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def table(header: list, rows: list) -> list:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + \
        ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]


def minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


# ----------------------------------------------------------------------------------- sections
def provenance_lines(runs: list) -> list:
    first = runs[0]["provenance"]
    settings = f", settings {json.dumps(first['settings'], sort_keys=True)}" if first["settings"] else ""
    lines = [f"Measured on **{first['cpu']}, {first['cores']} cores**, commit `{first['commit']}`, profile "
             f"`{first['profile']}`, seed {first['seed']}{settings}; {first['where']} "
             f"(`{runs[0]['path'].name}/metrics.json`)."]
    for other in runs[1:]:
        p = other["provenance"]
        lines.append(f"Spread over: `{other['path'].name}` ({p['cpu']}, {p['cores']} cores, commit `{p['commit']}`, "
                     f"profile `{p['profile']}`, seed {p['seed']}).")
    lines.append("A rerun with the same seed on the same machine gives the same figures; another machine (or "
                 "seed) moves them a little: compare runs with `scripts/report.py RUN1 RUN2 ...`.")
    return lines


#: headline figures: (label, metrics path, decimals)
HEADLINE = [
    ("emotion teacher, frames of pool B", "teachers.emotion_acc_pool_b", 3),
    ("identity teacher, verification EER on pool B", "teachers.identity_eer_pool_b", 3),
    ("emotion student, held-out sentences of pool B", "distillation.emotion_acc_observed", 2),
    ("voice -> face retrieval top-1, pool B", "distillation.identity_top1_observed", 2),
    ("voice -> face retrieval top-1, unseen speakers", "distillation.identity_top1_unseen", 2),
    ("sync expert prefers the in-sync sound (held-out windows)", "gan.sync_expert.pair_accuracy", 3),
    ("speech2video held-out L1", "gan.heldout_l1", 3),
    ("speech2video emotion accuracy, observed (judge)", "evaluation.systems.speech2video.emotion_acc", 2),
    ("real clips' emotion accuracy, observed (judge)", "evaluation.systems.real.emotion_acc", 2),
    ("speech2video blinks per second, observed", "evaluation.systems.speech2video.blinks_per_s", 2),
    ("speech2video head motion, observed (px²/frame)", "evaluation.systems.speech2video.head_motion", 4),
    ("speech2video SSIM / baseline SSIM, observed", ("evaluation.systems.speech2video.ssim",
                                                    "evaluation.systems.static_image_baseline.ssim"), 3),
    ("speech2video CSIM / baseline CSIM, observed", ("evaluation.systems.speech2video.csim",
                                                    "evaluation.systems.static_image_baseline.csim"), 3),
    ("speech2video CSIM, unseen speakers", "evaluation.unseen.speech2video.csim", 3),
    ("unseen speakers: generated face's cosine to its own speaker minus to others' (speakers)",
     "evaluation.unseen_face.speech2video.difference", 3),
    ("... its one-sided Wilcoxon p over speakers", "evaluation.unseen_face.speech2video.p_value", "g"),
]


def headline_lines(runs: list) -> list:
    rows = []
    for label, path, decimals in HEADLINE:
        paths = path if isinstance(path, tuple) else (path,)
        cells = []
        for p in paths:
            values = [get(r["metrics"], p) for r in runs]
            first = number(values[0], decimals)
            found = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
            if len(runs) > 1 and found:
                first += f" ({number(min(found), decimals)} to {number(max(found), decimals)})"
            cells.append(first)
        if any(c != "-" for c in cells):
            rows.append([label, " / ".join(cells)])
    if not rows:
        return []
    header = ["figure", "measured" + (f" (spread over {len(runs)} runs)" if len(runs) > 1 else "")]
    return ["### Headline figures", ""] + table(header, rows)


def _claim_figure(m: dict, key: str, claim: str) -> str:
    """One claim's deciding figure in a few words, from the numbers notebook 05 recorded."""
    found = [c for c in get(m, f"evaluation.claims.{key}") or [] if str(c.get("claim", "")).startswith(claim)]
    if not found:
        return "-"
    c, n = found[0], found[0].get("numbers") or {}
    word = "holds" if c.get("holds") else ("not shown" if c.get("holds") is False else "not measured")
    try:
        figure = _deciding(n, claim)
    except (TypeError, KeyError, ZeroDivisionError):  # a figure recorded as null (not measured)
        figure = ""
    return f"{word}: {figure}" if figure else word


def _deciding(n: dict, claim: str) -> str:
    """The figure that decides ``claim`` ("1" to "4"), from its recorded ``numbers``; "" when it has none."""
    if claim == "1" and n.get("real"):
        return f"{n['accuracy']:.2f}, {n['accuracy'] / n['real']:.2f} of real; p = {n['p_value']:.2g}"
    if claim == "2" and n.get("real_head_motion"):
        return (f"blinks {n['blinks_per_s']:.2f}/s (real {n['real_blinks_per_s']:.2f}); head motion "
                f"{n['head_motion'] / n['real_head_motion']:.0%} of real")
    if claim == "3" and n.get("comparisons"):
        return f"{sum(bool(x.get('equivalent')) for x in n['comparisons'])} of {len(n['comparisons'])} metrics"
    if claim == "4" and "accuracy_a" in n:
        return f"{n['accuracy_a']:.2f} vs {n['accuracy_b']:.2f}; McNemar p = {n['p_value']:.2g}"
    return ""


def claims_over_runs(runs: list) -> list:
    """With several runs: each claim's verdict and deciding figure in each run, side by side."""
    if len(runs) < 2 or not any(get(r["metrics"], "evaluation.claims") for r in runs):
        return []
    names = [f"{r['path'].name} (seed {r['provenance']['seed']})" for r in runs]
    rows = []
    for key in ("observed", "unseen"):
        for claim, label in (("1", "1. emotion from speech alone"), ("2", "2. spontaneous motion"),
                             ("3", "3. indistinguishable from the baseline"), ("4", "4. better than no_emotion")):
            cells = [_claim_figure(r["metrics"], key, claim) for r in runs]
            if any(c != "-" for c in cells):
                rows.append([f"{label}, {key}"] + cells)
    faces = [get(r["metrics"], "evaluation.unseen_face.speech2video") for r in runs]
    if any(faces):
        rows.append(["unseen speakers: the face is the speaker's"] + [
            "-" if not f else (f"{'holds' if f.get('holds') else 'not shown'}: {number(f.get('difference'), 3)}, "
                               f"p = {number(f.get('p_value'), 'g')}") for f in faces])
    return ["### The claims in each run", ""] + table(["claim"] + names, rows)


def data_lines(m: dict) -> list:
    d = m.get("data")
    if not d:
        return []
    rows = [["voice statistics -> face attributes, mean R²", number(d.get("voice_to_face_r2"), 2),
             number(d.get("voice_to_face_r2_chance"), 0)],
            ["prosody -> emotion, 6 classes", number(d.get("prosody_emotion_acc"), 2),
             number(d.get("prosody_emotion_chance"), 2)]]
    return [f"### Data (notebook 01): {d.get('n_clips', '?')} clips of {d.get('n_speakers', '?')} speakers, "
            f"{number(d.get('hours'), 2)} h", ""] + table(["probe (speakers it never saw)", "measured", "chance"], rows)


def students_lines(m: dict) -> list:
    t, s = m.get("teachers", {}), m.get("distillation", {})
    if not t and not s:
        return []
    sup = s.get("supervised", {})
    rows = [
        ["emotion teacher, held-out frames of pool A", number(t.get("emotion_acc_pool_a")),
         number(t.get("emotion_acc_pool_a_chance"), 2)],
        ["emotion teacher, frames of pool B (people it never saw)",
         f"{number(t.get('emotion_acc_pool_b'))} (clips: {number(t.get('emotion_clip_acc_pool_b'))})",
         number(t.get("emotion_acc_pool_b_chance"), 2)],
        ["identity teacher, verification EER on pool B pairs", number(t.get("identity_eer_pool_b")),
         number(t.get("identity_eer_chance"), 1)],
        [f"emotion student ({s.get('students', '?')}), held-out sentences of pool B",
         f"{number(s.get('emotion_acc_observed'), 2)} (supervised {number(sup.get('emotion_acc_observed'), 2)})",
         number(s.get("emotion_acc_observed_chance"), 2)],
        ["emotion student, unseen speakers (pool C)",
         f"{number(s.get('emotion_acc_unseen'), 2)} (supervised {number(sup.get('emotion_acc_unseen'), 2)})",
         number(s.get("emotion_acc_unseen_chance"), 2)],
        ["agreement with the teacher, pool B held-out", number(s.get("teacher_agreement"), 2), ""],
        ["voice -> face retrieval top-1 / top-5, pool B",
         f"{number(s.get('identity_top1_observed'), 2)} / {number(s.get('identity_top5_observed'), 2)}",
         f"{number(s.get('identity_top1_observed_chance'), 2)} / {number(s.get('identity_top5_observed_chance'), 2)}"],
        ["voice -> face retrieval top-1, unseen speakers", number(s.get("identity_top1_unseen"), 2),
         number(s.get("identity_top1_unseen_chance"), 2)],
        ["probe: emotion from the identity embedding", number(s.get("probe_emotion_from_identity"), 2),
         number(s.get("probe_emotion_from_identity_chance"), 2)],
        ["probe: speaker from the emotion embedding", number(s.get("probe_speaker_from_emotion"), 2),
         number(s.get("probe_speaker_from_emotion_chance"), 2)],
    ]
    return ["### Teachers and students (notebooks 02 and 03)", ""] + table(["what", "measured", "chance"], rows)


def gan_lines(m: dict) -> list:
    g = m.get("gan")
    if not g:
        return []
    lines = ["### The GAN (notebook 04)", ""]
    sync = g.get("sync_expert", {})
    if sync:
        lines += [f"Sync expert on held-out clips: prefers the in-sync sound in {number(sync.get('pair_accuracy'))} "
                  f"of windows (chance {number(sync.get('pair_chance'), 1)}), best offset 0 for "
                  f"{number(sync.get('offset_zero'), 2)} of clips; real clips LSE-D {number(sync.get('real_lse_d'))}, "
                  f"LSE-C {number(sync.get('real_lse_c'))}.", ""]
    rows = [[name, number(r.get("steps"), 0), number(r.get("seconds"), 0), number(r.get("final_l1")),
             number(r.get("heldout_l1"))] for name, r in g.get("systems", {}).items()]
    return lines + table(["system", "steps", "seconds", "L1 on training windows (last 20 steps)",
                          "L1 on held-out sentences"], rows)


def judges_lines(e: dict) -> list:
    """What notebook 05's judges were checked to do before they judged (landmarks, emotion, identity)."""
    lines = []
    lm, fit = e.get("landmark_regressor"), e.get("landmark_judge", {})
    if lm:
        lines.append(f"Landmark judge ({fit.get('source', '?')}; fit to judge: {'yes' if fit.get('fit') else 'no'}) "
                     f"on {number(lm.get('frames'), 0)} real held-out frames: mean error "
                     f"{number(lm.get('error_px'), 2)} px (mouth {number(lm.get('mouth_error_px'), 2)} px, NME "
                     f"{number(lm.get('nme'))}) against {number(lm.get('mean_shape_error_px'), 2)} px for the mean "
                     f"face; blinks {number(lm.get('blinks_found'), 2)}/s found where the true landmarks give "
                     f"{number(lm.get('blinks_true'), 2)}/s, head motion {number(lm.get('head_motion_found'), 4)} "
                     f"where they give {number(lm.get('head_motion_true'), 4)} px²/frame.")
    elif fit:
        lines.append(f"Landmark judge: {fit.get('source', '?')}, fit to judge: {'yes' if fit.get('fit') else 'no'} "
                     f"({fit.get('reason', '')}).")
    j = e.get("judges")
    if j:
        lines.append(f"Emotion and identity judges (teachers trained again with seed {j.get('seed', '?')}, networks "
                     f"the GAN never trained against): on real pool B frames the emotion judge reads "
                     f"{number(j.get('emotion_accuracy'))} of frames and the identity judge has an EER of "
                     f"{number(j.get('identity_eer'))}.")
    swap = e.get("emotion_swap")
    if swap:
        lines.append(f"Emotion swap: speech2video fed another clip's emotion embedding shows that clip's emotion in "
                     f"{number(swap.get('follows'), 2)} of clips and the speech's own in {number(swap.get('own'), 2)}.")
    return [" ".join(lines), ""] if lines else []


def evaluation_lines(m: dict) -> list:
    e = m.get("evaluation")
    if not e:
        return []
    lines = judges_lines(e)
    clips = e.get("clips", {})
    for key, title in (("systems", "Observed speakers"), ("unseen", "Unseen speakers")):
        systems = e.get(key)
        if not systems:
            continue
        n = clips.get("observed" if key == "systems" else "unseen", "?")
        rows = []
        for name, r in systems.items():
            cells = []
            for metric, (_, decimals) in METRICS.items():
                if metric not in r:
                    cells.append("-")
                    continue
                lo, hi = (r.get(f"{metric}_ci95") or [None, None])[:2]
                cells.append(f"{number(r[metric], decimals)} [{number(lo, decimals)}, {number(hi, decimals)}]")
            rows.append([name] + cells)
        lines += [f"{title} ({n} clips; `evaluation.{key}`):", ""] + \
            table(["system"] + [label for label, _ in METRICS.values()], rows) + [""]
    for name, verdicts in e.get("claims", {}).items():
        rows = [[v.get("claim", "?"), "**holds**" if v.get("holds") else ("**not shown**" if v.get("holds") is False
                                                                          else "not measured"),
                 str(v.get("verdict", "")).replace("|", "/").replace("\n", " ")] for v in verdicts]
        lines += [f"The paper's claims, {name} speakers:", ""] + table(["claim", "verdict", "the numbers"], rows) + [""]
    return ["### Evaluation (notebook 05)", ""] + lines[:-1] if lines else []


def inference_lines(m: dict) -> list:
    i = m.get("inference")
    if not i:
        return []
    rtf = i.get("realtime_factor", {})
    return ["### Inference (notebook 06)", "",
            f"Real-time factor: held-out recording {number(rtf.get('heldout'), 1)}x, typed sentence "
            f"{number(rtf.get('typed'), 1)}x (system {i.get('system', '?')}; the emotion heard in the held-out clip: "
            f"{i.get('heldout_emotion_heard', '?')}, true {i.get('heldout_emotion_true', '?')})."]


def timing_lines(timings: dict) -> list:
    if not timings:
        return []
    rows = [[name, minutes(float(timings[f"{name}.ipynb"]))] for name in NOTEBOOKS if f"{name}.ipynb" in timings]
    total = sum(float(v) for v in timings.values())
    return ["### Time per notebook (`course_timings.json`)", ""] + table(["notebook", "wall time"], rows + [
        ["all", minutes(total)]])


def render(runs: list) -> str:
    """The markdown block (without the markers) for ``runs`` (the first one's tables, the headline's spread)."""
    m = runs[0]["metrics"]
    parts = [provenance_lines(runs), headline_lines(runs), claims_over_runs(runs), data_lines(m), students_lines(m),
             gan_lines(m), evaluation_lines(m), inference_lines(m), timing_lines(runs[0]["timings"])]
    missing = [s for s in ("data", "teachers", "distillation", "gan", "evaluation", "inference") if s not in m]
    if missing:
        parts.append([f"Not in this run's metrics.json yet: {', '.join(missing)} (run those notebooks)."])
    body = "\n\n".join("\n".join(p) for p in parts if p)
    return ("<!-- generated by scripts/report.py from metrics.json: edit the run, not this block -->\n\n"
            f"{body}\n")


def replace_block(text: str, block: str, where: str = "README.md") -> str:
    """``text`` with what lies between the report markers replaced by ``block``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ReportError(f"{where} needs the markers {BEGIN} and {END}, once each and in that order, where the "
                          f"measured figures go (found {text.count(BEGIN)} and {text.count(END)})")
    head, rest = text.split(BEGIN)
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block}{END}{tail}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="*", default=["runs/course"], help="run directories; the first one's tables")
    ap.add_argument("--readme", default=str(ROOT / "README.md"), help="the file whose report block is replaced")
    ap.add_argument("--stdout", action="store_true", help="print the block instead of writing the README")
    args = ap.parse_args(argv)
    try:
        return write_report(args)
    except ReportError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2


def write_report(args) -> int:
    runs = [read_run(r) for r in args.runs]
    block = render(runs)
    if args.stdout:
        sys.stdout.write(block)
        return 0
    readme = Path(args.readme)
    if not readme.exists():
        raise ReportError(f"{readme} does not exist (give the file with --readme)")
    text = readme.read_text()
    new = replace_block(text, block, readme.name)
    if new != text:
        tmp = readme.with_name(f".{readme.name}.report.tmp")
        tmp.write_text(new)
        os.replace(tmp, readme)  # a reader never sees half a README
    print(f"report: {readme} {'updated' if new != text else 'already up to date'} from "
          f"{', '.join(str(r['path'] / 'metrics.json') for r in runs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
