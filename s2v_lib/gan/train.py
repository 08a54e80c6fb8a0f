"""Training the GAN: a short, visible loop with checkpoints that resume exactly, on CPU, GPU or several GPUs.

One step (``GANTrainer.step``):

1. discriminators: hinge loss on real windows against generated ones (the video detached: only
   the discriminators learn);
2. generator: on the same video, its adversarial terms, plus L1 reconstruction (mouth weighted;
   pool B speakers have ground-truth video), the frozen sync expert, the frozen emotion teacher
   against the emotion the speech implies, and the frozen identity teacher against the clip's real face.

The generator runs forward once a step; ``StepOptions`` says how a step computes (mixed precision
where it pays, the sub-pixel upsampling conv...) and ``StepOptions.reference()`` is the step as first
written, which ``benchmarks/bench_training.py`` times beside it.

Checkpoints (every ``checkpoint_every`` steps and at the end) hold the weights, both optimisers,
the step, the EMA generator and every random state, written to a temporary file and renamed; a
run killed and resumed gives the same losses as one that never stopped. Several GPUs: launch with
``torchrun --nproc_per_node N`` and the models are wrapped in DistributedDataParallel
(``python -m s2v_lib.gan.train ddp-check`` is the self-test the suite runs with 2 CPU processes, gloo).
"""
from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from . import discriminators
from ..config import GANConfig, GeneratorConfig, device, with_overrides
from .generator import Generator
from ..machinery.runs import CheckpointError, atomic_write, first_line, note_training
from ..trainer import Trainer, Update


# ----------------------------------------------------------------------------------- data
@dataclasses.dataclass
class GANData:
    """Training windows for the GAN: real frames and sound, with the students' view of each clip.

    Per clip ``k``: ``frames[k]`` (T, R, R, 3) uint8 and ``mel[k]`` (mT, n_mels) normalised (m = ``mel_per_frame``);
    ``identity[k]`` and ``emotion[k]`` the students' embeddings of its sound (the generator's
    inputs), ``emotion_probs[k]`` the emotion student's distribution (the emotion loss's target),
    ``face[k]`` the identity teacher's embedding of its real face (the identity loss's target),
    ``reference[k]`` one real frame of the same speaker from another clip (the baseline's image);
    ``meta`` the clips' rows (clip, speaker, emotion...) when the data come from a run.
    """

    frames: list
    mel: list
    identity: np.ndarray
    emotion: np.ndarray
    emotion_probs: np.ndarray
    face: np.ndarray
    reference: np.ndarray
    meta: pd.DataFrame | None = None

    @property
    def mel_per_frame(self) -> int:
        """Mel frames per video frame, as the clips hold them."""
        return len(self.mel[0]) // len(self.frames[0])

    @classmethod
    def synthetic(cls, n_clips: int = 4, n_frames: int = 12, resolution: int = 64, seed: int = 0,
                  n_mels: int = 80, mel_per_frame: int = 4) -> "GANData":
        """Random data of the right shapes (tests, benchmarks, the DDP self-test)."""
        rng = np.random.default_rng(seed)
        unit = lambda n, d: (lambda x: x / np.linalg.norm(x, axis=1, keepdims=True))(  # noqa: E731
            rng.normal(size=(n, d))).astype(np.float32)
        return cls([rng.integers(0, 256, (n_frames, resolution, resolution, 3), np.uint8) for _ in range(n_clips)],
                   [rng.normal(size=(mel_per_frame * n_frames, n_mels)).astype(np.float32) for _ in range(n_clips)],
                   unit(n_clips, 128), rng.normal(size=(n_clips, 64)).astype(np.float32),
                   np.full((n_clips, 6), 1 / 6, np.float32), unit(n_clips, 128),
                   rng.integers(0, 256, (n_clips, resolution, resolution, 3), np.uint8))

    @classmethod
    def from_run(cls, cache, features, emotion_student, identity_student, clips) -> "GANData":
        """The clips ``clips`` (names, all in the teacher features) with the students' predictions on their sound."""
        from ..students import Utterances, predict_utterances

        utts = Utterances.load(cache, features, pools=sorted(features.index.pool.unique()))
        utts = utts.subset(utts.meta["clip"].isin(list(clips)).to_numpy())
        if len(utts) == 0:
            raise ValueError("none of the given clips has teacher features")
        pred = predict_utterances(emotion_student, identity_student, utts.mel)
        frames = [cache.clip_frames(c) for c in utts.meta["clip"]]
        names, speakers = utts.meta["clip"].to_numpy(), utts.meta.speaker.to_numpy()
        reference = []
        for k, spk in enumerate(speakers):  # a frame of the same speaker from another clip: never the target itself
            other = [j for j in np.flatnonzero(speakers == spk) if j != k]
            if other:
                reference.append(np.asarray(frames[other[0]][len(frames[other[0]]) // 2]))
                continue
            rest = cache.index[(cache.index.speaker == spk) & (cache.index["clip"] != names[k])]["clip"]
            if rest.empty:
                raise ValueError(f"speaker {spk} has one clip only: the static-image baseline needs a picture of "
                                 f"them from another clip")
            pic = cache.clip_frames(rest.iloc[0])
            reference.append(np.asarray(pic[len(pic) // 2]))
        return cls(frames, utts.mel, pred["identity"].astype(np.float32),
                   pred["emotion_embedding"].astype(np.float32), pred["probs"].astype(np.float32),
                   utts.face.astype(np.float32), np.stack(reference), utts.meta.reset_index(drop=True))

    def batch(self, rng: np.random.Generator, batch_size: int, window: int) -> dict:
        clips = rng.integers(len(self.frames), size=batch_size)
        real, mel, m = [], [], self.mel_per_frame
        for k in clips:
            n = len(self.frames[k])
            if n < window:
                raise ValueError(f"clip {k} has {n} frames, fewer than the training window ({window})")
            s = int(rng.integers(n - window + 1))
            real.append(np.asarray(self.frames[k][s:s + window]))
            mel.append(self.mel[k][m * s:m * (s + window)])
        to_img = lambda a: torch.from_numpy(np.ascontiguousarray(a)).movedim(-1, -3).float() / 255  # noqa: E731
        return dict(real=to_img(np.stack(real)), mel=torch.from_numpy(np.stack(mel)),
                    identity=torch.from_numpy(self.identity[clips]), emotion=torch.from_numpy(self.emotion[clips]),
                    emotion_probs=torch.from_numpy(self.emotion_probs[clips]),
                    face=torch.from_numpy(self.face[clips]), reference=to_img(self.reference[clips]))


# ----------------------------------------------------------------------------------- how a step computes
@dataclasses.dataclass
class StepOptions:
    """How ``GANTrainer.step`` computes, never what: the same losses, faster (``benchmarks/bench_training.py``
    times each against ``StepOptions.reference()``, the step as it was first written).

    * ``generate_once``: the generator runs forward once a step; the discriminators see that video
      detached, the generator's losses the same video (the reference draws a second one for them);
    * ``precision``: ``"auto"`` is mixed precision where it pays (a GPU: float16 with loss scaling; a CPU
      with native bfloat16 arithmetic, AVX512-BF16 or AMX: bfloat16, for a step of at least
      ``CPU_MIXED_PRECISION_WORK``), else ``"full"`` (float32); ``"mixed"`` forces it. The weights, their
      gradients and the optimisers stay float32. Mixed precision reruns exactly with the same threads,
      but results move with the thread count more than float32's do;
    * ``freeze_discriminators``: in the generator's update no gradient is computed for the
      discriminators' weights (it was thrown away: their optimiser steps in their own update);
    * ``subpixel``: the generator's upsampling and first conv of each block as one conv on the small
      picture (``generator.upsample_conv``: the same function, 4/9 of the multiplications);
    * ``compile``: ``torch.compile`` the generator (falls back to eager, with a warning, where compiling
      fails). Off by default: on 2 CPU cores it bought 1.06x in float32 and nothing in bfloat16, for
      45-275 s of compiling per system.
    """

    generate_once: bool = True
    precision: str = "auto"
    freeze_discriminators: bool = True
    subpixel: bool = True
    compile: bool = False

    @classmethod
    def reference(cls, dev=None) -> "StepOptions":
        """The step as first written: two generator forwards, float32 on a CPU (float16 on a GPU), no shortcuts."""
        mixed = torch.device(dev or device()).type == "cuda"
        return cls(generate_once=False, precision="mixed" if mixed else "full", freeze_discriminators=False,
                   subpixel=False, compile=False)

    def mixed_precision(self, dev, work: int) -> bool:
        """Whether the losses run under autocast on ``dev`` for a step of ``work`` (``step_work``)."""
        if self.precision not in ("auto", "mixed", "full"):
            raise ValueError(f"precision must be 'auto', 'mixed' or 'full', got {self.precision!r}")
        if self.precision == "auto":
            return dev.type == "cuda" or (dev.type == "cpu" and native_bfloat16()
                                          and work >= CPU_MIXED_PRECISION_WORK)
        return self.precision == "mixed"


def step_work(cfg: GANConfig, resolution: int) -> int:
    """A step's size, as what its cost grows with: frames x pixels x the generator's last width."""
    return cfg.batch_size * cfg.window * resolution ** 2 * cfg.generator.width


#: bfloat16 pays on a CPU from about this ``step_work`` on (2 cores, side by side with float32: 0.92x
#: for a width-8 generator at 32 px on 2 x 6 frames, 1.06x at 64 px, 1.54x on the smoke profile's
#: 4 x 8 frames at width 16, 1.66x on the course's 8 x 8)
CPU_MIXED_PRECISION_WORK = 2 ** 20


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX512-BF16 or AMX), where bfloat16 convolutions are
    about twice as fast as float32 ones; elsewhere they are emulated and slower."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return ("avx512_bf16" in flags or "amx_bf16" in flags) and torch.backends.mkldnn.is_available()


@contextlib.contextmanager
def frozen(*modules: nn.Module):
    """No gradient for these modules' weights inside the block (gradients still flow through them to their
    inputs). DistributedDataParallel modules skip their gradient sync too: there is none to sync."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    with contextlib.ExitStack() as stack:
        for m in modules:
            if isinstance(m, nn.parallel.DistributedDataParallel):
                stack.enter_context(m.no_sync())
        for p in params:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in params:
                p.requires_grad_(True)


# ----------------------------------------------------------------------------------- trainer
def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if hasattr(m, "module") else m


class GANTrainer:
    """Generator, frame and sequence discriminators, their optimisers, and the frozen judges.

    ``experts``: dict with any of ``sync`` (a frozen ``SyncExpert``), ``emotion_teacher`` and
    ``identity_teacher``; a missing one switches its loss off. ``options``: how a step computes
    (``StepOptions``; the default is the fast step). Under ``torchrun`` the models are wrapped in
    DistributedDataParallel (gloo on CPU, NCCL on GPU).
    """

    def __init__(self, cfg: GANConfig, data: GANData, experts: dict | None = None, resolution: int = 64,
                 seed: int = 0, dev=None, options: StepOptions | None = None):
        if data.frames[0].shape[1] != resolution:
            raise ValueError(f"the training frames are {data.frames[0].shape[1]} px but the GAN is built for "
                             f"{resolution} px")
        self.cfg, self.data, self.seed = cfg, data, seed
        self.dev = dev or device()
        self.options = options or StepOptions()
        self.experts = {k: v.to(self.dev).eval() for k, v in (experts or {}).items() if v is not None}
        for m in self.experts.values():
            for p in m.parameters():
                p.requires_grad_(False)
        torch.manual_seed(seed)
        self.G = Generator(resolution, data.identity.shape[1], data.emotion.shape[1], data.mel[0].shape[1],
                           data.mel_per_frame, **dataclasses.asdict(cfg.generator)).to(self.dev)
        self.Df = discriminators.FrameDiscriminator(resolution, data.identity.shape[1], cfg.d_width).to(self.dev)
        self.Ds = discriminators.SequenceDiscriminator(resolution, data.emotion.shape[1], cfg.d_width).to(self.dev)
        for block in self.G.blocks:
            block.subpixel = self.options.subpixel
        self.ema = copy.deepcopy(self.G).eval() if cfg.ema else None
        self.distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if self.distributed:
            ids = [self.dev.index] if self.dev.type == "cuda" else None
            self.G = nn.parallel.DistributedDataParallel(self.G, device_ids=ids)
            self.Df = nn.parallel.DistributedDataParallel(self.Df, device_ids=ids)
            self.Ds = nn.parallel.DistributedDataParallel(self.Ds, device_ids=ids)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=cfg.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam([*self.Df.parameters(), *self.Ds.parameters()], lr=cfg.lr_d, betas=(0.5, 0.999))
        self.amp = self.options.mixed_precision(self.dev, step_work(cfg, resolution))  # GPU: float16, CPU: bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.dev.type == "cuda")
        self._forward = _compiled(self.G) if self.options.compile else self.G
        rank = torch.distributed.get_rank() if self.distributed else 0
        self.rng = np.random.default_rng([seed, rank])
        self.step_count = 0

    # ------------------------------------------------------------------ one step
    def sample(self) -> dict:
        """A batch of training windows on the device, with the generator's identity condition ``cond``."""
        b = {k: v.to(self.dev) for k, v in self.data.batch(self.rng, self.cfg.batch_size, self.cfg.window).items()}
        b["cond"] = _unwrap(self.G).identity_vector(b["identity"], b["reference"]).detach()
        return b

    def generate(self, b: dict) -> torch.Tensor:
        """The generator's video for a batch: (B, T, 3, R, R)."""
        return self._forward(b["mel"], identity=b["identity"], emotion=b["emotion"], identity_image=b["reference"])[0]

    def fake(self, b: dict) -> torch.Tensor:
        """The step's generated video, made on first use and kept in the batch: the discriminators'
        update sees it detached, the generator's update the same video with its graph."""
        if "fake" not in b:
            b["fake"] = self.generate(b)
        return b["fake"]

    def discriminator_loss(self, b: dict):
        """Hinge loss of the frame (and sequence) discriminators on real windows against generated ones."""
        real, t = b["real"], b["real"].shape[1]
        cond_f = b["cond"].repeat_interleave(t, 0)
        if self.options.generate_once:
            fake = self.fake(b).detach()
        else:
            with torch.no_grad():
                fake = self.generate(b)
        # scores in float32 (under mixed precision the networks compute in 16 bits, the losses need not)
        d_loss = discriminators.d_hinge_loss(self.Df(real.flatten(0, 1), cond_f).float(),
                                             self.Df(fake.flatten(0, 1), cond_f).float())
        if self.cfg.use_sequence:
            d_loss = d_loss + discriminators.d_hinge_loss(self.Ds(real, b["emotion"]).float(),
                                                          self.Ds(fake, b["emotion"]).float())
        return d_loss, {}

    def generator_loss(self, b: dict):
        """The generator's adversarial terms, mouth-weighted L1 and the frozen experts' losses, weighted."""
        cfg, real, mel, t = self.cfg, b["real"], b["mel"], b["real"].shape[1]
        fake = self.fake(b) if self.options.generate_once else self.generate(b)
        frames = fake.flatten(0, 1)
        cond_f = b["cond"].repeat_interleave(t, 0)
        parts = dict(adv_frame=discriminators.g_hinge_loss(self.Df(frames, cond_f).float()),
                     l1=discriminators.reconstruction_loss(fake, real, cfg.mouth_weight))
        if cfg.use_sequence:
            parts["adv_sequence"] = discriminators.g_hinge_loss(self.Ds(fake, b["emotion"]).float())
        if cfg.use_sync and "sync" in self.experts:
            parts["sync"] = discriminators.sync_expert_loss(self.experts["sync"], fake, mel)
        if cfg.generator.use_emotion and "emotion_teacher" in self.experts:
            parts["emotion"] = discriminators.emotion_expert_loss(self.experts["emotion_teacher"], frames,
                                                           b["emotion_probs"].repeat_interleave(t, 0))
        if "identity_teacher" in self.experts:
            parts["identity"] = discriminators.identity_expert_loss(self.experts["identity_teacher"], frames,
                                                             b["face"].repeat_interleave(t, 0))
        weights = dict(adv_frame=cfg.w_adv_frame, adv_sequence=cfg.w_adv_sequence, l1=cfg.w_l1,
                       sync=cfg.w_sync, emotion=cfg.w_emotion, identity=cfg.w_identity)
        return sum(weights[k] * v for k, v in parts.items()), parts

    def after_step(self, steps_done: int) -> None:
        """Move the EMA generator towards the trained one and count the step."""
        if self.ema is not None:
            # warm-up: the average starts short and lengthens to cfg.ema (early weights are soon forgotten)
            decay = min(self.cfg.ema, (1 + self.step_count) / (10 + self.step_count))
            with torch.no_grad():
                for pe, pg in zip(self.ema.parameters(), _unwrap(self.G).parameters()):
                    pe.lerp_(pg, 1 - decay)
                for be, bg in zip(self.ema.buffers(), _unwrap(self.G).buffers()):
                    be.copy_(bg)
        self.step_count += 1

    def _generator_update(self, b: dict):
        """``generator_loss``, with the discriminators' weights frozen when ``options.freeze_discriminators``."""
        with frozen(self.Df, self.Ds) if self.options.freeze_discriminators else contextlib.nullcontext():
            return self.generator_loss(b)

    def trainer(self, progress: bool = True) -> Trainer:
        """The one training loop with this GAN's step: discriminators first, then the generator."""
        return Trainer(self.sample, [Update(self.opt_d, self.discriminator_loss, name="d_loss"),
                                     Update(self.opt_g, self._generator_update, name="g_loss")],
                       "GAN", progress, scaler=self.scaler, autocast=self.dev.type if self.amp else None,
                       after_step=self.after_step)

    def step(self) -> dict:
        """One training step (what ``train`` repeats): a dict of the losses."""
        row = self.trainer(progress=False).step()
        self.after_step(self.step_count + 1)
        return dict(step=self.step_count, **row)

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> dict:
        return dict(step=self.step_count, G=_unwrap(self.G).state_dict(), Df=_unwrap(self.Df).state_dict(),
                    Ds=_unwrap(self.Ds).state_dict(), ema=None if self.ema is None else self.ema.state_dict(),
                    opt_g=self.opt_g.state_dict(), opt_d=self.opt_d.state_dict(), scaler=self.scaler.state_dict(),
                    torch_rng=torch.get_rng_state(), numpy_rng=self.rng.bit_generator.state,
                    cuda_rng=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
                    config=dataclasses.asdict(self.cfg), generator_config=_unwrap(self.G).config)

    def save(self, path) -> Path:
        """Everything needed to resume, written atomically (a temporary file, then one rename)."""
        return atomic_write(path, lambda f: torch.save(self.state(), f))

    def load(self, path) -> None:
        """Resume from a checkpoint written by ``save`` (``torch.load(weights_only=True)``).

        Raises ``CheckpointError`` naming the file when it cannot be read or holds other settings.
        """
        try:
            s = torch.load(path, map_location=self.dev, weights_only=True)
        except Exception as exc:  # noqa: BLE001  (pickle, zip and torch errors alike)
            raise CheckpointError(f"{path} is not a readable GAN checkpoint ({type(exc).__name__}); delete it to "
                                  f"train this system from the start") from exc
        if not isinstance(s, dict) or not {"config", "G", "step"} <= set(s):
            raise CheckpointError(f"{path} is not a GAN checkpoint written by GANTrainer.save; delete it to train "
                                  f"this system from the start")
        budget = ("steps", "baseline_steps", "ablation_steps", "checkpoint_every")  # may change between runs
        now = {k: v for k, v in dataclasses.asdict(self.cfg).items() if k not in budget}
        then = {k: v for k, v in s["config"].items() if k not in budget}
        if then != now:
            changed = sorted(k for k in then if then[k] != now.get(k))
            raise CheckpointError(f"{path} was trained with other settings ({', '.join(changed)}): resume with the "
                                  f"same settings or start a new run")
        _unwrap(self.G).load_state_dict(s["G"])
        _unwrap(self.Df).load_state_dict(s["Df"])
        _unwrap(self.Ds).load_state_dict(s["Ds"])
        if self.ema is not None and s["ema"] is not None:
            self.ema.load_state_dict(s["ema"])
        if s.get("opt_g") is not None:  # a bundled checkpoint (machinery.bundle) leaves the optimisers out
            self.opt_g.load_state_dict(s["opt_g"])
            self.opt_d.load_state_dict(s["opt_d"])
        self.scaler.load_state_dict(s["scaler"])
        torch.set_rng_state(s["torch_rng"].cpu())
        if s["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([r.cpu() for r in s["cuda_rng"]])
        self.rng.bit_generator.state = s["numpy_rng"]
        self.step_count = int(s["step"])

    def train(self, steps: int, checkpoint: str | Path | None = None, progress: bool = True,
              callback=None, resume: bool = True) -> pd.DataFrame:
        """Run until ``steps`` steps are done in all (with ``resume``, from ``checkpoint`` when it exists).

        Saves to ``checkpoint`` every ``cfg.checkpoint_every`` steps and at the end (rank 0 only).
        ``callback(trainer, row)`` runs after every step, before a checkpoint is saved (live plots,
        bookkeeping). Returns this call's rows (losses and ``step_seconds``, the wall time of each step).
        """
        if resume and checkpoint is not None and Path(checkpoint).exists():
            self.load(checkpoint)
        rank0 = not self.distributed or torch.distributed.get_rank() == 0

        def after(step, row):
            if callback is not None:
                callback(self, row)
            if checkpoint is not None and rank0 and self.step_count % self.cfg.checkpoint_every == 0:
                self.save(checkpoint)

        history = self.trainer(progress and rank0).run(steps, start=self.step_count, callback=after)
        if checkpoint is not None and rank0:
            self.save(checkpoint)
        return history

    @property
    def generator(self) -> Generator:
        """The generator to sample from: the EMA weights when kept, else the trained ones."""
        return self.ema if self.ema is not None else _unwrap(self.G)


def _compiled(module: nn.Module):
    """``torch.compile(module)`` that falls back to the module itself, with a warning, when compiling fails
    (no compiler on the machine, an unsupported operation): the same results, only slower."""
    try:
        fast = torch.compile(module)
    except Exception as exc:  # noqa: BLE001  (any failure to set up the compiler)
        warnings.warn(f"torch.compile is not available ({type(exc).__name__}: {first_line(exc)}); training eagerly")
        return module
    state = {"fn": fast}

    def forward(*args, **kwargs):
        try:
            return state["fn"](*args, **kwargs)
        except Exception as exc:  # noqa: BLE001  (inductor, a missing C++ compiler, a graph break that fails)
            if state["fn"] is module:
                raise
            warnings.warn(f"torch.compile failed ({type(exc).__name__}: {first_line(exc)}); training eagerly")
            state["fn"] = module
            return module(*args, **kwargs)

    return forward


# ----------------------------------------------------------------------------------- DDP self-test
def ddp_check(out: str, steps: int = 3) -> None:
    """Under ``torchrun --nproc_per_node 2``: a few steps with gloo, then each rank writes a checksum of its weights."""
    torch.distributed.init_process_group("gloo")
    rank = torch.distributed.get_rank()
    torch.set_num_threads(1)
    cfg = GANConfig(batch_size=2, window=6, generator=GeneratorConfig(width=8), d_width=8, ema=0.0)
    trainer = GANTrainer(cfg, GANData.synthetic(resolution=32, seed=rank), resolution=32, seed=0,
                         dev=torch.device("cpu"))
    for _ in range(steps):
        trainer.step()
    flat = torch.cat([p.detach().flatten() for m in (trainer.G, trainer.Df, trainer.Ds) for p in m.parameters()])
    Path(out).mkdir(parents=True, exist_ok=True)
    (Path(out) / f"rank{rank}.txt").write_text(f"{flat.double().sum().item():.12e} {flat.double().abs().sum().item():.12e}")
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    import sys

    if len(sys.argv) >= 3 and sys.argv[1] == "ddp-check":
        ddp_check(sys.argv[2])
    else:
        print("usage: torchrun --nproc_per_node 2 -m s2v_lib.gan.train ddp-check OUT_DIR")


# ----------------------------------------------------------------------------------- runs of notebook 04
#: The systems notebook 04 trains: name -> changes to the GAN settings (the paper's model, its
#: static-image baseline, and one ablation per flag).
SYSTEMS = {
    "speech2video": {},
    "static_image_baseline": dict(generator=dict(identity_from="image")),
    "no_sync": dict(use_sync=False),
    "no_sequence": dict(use_sequence=False),
    "no_emotion": dict(generator=dict(use_emotion=False)),
    "no_noise": dict(generator=dict(use_noise=False)),
}


def fit(system: str, cfg: GANConfig, data: GANData, experts: dict, run, steps: int, resolution: int = 64,
        seed: int = 0, retrain: bool = False, progress: bool = True, watch: GANData | None = None,
        snapshots: int = 8, trainer_class: type | None = None):
    """Train one system of ``SYSTEMS`` to ``steps`` steps in all, resuming ``<run>/checkpoints/gan_<system>.pt``.

    ``trainer_class``: a subclass of ``GANTrainer`` whose ``discriminator_loss`` or ``generator_loss``
    you rewrote; what it computes is what trains (default ``GANTrainer``).

    A finished run is loaded, not retrained; an interrupted one continues where it stopped.
    With ``watch`` (e.g. held-out clips), the generator's frame for one fixed window is kept
    ``snapshots`` times over training (``<run>/checkpoints/gan_<system>_snapshots.npz``: steps
    and frames), to watch the face form. Returns ``(trainer, history)`` with the whole history.
    """
    if system not in SYSTEMS:
        raise ValueError(f"unknown system {system!r}; choose one of {list(SYSTEMS)}")
    cfg = with_overrides(cfg, SYSTEMS[system])
    ckpt = Path(run) / "checkpoints" / f"gan_{system}.pt"
    hist_path = ckpt.with_name(ckpt.stem + "_history.csv")
    if retrain:
        ckpt.unlink(missing_ok=True)
        hist_path.unlink(missing_ok=True)
    snap_path = ckpt.with_name(ckpt.stem + "_snapshots.npz")
    if retrain:
        snap_path.unlink(missing_ok=True)
    trainer = (trainer_class or GANTrainer)(cfg, data, experts, resolution, seed)
    if ckpt.exists():
        trainer.load(ckpt)
    start = trainer.step_count
    old = _read_history(hist_path)
    old = old[old.step <= start] if not old.empty else old  # rows past the checkpoint are trained again
    kept = _read_snapshots(snap_path) or dict(steps=np.zeros(0, int), frames=None)
    keep = np.asarray(kept["steps"]) <= start
    snap_steps = list(np.asarray(kept["steps"])[keep])
    snap_frames = list(kept["frames"][keep]) if kept["frames"] is not None else []
    every = max(1, steps // max(snapshots, 1))
    fixed = watch.batch(np.random.default_rng(seed), 1, cfg.window) if watch is not None else None
    real = (fixed["real"][0, cfg.window // 2].movedim(0, -1).numpy() * 255).round().astype(np.uint8) \
        if fixed is not None else kept.get("real")
    rows = []

    @torch.no_grad()
    def snapshot(tr):
        if fixed is None or (tr.step_count % every and tr.step_count != 1):
            return
        dev = next(tr.generator.parameters()).device
        video, _ = tr.generator(fixed["mel"].to(dev), fixed["identity"].to(dev), fixed["emotion"].to(dev),
                                identity_image=fixed["reference"].to(dev), generator=torch.Generator().manual_seed(0))
        frame = video[0, cfg.window // 2].movedim(0, -1).clamp(0, 1).float().cpu().numpy()
        snap_steps.append(tr.step_count)
        snap_frames.append((frame * 255).round().astype(np.uint8))

    def write_bookkeeping() -> pd.DataFrame:
        """History and snapshots so far, each written whole (before the checkpoint of the same step)."""
        history = pd.concat([old, pd.DataFrame(rows)], ignore_index=True)
        atomic_write(hist_path, lambda f: history.to_csv(f, index=False))
        if snap_frames:
            atomic_write(snap_path, lambda f: np.savez(f, steps=np.array(snap_steps), frames=np.stack(snap_frames),
                                                       real=real))
        return history

    def after_step(tr, row):
        snapshot(tr)
        rows.append(row)
        if tr.step_count % cfg.checkpoint_every == 0:
            write_bookkeeping()

    t0 = time.perf_counter()
    trainer.train(steps, ckpt, progress, callback=after_step, resume=False)
    if trainer.step_count > start:
        note_training(run, ckpt.stem, time.perf_counter() - t0, steps=[int(start), int(trainer.step_count)])
    return trainer, write_bookkeeping()


def _read_history(path: Path) -> pd.DataFrame:
    """A GAN's loss history, or an empty table when there is none; ``CheckpointError`` naming an unreadable file."""
    if not path.exists():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable loss history ({type(exc).__name__}); delete it (the "
                              f"checkpoint beside it still resumes)") from exc


def _read_snapshots(path: Path) -> dict | None:
    """The frames ``fit`` kept, or None when there are none; ``CheckpointError`` naming an unreadable file."""
    if not path.exists():
        return None
    try:
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    except Exception as exc:  # noqa: BLE001  (zip, pickle and numpy errors alike)
        raise CheckpointError(f"{path} is not a readable snapshots file ({type(exc).__name__}); delete it (the "
                              f"checkpoint beside it still resumes)") from exc


def snapshots(run, system: str) -> dict | None:
    """The frames ``fit`` kept over training (``steps``, ``frames``, ``real``), or None."""
    return _read_snapshots(Path(run) / "checkpoints" / f"gan_{system}_snapshots.npz")


@torch.no_grad()
def heldout_l1(generator: Generator, data: GANData, windows: int = 64, window: int = 8, seed: int = 0) -> float:
    """Mean absolute pixel error (0-1 scale) of generated against real frames on windows of ``data``."""
    generator.eval()
    dev = next(generator.parameters()).device
    b = data.batch(np.random.default_rng(seed), windows, window)
    fake, _ = generator(b["mel"].to(dev), b["identity"].to(dev), b["emotion"].to(dev),
                        identity_image=b["reference"].to(dev), generator=torch.Generator().manual_seed(seed))
    return float((fake.cpu() - b["real"]).abs().mean())


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(1, T, 3, R, R) or (T, 3, R, R) in [0, 1] -> (T, R, R, 3) uint8, as a saved video holds it."""
    v = video.reshape(-1, *video.shape[-3:]).movedim(1, -1).clamp(0, 1)
    return (v.cpu().numpy() * 255).round().astype(np.uint8)


def generate_clip(generator: Generator, data: GANData, k: int, seed: int = 0, emotion_of: int | None = None) -> np.ndarray:
    """Clip ``k`` of ``data`` generated from its sound: (T, R, R, 3) uint8.

    The students' embeddings of the clip feed speech2video; the static-image baseline also gets
    ``data.reference[k]``. ``emotion_of``: take the emotion embedding of another clip instead.
    The noise is seeded by ``seed + k``: the same call gives the same video (notebooks 04 and 05
    show the videos they score).
    """
    ref = torch.from_numpy(data.reference[k][None]).movedim(-1, 1).float() / 255
    e = data.emotion[k if emotion_of is None else emotion_of]
    return to_uint8(generator.generate(torch.from_numpy(data.mel[k][None]), torch.from_numpy(data.identity[k][None]),
                                       torch.from_numpy(e[None]), identity_image=ref, seed=seed + k))


def side_by_side(generators: dict, data: GANData, clip: int, seed: int = 0) -> np.ndarray:
    """One clip, real and each generator's video next to each other: (T, R, R * (1 + n), 3) uint8."""
    panels = [np.asarray(data.frames[clip])] + [generate_clip(g, data, clip, seed) for g in generators.values()]
    return np.concatenate(panels, axis=2)


def load_generator(path, map_location="cpu") -> Generator:
    """The generator to sample from, out of a checkpoint written by ``GANTrainer.save`` (``fit``'s
    ``<run>/checkpoints/gan_<system>.pt``): the EMA weights when kept, else the trained ones.

    Raises ``runs.CheckpointError`` with the reason for a missing, unreadable or foreign file.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"no GAN checkpoint at {path}: train it with notebook 04 (s2v_lib.gan.train.fit)")
    try:
        s = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001  (pickle, zip and torch errors alike)
        raise CheckpointError(f"{path} is not a readable torch checkpoint ({type(exc).__name__}: "
                              f"{first_line(exc)})") from exc
    if not isinstance(s, dict) or "generator_config" not in s or "G" not in s:
        raise CheckpointError(f"{path} is not a GAN checkpoint (expected one written by s2v_lib.gan.train.GANTrainer)")
    g = Generator(**s["generator_config"])
    try:
        g.load_state_dict(s["ema"] if s.get("ema") is not None else s["G"])
    except RuntimeError as exc:
        raise CheckpointError(f"the weights in {path} do not fit the generator: {str(exc).splitlines()[0]}") from exc
    g.to(map_location).eval()
    for p in g.parameters():
        p.requires_grad_(False)
    return g
