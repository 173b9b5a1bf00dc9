"""Multi-agent inference with Byzantine agents: N views -> N channels -> a fusion node.

Each agent encodes its own view of the object with the task codec and sends 16 symbols over its
own channel (its own SNR and fading); the fusion node decodes every agent's block with that
agent's channel state into class log-probabilities and fuses those.  Fusing decoded
log-probabilities rather than raw received symbols: each agent's decoder output is already
conditioned on its own post-equalisation SNR, so the vectors are comparable across agents, while
the mean of two valid codewords is not one the decoder was trained on; and the mean of
log-probabilities is the product-of-experts (naive-Bayes) fusion of independent views, the right
baseline.  ``domain="symbols"`` fuses the zero-forced received symbols themselves (as real
vectors) and decodes the fused block once at the agents' median post-equalisation SNR; the
decoder tolerates the spread of honest codewords, so a coordinate-wise rule there keeps every
fused coordinate inside the honest range.  Objects arrive in rounds of ``batch``; reputations
carry over rounds.
"""

from __future__ import annotations

import logging
import math
import hashlib
from dataclasses import asdict, dataclass, field, replace

import torch
from torch import Tensor
from torch.nn import functional as F

from semguard.channels.base import ChannelState
from semguard.channels.functional import snr_db_to_n0
from semguard.codecs.base import SemanticCodec
from semguard.network import bounds, trust
from semguard.network import commit as cm
from semguard.network import fusion as fz
from semguard.network.attackers import byzantine_round, predict_honest
from semguard.network.byzantine import SEES_ROUND, TIMED, ByzantineThreat
from semguard.network.node import FusionNode
from semguard.network.views import agent_views
from semguard.registry import build

__all__ = ["FusionNode", "MultiAgentConfig", "collect_messages", "run_multiagent"]

log = logging.getLogger(__name__)

RULES = ("mean", "median", "trimmed-mean", "geomed", "trust", "trust-median", "trust-trimmed", "trust-aligned",
         "trust-capped")
PROTOCOLS = ("plain", "commit-reveal")


@dataclass(frozen=True)
class MultiAgentConfig:
    agents: int = 10
    byzantine: int = 0
    fusion: str = "median"
    threat: ByzantineThreat = field(default_factory=ByzantineThreat)
    rounds: int = 8
    batch: int = 25
    snr_db: tuple[float, float] = (4.0, 14.0)   # each agent's SNR, uniform in this range
    channel: str = "rayleigh"
    seed: int = 0
    trust_gain: float = 0.1
    trust_loss: float = 0.5
    trust_threshold: float = 0.5
    trust_cost: float = 0.6                     # a strong round multiplies the reputation by 1 - cost
    z_cross: float = 5.0                        # strong: robust z against the other agents over this
    z_history: float = 4.0                      # ... or z against the agent's own history over this
    collusion: float = 3.0                      # ... or sqrt(n) x its cumulative residual cosine with f - 1 others
    min_objects: int = 20                       # over this (7 when f = 2), from this many objects seen on
    aligned_drop: float = -math.inf             # trust-aligned: drop the most aligned f agents when their least
                                                # aligned pair's sqrt(n) x cosine is over this (-inf: always)
    cap: float = 1.0                            # trust-capped: each agent's deviation from the centre, nats
    z_horizon: float = math.inf                 # strong: long-run leave-group-out gap z over this (inf: off)
    horizon_rounds: int = 3                     # ... from this many rounds of history on
    replay_threshold: float = 10.0          # nats
    history: int = 2                            # rounds kept for the replay check
    malformed: tuple[int, ...] = ()             # faulty agents whose blocks arrive truncated
    domain: str = "logprob"                     # what is fused: "logprob" or "symbols"
    protocol: str = "plain"                     # "commit-reveal": commit, close, reveal (network/commit.py)
    air_alpha: float = 1e-3                     # commit-reveal: an honest agent's round fails the air check
                                                # with this probability (per-block tests at air_alpha / batch)
    decode: str = "air"                         # commit-reveal: decode the block received over the air, or the
                                                # opened bytes (the air then only checks; a digital link)
    air_proof: float = 1e-12                    # ... and a block under this p-value is proof (banned, as a
                                                # failed opening; an honest agent's chance is batch x this)

    def __post_init__(self) -> None:
        if self.fusion not in RULES:
            raise ValueError(f"fusion must be one of {', '.join(RULES)}, got {self.fusion!r}")
        if self.agents < 1 or self.rounds < 1 or self.batch < 1:
            raise ValueError("agents, rounds and batch must be >= 1")
        if self.byzantine > self.agents:
            raise ValueError(f"byzantine ({self.byzantine}) cannot exceed agents ({self.agents})")
        if any(not 0 <= i < self.agents for i in self.malformed):
            raise ValueError(f"malformed agents must be indices in 0..{self.agents - 1}, got {self.malformed}")
        if self.domain not in ("symbols", "logprob"):
            raise ValueError(f"domain must be 'symbols' or 'logprob', got {self.domain!r}")
        if self.fusion in fz.ALIGNED_RULES and self.domain != "logprob":
            raise ValueError(f"fusion {self.fusion!r} ranks the agents' log-probability residuals: needs domain 'logprob'")
        if not self.cap >= 0:
            raise ValueError(f"cap must be >= 0 nats, got {self.cap}")
        if not 0.0 < self.trust_cost <= 1.0:
            raise ValueError(f"trust_cost must be in (0, 1], got {self.trust_cost}")
        if not (self.z_cross > 0 and self.z_history > 0 and self.collusion > 0):
            raise ValueError(f"z_cross, z_history and collusion must be > 0 (inf: off), got "
                             f"{self.z_cross}, {self.z_history}, {self.collusion}")
        if self.min_objects < 1:
            raise ValueError(f"min_objects must be >= 1, got {self.min_objects}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if self.protocol == "commit-reveal" and self.threat.attack in SEES_ROUND:
            raise ValueError(f"attack {self.threat.attack!r} sees the round's honest messages, which commit-reveal "
                             f"hides: use predictive, rushing or rushing-air with base {self.threat.attack!r}")
        if self.decode not in ("air", "opened") or (self.decode == "opened" and self.protocol != "commit-reveal"):
            raise ValueError(f"decode must be 'air', or 'opened' with protocol commit-reveal, got {self.decode!r} "
                             f"with {self.protocol!r}")
        if not 0.0 < self.air_proof <= self.air_alpha < 1.0:
            raise ValueError(f"need 0 < air_proof <= air_alpha < 1, got {self.air_proof} and {self.air_alpha}")
        fz.check_byzantine_fraction(self.agents, self.byzantine, self.fusion)


def collect_messages(messages: list[Tensor], n: int) -> tuple[Tensor, Tensor]:
    """Stack the agents' received blocks; a block that is not complex ``[B, n]`` like the others is
    dropped and logged.  Returns ``(stacked [N_kept, B, n], kept [N] bool)``."""
    ref_b = next((m.shape[0] for m in messages if torch.is_complex(m) and m.dim() == 2 and m.shape[1] == n), None)
    if ref_b is None:
        raise ValueError(f"no agent sent complex symbols of shape [batch, {n}]")
    kept = []
    for i, m in enumerate(messages):
        ok = torch.is_complex(m) and m.dim() == 2 and tuple(m.shape) == (ref_b, n)
        if not ok:
            log.warning("dropping agent %d: features %s %s, expected complex [%d, %d]", i, m.dtype,
                        tuple(m.shape), ref_b, n)
        kept.append(ok)
    mask = torch.tensor(kept)
    return torch.stack([m for m, k in zip(messages, kept) if k]), mask


def _load_codec() -> SemanticCodec:
    from semguard.codecs.zoo import pretrained
    codec = pretrained("task-fmnist").eval()
    for p in codec.parameters():
        p.requires_grad_(False)
    return codec


def run_multiagent(cfg: MultiAgentConfig, images: Tensor, labels: Tensor, *, codec: SemanticCodec | None = None) -> dict:
    """Run ``cfg.rounds`` rounds of ``cfg.batch`` objects; returns a JSON-able result dict."""
    need = cfg.rounds * cfg.batch
    if images.shape[0] < need:
        raise ValueError(f"{cfg.rounds} rounds x {cfg.batch} objects need {need} images, got {images.shape[0]}")
    codec = codec or _load_codec()
    n_sym = codec.n
    N, f = cfg.agents, cfg.byzantine
    g = torch.Generator().manual_seed(cfg.seed)
    channel = build("channel", cfg.channel)
    snrs = cfg.snr_db[0] + (cfg.snr_db[1] - cfg.snr_db[0]) * torch.rand(N, generator=g)
    bad = torch.zeros(N, dtype=torch.bool)
    bad[torch.randperm(N, generator=g)[:f]] = True
    node = FusionNode(cfg.fusion, f, N, gain=cfg.trust_gain, loss=cfg.trust_loss, threshold=cfg.trust_threshold,
                      cost=cfg.trust_cost, z_cross=cfg.z_cross, z_history=cfg.z_history, collusion=cfg.collusion,
                      min_objects=cfg.min_objects, aligned_drop=cfg.aligned_drop, cap=cfg.cap,
                      z_horizon=cfg.z_horizon, horizon_rounds=cfg.horizon_rounds)
    th = cfg.threat
    hist_y: list[Tensor] = []
    hist_nz: list[Tensor] = []
    prev_x: Tensor | None = None
    past: tuple[Tensor, Tensor] | None = None   # the previous round's revealed residuals (predictive attacker)
    sealed = cfg.protocol == "commit-reveal"
    per_round = []
    correct = honest_correct = oracle_correct = 0
    bound = {"median_bound": 0, "vote_bound": 0, "honest_median": 0}
    for r in range(cfg.rounds):
        xb, yb = images[r * cfg.batch:(r + 1) * cfg.batch], labels[r * cfg.batch:(r + 1) * cfg.batch]
        B = xb.shape[0]
        views = agent_views(xb, N, generator=g, agent_seed=cfg.seed)
        with torch.no_grad():
            x = torch.stack([codec.encode(views[i], float(snrs[i])) for i in range(N)])   # [N, B, n]
        states = [channel.sample_state(B, n_sym, float(snrs[i]), generator=g) for i in range(N)]

        def rx(xi: Tensor, i: int, gen: torch.Generator | None) -> tuple[Tensor, Tensor, Tensor]:
            """Agent i's block through its channel -> (equalised y, decoded logp, fusion vector)."""
            y = channel.equalize(channel.apply(xi, states[i], generator=gen), states[i])
            logp = F.log_softmax(codec.decode(y, states[i]), -1)
            return y, logp, (logp if cfg.domain == "logprob" else torch.view_as_real(y).flatten(1))

        # the fused block is decoded as if received at the agents' median post-equalisation SNR
        eff = torch.stack([st.effective_snr_db for st in states], 1).median(1).values          # [B]
        fused_state = ChannelState(h=torch.ones(B, n_sym, dtype=torch.complex64),
                                   h_est=torch.ones(B, n_sym, dtype=torch.complex64), snr_db=eff,
                                   n0=snr_db_to_n0(eff).unsqueeze(1))

        def decide(fused: Tensor) -> Tensor:
            """Fused vectors ``[B, d]`` -> logits ``[B, C]``."""
            if cfg.domain == "logprob":
                return fused
            return codec.decode(torch.view_as_complex(fused.reshape(B, n_sym, 2).contiguous()), fused_state)

        with torch.no_grad():
            honest = [rx(x[i], i, g) for i in range(N)]
        logp_h = torch.stack([h[1] for h in honest], 1)                          # [B, N, C]
        vec_h = torch.stack([h[2] for h in honest], 1)                           # [B, N, d]
        idx = torch.nonzero(bad).flatten()
        eot_seed = cfg.seed * 7919 + r

        def receive(z: Tensor, draw: int) -> tuple[Tensor, Tensor]:
            gen = torch.Generator().manual_seed(eot_seed + 104729 * draw)
            outs = [rx(z[k], int(i), gen) for k, i in enumerate(idx)]
            return torch.stack([o[2] for o in outs]), torch.stack([o[1] for o in outs])

        w_now = node.weights(node.reputation) if node.uses_trust else None

        def plan(view_v: Tensor, view_lp: Tensor) -> tuple:
            """The attackers' closures against the honest messages ``view_v [B, N, d]`` / ``view_lp [B, N, C]``
            they see (this round's, or their prediction): fuse_with, simulate, reference, runner-up."""
            ref = fz.fuse_mean(view_lp[:, ~bad]).argmax(-1) if (~bad).any() else yb   # honest consensus
            runner = view_lp[:, ~bad].mean(1).scatter(-1, ref.unsqueeze(-1), -float("inf")).argmax(-1)

            def fuse_with(att: Tensor) -> Tensor:
                full = view_v.clone()
                full[:, idx] = att.transpose(0, 1)
                return decide(node.fuse(full, w_now))

            def simulate(att: Tensor) -> tuple[Tensor, Tensor, Tensor]:
                """What the node would get from the attackers sending ``att`` (noise draw 999)."""
                v, lp = receive(att, 999)
                full_v, full_lp = view_v.clone(), view_lp.clone()
                full_v[:, idx], full_lp[:, idx] = v.transpose(0, 1), lp.transpose(0, 1)
                keep = torch.ones(N, dtype=torch.bool)
                med = decide(fz.weighted_median(full_v, node.reference_weights(keep)))
                return full_v, full_lp, node.reference(full_lp, med, keep)

            return fuse_with, simulate, ref, runner

        played = replace(th, attack=th.base) if th.attack in TIMED else th
        if th.attack in TIMED and f > 0 and (sealed or th.attack == "predictive"):
            # the commit phase: the attackers know their own messages and the past, not the honest round
            pv, pl = predict_honest(vec_h[:, bad], logp_h[:, bad], bad, past, logprob=cfg.domain == "logprob",
                                    predictor=th.predictor)
            x_commit, active = byzantine_round(played, r, x, bad, prev_x, node, receive, *plan(pv, pl), g)
            x_air = x_open = x_commit
            if th.attack != "predictive":      # rushing: the reply to the honest messages it has now seen
                x_air, _ = byzantine_round(played, r, x, bad, prev_x, node, receive, *plan(vec_h, logp_h), g)
                x_open = x_air if th.attack == "rushing" else x_commit
                if th.attack == "rushing-air" and th.fade_aware and sealed:
                    # it knows its own CSI: it changes only the blocks its fade will hide from the air check
                    thr = cm.air_threshold(n_sym, cfg.air_alpha / B)
                    for i in idx.tolist():
                        hide = cm.unseen_change(x_air[i] - x_commit[i], states[i].h, states[i].n0, thr)
                        x_air[i] = torch.where(hide.unsqueeze(-1), x_air[i], x_commit[i])
        else:
            x_commit, active = byzantine_round(played, r, x, bad, prev_x, node, receive, *plan(vec_h, logp_h), g)
            x_air = x_open = x_commit
        prev_x = x.clone()
        with torch.no_grad():
            msgs = [rx(x_air[i], i, g) if bad[i] else honest[i] for i in range(N)]
        proto = {}
        sealed_ok = torch.ones(N, dtype=torch.bool)
        if sealed:
            # commit (32 bytes each), close (the node's 32-byte digest), reveal (block over the air, opening)
            nonces = [cm.fresh_nonce() for _ in range(N)]
            commitments = [cm.commit(cm.block_bytes(x_commit[i]), nonces[i]) for i in range(N)]
            closed = cm.close_digest(commitments)   # what the node broadcasts before any reveal
            openings = [cm.Opening(cm.block_bytes(x_open[i]), nonces[i]) for i in range(N)]
            opened = cm.open_round(commitments, openings)
            p_min = torch.ones(N, dtype=torch.float64)
            wrong = wrong_passed = 0
            for i in range(N):
                if not opened[i]:
                    continue
                y_zf, nz = states[i].zero_forced(msgs[i][0])
                blk = cm.bytes_block(openings[i].message, x_open[i].shape)
                pv_air = cm.air_pvalues(y_zf, nz, blk)
                p_min[i] = pv_air.min()
                differs = (x_air[i] != blk).any(-1)
                wrong += int(differs.sum())
                wrong_passed += int((differs & (pv_air >= cfg.air_alpha / B)).sum())
            # a failed opening, or a block far outside the channel's noise, is proof: that agent is out for good
            banned_before = node.banned.clone()
            node.ban(~opened | (p_min < cfg.air_proof))
            # a block merely unlikely is dropped this round, lowest p first, while 2f + 1 agents stay in
            suspect = torch.nonzero(~node.banned & (p_min < cfg.air_alpha / B)).flatten()
            room = max(0, int((~node.banned).sum()) - 2 * node.f - 1)
            air_ok = torch.ones(N, dtype=torch.bool)
            air_ok[suspect[p_min[suspect].argsort()][:room]] = False
            if suspect.numel() > room:
                log.warning("round %d: %d agents fail the air check, %d dropped (2f + 1 stay in)", r,
                            suspect.numel(), room)
            sealed_ok = opened & air_ok & ~node.banned
            if cfg.decode == "opened":     # the node decodes the exact opened bytes (the air only checked them)
                for i in torch.nonzero(opened).flatten().tolist():
                    xo = x_open[i]
                    st = ChannelState(h=torch.ones_like(xo), h_est=torch.ones_like(xo), snr_db=states[i].snr_db,
                                      n0=states[i].n0)
                    with torch.no_grad():
                        lp = F.log_softmax(codec.decode(xo, st), -1)
                    msgs[i] = (msgs[i][0], lp, lp if cfg.domain == "logprob" else torch.view_as_real(xo).flatten(1))
            proto = {"close_digest": closed.hex(), "changed": torch.nonzero((x_commit != x_open).flatten(1).any(1)
                                              | (x_commit != x_air).flatten(1).any(1)).flatten().tolist(),
                     "failed_openings": torch.nonzero(~opened).flatten().tolist(),
                     "air_rejected": torch.nonzero(opened & ~sealed_ok & ~banned_before).flatten().tolist(),
                     "caught_byzantine": int(((~opened | ~air_ok | node.banned) & bad).sum()),
                     "dropped_honest": int((~sealed_ok & ~bad).sum()),
                     "wrong_blocks": wrong, "wrong_blocks_passed": wrong_passed,
                     "banned": torch.nonzero(node.banned).flatten().tolist()}
        # the fusion node's boundary: a block of the wrong shape is dropped (and logged) this round
        arrived = [m[0][:, : n_sym - 4] if i in cfg.malformed else m[0] for i, m in enumerate(msgs)]
        _, kept = collect_messages(arrived, n_sym)
        kept = kept & sealed_ok
        logp = torch.stack([m[1] for m in msgs], 1)[:, kept]
        vec = torch.stack([m[2] for m in msgs], 1)[:, kept]
        # replay check on the zero-forced symbols against each agent's own recent history
        zf = [states[i].zero_forced(msgs[i][0]) if kept[i] else
              (torch.zeros(B, n_sym, dtype=torch.complex64), torch.full((B, n_sym), 1e6)) for i in range(N)]
        y_zf = torch.stack([z[0] for z in zf], 1)                                # [B, N, n]
        nz = torch.stack([z[1] for z in zf], 1)
        replayed = None
        if hist_y:
            hy = torch.cat(hist_y, 0)                                             # [H*B, N, n]
            hn = torch.cat(hist_nz, 0)
            stat = torch.stack([trust.replay_statistic(y_zf[b], nz[b], hy, hn) for b in range(B)])  # [B, N]
            replayed = (stat > cfg.replay_threshold).float().mean(0) > 0.5
        hist_y = (hist_y + [y_zf])[-cfg.history:]
        hist_nz = (hist_nz + [nz])[-cfg.history:]
        if f > 0:                          # what every agent revealed, against the attackers' own mean
            past = (vec_h - vec_h[:, bad].mean(1, keepdim=True), logp_h - logp_h[:, bad].mean(1, keepdim=True))
        with torch.no_grad():
            ref_node = node.reference(logp, decide(fz.weighted_median(vec, node.reference_weights(kept))), kept)
            fused, flags = node.step(vec, logp, ref_node, replayed, kept)
            fused = decide(fused)
        dec = fused.argmax(-1)
        c = int((dec == yb).sum())
        correct += c
        oracle_correct += int((fz.fuse_mean(logp_h[:, ~bad]).argmax(-1) == yb).sum()) if (~bad).any() else 0
        honest_correct += int((logp_h[:, ~bad].argmax(-1) == yb.unsqueeze(1)).float().mean(1).sum()) if (~bad).any() else 0
        if 0 < f and 2 * f < N:    # what f Byzantine agents can do to an undetected median / vote (bounds.py)
            hl = logp_h[:, ~bad]
            bound["median_bound"] += int(bounds.median_worst_case_correct(hl, yb, f).sum())
            bound["vote_bound"] += int(bounds.vote_worst_case_correct(hl.argmax(-1), yb, f, hl.shape[-1]).sum())
            bound["honest_median"] += int((fz.coordinate_median(hl).argmax(-1) == yb).sum())
        tp = int((flags & bad).sum())
        per_round.append({"round": r, "accuracy": c / B, "attacking": bool(active),
                          "flagged": int(flags.sum()), "true_positive": tp,
                          "precision": tp / int(flags.sum()) if flags.any() else None,
                          "recall": tp / f if f else None,
                          "false_positive_rate": int((flags & ~bad).sum()) / max(1, N - f),
                          "byzantine_weight": float(node.weights(node.reputation)[bad].sum()
                                                    / node.weights(node.reputation).sum()) if f else None,
                          "byzantine_reputation": [round(float(v), 4) for v in node.reputation[bad]],
                          "group_gap": [round(float(v), 4) for v in node.last.group_gap],
                          "horizon_z": [round(float(v), 3) for v in node.last.horizon],
                          **({"byzantine_block_sha256": hashlib.sha256(cm.block_bytes(x_commit[bad])).hexdigest()}
                             if f else {}), **proto})
    total = cfg.rounds * cfg.batch
    cfg_rec = asdict(cfg)
    cfg_rec["threat"] = th.record()
    return {"config": cfg_rec, "accuracy": correct / total, "single_agent_accuracy": honest_correct / total,
            "oracle_accuracy": oracle_correct / total,
            **({f"{k}_accuracy": v / total for k, v in bound.items()} if 0 < f and 2 * f < N else {}),
            "agent_snr_db": [round(float(s), 2) for s in snrs], "byzantine_agents": torch.nonzero(bad).flatten().tolist(),
            **({"cost": asdict(cm.round_cost(N, cfg.batch, n_sym))} if sealed else {}), "rounds": per_round}
