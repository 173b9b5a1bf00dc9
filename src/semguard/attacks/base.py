"""The thin :class:`Attack` base: the threat model, eval mode and frozen weights (restored after),
the attack's own seeded generator, the budget projection on each surface, and the measured budget.

A subclass implements :meth:`Attack.perturb` and returns its perturbation; the base sends the batch
with it over the :class:`~semguard.link.Link` (:meth:`Attack.send`, differentiable, used inside
``perturb`` too) and records what reached the receiver.

Surfaces and how a perturbation ``delta`` enters the link:

* ``input``: the source becomes ``clip(source + delta, 0, 1)``, ``||delta|| <= eps`` (``linf`` / ``l2``).
* ``symbols``: the encoder output ``x`` becomes ``x + delta``, ``P(delta) <= 10^(psr/10) P(x)`` per block.
* ``channel``: ``g * delta`` is added at Bob's receiver (``Channel.apply(..., interference=)``) within the
  PSR budget of the received signal ``h x``; ``g`` is the attacker's own channel.
* ``pilots``: ``g * delta [B, n_blocks]`` is added to the pilots, within the PSR budget of the received
  pilots ``h``, so the receiver's CSI estimate and its equaliser go wrong.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor

from semguard.attacks._radiate import Radiator, pilot_signal, radiating
from semguard.attacks.budget import check_eps, input_norm, project_input
from semguard.attacks.objectives import (
    RECON_LOSSES,
    TASK_LOSSES,
    attack_loss,
    attack_success,
    check_objective,
    codec_objective,
)
from semguard.attacks.threat import SURFACES, ThreatModel
from semguard.channels import functional as F
from semguard.channels.base import as_snr_tensor
from semguard.link import Link

__all__ = ["CHANNEL_KNOWLEDGE", "Attack", "AttackContext", "AttackResult", "attacker_generator", "check_generator",
           "check_knows", "frozen"]

#: what a white-box attacker knows of the evaluated channel draw: ``"all"`` (fading, CSI error and
#: Bob's thermal noise: the oracle bound), ``"fading"`` (fading and CSI error, not the receiver's future
#: noise: a physical attacker at best), ``"none"`` (fresh draws of all of it)
CHANNEL_KNOWLEDGE = ("all", "fading", "none")


def check_knows(knows: object) -> str:
    """``knows`` if it is one of :data:`CHANNEL_KNOWLEDGE`, else a one-line error."""
    if knows not in CHANNEL_KNOWLEDGE:
        raise ValueError(f"knows must be one of {', '.join(map(repr, CHANNEL_KNOWLEDGE))}, got {knows!r}")
    return str(knows)


def attacker_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """The attacker's own random stream for ``seed`` on ``device`` (that of the tensors it draws for):
    a different stream from a channel generator seeded with the same small integer, so the attack
    never replays Bob's noise draw."""
    return torch.Generator(device=device).manual_seed((int(seed) + 1) * 0x9E3779B97F4A7C15 % (2**63 - 1))


def check_generator(generator: torch.Generator | None, source: Tensor) -> torch.Generator | None:
    """``generator`` if it draws on ``source``'s device (the channel draws there), else a one-line error."""
    if generator is not None and torch.device(generator.device).type != source.device.type:
        raise ValueError(f"generator: it draws on {generator.device}, the source is on {source.device}; "
                         f"pass torch.Generator(device=source.device)")
    return generator


@dataclass(frozen=True)
class AttackResult:
    """One attacked batch.

    Attributes:
        output: the decoder's output under attack (detached).
        perturbation: the attack's ``delta`` on its surface (before the attacker's channel).
        threat_model: the threat model, objective resolved.
        measured: the budget as spent, per sample ``[B]`` (``psr_db`` measured at the receiver, or the
            input perturbation's norm).
        link: the link's result dict of the attacked batch.
        config: the attack's hyper-parameters.
    """

    output: Tensor
    perturbation: Tensor
    threat_model: ThreatModel
    measured: Tensor
    link: dict[str, Any] = field(repr=False)
    config: dict[str, Any] = field(default_factory=dict)


@contextmanager
def frozen(link: Link) -> Iterator[None]:
    """Eval mode and no weight gradients on ``link`` for the block; both restored after."""
    modes = [(m, m.training) for m in link.modules()]
    flags = [(p, p.requires_grad) for p in link.parameters()]
    link.eval()
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for m, t in modes:
            m.train(t)
        for p, f in flags:
            p.requires_grad_(f)


@dataclass
class AttackContext:
    """What one call of an attack works on (built by :meth:`Attack.__call__`)."""

    link: Link
    source: Tensor
    snr: Tensor
    objective: str
    labels: Tensor | None
    target: Tensor | None
    channel_state: Tensor  # the evaluation generator's state: a white-box attacker replays it
    rng: torch.Generator  # the attacker's own randomness (start points, EOT draws, its channel)
    symbols: Tensor | None = None  # clean encoder output (symbols surface)
    g: Tensor | None = None  # the attacker's channel of the evaluated batch

    def channel_generator(self) -> torch.Generator:
        """A generator that replays the evaluated channel draw (fading, CSI error, noise), on the source's device."""
        gen = torch.Generator(device=self.source.device)
        gen.set_state(self.channel_state)
        return gen

    def channel_draw(self, knows: str) -> tuple[torch.Generator, torch.Generator | None]:
        """``(generator, noise_generator)`` for one :meth:`~semguard.link.Link.forward` as an attacker who
        ``knows`` (:data:`CHANNEL_KNOWLEDGE`) models it: ``"all"`` replays the evaluated draw, noise
        included; ``"fading"`` replays its fading and CSI error (drawn before the noise) with fresh noise
        from the attacker's generator; ``"none"`` draws all of it fresh."""
        knows = check_knows(knows)
        if knows == "all":
            return self.channel_generator(), None
        if knows == "fading":
            return self.channel_generator(), self.rng
        return self.rng, None

    @property
    def batch(self) -> int:
        return self.source.shape[0]


class Attack:
    """Base of every attack (one per file, registered in the ``attack`` family).

    Args:
        surface: one of :data:`~semguard.attacks.threat.SURFACES`.
        psr_db: the PSR budget in dB (air surfaces).
        eps: the input budget (``input`` surface, images in [0, 1]).
        norm: ``linf`` or ``l2`` on the input surface (default ``linf``).
        objective: None: the one that fits the codec.
        targeted: drive the receiver to ``target``.
        recon_loss: ``psnr`` / ``mse`` / ``ms-ssim`` for the reconstruction objective.
        task_loss: ``ce`` (cross-entropy), ``margin`` (Carlini-Wagner logit margin), ``prob`` (the soft
            error probability ``1 - p_y``) or ``dlr`` (Croce & Hein's difference-of-logits ratio) for
            the task objective; ``ce``, ``margin`` or ``prob`` (the soft token error rate) for the
            semantic objective, or ``embedding`` (semantic only): the soft sentence-embedding cosine of
            ``embedder`` (:mod:`semguard.attacks.sentence`).
        embedder: the :class:`~semguard.attacks.sentence.SoftSentenceEmbedder` of ``task_loss="embedding"``.
        attacker_fading: the attacker's channel ``g``: ``"auto"`` (Rayleigh when Bob's channel fades,
            else unit gain), ``"rayleigh"`` or ``"none"``.
        seed: the attack's own seed; a fixed seed reproduces an attack bit for bit.
    """

    name: ClassVar[str] = "attack"
    knowledge: ClassVar[str] = "white-box"
    surfaces: ClassVar[tuple[str, ...]] = SURFACES
    exact: ClassVar[bool] = False  # radiate on the sphere of the budget (jamming, universal)

    def __init__(self, *, surface: str = "channel", psr_db: float | None = None, eps: float | None = None,
                 norm: str | None = None, objective: str | None = None, targeted: bool = False,
                 recon_loss: str = "psnr", attacker_fading: str = "auto", seed: int = 0,
                 task_loss: str = "ce", embedder: object | None = None) -> None:
        if surface not in self.surfaces:
            raise ValueError(f"surface: {self.name} attacks one of {', '.join(self.surfaces)}, got {surface!r}")
        if surface == "input":
            if psr_db is not None:
                raise ValueError("psr_db: the input surface takes eps (inputs in [0, 1]), not a PSR budget")
            if eps is None:
                raise ValueError("eps: the input surface needs an eps budget (inputs in [0, 1])")
            budget, norm = check_eps(eps), norm or "linf"
        else:
            if eps is not None:
                raise ValueError(f"eps: the {surface} surface takes psr_db (dB), not eps")
            if psr_db is None:
                raise ValueError(f"psr_db: the {surface} surface needs a PSR budget in dB")
            budget, norm = float(psr_db), norm or "power"
        if recon_loss not in RECON_LOSSES:
            raise ValueError(f"recon_loss must be one of {', '.join(RECON_LOSSES)}, got {recon_loss!r}")
        if task_loss not in TASK_LOSSES:
            raise ValueError(f"task_loss must be one of {', '.join(TASK_LOSSES)}, got {task_loss!r}")
        if (task_loss == "embedding") != (embedder is not None):
            raise ValueError("embedder: task_loss='embedding' needs a SoftSentenceEmbedder, and only it takes one")
        if attacker_fading not in ("auto", "rayleigh", "none"):
            raise ValueError(f"attacker_fading must be 'auto', 'rayleigh' or 'none', got {attacker_fading!r}")
        # validated now (objective checked against the codec at call time)
        ThreatModel(surface, norm, budget, self.knowledge, objective or "reconstruction", targeted)
        self.surface, self.norm, self.budget = surface, norm, float(budget)
        self.objective, self.targeted, self.recon_loss = objective, targeted, recon_loss
        self.task_loss, self.embedder = task_loss, embedder
        self.attacker_fading, self.seed = attacker_fading, int(seed)

    # -- bookkeeping --------------------------------------------------------------------------
    def threat_model(self, objective: str | None = None) -> ThreatModel:
        return ThreatModel(self.surface, self.norm, self.budget, self.knowledge,
                           objective or self.objective or "reconstruction", self.targeted)

    def config(self) -> dict[str, Any]:
        """Hyper-parameters (what ``repr`` shows and every record stores)."""
        return {"attack": self.name, "surface": self.surface, "norm": self.norm, "budget": self.budget,
                "objective": self.objective, "targeted": self.targeted, "recon_loss": self.recon_loss,
                "task_loss": self.task_loss,
                "attacker_fading": self.attacker_fading, "seed": self.seed, **self.extra_config()}

    def extra_config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        c = self.config()
        c.pop("attack")
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in c.items())})"

    @property
    def psr_db(self) -> float:
        return self.budget

    def __call__(self, link: Link, source: Tensor, snr_db: Tensor | float, *, labels: Tensor | None = None,
                 target: Tensor | None = None, generator: torch.Generator | None = None) -> AttackResult:
        """Attack one batch and send it: the result's ``output`` is what Bob decodes.

        ``generator`` draws the evaluated channel (seeded from ``seed`` when None); pass the same
        seed to compare attacks (and the clean link) on the same channel draw."""
        if not isinstance(link, Link):
            raise TypeError(f"link must be a semguard Link, got {type(link).__name__}")
        link.codec.check_source(source)
        objective = check_objective(self.objective or codec_objective(link.codec), link.codec)
        if self.targeted and target is None:
            raise ValueError("target: a targeted attack needs the target (image, classes or token ids)")
        if not self.targeted and target is not None:
            raise ValueError("target: given to an untargeted attack; build it with targeted=True")
        if self.surface == "input" and not torch.is_floating_point(source):
            raise ValueError("surface: the input surface perturbs float images in [0, 1]; for token ids "
                             "use the word-substitution attack")
        gen = check_generator(generator, source) or torch.Generator(device=source.device).manual_seed(self.seed)
        ctx = AttackContext(link, source, as_snr_tensor(snr_db, source.shape[0], source.device), objective,
                            labels, target, gen.get_state(), attacker_generator(self.seed, source.device))
        with frozen(link):
            if self.surface == "symbols":
                with torch.no_grad():
                    ctx.symbols = link.codec.encode(source, ctx.snr)
            ctx.g = self.draw_g(ctx)
            with torch.enable_grad():
                delta = self.perturb(ctx).detach()
            with torch.no_grad():
                out, measured = self.send(ctx, delta, gen, g=ctx.g, measure=True)
        return AttackResult(out["output"].detach(), delta, self.threat_model(objective), measured, out, self.config())

    # -- the pieces subclasses use ------------------------------------------------------------
    def perturb(self, ctx: AttackContext) -> Tensor:
        """The perturbation on this attack's surface (``[B, ...]``, or ``[n]`` for a universal one)."""
        raise NotImplementedError

    def draw_g(self, ctx: AttackContext) -> Tensor | None:
        """The attacker's channel ``[B, 1]`` for one draw (None: unit gain), from the attacker's generator."""
        fades = getattr(ctx.link.channel, "fading", False)
        if self.surface not in ("channel", "pilots") or self.attacker_fading == "none" or (
                self.attacker_fading == "auto" and not fades):
            return None
        return F.rayleigh_coefficients((ctx.batch, 1), generator=ctx.rng, device=ctx.source.device)

    def shape(self, ctx: AttackContext) -> tuple[int, ...]:
        """The shape of a per-sample perturbation on this surface."""
        if self.surface == "input":
            return tuple(ctx.source.shape)
        n = ctx.link.n_symbols(tuple(ctx.source.shape[1:]))
        if self.surface == "pilots":
            return (ctx.batch, ctx.link.channel.pilot_blocks(n))
        return (ctx.batch, n)

    def reference(self, ctx: AttackContext) -> Tensor:
        """The signal the budget is measured against on the evaluated draw (white-box view):
        ``x`` (symbols), ``h x`` (channel), ``h`` per block (pilots)."""
        if self.surface == "symbols":
            assert ctx.symbols is not None
            return ctx.symbols
        with torch.no_grad():
            out = ctx.link(ctx.source, ctx.snr, generator=ctx.channel_generator())
        if self.surface == "pilots":
            return pilot_signal(out["state"], ctx.link.channel)
        return out["state"].h * out["transmitted"]

    def project(self, delta: Tensor, ctx: AttackContext, reference: Tensor | None = None) -> Tensor:
        """``delta`` onto the budget (input ball and [0, 1] box; PSR ball of ``reference``)."""
        if self.surface == "input":
            return project_input(delta, ctx.source, self.budget, self.norm)
        ref = reference if reference is not None else torch.ones_like(delta)
        return F.project_psr(delta, ref, self.budget, exact=self.exact)

    def send(self, ctx: AttackContext, delta: Tensor, generator: torch.Generator, *, g: Tensor | None = None,
             measure: bool = False, noise: torch.Generator | None = None) -> tuple[dict[str, Any], Tensor | None]:
        """The link's result with ``delta`` on this surface (differentiable in ``delta``), and the
        budget as spent per sample when ``measure``; ``noise`` draws Bob's thermal noise instead of
        ``generator`` (the link's ``noise_generator``)."""
        link, src, snr = ctx.link, ctx.source, ctx.snr
        if self.surface == "input":
            d = project_input(delta, src, self.budget, self.norm)
            # the gradient is the loss's at the image received (as ART and the papers take it): through
            # the clip to [0, 1] it would vanish wherever an iterate sits on the box, e.g. the black
            # background, and the attack could never move those pixels back inside
            d = delta + (d - delta).detach() if delta.requires_grad else d
            out = link(src + d, snr, generator=generator, noise_generator=noise)
            return out, (input_norm(d, self.norm) if measure else None)
        if self.surface == "symbols":
            x = ctx.symbols
            assert x is not None
            d = delta.expand_as(x) if delta.dim() == 1 else delta
            if d.shape != x.shape or not torch.is_complex(d):
                raise ValueError(f"perturbation must be complex {tuple(x.shape)} on the symbols surface, "
                                 f"got {d.dtype} {tuple(delta.shape)}")
            d = F.project_psr(d, x, self.budget, exact=self.exact)
            out = link(src, snr, generator=generator, symbols=x + d, noise_generator=noise)
            return out, (F.psr_db(d, x) if measure else None)
        rad = Radiator(delta, self.budget, self.surface, exact=self.exact, g=g)
        with radiating(link, rad):
            out = link(src, snr, generator=generator, noise_generator=noise)
        measured = None
        if measure:
            assert rad.applied is not None and rad.signal is not None
            measured = F.psr_db(rad.applied, rad.signal)
        return out, measured

    def loss(self, ctx: AttackContext, out: dict[str, Any]) -> Tensor:
        """Per-sample loss ``[B]`` to maximise on one link result."""
        return attack_loss(ctx.objective, out["output"], ctx.source, labels=ctx.labels, target=ctx.target,
                           recon_loss=self.recon_loss, task_loss=self.task_loss,
                           embedder=getattr(self, "embedder", None))

    def success(self, ctx: AttackContext, out: dict[str, Any]) -> Tensor | None:
        """Per sample ``[B]`` bool: the objective's success on one link result (None: no decision)."""
        return attack_success(ctx.objective, out["output"].detach(), labels=ctx.labels, target=ctx.target)


