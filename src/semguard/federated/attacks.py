"""Client attacks on federated training, each with a declared threat model.

Three kinds, one interface each:

- data poisoning (``kind="data"``): the client trains honestly on poisoned data,
  ``poison(images, labels, generator) -> (images, labels)``;
- model poisoning (``kind="model"``): the client trains honestly, then replaces its update,
  ``craft(benign [m, D], view) -> [m, D]`` for the ``m`` attackers together;
- free riding (``kind="free_ride"``): the client does not train at all and sends
  ``craft(None, view)`` instead.

``view`` (:class:`AttackView`) holds only what the threat model grants: the honest clients'
updates when ``knowledge`` is ``"honest"`` or ``"aggregator"``, and the aggregation rule (a pure
function of the stacked updates) when it is ``"aggregator"``.

Papers: label flipping (Tolpegin et al., ESORICS 2020); backdoor with a pixel trigger and
model-replacement scaling (Bagdasaryan et al., AISTATS 2020); "A Little Is Enough" (Baruch et al.,
NeurIPS 2019); the aggregator-tailored line search (Shejwalkar and Houmansadr, NDSS 2021); free
riders (Lin et al., "Free-riders in Federated Learning", 2019; Fraboni et al., AISTATS 2021).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import torch
from torch import Tensor

from semguard.registry import register

__all__ = [
    "FLThreatModel", "AttackView", "FLAttack", "LabelFlip", "Backdoor", "SignFlip", "Scaling", "ALIE",
    "Adaptive", "AdaptiveMimic", "AdaptiveBias", "FreeRideZero", "FreeRideStale", "FreeRideNoise", "apply_trigger", "alie_z",
]

KNOWLEDGE = ("none", "own", "honest", "aggregator")


@dataclass(frozen=True)
class FLThreatModel:
    """What a federated attacker is and knows (recorded with every result).

    kind: data | model | free_ride.  collusion: the attackers act together (share their updates).
    knowledge: none | own (its own benign update) | honest (the honest clients' updates of this
    round) | aggregator (honest updates and the aggregation rule).  fraction: share of clients.
    """

    kind: str
    collusion: bool
    knowledge: str
    fraction: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("data", "model", "free_ride"):
            raise ValueError(f"threat model kind must be data, model or free_ride, got {self.kind!r}")
        if self.knowledge not in KNOWLEDGE:
            raise ValueError(f"threat model knowledge must be one of {KNOWLEDGE}, got {self.knowledge!r}")
        if not 0.0 <= self.fraction < 1.0:
            raise ValueError(f"malicious fraction must be in [0, 1), got {self.fraction}")


@dataclass
class AttackView:
    """What the attackers see in one round (fields outside their threat model stay None)."""

    dim: int
    last_global_update: Tensor | None = None  # the global model's change in the previous round
    honest: Tensor | None = None  # [h, D]
    aggregate: Callable[[Tensor], Tensor] | None = None  # stacked updates -> aggregate, pure
    generator: torch.Generator | None = None


class FLAttack:
    """Base: a name, a threat model and, per kind, ``poison`` or ``craft``."""

    name: str = ""
    threat: FLThreatModel

    def poison(self, images: Tensor, labels: Tensor, generator: torch.Generator | None = None
               ) -> tuple[Tensor, Tensor]:
        return images, labels

    def craft(self, benign: Tensor | None, view: AttackView) -> Tensor:
        if benign is None:
            raise ValueError(f"{self.name} needs the attackers' benign updates")
        return benign

    @property
    def trains(self) -> bool:
        return self.threat.kind != "free_ride"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if k != "threat")
        return f"{type(self).__name__}({args})"


@register("fl_attack", "label_flip")
class LabelFlip(FLAttack):
    """Every label ``y`` replaced by ``num_classes - 1 - y``."""

    name = "label_flip"

    def __init__(self, *, num_classes: int = 10) -> None:
        self.num_classes = num_classes
        self.threat = FLThreatModel("data", collusion=False, knowledge="none")

    def poison(self, images, labels, generator=None):
        return images, self.num_classes - 1 - labels


def apply_trigger(images: Tensor, size: int = 4, value: float = 1.0) -> Tensor:
    """A ``size x size`` square of ``value`` in the bottom-right corner of ``[B, C, H, W]`` images."""
    out = images.clone()
    out[..., -size:, -size:] = value
    return out


@register("fl_attack", "backdoor")
class Backdoor(FLAttack):
    """A share ``rate`` of the client's images get the trigger and the label ``target``."""

    name = "backdoor"

    def __init__(self, *, target: int = 0, rate: float = 0.5, size: int = 4) -> None:
        if not 0 < rate <= 1:
            raise ValueError(f"backdoor rate must be in (0, 1], got {rate}")
        self.target, self.rate, self.size = target, rate, size
        self.threat = FLThreatModel("data", collusion=False, knowledge="none")

    def poison(self, images, labels, generator=None):
        n = images.shape[0]
        k = max(1, int(round(self.rate * n)))
        idx = torch.randperm(n, generator=generator)[:k]
        images, labels = images.clone(), labels.clone()
        images[idx] = apply_trigger(images[idx], self.size)
        labels[idx] = self.target
        return images, labels


@register("fl_attack", "sign_flip")
class SignFlip(FLAttack):
    """The benign update negated (times ``factor``)."""

    name = "sign_flip"

    def __init__(self, *, factor: float = 1.0) -> None:
        self.factor = factor
        self.threat = FLThreatModel("model", collusion=False, knowledge="own")

    def craft(self, benign, view):
        return -self.factor * super().craft(benign, view)


@register("fl_attack", "scaling")
class Scaling(Backdoor):
    """Model replacement: train on backdoored data, then scale the update by ``factor``."""

    name = "scaling"

    def __init__(self, *, factor: float = 10.0, target: int = 0, rate: float = 0.5, size: int = 4) -> None:
        super().__init__(target=target, rate=rate, size=size)
        self.factor = factor
        self.threat = FLThreatModel("model", collusion=False, knowledge="own")

    def craft(self, benign, view):
        return self.factor * FLAttack.craft(self, benign, view)


def alie_z(n_clients: int, n_malicious: int) -> float:
    """Baruch et al.'s ``z_max``: ``s = floor(n/2 + 1) - m``, ``z = Phi^-1((n - s) / n)``."""
    s = math.floor(n_clients / 2 + 1) - n_malicious
    p = (n_clients - s) / n_clients
    return NormalDist().inv_cdf(min(max(p, 1e-6), 1 - 1e-6))


def _honest_or_own(benign: Tensor | None, view: AttackView, name: str) -> Tensor:
    ref = view.honest if view.honest is not None and view.honest.shape[0] > 1 else benign
    if ref is None or ref.shape[0] < 1:
        raise ValueError(f"{name} needs benign or honest updates to estimate their mean")
    return ref


@register("fl_attack", "alie")
class ALIE(FLAttack):
    """A Little Is Enough: every attacker sends ``mu - z sigma`` (coordinate-wise mean and std of the
    honest updates), a small coordinated shift that stays inside the honest spread."""

    name = "alie"

    def __init__(self, *, z: float | None = None) -> None:
        self.z = z
        self.threat = FLThreatModel("model", collusion=True, knowledge="honest")

    def craft(self, benign, view):
        m = benign.shape[0] if benign is not None else 1
        ref = _honest_or_own(benign, view, self.name)
        n = m + (view.honest.shape[0] if view.honest is not None else 0)
        z = self.z if self.z is not None else alie_z(max(n, 2), m)
        std = ref.std(0, unbiased=True) if ref.shape[0] > 1 else torch.zeros_like(ref[0])
        return (ref.mean(0) - z * std).expand(m, -1).clone()


def _std_direction(H: Tensor) -> list[Tensor]:
    """Minus the unit per-coordinate std of the honest updates (none with one honest update)."""
    if H.shape[0] < 2:
        return []
    sd = H.std(0)
    return [-sd / sd.norm().clamp_min(1e-12)]


def _line_search(aggregate, H: Tensor, starts: list[Tensor], dirs: list[Tensor], grid: tuple[float, ...],
                 fallback: Tensor) -> Tensor:
    """The ``start + gamma ||mu|| p`` over ``starts x dirs x grid`` whose aggregate with the honest
    updates ``H`` lies farthest from their mean ``mu`` (``fallback`` if none is evaluated)."""
    mu = H.mean(0)
    scale = float(mu.norm())
    best, best_obj = fallback, -1.0
    for start in starts:
        for p in dirs:
            for g in grid:
                M = start + g * scale * p
                obj = float((aggregate(torch.cat([H, M])) - mu).norm())
                if obj > best_obj:
                    best, best_obj = M.clone(), obj
    return best


@register("fl_attack", "adaptive")
class Adaptive(FLAttack):
    """Aggregator-tailored worst case: ``mu + gamma p`` for the directions ``p`` in {minus the unit
    mean, minus the unit std}, with ``gamma`` line-searched over ``grid x ||mu||`` to maximise the
    distance of the aggregate from ``mu``."""

    name = "adaptive"

    def __init__(self, *, grid: tuple[float, ...] = tuple(float(x) for x in torch.logspace(-2, 1.5, 12))) -> None:
        self.grid = grid
        self.threat = FLThreatModel("model", collusion=True, knowledge="aggregator")

    def base(self, H: Tensor, m: int) -> Tensor:
        """The ``[m, D]`` points the attackers start from (here every one at the honest mean)."""
        return H.mean(0).expand(m, -1)

    def setup(self, benign, view) -> tuple[int, Tensor, Tensor, list[Tensor], Tensor]:
        """``(m, H, mu, dirs, start)``: the attackers, the honest updates and their mean, the directions
        searched (minus the unit mean, minus the unit std) and the start points."""
        if view.aggregate is None or view.honest is None:
            raise ValueError(f"{self.name} attack needs the aggregator and the honest updates (knowledge=aggregator)")
        m = benign.shape[0] if benign is not None else 1
        H = view.honest
        mu = H.mean(0)
        return m, H, mu, [-mu / mu.norm().clamp_min(1e-12), *_std_direction(H)], self.base(H, m)

    def craft(self, benign, view):
        _, H, _, dirs, start = self.setup(benign, view)
        return _line_search(view.aggregate, H, [start], dirs, self.grid, start.clone())


@register("fl_attack", "adaptive_mimic")
class AdaptiveMimic(Adaptive):
    """The adaptive search aimed at our reputation rule: attacker ``i`` starts from honest client
    ``i``'s update (cycling when there are more attackers), so the attackers look as unlike each
    other as honest clients do (our copies test never groups them) and each agrees with the
    others' median as an honest client would; the shift ``gamma p`` is line-searched against the
    actual rule.  At small ``gamma`` an attacker is a near copy of the honest client it started
    from, which tests that a copier cannot get an honest client excluded."""

    name = "adaptive_mimic"

    def base(self, H: Tensor, m: int) -> Tensor:
        return H[torch.arange(m) % H.shape[0]]


@register("fl_attack", "adaptive_decor")
class AdaptiveDecor(AdaptiveMimic):
    """:class:`AdaptiveMimic` that also buys independence: attacker ``i`` sends
    ``H_i + gamma ||mu|| (p + rho xi_i)`` with ``xi_i`` its own random unit direction (fresh each
    round, from ``seed``), so that a rule which counts near copies as one vote
    (``reputation-votes``) sees the colluders as unlike each other as it likes; ``rho`` (how much
    of its shift each attacker spends on its own noise) is searched with ``gamma`` and ``p``
    against the actual rule.  ``rho = 0`` is :class:`AdaptiveMimic`."""

    name = "adaptive_decor"

    def __init__(self, *, grid: tuple[float, ...] = tuple(float(x) for x in torch.logspace(-2, 1.5, 12)),
                 rhos: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0), seed: int = 0) -> None:
        super().__init__(grid=grid)
        if not rhos or any(not (r >= 0 and math.isfinite(r)) for r in rhos):
            raise ValueError(f"adaptive_decor needs finite rhos >= 0, got {rhos!r}")
        self.rhos, self.seed, self._round = tuple(float(r) for r in rhos), seed, 0

    def craft(self, benign, view):
        m, H, _, dirs, start = self.setup(benign, view)
        g = torch.Generator().manual_seed(self.seed * 100_003 + self._round)
        self._round += 1
        xi = torch.randn(m, H.shape[1], generator=g).to(H.dtype)
        xi = xi / xi.norm(dim=1, keepdim=True).clamp_min(1e-12)
        # one search over every (rho, direction) pair, rho = 0 (the mimic) always first: each attacker's row of a
        # direction is p + rho xi_i
        rhos = (0.0, *(r for r in self.rhos if r != 0))
        noisy = [d.expand(m, -1) if rho == 0 else d + rho * xi for rho in rhos for d in dirs]
        return _line_search(view.aggregate, H, [start], noisy, self.grid, start.clone())


@register("fl_attack", "adaptive_bias")
class AdaptiveBias(Adaptive):
    """The rule-aware search re-tuned for our rule's progress test: it searches the start point
    (each attacker's own benign update, or honest client ``i``'s as :class:`AdaptiveMimic`), the
    direction (minus the unit honest mean, minus the unit std, or a secret direction drawn once
    from ``seed`` and kept every round, made orthogonal to the honest mean so that the progress
    test cannot see it: a consistent bias) and the scale ``gamma`` (``grid x ||mu||``, at most
    ``max_gamma``), each round, against the actual rule, for the largest shift of the aggregate."""

    name = "adaptive_bias"

    def __init__(self, *, grid: tuple[float, ...] = tuple(float(x) for x in torch.logspace(-1.5, 1.0, 8)),
                 max_gamma: float = math.inf, seed: int = 0) -> None:
        super().__init__(grid=tuple(g for g in grid if g <= max_gamma))
        if not self.grid:
            raise ValueError(f"adaptive_bias needs a grid value <= max_gamma={max_gamma}")
        self.max_gamma, self.seed = max_gamma, seed
        self._secret: Tensor | None = None

    def secret(self, dim: int) -> Tensor:
        """The attackers' fixed unit direction in ``dim`` parameters (the same every round)."""
        if self._secret is None or self._secret.numel() != dim:
            v = torch.randn(dim, generator=torch.Generator().manual_seed(self.seed))
            self._secret = v / v.norm()
        return self._secret

    def craft(self, benign, view):
        if view.aggregate is None or view.honest is None or benign is None:
            raise ValueError(f"{self.name} attack needs its benign updates, the aggregator and the honest updates")
        H, m = view.honest, benign.shape[0]
        mu = H.mean(0)
        u = mu / mu.norm().clamp_min(1e-12)
        v = self.secret(H.shape[1]).to(H.dtype)
        v = v - (v @ u) * u
        dirs = [-u, v / v.norm().clamp_min(1e-12), *_std_direction(H)]
        starts = [benign.to(H.dtype), H[torch.arange(m) % H.shape[0]]]
        return _line_search(view.aggregate, H, starts, dirs, self.grid, benign.clone())


class _FreeRide(FLAttack):
    def __init__(self) -> None:
        self.threat = FLThreatModel("free_ride", collusion=False, knowledge="none")


@register("fl_attack", "free_zero")
class FreeRideZero(_FreeRide):
    """Sends the global model back unchanged: a zero update."""

    name = "free_zero"

    def craft(self, benign, view):
        return torch.zeros(1, view.dim)


@register("fl_attack", "free_stale")
class FreeRideStale(_FreeRide):
    """Replays the global model's last change as its own update (zero in the first round)."""

    name = "free_stale"

    def craft(self, benign, view):
        if view.last_global_update is None:
            return torch.zeros(1, view.dim)
        return view.last_global_update.reshape(1, -1).clone()


@register("fl_attack", "free_noise")
class FreeRideNoise(_FreeRide):
    """Gaussian noise with the norm of the global model's last change (``first_norm`` in round one)."""

    name = "free_noise"

    def __init__(self, *, first_norm: float = 0.1) -> None:
        super().__init__()
        self.first_norm = first_norm

    def craft(self, benign, view):
        norm = self.first_norm if view.last_global_update is None else float(view.last_global_update.norm())
        z = torch.randn(1, view.dim, generator=view.generator)
        return z * (norm / float(z.norm()))

