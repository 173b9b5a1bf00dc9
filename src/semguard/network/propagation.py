"""How far Byzantine beliefs propagate through gossip: plain averaging against W-MSR.

Each agent starts from its own decoded class probabilities for the object (its view, its
channel); honest agents then gossip with their graph neighbours for K rounds and decide by the
argmax of their belief.  Byzantine agents broadcast the same belief every round: ``extreme``, a
one-hot vector on a common wrong class (the honest runner-up), or ``in-range``, each coordinate
at the edge of the honest agents' range (largest honest value on that class, smallest on the
others), the choice that W-MSR's trimming cannot remove.  Propagation is measured as the fraction
of honest agents whose decision at round k differs from their decision at round k without the
attackers.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch.nn import functional as F

from semguard.codecs.base import SemanticCodec
from semguard.network import consensus, graph
from semguard.network.views import agent_views
from semguard.registry import build

__all__ = ["BYZ_BELIEFS", "gossip_section", "initial_beliefs", "propagation"]

log = logging.getLogger(__name__)

BYZ_BELIEFS = ("extreme", "in-range")


@torch.no_grad()
def initial_beliefs(codec: SemanticCodec, images: torch.Tensor, n: int, *, seed: int = 0, snr_db: tuple[float, float] = (4.0, 14.0),
                    channel: str = "rayleigh") -> torch.Tensor:
    """Each agent's decoded probabilities ``[N, B, C]`` for its own view over its own channel."""
    g = torch.Generator().manual_seed(seed)
    ch = build("channel", channel)
    snrs = snr_db[0] + (snr_db[1] - snr_db[0]) * torch.rand(n, generator=g)
    views = agent_views(images, n, generator=g, agent_seed=seed)
    out = []
    for i in range(n):
        y, st = ch(codec.encode(views[i], float(snrs[i])), float(snrs[i]), generator=g)
        out.append(F.softmax(codec.decode(y, st), -1))
    return torch.stack(out)


def propagation(beliefs: torch.Tensor, adj, bad: torch.Tensor, rounds: int, *, rule: str, f: int,
                mode: str = "extreme", labels: torch.Tensor | None = None) -> dict:
    """Gossip ``beliefs [N, B, C]`` with Byzantine nodes ``bad [N]``; per-round flip fraction and accuracy."""
    if mode not in BYZ_BELIEFS:
        raise ValueError(f"byzantine belief must be one of {', '.join(BYZ_BELIEFS)}, got {mode!r}")
    adj = graph.check_graph(adj)
    n, b, c = beliefs.shape
    honest = beliefs[~bad]
    ref = honest.mean(0).argmax(-1)                                               # [B]
    target = honest.mean(0).scatter(-1, ref.unsqueeze(-1), -1.0).argmax(-1)
    onehot = F.one_hot(target, c).to(beliefs.dtype)
    if mode == "extreme":
        evil = onehot
    else:
        evil = torch.where(onehot > 0, honest.max(0).values, honest.min(0).values)
    byz = beliefs.clone()
    byz[bad] = evil.unsqueeze(0).expand(int(bad.sum()), b, c)
    flat = beliefs.reshape(n, b * c)
    clean = consensus.gossip(flat, adj, rounds, rule=rule, f=f)
    attacked = consensus.gossip(flat, adj, rounds, rule=rule, f=f, byzantine=bad, byzantine_values=byz.reshape(n, -1))
    dc = clean.reshape(rounds + 1, n, b, c).argmax(-1)[:, ~bad]                    # [K+1, honest, B]
    da = attacked.reshape(rounds + 1, n, b, c).argmax(-1)[:, ~bad]
    out = {"flipped": (dc != da).float().mean((1, 2)).tolist()}
    if labels is not None:
        out["accuracy"] = (da == labels).float().mean((1, 2)).tolist()
        out["accuracy_clean"] = (dc == labels).float().mean((1, 2)).tolist()
    lo = beliefs[~bad].min(0).values.reshape(-1)
    hi = beliefs[~bad].max(0).values.reshape(-1)
    h = attacked[:, ~bad]
    out["left_honest_range"] = bool(((h < lo - 1e-6) | (h > hi + 1e-6)).any())
    return out


def gossip_section(images: torch.Tensor, labels: torch.Tensor, out: Path, *, seed: int = 0, codec: SemanticCodec | None = None,
                   n: int = 10, rounds: int = 30, fs: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    """The benchmark's propagation runs (ring, ring k=2, random geometric, complete) and their figures."""
    from semguard.network.plots import line_plot
    if codec is None:
        from semguard.codecs.zoo import pretrained
        codec = pretrained("task-fmnist").eval()
    beliefs = initial_beliefs(codec, images, n, seed=seed)
    graphs = {"ring": graph.ring(n), "ring-k2": graph.ring(n, 2),
              "geometric": graph.random_geometric(n, 0.6, seed=seed), "complete": graph.complete(n)}
    rows = []
    g = torch.Generator().manual_seed(seed)
    for f in fs:
        bad = torch.zeros(n, dtype=torch.bool)
        bad[torch.randperm(n, generator=g)[:f]] = True
        series = {}
        for gname, adj in graphs.items():
            try:
                graph.check_graph(adj, name=gname)
            except ValueError as e:
                log.warning("skipping %s: %s", gname, e)
                continue
            r = graph.robustness(adj)
            for rule in ("average", "wmsr"):
                for mode in BYZ_BELIEFS:
                    res = propagation(beliefs, adj, bad, rounds, rule=rule, f=f, mode=mode, labels=labels)
                    rows.append({"f": f, "graph": gname, "robustness": r, "guarantee": r >= 2 * f + 1,
                                 "rule": rule, "byzantine_belief": mode, **res})
                    if mode == "extreme":
                        series[f"{gname} {rule}"] = (list(range(rounds + 1)), res["flipped"])
                    log.info("f=%d %-9s (r=%d) %-7s %-8s flipped after %d rounds %.3f, accuracy %.3f (clean %.3f)%s",
                             f, gname, r, rule, mode, rounds, res["flipped"][-1], res["accuracy"][-1],
                             res["accuracy_clean"][-1], "  LEFT honest range" if res["left_honest_range"] else "")
        line_plot(series, out / f"propagation_f{f}.png", xlabel="gossip round", ylabel="honest agents flipped",
                  title=f"N={n}, f={f} Byzantine (one-hot on a wrong class)")
    return rows
