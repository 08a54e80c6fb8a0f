"""Training throughput of the visual teachers, the audio students (notebooks 02 and 03) and the sync expert.

Prints training samples per second (forward, backward and optimiser step on random inputs of
the real shapes; one sample = one face frame for a teacher, one utterance crop for the pair of
students) for the course settings, on the CPU with the available threads and on a GPU when one
is present. Reading frames from the memory map is not included: on a CPU it is a few per cent
of a step; on a GPU, where the steps are fast, it takes a good share of the notebooks' time.

    python benchmarks/bench_training.py [--profile course] [--steps 30] [--resolution 64]
"""
from __future__ import annotations

import argparse
import os
import time

import torch

from s2v_lib import get_profile, students, sync, teachers


def _rate(step, batch: int, steps: int, device) -> float:
    for _ in range(3):  # warm-up
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - t0)


def bench(device, profile: str, steps: int, resolution: int) -> dict:
    cfg = get_profile(profile)
    tc, sc = cfg.teachers, cfg.students
    gen = torch.Generator().manual_seed(0)
    out = {}

    emo = teachers.EmotionTeacher(tc.input_size, tc.width, tc.emotion_embedding_dim).to(device).train()
    ident = teachers.IdentityTeacher(tc.input_size, tc.width, tc.identity_embedding_dim).to(device).train()
    head = teachers.CosFaceHead(tc.identity_embedding_dim, 10).to(device)
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

    out["emotion teacher (frames/s)"] = _rate(emotion_step, tc.batch_size, steps, device)
    out["identity teacher (frames/s)"] = _rate(identity_step, tc.batch_size, steps, device)

    es = students.EmotionStudent(80, sc.width, sc.emotion_embedding_dim, dropout=sc.dropout).to(device).train()
    isd = students.IdentityStudent(80, sc.width, tc.identity_embedding_dim).to(device).train()
    opt_s = torch.optim.AdamW([*es.parameters(), *isd.parameters()], lr=sc.lr)
    n = min(sc.crop_frames, 75)  # a crop is at most the shortest clip of the batch (about 3 s)
    mel = torch.randn(sc.batch_size, 4 * n, 80)
    soft = torch.softmax(torch.randn(sc.batch_size, n, 6), -1).to(device)
    face = torch.nn.functional.normalize(torch.randn(sc.batch_size, tc.identity_embedding_dim), dim=-1).to(device)

    def student_step():
        x = students._spec_augment(mel, gen).to(device)
        loss = students.kd_loss(es(x)["logits"], soft, sc.temperature) + students.identity_loss(isd(x), face)
        opt_s.zero_grad()
        loss.backward()
        opt_s.step()

    out[f"students, both ({n}-frame utterance crops/s)"] = _rate(student_step, sc.batch_size, steps, device)

    yc = cfg.sync
    expert = sync.SyncExpert(80, yc.width, yc.embedding_dim).to(device).train()
    opt_y = torch.optim.AdamW(expert.parameters(), lr=yc.lr)
    mouths = sync.mouth_region(torch.rand(yc.batch_size, sync.WINDOW, 3, resolution, resolution)).to(device)
    sounds = torch.randn(yc.batch_size * (1 + yc.negatives), 4 * sync.WINDOW, 80).to(device)

    def sync_step():
        a = expert.embed_audio(sounds).reshape(yc.batch_size, 1 + yc.negatives, -1)
        loss = sync.sync_loss(expert.embed_video(mouths), a, yc.scale)
        opt_y.zero_grad()
        loss.backward()
        opt_y.step()

    out["sync expert (mouth windows/s, each with its candidate sounds)"] = _rate(sync_step, yc.batch_size, steps, device)
    out["steps per second: emotion teacher"] = out["emotion teacher (frames/s)"] / tc.batch_size
    out["seconds for the profile's teacher + student steps"] = (
        tc.steps * tc.batch_size / out["emotion teacher (frames/s)"]
        + tc.identity_steps * tc.batch_size / out["identity teacher (frames/s)"]
        + 3 * sc.steps * sc.batch_size / out[f"students, both ({n}-frame utterance crops/s)"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="course")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--resolution", type=int, default=64)
    args = ap.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for device in devices:
        name = torch.cuda.get_device_name() if device.type == "cuda" else \
            f"CPU, {torch.get_num_threads()} threads ({os.cpu_count()} cores)"
        print(f"\n== {name} | profile {args.profile} | faces {args.resolution} px")
        for k, v in bench(device, args.profile, args.steps, args.resolution).items():
            print(f"  {k:64s} {v:10.1f}")
    print("\n(the last line counts the three student variants of notebook 03: distilled, adversarial, supervised)")


if __name__ == "__main__":
    main()
