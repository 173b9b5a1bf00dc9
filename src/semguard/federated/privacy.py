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

Opacus' hooks cover the layers it knows; DeepSC's ``torch.nn.MultiheadAttention`` is not one of them
(Opacus asks for its own ``DPMultiheadAttention`` instead, which would change the shipped codec's
weights' layout).  :class:`MicrobatchDPTrainer` computes the per-example gradients by one backward pass
per example (microbatches of one, Abadi et al.'s own formulation, exact for any layer), hands them to
the same Opacus :class:`~opacus.optimizers.DPOptimizer` as ``grad_sample`` and lets it clip, noise,
average and step: the clipping, the noise and the accountant are Opacus', only the per-example gradients
are ours.  It costs one forward and backward per example instead of one per batch.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.codecs.base import SemanticCodec
from semguard.federated.model import get_vector, set_vector

__all__ = ["DPTrainer", "MicrobatchDPTrainer", "client_sample_rates", "dp_epsilon", "microbatch_step",
           "noise_for_epsilon", "per_example_grads"]


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


def per_example_grads(codec: SemanticCodec, loss_fn: Callable[[dict[str, Any], Tensor], Tensor], source: Tensor,
                      target: Tensor, channel: Channel, snr_db: Tensor, *,
                      generator: torch.Generator | None = None) -> tuple[list[Tensor], Tensor]:
    """The gradient of each example's own loss (``loss_fn`` on a batch of that one example), stacked:
    one tensor ``[B, *p.shape]`` per trainable parameter of ``codec`` (zeros where the parameter took no
    part), and the ``B`` losses.  One forward and backward per example, through ``channel`` at that
    example's ``snr_db``; ``generator`` draws the channel in example order."""
    if source.shape[0] != target.shape[0] or snr_db.shape != (source.shape[0],):
        raise ValueError(f"per_example_grads: source {tuple(source.shape)}, target {tuple(target.shape)} and "
                         f"snr_db {tuple(snr_db.shape)} must share the batch size")
    params = [p for p in codec.parameters() if p.requires_grad]
    n = source.shape[0]
    grads = [torch.zeros((n, *p.shape), dtype=p.dtype, device=p.device) for p in params]
    losses = torch.empty(n)
    for i in range(n):
        out = codec(source[i:i + 1], channel, snr_db[i:i + 1], generator=generator)
        loss = loss_fn(out, target[i:i + 1])
        for g, gi in zip(grads, torch.autograd.grad(loss, params, allow_unused=True)):
            if gi is not None:
                g[i] = gi
        losses[i] = loss.detach()
    return grads, losses


def microbatch_step(codec: SemanticCodec, loss_fn: Callable[[dict[str, Any], Tensor], Tensor], opt: Any,
                    source: Tensor, target: Tensor, channel: Channel, snr_db: Tensor, *,
                    generator: torch.Generator | None = None) -> Tensor:
    """One DP-SGD step (``opt`` a :class:`~opacus.optimizers.DPOptimizer` over ``codec``'s trainable
    parameters): the per-example gradients of :func:`per_example_grads` as each parameter's
    ``grad_sample``, then Opacus clips each example, sums, adds the noise, averages and steps.  Returns
    the mean loss, detached."""
    grads, losses = per_example_grads(codec, loss_fn, source, target, channel, snr_db, generator=generator)
    opt.zero_grad(set_to_none=True)
    for p, g in zip((p for p in codec.parameters() if p.requires_grad), grads):
        p.grad_sample = g
    opt.step()
    return losses.mean()


class MicrobatchDPTrainer:
    """``(codec, ids, labels, cfg, seed) -> mean loss``: :func:`local_train` with DP-SGD whose per-example
    gradients come from :func:`per_example_grads` (for codecs Opacus cannot hook, as DeepSC)."""

    def __init__(self, *, noise_multiplier: float, max_grad_norm: float, delta: float) -> None:
        if noise_multiplier <= 0 or max_grad_norm <= 0 or not 0 < delta < 1:
            raise ValueError("DP needs noise_multiplier > 0, max_grad_norm > 0 and 0 < delta < 1")
        self.noise_multiplier, self.max_grad_norm, self.delta = noise_multiplier, max_grad_norm, delta

    def __call__(self, codec: SemanticCodec, images: Tensor, labels: Tensor, cfg: Any, seed: int) -> float:
        from opacus.optimizers import DPOptimizer

        from semguard.federated.client import local_train

        batch = min(cfg.batch, images.shape[0])
        params = [p for p in codec.parameters() if p.requires_grad]
        opt = DPOptimizer(cfg.make_optimizer(params), noise_multiplier=self.noise_multiplier,
                          max_grad_norm=self.max_grad_norm, expected_batch_size=batch,
                          generator=torch.Generator().manual_seed(seed + 3))
        try:
            return local_train(codec, images, labels, cfg, seed, optimizer=opt, step=microbatch_step)
        finally:
            for p in params:  # leave no per-example gradients on the shared codec
                p.grad_sample = None
                p.grad = None


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
