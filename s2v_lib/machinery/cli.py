"""Command line: ``python -m s2v_lib <command>`` (or ``s2v <command>``)."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
import time


def _synthtalk(args) -> int:
    from ..config import get_profile
    from .synthtalk import generate_corpus

    overrides = {k: v for k, v in dict(n_speakers=args.speakers, clips_per_speaker=args.clips,
                                       resolution=args.resolution).items() if v is not None}
    cfg = get_profile(args.profile, seed=args.seed, corpus=overrides).corpus
    t0 = time.perf_counter()
    out = generate_corpus(args.out, cfg, workers=args.workers)
    print(f"SynthTalk corpus ({cfg.n_speakers} speakers x {cfg.clips_per_speaker} clips, {cfg.resolution}px) "
          f"in {out} ({time.perf_counter() - t0:.0f} s)")
    return 0


def _ingest(args) -> int:
    from .ingest import format_summary, ingest

    try:
        summary = ingest(args.corpus, args.src, args.out, resolution=args.resolution, workers=args.workers,
                         seed=args.seed, detector=args.detector)
    except ImportError as exc:  # --detector dlib or mtcnn without its package: the message names the pip line
        from ..pretrained import PretrainedModelMissing

        if not isinstance(exc, PretrainedModelMissing):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_summary(summary))
    print(f"next: make course CORPUS={args.out}")
    return 0


def _literal(text: str):
    """A --set value as Python reads it (64, 20.0, True, "image"), else the text itself."""
    import ast

    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _course(args) -> int:
    from ..config import get_profile
    from .course import run_course

    settings = {}
    for item in args.set or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --set takes SECTION.FIELD=VALUE (e.g. features.n_mels=64), got {item!r}", file=sys.stderr)
            return 2
        *sections, name = key.split(".")
        node = settings
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = _literal(value)
    try:
        get_profile(args.profile, seed=args.seed, settings=settings)  # refuse a bad setting before the first notebook
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    timings = run_course(args.profile, args.run, corpus=args.corpus, seed=args.seed, settings=settings,
                         log_output=args.log_output)
    print("course finished: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    return 0


def _generate(args) -> int:
    from pathlib import Path

    from .audio import AudioError
    from ..inference import Speech2VideoModel, audio_files, batch_summary, check_output, describe, generate_folder
    from ..pretrained import PretrainedModelMissing

    speech, out = Path(args.speech), Path(args.out)
    if not speech.exists():
        raise AudioError(f"audio file not found: {speech}")
    if speech.is_dir():
        audio_files(speech)  # a folder without recordings is an error before the networks load
    else:
        out = out / f"{speech.stem}.mp4" if out.is_dir() else out
        check_output(out, speech, args.overwrite)  # so is an output that may not be written
    try:
        model = Speech2VideoModel.from_run(args.run, args.system, args.checkpoint)
    except PretrainedModelMissing as exc:  # the run chose the GE2E voice front-end; resemblyzer is not installed
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = dict(emotion=args.emotion, seed=args.seed, baseline_image=args.baseline_image, progress=not args.quiet,
                   overwrite=args.overwrite)
    if speech.is_dir():
        reports = generate_folder(speech, out, model, on_report=lambda r: print(describe(r), flush=True), **options)
        print(batch_summary(reports))
        return 1 if any(r.get("error") for r in reports) else 0
    print(describe(model.generate(speech, out, **options)))
    return 0


def _bundle(args) -> int:
    from .bundle import describe, pack, read_manifest

    out = pack(args.run_dir, args.out)
    print(f"bundle {out}: {describe(read_manifest(out))}")
    print(f"restore it with: python -m s2v_lib restore {out} --run RUN")
    return 0


def _restore(args) -> int:
    from .bundle import describe, restore

    done = restore(args.bundle, args.run, overwrite=args.overwrite)
    print(f"restored {describe(done)} into {done['into']} in {done['seconds']:.1f} s")
    print(f"next: make course RUN={args.run}" + (f" PROFILE={done['profile']}" if done.get("profile") else "")
          + "  (the notebooks load these networks instead of training them)")
    return 0


def _html(args) -> int:
    from .course import export_html

    pages = export_html(args.run_dir)
    print(f"{len(pages)} notebooks as web pages: {pages[0].parent / 'index.html'}")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m s2v_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synthtalk", help="generate a SynthTalk corpus")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--profile", default="course", help="smoke, workshop, course or paper (sets the corpus size)")
    p.add_argument("--speakers", type=int, help="number of speakers (overrides the profile)")
    p.add_argument("--clips", type=int, help="clips per speaker (overrides the profile)")
    p.add_argument("--resolution", type=int, help="face size in pixels, a multiple of 8 (64, 128, 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.set_defaults(func=_synthtalk)

    from .detect import DETECTORS

    p = sub.add_parser("ingest", help="ingest your copy of CREMA-D or RAVDESS into a corpus folder")
    p.add_argument("corpus", choices=["cremad", "ravdess"], help="which corpus the source folder holds")
    p.add_argument("src", help="the corpus copy (CREMA-D: holds VideoFlash/ and AudioWAV/; RAVDESS: Actor_NN/)")
    p.add_argument("--out", required=True, help="output folder (re-run with the same folder to resume)")
    p.add_argument("--resolution", type=int, default=64, help="face crop size in pixels, a multiple of 8")
    p.add_argument("--seed", type=int, default=0, help="seed of the pool and split assignment")
    p.add_argument("--workers", type=int, help="processes (default: all cores)")
    p.add_argument("--detector", choices=DETECTORS, default="auto",
                   help="face detector: auto = MTCNN when installed (the pretrained extra), else the Haar "
                        "cascade; haar is faster and needs no extra, but loses turned heads")
    p.set_defaults(func=_ingest)

    p = sub.add_parser("course", help="run the notebooks in order with papermill")
    p.add_argument("--profile", default="course", help="smoke, workshop, course or paper")
    p.add_argument("--run", default=None, help="run directory (default runs/<profile>)")
    p.add_argument("--corpus", default=None, help="use this corpus folder instead of generating SynthTalk")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--set", action="append", metavar="SECTION.FIELD=VALUE",
                   help="change one setting of the profile in every notebook, e.g. --set features.n_mels=64 "
                        "(repeatable)")
    p.add_argument("--log-output", action="store_true", help="print cell output instead of a progress bar")
    p.set_defaults(func=_course)

    p = sub.add_parser("generate", help="speech -> a talking-face video with the sound (mp4)",
                       description="Turn a speech recording (wav, flac, ogg, mp3, m4a...; any rate; mono or "
                                   "stereo), or every one in a folder, into a talking-face video. Exit status: 0 "
                                   "all written, 1 some files of a folder failed, 2 nothing could be done.")
    p.add_argument("speech", help="an audio file, or a folder of them")
    p.add_argument("-o", "--out", required=True, help="the video (.mp4); for a folder, a folder for the videos")
    p.add_argument("--run", default="runs/course",
                   help="run directory with the trained networks (default runs/course); it also decides where the "
                        "identity comes from (students.voice_front_end of its notebook 03: scratch or ge2e)")
    p.add_argument("--system", default="speech2video",
                   help="which trained generator: speech2video, static_image_baseline or an ablation (no_sync...)")
    p.add_argument("--checkpoint", help="a GAN checkpoint file to use instead of <run>/checkpoints/gan_<system>.pt")
    p.add_argument("--emotion", help="show this emotion instead of the one heard (anger, disgust, fear, happy, "
                                     "neutral, sad)")
    p.add_argument("--seed", type=int, default=0, help="seed of the spontaneous motion (blinks, head)")
    p.add_argument("--baseline-image", help="a picture of the speaker (needed by static_image_baseline)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or conversion messages")
    p.add_argument("-y", "--overwrite", action="store_true",
                   help="replace an existing output file that is not a video made by speech2video (never the "
                        "recording itself)")
    p.set_defaults(func=_generate)

    p = sub.add_parser("bundle", help="pack a run's trained networks into one file, for a workshop",
                       description="Pack what a run's notebooks trained (checkpoints/, teacher_features/) into one "
                                   "file that `restore` unpacks on a learner's machine.")
    p.add_argument("run_dir", help="the run directory to pack (e.g. runs/course)")
    p.add_argument("-o", "--out", help="the bundle file (default <run>.s2v.tar beside the run)")
    p.set_defaults(func=_bundle)

    p = sub.add_parser("restore", help="unpack a run bundle into a run directory")
    p.add_argument("bundle", help="a file made by `python -m s2v_lib bundle`")
    p.add_argument("--run", default="runs/course", help="the run directory to restore into (default runs/course)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace files of the run that differ from the bundle's (networks trained there are lost)")
    p.set_defaults(func=_restore)

    p = sub.add_parser("html", help="write a run's executed notebooks as web pages (<run>/html)")
    p.add_argument("run_dir", help="the run directory (e.g. runs/course)")
    p.set_defaults(func=_html)

    args = parser.parse_args(argv)
    if getattr(args, "run", "x") is None:
        args.run = f"runs/{args.profile}"
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    previous = signal.signal(signal.SIGTERM, _terminate)  # SIGTERM unwinds like Ctrl-C: temporary files go
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"interrupted: {args.command} stopped; {INTERRUPTED.get(args.command, 'run it again')}",
              file=sys.stderr)
        return 130
    except OSError as exc:
        print(f"error: {describe_os_error(exc)}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


#: What an interrupt (Ctrl-C, SIGTERM) leaves, by command.
INTERRUPTED = dict(
    generate="no partial output was left (run it again to redo)",
    course="what the finished notebooks trained is kept (checkpoints, course_timings.json): run it again and "
           "the notebooks load it instead of training it again",
    ingest="the clips already done are kept: run it again with the same --out to resume",
    synthtalk="the clips already made are kept: run it again with the same --out to resume",
    bundle="no partial bundle was left (run it again)",
    restore="each file restored so far is whole: run it again to restore the rest",
)


def _terminate(signum, frame):
    raise KeyboardInterrupt


def describe_os_error(exc: OSError) -> str:
    """An I/O error in words, with the path it concerns (``Permission denied: out/face.mp4``)."""
    what = exc.strerror or str(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p]
    return f"{what}: {' -> '.join(paths)}" if paths else what


if __name__ == "__main__":
    sys.exit(main())
