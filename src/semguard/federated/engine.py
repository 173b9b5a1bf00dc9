"""The federation (data, clients, attackers) and the server round, shared by every engine.

``run_inprocess`` drives the rounds in this process (milliseconds of overhead, for tests and
the quick default); :mod:`semguard.federated.flower_app` drives the very same
:func:`client_update` and :func:`server_round` through Flower's simulation engine or a real
SuperLink / SuperNode deployment.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import Tensor

from semguard.federated.attacks import AttackView, FLAttack
from semguard.federated.client import ClientReply, LocalConfig, client_update
from semguard.federated.model import get_vector, set_vector
from semguard.federated.partition import dirichlet_partition
from semguard.federated.setups import EVAL_SEED, SETUPS, CodecSetup, codec_setup
from semguard.federated.strategy import REPUTATION, STRATEGIES, ServerAggregator
from semguard.registry import available, build

FL_CODECS = tuple(SETUPS)
METRICS = {name: setup.metrics for name, setup in SETUPS.items()}  # what evaluate() reports

__all__ = ["FL_CODECS", "METRICS", "FLConfig", "Federation", "server_round", "evaluate", "run_inprocess", "check_reply"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FLConfig:
    """One federated run.  ``malicious`` of ``clients`` run ``attack``; ``crash`` names client ids
    that fail mid-round (fault injection); ``min_clients``: replies needed to aggregate a round
    (default: half the clients, rounded up).  ``dp_noise``: DP-SGD noise multiplier on the
    clients (0: off), with per-example clipping at ``dp_clip``; or ``dp_epsilon``: the noise that
    keeps every client within that epsilon (at ``dp_delta``) after all its rounds.

    ``codec``: ``task`` (Fashion-MNIST classes, ``width`` and ``n_symbols``) or ``deepjscc`` (photo
    crops of ``crop`` pixels, :mod:`semguard.federated.image`; ``width`` and ``cbr``; ``test_size``
    and ``root_size`` count crops, ``train_crops`` the crops of each training photo) or ``deepsc``
    (WordNet sentences, :mod:`semguard.federated.text`; ``width`` is ``d_model``, ``layers`` per side;
    ``test_size`` and ``root_size`` count sentences, ``train_sentences`` the clients' pool)."""

    clients: int = 10
    malicious: int = 0
    attack: str | None = None
    strategy: str = "fedavg"
    rounds: int = 5
    alpha: float = 0.5
    local: LocalConfig = field(default_factory=LocalConfig)
    seed: int = 0
    width: int = 16
    n_symbols: int = 16
    eval_snr_db: float = 10.0
    test_size: int = 400
    root_size: int = 100
    min_clients: int | None = None
    crash: tuple[int, ...] = ()
    dp_noise: float = 0.0
    dp_epsilon: float | None = None
    dp_clip: float = 1.0
    dp_delta: float = 1e-3
    codec: str = "task"
    cbr: float = 1 / 6
    crop: int = 32
    train_crops: int = 300
    layers: int = 1
    train_sentences: int = 4000

    def __post_init__(self) -> None:
        self.setup.check(self)
        if self.clients < 2:
            raise ValueError(f"--clients must be >= 2, got {self.clients}")
        if not 0 <= self.malicious < self.clients:
            raise ValueError(f"--malicious must be in [0, clients={self.clients}), got {self.malicious}")
        if self.malicious and self.attack is None:
            raise ValueError("--malicious > 0 needs an --attack")
        if self.attack is not None and self.attack not in available("fl_attack"):
            raise ValueError(f"--attack {self.attack!r} unknown; choose from {', '.join(available('fl_attack'))}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"--strategy {self.strategy!r} unknown; choose from {', '.join(STRATEGIES)}")
        if not self.alpha > 0:
            raise ValueError(f"--alpha must be > 0, got {self.alpha}")
        if self.rounds < 1:
            raise ValueError(f"--rounds must be >= 1, got {self.rounds}")
        if self.local.steps < 1 or self.local.batch < 1 or not self.local.lr > 0:
            raise ValueError("--local-steps, --batch and --lr must be positive")
        if self.min_clients is not None and not 1 <= self.min_clients <= self.clients:
            raise ValueError(f"--min-clients must be in [1, {self.clients}], got {self.min_clients}")
        if self.dp_noise < 0 or not self.dp_clip > 0:
            raise ValueError("--dp-noise must be >= 0 and --dp-clip > 0")
        if self.dp_epsilon is not None and (not self.dp_epsilon > 0 or self.dp_noise > 0):
            raise ValueError("--dp-epsilon must be > 0 and cannot be combined with --dp-noise")
        if not 0 < self.dp_delta < 1:
            raise ValueError(f"--dp-delta must be in (0, 1), got {self.dp_delta}")

    @property
    def setup(self) -> CodecSetup:
        """The codec's part of the run (:mod:`semguard.federated.setups`)."""
        return codec_setup(self.codec)

    @property
    def min_replies(self) -> int:
        return self.min_clients if self.min_clients is not None else math.ceil(self.clients / 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Federation:
    """Everything a run derives from its :class:`FLConfig` and seed: the shipped Fashion-MNIST
    images split into a held-out test set, the server's root set (FLTrust) and Dirichlet client
    partitions; the malicious client ids; the attack; the initial global model."""

    def __init__(self, cfg: FLConfig, images: Tensor | None = None, labels: Tensor | None = None) -> None:
        self.cfg = cfg
        self.setup = setup = cfg.setup
        g = torch.Generator().manual_seed(cfg.seed)
        self.reconstruct = setup.reconstruct  # the target of a client's example is the example itself
        d = setup.data(cfg, g, images, labels)
        self.test_x, self.test_y, self.root_x, self.root_y = d.test_x, d.test_y, d.root_x, d.root_y
        self.test_sentences: list[str] = d.test_sentences
        self.tokenizer = d.tokenizer  # text: the one tokenizer of every client and the server (else None)
        images, labels, pool = d.images, d.labels, d.pool
        parts = dirichlet_partition(labels[pool], cfg.clients, cfg.alpha, generator=g)
        self.parts = [pool[p] for p in parts]
        self.images, self.labels = images, labels
        self.malicious = sorted(torch.randperm(cfg.clients, generator=g)[:cfg.malicious].tolist())
        self.attack: FLAttack | None = build("fl_attack", cfg.attack) if cfg.attack else None
        self.codec = setup.codec(cfg, d)
        self.initial = get_vector(self.codec)
        self.dim = self.initial.numel()
        self.channel = build("channel", cfg.local.channel)

    def client_data(self, cid: int) -> tuple[Tensor, Tensor]:
        idx = self.parts[cid]
        return self.images[idx], (self.images if self.reconstruct else self.labels)[idx]

    def attack_of(self, cid: int) -> FLAttack | None:
        return self.attack if cid in self.malicious else None

    def aggregator(self) -> ServerAggregator:
        return ServerAggregator(self.cfg.strategy, self.cfg.clients, self.cfg.malicious, self.dim)

    @property
    def sample_rates(self) -> list[float]:
        from semguard.federated.privacy import client_sample_rates

        return client_sample_rates([len(p) for p in self.parts], self.cfg.local.batch)

    @property
    def dp_noise(self) -> float:
        """The DP-SGD noise multiplier of this run (0: no DP)."""
        if self.cfg.dp_epsilon is None:
            return self.cfg.dp_noise
        if not hasattr(self, "_noise"):
            from semguard.federated.privacy import noise_for_epsilon

            self._noise = noise_for_epsilon(self.cfg.dp_epsilon, self.sample_rates,
                                            self.cfg.rounds * self.cfg.local.steps, self.cfg.dp_delta)
        return self._noise

    def epsilon_at(self, rnd: int) -> float | None:
        """The largest client epsilon after ``rnd`` rounds (None without DP)."""
        if self.dp_noise <= 0:
            return None
        from semguard.federated.privacy import dp_epsilon

        return dp_epsilon(self.dp_noise, self.sample_rates, rnd * self.cfg.local.steps, self.cfg.dp_delta)

    def trainer(self) -> Any:
        if self.dp_noise <= 0:
            return None
        from semguard.federated.privacy import DPTrainer, MicrobatchDPTrainer

        kind = MicrobatchDPTrainer if self.setup.per_example == "microbatch" else DPTrainer
        return kind(noise_multiplier=self.dp_noise, max_grad_norm=self.cfg.dp_clip, delta=self.cfg.dp_delta)

    def run_client(self, cid: int, global_vec: Tensor, rnd: int, last_global_update: Tensor | None,
                   trainer: Any = None) -> ClientReply:
        if cid in self.cfg.crash:
            raise RuntimeError(f"client {cid} crashed (fault injection)")
        x, y = self.client_data(cid)
        return client_update(self.codec, global_vec, x, y, self.cfg.local, cid=cid, rnd=rnd, seed=self.cfg.seed,
                             attack=self.attack_of(cid), last_global_update=last_global_update, trainer=trainer)


def check_reply(update: Any, dim: int, cid: int) -> str | None:
    """Why an update is unacceptable (wrong shape, dtype, NaN/Inf), naming the client; None when fine."""
    if not isinstance(update, Tensor):
        return f"client {cid}: update is {type(update).__name__}, expected a float32 tensor"
    if update.dtype != torch.float32:
        return f"client {cid}: update dtype {update.dtype}, expected torch.float32"
    if tuple(update.shape) != (dim,):
        return f"client {cid}: update shape {tuple(update.shape)}, expected ({dim},)"
    if not torch.isfinite(update).all():
        return f"client {cid}: update contains NaN or Inf"
    return None


@torch.no_grad()
def evaluate(fed: Federation, vec: Tensor) -> dict[str, float]:
    """Global accuracy on the held-out set at ``eval_snr_db``, and backdoor success: the share of
    held-out images of other classes that the trigger turns into the backdoor target.  For an
    image codec: the held-out crops' mean PSNR; for DeepSC, the held-out sentences' BLEU-1 and token
    accuracy (``METRICS`` names the keys per codec)."""
    codec = fed.codec
    set_vector(codec, vec)
    codec.eval()
    return fed.setup.evaluate(fed, codec, torch.Generator().manual_seed(EVAL_SEED))


def server_round(fed: Federation, agg: ServerAggregator, global_vec: Tensor, replies: list[ClientReply],
                 failures: dict[int, str], rnd: int, last_global_update: Tensor | None,
                 root_update: Tensor | None = None) -> tuple[Tensor, dict[str, Any]]:
    """Check replies, run the colluders' stage, aggregate, apply.  Returns ``(new global, round log)``.

    A round with fewer valid replies than ``min_replies`` leaves the global model unchanged.
    """
    rejected: dict[int, str] = {}
    valid: list[ClientReply] = []
    for r in sorted(replies, key=lambda r: r.cid):
        why = check_reply(r.update, fed.dim, r.cid)
        if why:
            rejected[r.cid] = why
            log.warning("round %d: rejected %s", rnd, why)
        else:
            valid.append(r)
    rec: dict[str, Any] = {"round": rnd, "replies": len(valid), "failures": dict(failures), "rejected": rejected}
    if len(valid) < fed.cfg.min_replies:
        log.warning("round %d: %d valid replies < min %d; global model unchanged", rnd, len(valid),
                    fed.cfg.min_replies)
        rec["skipped"] = True
        return global_vec, rec
    colluders = [r for r in valid if r.collude]
    if colluders and fed.attack is not None:
        honest = [r for r in valid if r.cid not in fed.malicious]
        others = [r for r in valid if r.cid in fed.malicious and not r.collude]
        order = honest + others + colluders
        H = torch.stack([r.update for r in honest]) if honest else None
        w = torch.tensor([float(r.num_examples) for r in order])
        view_agg = None
        if fed.attack.threat.knowledge == "aggregator":
            pre = agg.preview(torch.tensor([r.cid for r in order]), w, root_update)
            fixed = [torch.stack([r.update for r in others])] if others else []

            def view_agg(X: Tensor) -> Tensor:  # X = [honest; colluders]: the others' rows stay as sent
                return pre(torch.cat([X[:len(honest)], *fixed, X[len(honest):]]))

        crafted = fed.attack.craft(torch.stack([r.update for r in colluders]),
                                   AttackView(fed.dim, last_global_update, H, view_agg))
        for r, u in zip(colluders, crafted):
            r.update = u.to(torch.float32).contiguous()
    ids = torch.tensor([r.cid for r in valid])
    X = torch.stack([r.update for r in valid])
    w = torch.tensor([float(r.num_examples) for r in valid])
    update, info = agg.step(X, ids, w, root_update)
    new = global_vec + update.to(global_vec.dtype)
    rec.update(info)
    rec["update_norm"] = float(update.norm())
    rec["diagnostics"] = round_diagnostics(X, ids, update, [c for c in ids.tolist() if c not in fed.malicious])
    return new, rec


def round_diagnostics(X: Tensor, ids: Tensor, update: Tensor, honest: list[int]) -> dict[str, Any]:
    """What a round did to each client's update, for diagnosing a rule (simulation knowledge: the honest ids).

    Per client id: ``norm``, ``cos_aggregate`` (cosine with the round's aggregate), ``cos_honest_mean`` (with the
    mean of the honest clients' updates) and ``proj_honest_mean`` (its component along that mean, in units of
    the mean's norm).  ``shift``: ``||aggregate - honest mean|| / ||honest mean||``, what the rule-aware attacks
    maximise; ``along``: the aggregate's component along the honest mean over the mean's norm (1 = FedAvg of the
    honest clients)."""
    X = X.to(torch.float64)
    a = update.to(torch.float64)
    norms = X.norm(dim=1)
    rows = [i for i, c in enumerate(ids.tolist()) if c in honest]
    mu = X[rows].mean(0) if rows else X.mean(0)
    mn = float(mu.norm()) or 1.0
    cos_a = (X @ a) / (norms * a.norm()).clamp_min(1e-30)
    cos_h = (X @ mu) / (norms * mn).clamp_min(1e-30)
    out = {int(c): {"norm": round(float(norms[i]), 5), "cos_aggregate": round(float(cos_a[i]), 4),
                    "cos_honest_mean": round(float(cos_h[i]), 4), "proj_honest_mean": round(float(X[i] @ mu) / mn ** 2, 4)}
           for i, c in enumerate(ids.tolist())}
    return {"clients": out, "honest_mean_norm": round(mn, 5), "shift": round(float((a - mu).norm()) / mn, 4),
            "along": round(float(a @ mu) / mn ** 2, 4)}


def _root_update(fed: Federation, global_vec: Tensor, rnd: int) -> Tensor:
    from semguard.federated.client import local_train

    set_vector(fed.codec, global_vec)
    local_train(fed.codec, fed.root_x, fed.root_y, fed.cfg.local, seed=fed.cfg.seed * 7 + rnd)
    return get_vector(fed.codec) - global_vec


def run_inprocess(cfg: FLConfig, *, fed: Federation | None = None, keep_vectors: bool = False) -> dict[str, Any]:
    """All rounds in this process.  Returns ``{"config", "rounds": [per-round logs], "final", ...}``;
    with ``keep_vectors`` also ``"vectors"``: the global model before round 1 and after each round."""
    fed = fed or Federation(cfg)
    agg = fed.aggregator()
    trainer = fed.trainer()
    vec, last = fed.initial.clone(), None
    rounds = []
    vectors = [vec.clone()]
    t0 = time.monotonic()
    for rnd in range(1, cfg.rounds + 1):
        replies, failures = [], {}
        for cid in range(cfg.clients):
            try:
                replies.append(fed.run_client(cid, vec, rnd, last, trainer))
            except Exception as e:  # a failing client must not stall the round
                failures[cid] = f"{type(e).__name__}: {e}"
                log.warning("round %d: client %d failed: %s", rnd, cid, failures[cid])
        root = _root_update(fed, vec, rnd) if agg.needs_root else None
        new, rec = server_round(fed, agg, vec, replies, failures, rnd, last, root)
        last, vec = new - vec, new
        rec.update(evaluate(fed, vec))
        if trainer is not None:
            rec["epsilon"] = fed.epsilon_at(rnd)
        rounds.append(rec)
        if keep_vectors:
            vectors.append(vec.clone())
        log.info("round %d: %s", rnd, {k: rec[k] for k in (*METRICS[cfg.codec], "replies")})
    out = result_record(fed, rounds, vec, "inprocess", time.monotonic() - t0, agg)
    if keep_vectors:
        out["vectors"] = vectors
    return out


def result_record(fed: Federation, rounds: list[dict[str, Any]], vec: Tensor, engine: str, seconds: float,
                  agg: ServerAggregator) -> dict[str, Any]:
    detected = sorted({c for r in rounds for c in r.get("free_riders", [])})
    honest = [c for c in range(fed.cfg.clients) if c not in fed.malicious]
    rec = {"config": fed.cfg.to_dict(), "engine": engine, "malicious_ids": fed.malicious, "rounds": rounds,
           "final": {k: rounds[-1][k] for k in METRICS[fed.cfg.codec]}, "seconds": seconds,
           "dim": fed.dim, "dp_noise": fed.dp_noise}
    if agg.name in REPUTATION:
        rec["reputation"] = agg.state.scores.tolist()
        rec["free_riders_detected"] = detected
        rec["free_rider_false_positive_rate"] = len([c for c in detected if c in honest]) / max(len(honest), 1)
        first = {}
        for r in rounds:
            for c in r.get("free_riders", []):
                first.setdefault(c, r["round"])
        rec["free_rider_first_round"] = first
    rec["final_sha256"] = hashlib.sha256(vec.contiguous().numpy().tobytes()).hexdigest()
    rec["final_vector"] = vec
    return rec
