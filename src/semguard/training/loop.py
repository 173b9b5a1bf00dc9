"""The training loop shared by every codec: SNR sampled per example, channels alternated per
step, cosine learning rate, resumable checkpoints, periodic validation."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.training.adversarial import AdvSpec, adversarial_step
from semguard.training.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from semguard.utils import dumps_strict
from semguard.training.tasks import Task

__all__ = ["TrainConfig", "train", "train_step"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run (saved with every checkpoint)."""

    steps: int = 10_000
    batch: int = 32
    lr: float = 1e-3
    lr_min: float = 1e-5
    snr_min_db: float = 0.0
    snr_max_db: float = 20.0
    seed: int = 0
    ckpt_every: int = 250
    val_every: int = 1000
    val_snr_db: Sequence[float] = field(default_factory=lambda: (0.0, 10.0, 20.0))
    max_minutes: float | None = None  # stop (and checkpoint) after this much wall time
    warmup: int = 0  # linear learning-rate warm-up steps (useful when fine-tuning trained weights)
    bf16: bool = False  # forward pass under bfloat16 autocast (weights, optimiser, loss stay float32)
    adv: AdvSpec | None = None  # adversarial training (training.adversarial); None: clean training

    def lr_at(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        t = min(step / max(self.steps, 1), 1.0)
        return self.lr_min + 0.5 * (self.lr - self.lr_min) * (1 + math.cos(math.pi * t))


def _as_float32(out: dict[str, Any]) -> dict[str, Any]:
    """Real bfloat16 outputs of an autocast forward pass cast to float32 for the loss."""
    return {k: v.float() if isinstance(v, torch.Tensor) and v.dtype == torch.bfloat16 else v
            for k, v in out.items()}


def train_step(codec: SemanticCodec, loss_fn: Callable[[dict[str, Any], Tensor], Tensor],
               opt: torch.optim.Optimizer, source: Tensor, target: Tensor, channel: Channel, snr_db: Tensor, *,
               bf16: bool = False, generator: torch.Generator | None = None) -> Tensor:
    """One optimiser step: forward through ``channel`` (under bfloat16 autocast with ``bf16``), the
    loss in float32, backward, ``opt.step()``.  Returns the detached loss."""
    with torch.autocast(source.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = codec(source, channel, snr_db, generator=generator)
    loss = loss_fn(_as_float32(out), target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss.detach()


def _validate(codec: SemanticCodec, task: Task, channels: Sequence[tuple[str, Channel]],
              cfg: TrainConfig, device: torch.device) -> dict[str, float]:
    codec.eval()
    gen = torch.Generator(device=device)
    res = {}
    for cname, ch in dict(channels).items():  # a channel listed twice (to weight it) is validated once
        for snr in cfg.val_snr_db:
            gen.manual_seed(1234)
            res[f"{cname}@{snr:g}dB"] = task.validate(codec, ch, snr, device, gen)
    codec.train()
    return res


def train(codec: SemanticCodec, task: Task, channels: Sequence[tuple[str, Channel]], cfg: TrainConfig,
          ckpt_dir: str | Path, *, device: torch.device = torch.device("cpu"), resume: bool = True,
          progress: bool = True, meta: dict[str, str] | None = None) -> dict[str, Any]:
    """Train ``codec`` on ``task`` through ``channels`` (alternating per step).

    Writes ``ckpt_dir/last.pt`` every ``ckpt_every`` steps and at the end (model, optimiser,
    step, RNG state, config, validation history, ``meta``) and ``ckpt_dir/history.jsonl``; with
    ``resume`` it continues from ``last.pt`` and keeps the ``meta`` saved there (e.g. the sha256 of
    the weights the run started from), updated by the one given.  Returns the final record
    (``step``, ``history``, ``checkpoint``, ``meta``).
    """
    ckpt_dir = Path(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    codec.to(device).train()
    opt = torch.optim.Adam(codec.parameters(), lr=cfg.lr)
    gen = torch.Generator()  # data sampling stays on the CPU
    gen.manual_seed(cfg.seed)
    chan_gen = torch.Generator(device=device)
    chan_gen.manual_seed(cfg.seed + 1)
    step, history, meta = 0, [], dict(meta or {})
    last = latest_checkpoint(ckpt_dir) if resume else None
    if last is not None:
        state = load_checkpoint(last, map_location=device)
        codec.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        step, history = int(state["step"]), list(state.get("history", []))
        meta = {**state.get("meta", {}), **meta}
        gen.set_state(state["rng"])
        chan_gen.manual_seed(cfg.seed + 1 + step)
        log.info("resumed from %s at step %d", last, step)

    def checkpoint() -> None:
        save_checkpoint(ckpt_dir / "last.pt", {
            "model": codec.state_dict(), "optimizer": opt.state_dict(), "step": step,
            "rng": gen.get_state(), "history": history, "config": json.dumps(asdict(cfg)),
            "codec_config": json.dumps(codec.config), "meta": meta,
        })

    t0 = time.monotonic()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="train", dynamic_ncols=True)
    running = None
    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = cfg.lr_at(step)
        source, target = task.batch(cfg.batch, gen)
        source, target = source.to(device), target.to(device)
        snr = cfg.snr_min_db + (cfg.snr_max_db - cfg.snr_min_db) * torch.rand(cfg.batch, generator=gen)
        _, channel = channels[step % len(channels)]
        if cfg.adv is None:
            loss = train_step(codec, task.loss, opt, source, target, channel, snr.to(device), bf16=cfg.bf16,
                              generator=chan_gen)
        else:  # the attacker's random start differs every step, reproducibly from the seed
            loss = adversarial_step(codec, task.loss, opt, source, target, channel, snr.to(device), cfg.adv,
                                    generator=chan_gen, seed=cfg.seed * 1_000_003 + step, bf16=cfg.bf16)
        step += 1
        lval = float(loss)
        running = lval if running is None else 0.98 * running + 0.02 * lval
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4g}", lr=f"{cfg.lr_at(step):.2g}")
        out_of_time = cfg.max_minutes is not None and (time.monotonic() - t0) > 60 * cfg.max_minutes
        if step % cfg.val_every == 0 or step == cfg.steps or out_of_time:
            rec = {"step": step, "loss": running, **_validate(codec, task, channels, cfg, device)}
            history.append(rec)
            log.info("validation %s", rec)
            bar.write(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in rec.items()))
            with open(ckpt_dir / "history.jsonl", "a") as f:
                f.write(dumps_strict(rec) + "\n")
        if step % cfg.ckpt_every == 0 or step == cfg.steps or out_of_time:
            checkpoint()
        if out_of_time:
            log.warning("stopping at step %d: --max-minutes %.1f reached", step, cfg.max_minutes)
            break
    bar.close()
    return {"step": step, "history": history, "checkpoint": str(ckpt_dir / "last.pt"), "meta": meta}
