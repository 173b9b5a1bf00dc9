"""Client-side differential privacy: DP-SGD (Abadi et al., CCS 2016) through Opacus.

Each client clips every example's gradient to ``max_grad_norm`` and adds Gaussian noise of
standard deviation ``noise_multiplier x max_grad_norm`` to the summed gradient.  The privacy
spent is per client, by the RDP accountant (Mironov, CSF 2017) over all its local steps so far,
each with sampling rate ``batch / local examples``; the run reports the largest epsilon over
clients at the given delta.  Batches are fixed-size draws with replacement, which the accountant
treats as Poisson sampling at the same rate (the usual approximation, as Opacus' non-Poisson mode).

Opacus attaches per-sample-gradient hooks when a model is wrapped; wrapping the same model every
round stacks the hooks.  :class:`DPTrainer` wraps one private copy of the codec once, per process,
and loads the round's weights into it.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor

from semguard.codecs.base import SemanticCodec
from semguard.federated.model import get_vector, set_vector

__all__ = ["DPTrainer", "dp_epsilon", "noise_for_epsilon", "client_sample_rates"]


class DPTrainer:
    """``(codec, images, labels, cfg, seed) -> mean loss``: :func:`local_train` with DP-SGD."""

    def __init__(self, *, noise_multiplier: float, max_grad_norm: float, delta: float) -> None:
        if noise_multiplier <= 0 or max_grad_norm <= 0 or not 0 < delta < 1:
            raise ValueError("DP needs noise_multiplier > 0, max_grad_norm > 0 and 0 < delta < 1")
        self.noise_multiplier, self.max_grad_norm, self.delta = noise_multiplier, max_grad_norm, delta
        self._gsm: Any = None
        self.wraps = 0  # how many times a model was wrapped (stays 1)

    def _private(self, codec: SemanticCodec) -> Any:
        from opacus import GradSampleModule

        if self._gsm is None:
            self._gsm = GradSampleModule(copy.deepcopy(codec))
            self.wraps += 1
        set_vector(self._gsm._module, get_vector(codec))
        return self._gsm

    def __call__(self, codec: SemanticCodec, images: Tensor, labels: Tensor, cfg: Any, seed: int) -> float:
        from opacus.optimizers import DPOptimizer

        from semguard.federated.client import local_train

        gsm = self._private(codec)
        batch = min(cfg.batch, images.shape[0])
        opt = DPOptimizer(cfg.make_optimizer(gsm.parameters()), noise_multiplier=self.noise_multiplier,
                          max_grad_norm=self.max_grad_norm, expected_batch_size=batch,
                          generator=torch.Generator().manual_seed(seed + 3))
        loss = local_train(gsm, images, labels, cfg, seed, optimizer=opt)
        set_vector(codec, get_vector(gsm._module))
        return loss


def client_sample_rates(sizes: list[int], batch: int) -> list[float]:
    return [min(1.0, batch / max(n, 1)) for n in sizes]


def dp_epsilon(noise_multiplier: float, sample_rates: list[float], steps: int, delta: float) -> float:
    """The largest per-client epsilon after ``steps`` DP-SGD steps at each client's sampling rate."""
    from opacus.accountants import RDPAccountant

    worst = 0.0
    for q in set(sample_rates):
        acc = RDPAccountant()
        acc.history = [(noise_multiplier, q, steps)]
        worst = max(worst, float(acc.get_epsilon(delta)))
    return worst


def noise_for_epsilon(epsilon: float, sample_rates: list[float], steps: int, delta: float) -> float:
    """The noise multiplier that keeps every client within ``epsilon`` after ``steps`` steps."""
    from opacus.accountants.utils import get_noise_multiplier

    if not epsilon > 0:
        raise ValueError(f"--dp-epsilon must be > 0, got {epsilon}")
    return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=delta, sample_rate=max(sample_rates),
                                      steps=steps, accountant="rdp"))
