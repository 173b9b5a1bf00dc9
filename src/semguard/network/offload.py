"""Edge offloading of the semantic encoder: system model and assignment mechanisms (pure numpy).

Device ``i`` runs the task encoder on a batch locally (``C`` cycles at its CPU frequency ``f_i``;
latency ``C / f_i``, energy ``kappa C f_i^2``, the dynamic-voltage model of Mao, You, Zhang,
Huang, Letaief, "A Survey on Mobile Edge Computing", IEEE COMST 2017) and sends the features over
its own link, or sends the raw source to edge node ``j`` (analog, ``raw_uses`` channel uses at
``W`` uses per second and transmit power ``P``) where it gets a share ``c_ij`` of the node's
``F_j`` cycles per second and the features leave over the node's link.  Cost: latency plus
``lam`` times the device's energy.

Mechanisms: deferred acceptance with devices proposing (Gale and Shapley 1962; edges rank
devices by uplink SNR, ``quota`` places each, capacity split equally); the Nash bargaining split
of an edge's capacity, disagreement point local execution (``max prod_i (T_loc_i - T_off_i(c_i))``
s.t. ``sum c_i = F_j``; Nash 1950); greedy; random; all-local.  ``option`` ``-1`` means local.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "OffloadSystem",
    "all_local",
    "costs",
    "deferred_acceptance",
    "equal_shares",
    "greedy",
    "nash_bargaining",
    "nash_split",
    "random_assignment",
]


@dataclass(frozen=True)
class OffloadSystem:
    """Devices ``D`` and edge nodes ``M``: ``f_local [D]`` Hz, ``capacity [M]`` Hz, ``uplink_snr_db
    [D, M]``, ``quota [M]`` devices per node, ``cycles`` per batch, ``raw_uses``/``feature_uses``
    channel uses per batch, ``symbol_rate`` uses/s, ``tx_power`` W, ``kappa``, ``lam`` s/J."""

    f_local: np.ndarray
    capacity: np.ndarray
    uplink_snr_db: np.ndarray
    quota: np.ndarray
    cycles: float = 4e8
    raw_uses: int = 39200
    feature_uses: int = 1600
    symbol_rate: float = 1e6
    tx_power: float = 0.2
    kappa: float = 1e-27
    lam: float = 1.0

    def __post_init__(self) -> None:
        d, m = self.uplink_snr_db.shape
        if self.f_local.shape != (d,) or self.capacity.shape != (m,) or self.quota.shape != (m,):
            raise ValueError(f"offload system shapes disagree: f_local {self.f_local.shape}, capacity "
                             f"{self.capacity.shape}, quota {self.quota.shape}, uplink_snr_db {(d, m)}")
        if (self.f_local <= 0).any() or (self.capacity <= 0).any() or (self.quota < 1).any():
            raise ValueError("CPU frequencies and capacities must be > 0 and quotas >= 1")

    @property
    def devices(self) -> int:
        return self.f_local.shape[0]

    @property
    def edges(self) -> int:
        return self.capacity.shape[0]

    def local_latency(self) -> np.ndarray:
        return self.cycles / self.f_local + self.feature_uses / self.symbol_rate

    def local_energy(self) -> np.ndarray:
        return self.kappa * self.cycles * self.f_local ** 2 + self.tx_power * self.feature_uses / self.symbol_rate

    def upload_time(self) -> float:
        return self.raw_uses / self.symbol_rate


def equal_shares(sys: OffloadSystem, option: np.ndarray) -> np.ndarray:
    """Each edge's capacity split equally among the devices assigned to it; ``[D]`` (0 if local)."""
    share = np.zeros(sys.devices)
    for j in range(sys.edges):
        on = option == j
        if on.any():
            share[on] = sys.capacity[j] / on.sum()
    return share


def costs(sys: OffloadSystem, option: np.ndarray, share: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per-device latency (s), energy (J) and cost for an assignment (``share``: cycles/s granted)."""
    option = np.asarray(option)
    if option.shape != (sys.devices,) or option.min() < -1 or option.max() >= sys.edges:
        raise ValueError(f"assignment must be [{sys.devices}] options in -1..{sys.edges - 1}")
    share = equal_shares(sys, option) if share is None else share
    loc = option < 0
    lat = np.where(loc, sys.local_latency(), 0.0)
    en = np.where(loc, sys.local_energy(), sys.tx_power * sys.upload_time())
    with np.errstate(divide="ignore"):
        lat = np.where(loc, lat, sys.upload_time() + sys.cycles / np.where(loc, 1.0, share))
    return {"latency": lat, "energy": en, "cost": lat + sys.lam * en}


def _offload_cost(sys: OffloadSystem, share: float | np.ndarray) -> np.ndarray:
    return sys.upload_time() + sys.cycles / share + sys.lam * sys.tx_power * sys.upload_time()


def deferred_acceptance(sys: OffloadSystem, acceptable: np.ndarray | None = None) -> np.ndarray:
    """Device-proposing deferred acceptance; a device ranks nodes by its cost at the node's quota
    share ``F_j / quota_j`` and proposes only to nodes cheaper than local (and ``acceptable [D, M]``);
    nodes keep their ``quota`` best proposers by uplink SNR.  Returns options ``[D]``."""
    d, m = sys.devices, sys.edges
    local = sys.local_latency() + sys.lam * sys.local_energy()
    est = _offload_cost(sys, sys.capacity / sys.quota)[None].repeat(d, 0)     # [D, M]
    ok = est < local[:, None]
    if acceptable is not None:
        ok &= acceptable
    prefs = [[int(j) for j in np.argsort(est[i]) if ok[i, j]] for i in range(d)]
    nxt = np.zeros(d, dtype=int)
    held: list[list[int]] = [[] for _ in range(m)]
    free = [i for i in range(d) if prefs[i]]
    while free:
        i = free.pop()
        if nxt[i] >= len(prefs[i]):
            continue
        j = prefs[i][nxt[i]]
        nxt[i] += 1
        held[j].append(i)
        if len(held[j]) > sys.quota[j]:
            held[j].sort(key=lambda k: -sys.uplink_snr_db[k, j])
            free.append(held[j].pop())
    option = -np.ones(d, dtype=int)
    for j in range(m):
        option[held[j]] = j
    return option


def nash_split(a: np.ndarray, cycles: float, capacity: float, *, iters: int = 200) -> np.ndarray:
    """``argmax sum_i log(a_i - cycles / c_i)`` s.t. ``sum c_i = capacity`` (all ``a_i > 0``).

    KKT: ``(cycles / c^2) / (a - cycles / c) = mu``, i.e. ``mu a c^2 - mu cycles c - cycles = 0``,
    whose positive root decreases in ``mu``; ``mu`` is found by bisection on the capacity.
    """
    a = np.asarray(a, dtype=float)
    if (a <= 0).any():
        raise ValueError("every bargaining device needs a positive surplus bound a_i > 0")

    def c_of(mu: float) -> np.ndarray:
        return (mu * cycles + np.sqrt((mu * cycles) ** 2 + 4 * mu * a * cycles)) / (2 * mu * a)

    lo, hi = 1e-12, 1e12
    for _ in range(iters):
        mid = np.sqrt(lo * hi)
        if c_of(mid).sum() > capacity:
            lo = mid
        else:
            hi = mid
    c = c_of(np.sqrt(lo * hi))
    return c * capacity / c.sum()


def nash_bargaining(sys: OffloadSystem, acceptable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Each device bargains at its best-SNR acceptable node; each node splits its capacity by the
    Nash bargaining solution; a device left without gain over local drops out and the rest
    bargain again.  Returns ``(options [D], shares [D])``."""
    d = sys.devices
    local = sys.local_latency() + sys.lam * sys.local_energy()
    snr = np.where(acceptable, sys.uplink_snr_db, -np.inf) if acceptable is not None else sys.uplink_snr_db
    option = np.where(np.isfinite(snr.max(1)), snr.argmax(1), -1)
    share = np.zeros(d)
    for _ in range(d + 1):
        changed = False
        share[:] = 0
        for j in range(sys.edges):
            on = np.flatnonzero(option == j)
            if not len(on):
                continue
            # surplus in cost units: local cost - (upload time + energy) - cycles / c
            a = local[on] - sys.upload_time() * (1 + sys.lam * sys.tx_power)
            keep = a > 0
            if not keep.all():
                option[on[~keep]] = -1
                changed = True
                on, a = on[keep], a[keep]
            if len(on):
                share[on] = nash_split(a, sys.cycles, sys.capacity[j])
                gain = local[on] - _offload_cost(sys, share[on])
                if (gain <= 0).any():
                    option[on[np.argmin(gain)]] = -1          # the worst-off leaves, the rest re-bargain
                    changed = True
        if not changed:
            break
    share = np.where(option >= 0, share, 0.0)
    return option, share


def greedy(sys: OffloadSystem, acceptable: np.ndarray | None = None) -> np.ndarray:
    """Devices in order pick the cheapest option given the loads so far (equal split, counting themselves)."""
    load = np.zeros(sys.edges)
    local = sys.local_latency() + sys.lam * sys.local_energy()
    option = -np.ones(sys.devices, dtype=int)
    for i in range(sys.devices):
        c = _offload_cost(sys, sys.capacity / (load + 1))
        if acceptable is not None:
            c = np.where(acceptable[i], c, np.inf)
        j = int(np.argmin(c))
        if c[j] < local[i]:
            option[i] = j
            load[j] += 1
    return option


def random_assignment(sys: OffloadSystem, rng: np.random.Generator) -> np.ndarray:
    return rng.integers(-1, sys.edges, size=sys.devices)


def all_local(sys: OffloadSystem) -> np.ndarray:
    return -np.ones(sys.devices, dtype=int)
