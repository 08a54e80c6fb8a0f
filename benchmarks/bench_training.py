"""Training throughput of every network the course trains: the visual teachers (notebook 02), the audio
students (notebook 03), the sync expert and the GAN (notebook 04).

Prints training samples per second (forward, backward and optimiser step on random inputs of
the real shapes; one sample = one face frame for a teacher, one utterance crop for the pair of
students, one mouth window with its candidate sounds for the sync expert, one training window
of ``gan.window`` frames for the GAN, whose step is ``GANTrainer.step``: the discriminators, then
the generator with its frozen sync expert and emotion and identity teachers) for the profile's
settings, on the CPU with the available threads and on a GPU when one is present. Reading frames
from the memory map is not included: on a CPU it is a few per cent of a step; on a GPU, where the
steps are fast, it takes a good share of the notebooks' time.

The GAN rows time today's step (``StepOptions.reference()``: two generator forwards, float32 on a
CPU) side by side with the default step, the same seed and data, in rounds that alternate between
them (a machine shared with other work slows both alike), and every lever in between, each added
to the ones before: generate once, no gradient for the discriminators' weights in the generator's
update, the sub-pixel upsampling conv, mixed precision (bfloat16 on a CPU with native bfloat16,
float16 on a GPU). The last rung is the default step.

    python benchmarks/bench_training.py [--profile course] [--steps 30] [--warmup 3] [--resolution 64]
                                        [--gan-only]

``--steps 1 --warmup 1`` is a quick check that every row runs (the figures are then rough).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import torch

from s2v_lib import get_profile, students, teachers
from s2v_lib.gan import sync
from s2v_lib.gan.train import SYSTEMS, GANData, GANTrainer, StepOptions


def _rate(step, batch: int, steps: int, warmup: int, device) -> float:
    """Items per second of one training step (``batch`` items a call)."""
    return batch / _seconds_side_by_side({"step": step}, steps, warmup, device)["step"]


def _seconds_side_by_side(steps: dict, n: int, warmup: int, device) -> dict:
    """Seconds per call of each of ``steps`` (name -> function), timed in alternating rounds: ``n`` calls each."""
    for step in steps.values():
        for _ in range(warmup):
            step()
    rounds = max(1, min(n, 5))
    spent = dict.fromkeys(steps, 0.0)
    done = dict.fromkeys(steps, 0)
    for r in range(rounds):
        for name, step in steps.items():
            k = n // rounds + (r < n % rounds)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(k):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            spent[name] += time.perf_counter() - t0
            done[name] += k
    return {name: spent[name] / max(done[name], 1) for name in steps}


#: The GAN step's levers, each added to the ones above it: (row label, StepOptions field, value)
GAN_LEVERS = [("+ generate once", "generate_once", True),
              ("+ discriminators frozen in G's update", "freeze_discriminators", True),
              ("+ sub-pixel upsampling conv", "subpixel", True),
              ("+ mixed precision = the default step", "precision", "auto")]


def bench_gan(device, profile: str, steps: int, resolution: int, warmup: int = 3) -> dict:
    """Today's GAN step and the default one, with every lever between them, side by side in one run."""
    cfg = get_profile(profile)
    tc, yc, gc = cfg.teachers, cfg.sync, cfg.gan
    n_mels, m = cfg.features.n_mels, cfg.mel_per_frame
    data = GANData.synthetic(n_clips=2 * gc.batch_size, n_frames=3 * gc.window, resolution=resolution,
                             n_mels=n_mels, mel_per_frame=m)

    def trainer(options):
        torch.manual_seed(0)  # the same judges for every variant
        judges = dict(sync=sync.SyncExpert(n_mels, yc.width, yc.embedding_dim, yc.window, m),
                      emotion_teacher=teachers.EmotionTeacher(tc.input_size, tc.width, tc.emotion_embedding_dim),
                      identity_teacher=teachers.IdentityTeacher(tc.input_size, tc.width, tc.identity_embedding_dim))
        return GANTrainer(gc, data, judges, resolution=resolution, seed=0, dev=device, options=options)

    options = StepOptions.reference(device)
    ladder = {"today's (StepOptions.reference())": options}
    for label, field, value in GAN_LEVERS:
        options = dataclasses.replace(options, **{field: value})
        ladder[label] = options
    assert options == StepOptions(), "the last rung of the ladder is the default step"
    trainers = {label: trainer(o) for label, o in ladder.items()}
    seconds = _seconds_side_by_side({label: t.step for label, t in trainers.items()}, steps, warmup, device)
    today, default = seconds[next(iter(ladder))], seconds[list(ladder)[-1]]
    out, before = {}, today
    for label, s in seconds.items():
        out[f"GAN step, {label}"] = (f"{s:7.3f} s = {1 / s:6.3f} steps/s, {before / s:4.2f}x the rung above, "
                                     f"{today / s:4.2f}x today's")
        before = s
    low = "bfloat16" if device.type == "cpu" else "float16"
    out["GAN default step's precision"] = (f"{low} autocast" if trainers[list(ladder)[-1]].amp
                                           else "float32 (this CPU has no native bfloat16)")
    out[f"GAN, GANTrainer.step ({gc.window}-frame training windows/s)"] = gc.batch_size / default
    out["seconds per GAN step"] = default
    out["seconds per GAN step, today's step"] = today
    out["GAN speed-up, default step against today's (x)"] = today / default
    return out


def bench(device, profile: str, steps: int, resolution: int, warmup: int = 3) -> dict:
    cfg = get_profile(profile)
    tc, sc, yc, gc = cfg.teachers, cfg.students, cfg.sync, cfg.gan
    n_mels, m = cfg.features.n_mels, cfg.mel_per_frame
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    out = {}

    emo = teachers.EmotionTeacher(tc.input_size, tc.width, tc.emotion_embedding_dim).to(device).train()
    ident = teachers.IdentityTeacher(tc.input_size, tc.width, tc.identity_embedding_dim).to(device).train()
    head = teachers.CosFaceHead(tc.identity_embedding_dim, 10, tc.cosface_scale, tc.cosface_margin).to(device)
    opt_e = torch.optim.AdamW(emo.parameters(), lr=tc.lr)
    opt_i = torch.optim.AdamW([*ident.parameters(), *head.parameters()], lr=tc.lr)
    frames = torch.rand(tc.batch_size, 3, resolution, resolution)
    labels = torch.randint(0, 6, (tc.batch_size,), device=device)

    def emotion_step():
        x = teachers.augment(frames.to(device), gen)
        loss = torch.nn.functional.cross_entropy(emo(x)[0], labels)
        opt_e.zero_grad()
        loss.backward()
        opt_e.step()

    def identity_step():
        x = teachers.augment(frames.to(device), gen, colour=0.04)
        loss = head(ident(x), labels)
        opt_i.zero_grad()
        loss.backward()
        opt_i.step()

    out["emotion teacher (frames/s)"] = _rate(emotion_step, tc.batch_size, steps, warmup, device)
    out["identity teacher (frames/s)"] = _rate(identity_step, tc.batch_size, steps, warmup, device)

    es = students.EmotionStudent(n_mels, sc.width, sc.emotion_embedding_dim, dropout=sc.dropout,
                                 mel_per_frame=m).to(device).train()
    isd = students.IdentityStudent(n_mels, sc.width, tc.identity_embedding_dim, mel_per_frame=m).to(device).train()
    opt_s = torch.optim.AdamW([*es.parameters(), *isd.parameters()], lr=sc.lr)
    n = min(sc.crop_frames, 75)  # a crop is at most the shortest clip of the batch (about 3 s)
    mel = torch.randn(sc.batch_size, m * n, n_mels)
    soft = torch.softmax(torch.randn(sc.batch_size, n, 6), -1).to(device)
    face = torch.nn.functional.normalize(torch.randn(sc.batch_size, tc.identity_embedding_dim), dim=-1).to(device)

    def student_step():
        x = students._spec_augment(mel, gen).to(device)
        loss = (students.kd_loss(es(x)["logits"], soft, sc.temperature)
                + students.identity_loss(isd(x), face, sc.identity_l2))
        opt_s.zero_grad()
        loss.backward()
        opt_s.step()

    students_row = f"students, both ({n}-frame utterance crops/s)"
    out[students_row] = _rate(student_step, sc.batch_size, steps, warmup, device)

    expert = sync.SyncExpert(n_mels, yc.width, yc.embedding_dim, yc.window, m).to(device).train()
    opt_y = torch.optim.AdamW(expert.parameters(), lr=yc.lr)
    mouths = sync.mouth_region(torch.rand(yc.batch_size, yc.window, 3, resolution, resolution)).to(device)
    sounds = torch.randn(yc.batch_size * (1 + yc.negatives), m * yc.window, n_mels).to(device)

    def sync_step():
        a = expert.embed_audio(sounds).reshape(yc.batch_size, 1 + yc.negatives, -1)
        loss = sync.contrastive_loss(expert.embed_video(mouths), a, yc.scale)
        opt_y.zero_grad()
        loss.backward()
        opt_y.step()

    out["sync expert (mouth windows/s, each with its candidate sounds)"] = _rate(sync_step, yc.batch_size, steps,
                                                                                warmup, device)

    # the GAN: one GANTrainer.step (discriminators, then the generator) with the three frozen judges
    out.update(bench_gan(device, profile, steps, resolution, warmup))

    out["steps per second: emotion teacher"] = out["emotion teacher (frames/s)"] / tc.batch_size
    out["seconds for the profile's teacher + student steps"] = (
        tc.steps * tc.batch_size / out["emotion teacher (frames/s)"]
        + tc.identity_steps * tc.batch_size / out["identity teacher (frames/s)"]
        + 3 * sc.steps * sc.batch_size / out[students_row])
    gan_steps = gc.steps + gc.baseline_steps + (len(SYSTEMS) - 2) * gc.ablation_steps
    out[f"seconds for the profile's {gan_steps} GAN steps ({len(SYSTEMS)} systems)"] = gan_steps * out["seconds per GAN step"]
    return out


def _show(value) -> str:
    if isinstance(value, str):
        return f" {value}"
    return f"{value:10.1f}" if value >= 10 else f"{value:10.3f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="course")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per network")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps before them")
    ap.add_argument("--resolution", type=int, default=64)
    ap.add_argument("--gan-only", action="store_true", help="only the GAN rows")
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == "cuda" else \
            f"CPU, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"
        print(f"\n== {name} | profile {args.profile} | faces {args.resolution} px")
        rows = (bench_gan if args.gan_only else bench)(device, args.profile, args.steps, args.resolution, args.warmup)
        for k, v in rows.items():
            print(f"  {k:64s} {_show(v)}")
    if args.gan_only:
        return
    print("\n(the teacher + student total counts the three student variants of notebook 03: distilled, adversarial, "
          "supervised; the GAN total counts every system at the speech2video step's cost: the ablations without "
          "a judge or the sequence discriminator are a little cheaper)")


if __name__ == "__main__":
    main()
