"""The offloading simulator: fidelity measured with the task codec, a small policy-gradient
policy, untrusted edge nodes caught by spot-check audits, and the comparison table.

Fidelity: a device that encodes locally sends features over its own Rayleigh link (accuracy
measured at its SNR); an offloaded batch is uploaded as analog pixels (unit power, AWGN at the
device-to-node SNR), encoded at the node and sent over the node's link at ``edge_snr_db``.  An
offload is acceptable when its measured accuracy is within ``tolerance`` of local.  Untrusted
nodes return tampered features (random unit-power blocks); each device re-encodes a fraction
``audit`` of its batch locally and compares decisions, and a node whose mismatch rate is over the
midpoint of the measured honest and tampered rates is dropped for the following rounds.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from semguard.codecs.base import SemanticCodec
from semguard.network.offload import (
    OffloadSystem,
    all_local,
    costs,
    deferred_acceptance,
    greedy,
    nash_bargaining,
    random_assignment,
)
from semguard.registry import build

__all__ = ["MECHANISMS", "FidelityModel", "PolicyGradient", "compare_mechanisms", "draw_system", "measure_fidelity"]

log = logging.getLogger(__name__)

MECHANISMS = ("all-local", "random", "greedy", "stable-matching", "nash-bargaining", "rl-policy")
SNR_GRID = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0, 25.0)


class FidelityModel:
    """Measured accuracies on the SNR grid, interpolated: local (features over the device's link),
    offloaded (analog raw upload at the uplink SNR, features over the node's link), tampered, and
    the audit mismatch rates (honest node and tampering node)."""

    def __init__(self, grid, local, edge, mismatch, tampered, tampered_mismatch) -> None:
        self.grid = np.asarray(grid)
        self.local_acc, self.edge_acc, self.mismatch = np.asarray(local), np.asarray(edge), np.asarray(mismatch)
        self.tampered, self.tampered_mismatch = float(tampered), float(tampered_mismatch)

    def local(self, snr):
        return np.interp(snr, self.grid, self.local_acc)

    def edge(self, snr):
        return np.interp(snr, self.grid, self.edge_acc)

    def honest_mismatch(self, snr):
        return np.interp(snr, self.grid, self.mismatch)

    def record(self) -> dict:
        return {"snr_grid_db": self.grid.tolist(), "local_accuracy": self.local_acc.tolist(),
                "offloaded_accuracy": self.edge_acc.tolist(), "audit_mismatch_honest": self.mismatch.tolist(),
                "tampered_accuracy": self.tampered, "audit_mismatch_tampered": self.tampered_mismatch}


@torch.no_grad()
def measure_fidelity(images: torch.Tensor, labels: torch.Tensor, *, edge_snr_db: float = 20.0, seed: int = 0,
                     codec: SemanticCodec | None = None) -> FidelityModel:
    from semguard.codecs.zoo import pretrained
    codec = codec or pretrained("task-fmnist").eval()
    g = torch.Generator().manual_seed(seed)
    ray = build("channel", "rayleigh")

    def decide(x: torch.Tensor, snr: float) -> torch.Tensor:
        y, st = ray(codec.encode(x, snr), snr, generator=g)
        return codec.decode(y, st).argmax(-1)

    ref = decide(images, edge_snr_db)                    # what the device's own audit encoding decides
    local, edge, mism = [], [], []
    for snr in SNR_GRID:
        local.append(float((decide(images, snr) == labels).float().mean()))
        rms = images.square().mean((1, 2, 3), keepdim=True).sqrt()
        noisy = (images + rms * 10 ** (-snr / 20) * torch.randn(images.shape, generator=g)).clamp(0, 1)
        d = decide(noisy, edge_snr_db)
        edge.append(float((d == labels).float().mean()))
        mism.append(float((d != ref).float().mean()))
    junk = torch.randn(images.shape[0], codec.n, dtype=torch.complex64, generator=g)
    junk = junk / junk.abs().square().mean(1, keepdim=True).sqrt()
    st = ray.sample_state(images.shape[0], codec.n, edge_snr_db, generator=g)
    dt = codec.decode(ray.equalize(ray.apply(junk, st, generator=g), st), st).argmax(-1)
    return FidelityModel(SNR_GRID, local, edge, mism, float((dt == labels).float().mean()),
                         float((dt != ref).float().mean()))


def draw_system(rng: np.random.Generator, devices: int = 20, edges: int = 3, **kw) -> tuple[OffloadSystem, np.ndarray]:
    """A random scenario: CPUs 0.5..1.5 GHz, nodes 4..12 GHz with quota 4..8, uplink SNR -5..25 dB;
    also each device's own link SNR ``[D]`` (0..15 dB)."""
    sys = OffloadSystem(f_local=rng.uniform(0.5e9, 1.5e9, devices), capacity=rng.uniform(4e9, 12e9, edges),
                        uplink_snr_db=rng.uniform(-5, 25, (devices, edges)),
                        quota=rng.integers(4, 9, edges), **kw)
    return sys, rng.uniform(0, 15, devices)


def _acceptable(sys: OffloadSystem, dev_snr: np.ndarray, fid: FidelityModel, tol: float) -> np.ndarray:
    return fid.edge(sys.uplink_snr_db) >= fid.local(dev_snr)[:, None] - tol


class PolicyGradient:
    """A linear softmax policy over each device's options (REINFORCE with a running baseline;
    Williams 1992).  Features of option ``a`` for device ``i``: its estimated cost relative to
    local, the node's load over its quota, whether it is acceptable, and a local indicator."""

    def __init__(self, *, lr: float = 0.05, seed: int = 0) -> None:
        self.theta = np.zeros(4)
        self.lr = lr
        self.rng = np.random.default_rng(seed)

    @staticmethod
    def features(sys: OffloadSystem, i: int, load: np.ndarray, ok: np.ndarray) -> np.ndarray:
        local = sys.local_latency()[i] + sys.lam * sys.local_energy()[i]
        est = sys.upload_time() * (1 + sys.lam * sys.tx_power) + sys.cycles / (sys.capacity / (load + 1))
        edge = np.stack([est / local, load / sys.quota, ok[i].astype(float), np.zeros(sys.edges)], 1)
        return np.vstack([np.array([[1.0, 0.0, 1.0, 1.0]]), edge])               # [M+1, 4], row 0 local

    def act(self, sys: OffloadSystem, ok: np.ndarray, *, greedy_pick: bool) -> tuple[np.ndarray, list]:
        load = np.zeros(sys.edges)
        option = -np.ones(sys.devices, dtype=int)
        trace = []
        for i in self.rng.permutation(sys.devices):
            phi = self.features(sys, int(i), load, ok)
            z = phi @ self.theta
            p = np.exp(z - z.max())
            p /= p.sum()
            a = int(np.argmax(p)) if greedy_pick else int(self.rng.choice(len(p), p=p))
            trace.append((phi, p, a))
            if a > 0:
                option[i] = a - 1
                load[a - 1] += 1
        return option, trace

    def train(self, episodes: int, make, fid: FidelityModel, tol: float) -> list[float]:
        baseline, curve = None, []
        for _ in range(episodes):
            sys, dev_snr = make(self.rng)
            ok = _acceptable(sys, dev_snr, fid, tol)
            option, trace = self.act(sys, ok, greedy_pick=False)
            c = costs(sys, option)["cost"]
            bad = (option >= 0) & ~ok[np.arange(sys.devices), np.maximum(option, 0)]
            reward = -(c.mean() + bad.mean())
            baseline = reward if baseline is None else 0.95 * baseline + 0.05 * reward
            grad = sum(phi[a] - p @ phi for phi, p, a in trace)
            self.theta += self.lr * (reward - baseline) * grad
            curve.append(reward)
        return curve


def _assign(name: str, sys: OffloadSystem, ok: np.ndarray, rng: np.random.Generator,
            policy: PolicyGradient | None) -> tuple[np.ndarray, np.ndarray | None]:
    if name == "all-local":
        return all_local(sys), None
    if name == "random":
        return random_assignment(sys, rng), None
    if name == "greedy":
        return greedy(sys, ok), None
    if name == "stable-matching":
        return deferred_acceptance(sys, ok), None
    if name == "nash-bargaining":
        return nash_bargaining(sys, ok)
    if name == "rl-policy":
        return policy.act(sys, ok, greedy_pick=True)[0], None
    raise ValueError(f"mechanism must be one of {', '.join(MECHANISMS)}, got {name!r}")


def compare_mechanisms(fid: FidelityModel, *, scenarios: int = 20, devices: int = 20, edges: int = 3,
                       untrusted: int = 0, rounds: int = 6, batch: int = 100, audit: float = 0.0,
                       tolerance: float = 0.02, episodes: int = 1500, seed: int = 0, delivery=None) -> dict:
    """Mean latency, energy and accuracy per mechanism over random scenarios (``untrusted`` nodes
    tamper; ``audit`` > 0 turns the spot checks on).  Returns rows plus the RL training curve.

    ``delivery`` (a :class:`~semguard.network.offload_measured.MeasuredDelivery`): the accuracy of
    every round is measured by running the codec over the chosen path; without it, read off ``fid``."""
    if untrusted > edges or untrusted < 0:
        raise ValueError(f"untrusted must be in 0..{edges}, got {untrusted}")
    if not 0 <= audit < 1:
        raise ValueError(f"audit fraction must be in [0, 1), got {audit}")
    policy = PolicyGradient(seed=seed)
    curve = policy.train(episodes, lambda r: draw_system(r, devices, edges), fid, tolerance)
    rng = np.random.default_rng(seed + 1)
    systems = [draw_system(rng, devices, edges) for _ in range(scenarios)]
    rows = []
    for name in MECHANISMS:
        lat, en, acc, tampered_share, detect_round, false_drops = [], [], [], [], [], []
        r_rng = np.random.default_rng(seed + 2)
        for sys, dev_snr in systems:
            bad_nodes = set(r_rng.choice(edges, size=untrusted, replace=False).tolist()) if untrusted else set()
            ok = _acceptable(sys, dev_snr, fid, tolerance)
            dropped: set[int] = set()
            first_caught = None
            used_bad = False
            for rnd in range(rounds):
                allowed = ok.copy()
                for j in dropped:
                    allowed[:, j] = False
                option, share = _assign(name, sys, allowed, r_rng, policy)
                c = costs(sys, option, share)
                e = c["energy"] + audit * sys.local_energy() * (option >= 0)
                up = sys.uplink_snr_db[np.arange(devices), np.maximum(option, 0)]
                tam = np.array([o in bad_nodes for o in option])
                used_bad = used_bad or bool(tam.any())
                if delivery is not None:
                    a = delivery(option, dev_snr, up, tam)
                else:
                    a = np.where(tam, fid.tampered, np.where(option < 0, fid.local(dev_snr), fid.edge(up)))
                lat.append(c["latency"].mean())
                en.append(e.mean())
                acc.append(a.mean())
                tampered_share.append(tam.mean())
                if audit > 0:
                    n_aud = max(1, int(round(audit * batch)))
                    for j in set(option[option >= 0].tolist()) - dropped:
                        on = option == j
                        p = fid.tampered_mismatch if j in bad_nodes else \
                            float(np.mean(fid.honest_mismatch(sys.uplink_snr_db[on, j])))
                        mism = r_rng.binomial(n_aud * int(on.sum()), p) / (n_aud * on.sum())
                        honest_p = float(np.mean(fid.honest_mismatch(sys.uplink_snr_db[on, j])))
                        if mism > 0.5 * (honest_p + fid.tampered_mismatch):
                            dropped.add(j)
                            if j in bad_nodes and first_caught is None:
                                first_caught = rnd
            if used_bad:
                detect_round.append(first_caught)
            false_drops.append(len(dropped - bad_nodes))
        caught = [d for d in detect_round if d is not None]
        rows.append({"mechanism": name, "latency_s": float(np.mean(lat)), "energy_j": float(np.mean(en)),
                     "accuracy": float(np.mean(acc)), "tampered_share": float(np.mean(tampered_share)),
                     # of the scenarios where the mechanism used an untrusted node, how often it was caught
                     "untrusted_caught": (len(caught) / len(detect_round)) if detect_round and audit > 0 else None,
                     "honest_nodes_dropped": float(np.mean(false_drops))})
        log.info("%-16s latency %.3f s  energy %.3f J  accuracy %.3f  tampered %.3f", name, rows[-1]["latency_s"],
                 rows[-1]["energy_j"], rows[-1]["accuracy"], rows[-1]["tampered_share"])
    return {"rows": rows, "rl_curve_first_last": [float(np.mean(curve[:100])), float(np.mean(curve[-100:]))],
            "rl_theta": policy.theta.tolist(),
            "settings": {"scenarios": scenarios, "devices": devices, "edges": edges, "untrusted": untrusted,
                         "rounds": rounds, "batch": batch, "audit": audit, "tolerance": tolerance,
                         "episodes": episodes, "seed": seed,
                         "fidelity": "measured per delivery" if delivery is not None else "SNR table",
                         "images_delivered": getattr(delivery, "deliveries", 0)}}
