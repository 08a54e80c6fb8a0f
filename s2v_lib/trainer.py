"""The one training loop: every network of the course (teachers, students, sync expert, GAN,
landmark judge) is trained by ``Trainer.run``.

A stage supplies two things, as in minGPT's ``Trainer``:

* ``sample()``: the next batch (the stage's sampler: random frames, utterance crops, clip windows);
* one or more ``Update(optimizer, loss)``: ``loss(batch) -> (loss tensor, logs dict)``. Each step
  runs its updates in order on the same batch (the GAN: the discriminators, then the generator)::

      for step in range(start, steps):
          batch = sample()
          for update in updates:
              loss, logs = update.loss(batch)      # forward
              optimizer.zero_grad(); loss.backward(); optimizer.step(); scheduler.step()
          after_step(step)                         # e.g. the GAN's moving average of weights

A loss redefined in a notebook and handed to a stage's training function is what gets trained.
``run`` returns the history: one row per step with ``step``, each named update's loss, the
logs, and ``step_seconds`` (the wall time of that step).
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import pandas as pd
import torch

from .config import progress as progress_bar


@dataclasses.dataclass
class Update:
    """One optimisation of a step: ``loss(batch) -> (loss, logs)``, then ``optimizer`` (and ``scheduler``) step.

    ``name``: the history column of the loss itself (None: only the logs are kept).
    """

    optimizer: torch.optim.Optimizer
    loss: Callable
    scheduler: object | None = None
    name: str | None = "loss"


def adamw_one_cycle(params, lr: float, weight_decay: float, steps: int, warmup: float = 0.15):
    """AdamW with a one-cycle learning rate (warm up for ``warmup`` of the steps, then cosine down).

    The schedule of every network but the GAN's (which keeps Adam at a constant rate, as GANs do).
    """
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=warmup)
    return optimizer, scheduler


class Trainer:
    """Run ``updates`` on batches from ``sample`` for a number of steps, with a progress bar.

    ``scaler``: a ``torch.amp.GradScaler`` shared by the updates (mixed precision on a GPU);
    ``autocast``: the device type whose autocast wraps each loss (None: full precision);
    ``after_step(step)``: called after each step's updates, with the number of steps done.
    """

    def __init__(self, sample: Callable, updates: list[Update], desc: str = "training", progress: bool = True,
                 scaler: torch.amp.GradScaler | None = None, autocast: str | None = None,
                 after_step: Callable | None = None):
        if not updates:
            raise ValueError("a Trainer needs at least one Update")
        self.sample, self.updates, self.desc, self.progress = sample, list(updates), desc, progress
        self.scaler, self.autocast, self.after_step = scaler, autocast, after_step

    def step(self) -> dict:
        """One step: a batch, then each update in order. Returns the losses and logs as floats."""
        batch = self.sample()
        row = {}
        for update in self.updates:
            with torch.autocast(self.autocast or "cpu", enabled=self.autocast is not None):
                loss, logs = update.loss(batch)
            update.optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(update.optimizer)
            else:
                loss.backward()
                update.optimizer.step()
            if update.scheduler is not None:
                update.scheduler.step()
            if update.name:
                row[update.name] = float(loss.detach())
            row.update({k: float(v.detach()) if torch.is_tensor(v) else float(v) for k, v in logs.items()})
        if self.scaler is not None:
            self.scaler.update()
        return row

    def run(self, steps: int, start: int = 0, callback: Callable | None = None) -> pd.DataFrame:
        """Steps ``start`` .. ``steps`` (resume by passing the steps already done).

        ``callback(step, row)`` runs after each step (checkpoints, snapshots, live plots).
        """
        history = []
        bar = progress_bar(range(start, steps), self.progress, desc=self.desc, unit="step")
        for step in bar:
            t0 = time.perf_counter()
            row = dict(step=step + 1, **self.step())
            if self.after_step is not None:
                self.after_step(step + 1)
            row["step_seconds"] = time.perf_counter() - t0
            history.append(row)
            if callback is not None:
                callback(step + 1, row)
            if (step - start) % 20 == 0:
                bar.set_postfix({k: f"{v:.3f}" for k, v in list(row.items())[1:4]})
        return pd.DataFrame(history)
