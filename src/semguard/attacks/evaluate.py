"""Fidelity under attack over a set of sources, batch by batch, on the same channel draws as the
clean link: the one function evaluation code calls (``semguard run``'s robustness section, the
``semguard attack`` command, ``bench/attacks.py``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from semguard.attacks.base import Attack
from semguard.link import Link

__all__ = ["robust_fidelity"]

Metric = Callable[[Tensor, Tensor], Tensor]


def robust_fidelity(link: Link, sources: Tensor, attack: Attack, snr_db: float, *, metric: Metric,
                    labels: Tensor | None = None, targets: Tensor | None = None, batch: int = 4,
                    seed: int = 0) -> dict[str, Any]:
    """Clean and attacked fidelity of ``link`` on ``sources``.

    Args:
        link: the attacked link.
        sources: the evaluation sources ``[N, ...]`` (images, token ids).
        attack: a built attack (a universal one already fitted).
        snr_db: Bob's SNR.
        metric: per-sample fidelity ``metric(output, reference) -> [B]``; ``reference`` is ``labels``
            when given, else the sources (e.g. ``semguard.metrics.image.psnr``).
        labels: true classes ``[N]`` (task codecs).
        targets: per-sample targets for a targeted attack.
        batch: sources per attacked batch.
        seed: batch ``i`` uses channel seed ``seed + i`` for both the clean and the attacked link.

    Returns:
        ``{"threat_model", "config", "clean", "attacked", "clean_per_sample", "attacked_per_sample",
        "measured_budget", "seconds", "ms_per_sample_step"}`` (means over the sources).
    """
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    clean, hit, spent = [], [], []
    seconds = 0.0  # the attack's own time (crafting and sending), not the clean pass
    res = None
    for i, s in enumerate(range(0, sources.shape[0], batch)):
        src = sources[s:s + batch]
        lab = None if labels is None else labels[s:s + batch]
        tgt = None if targets is None else targets[s:s + batch]
        ref = lab if lab is not None else src
        with torch.no_grad():
            out = link(src, snr_db, generator=torch.Generator(device=src.device).manual_seed(seed + i))["output"]
        clean.append(metric(out, ref).float())
        t = time.perf_counter()
        res = attack(link, src, snr_db, labels=lab, target=tgt, generator=torch.Generator(device=src.device).manual_seed(seed + i))
        seconds += time.perf_counter() - t
        hit.append(metric(res.output, ref).float())
        spent.append(res.measured.float())
    assert res is not None
    starts = getattr(attack, "restarts", 1) + (getattr(attack, "warm_start", None) is not None)
    steps = getattr(attack, "steps", 1) * starts * getattr(attack, "eot", 1)
    if attack.name == "universal":  # replay only: its training is timed by fit_seconds
        steps = 1
    c, a = torch.cat(clean), torch.cat(hit)
    return {"threat_model": res.threat_model.to_dict(), "config": res.config, "clean": c.mean().item(),
            "attacked": a.mean().item(), "clean_per_sample": c.tolist(), "attacked_per_sample": a.tolist(),
            "measured_budget": torch.cat(spent).mean().item(), "seconds": seconds,
            "ms_per_sample_step": 1000.0 * seconds / (sources.shape[0] * steps)}
