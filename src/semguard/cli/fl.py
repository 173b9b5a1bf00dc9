"""``semguard fl``: federated training of a codec under client attacks, on Flower.

``--codec task`` (the Fashion-MNIST classifier), ``--codec deepjscc`` (a small image codec on
photo crops) or ``--codec deepsc`` (a small DeepSC on WordNet sentences).  Prints one row per round
(global accuracy and backdoor success, PSNR, or BLEU-1 and token accuracy; replies,
free riders detected, epsilon) and writes the run's JSON record (config, per-round logs, reputations) and a plot.
With ``--publish KB --key PEM`` the final global codec goes into the knowledge base as a new
signed version with its training record, behind the knowledge base's poisoning screen.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from pathlib import Path
from typing import Any

import torch

from semguard.cli.common import check_in_file, int_at_least, non_negative_float, positive_float
from semguard.registry import available

__all__ = ["add_parser", "run", "config_from_args", "run_engine", "ENGINES"]

log = logging.getLogger(__name__)

ENGINES = ("inprocess", "flower-local", "simulation", "deployment")


def add_parser(subparsers: Any) -> None:
    """Add the ``fl`` subcommand."""
    from semguard.federated.client import OPTIMIZERS
    from semguard.federated.engine import FL_CODECS
    from semguard.federated.strategy import STRATEGIES

    p = subparsers.add_parser("fl", help="federated training under poisoning and free riders (Flower)",
                              description=__doc__)
    p.add_argument("--clients", type=int_at_least(1, 1000), default=10, help="number of clients")
    p.add_argument("--malicious", type=int_at_least(0), default=0, help="how many of them attack")
    p.add_argument("--attack", choices=available("fl_attack"), default=None, help="what the malicious clients do")
    p.add_argument("--strategy", choices=STRATEGIES, default="fedavg", help="server aggregation rule (reputation-root is experimental: it falls to chance under adaptive_bias at 3/10, docs/federated.md)")
    p.add_argument("--rounds", type=int_at_least(1, 10000), default=5)
    p.add_argument("--alpha", type=positive_float, default=0.5, help="Dirichlet non-IID concentration (> 0; small = skewed)")
    p.add_argument("--local-steps", type=int_at_least(1), default=10, help="local optimiser steps per round")
    p.add_argument("--batch", type=int_at_least(1), default=32)
    p.add_argument("--lr", type=positive_float, default=1e-3)
    p.add_argument("--codec", choices=FL_CODECS, default="task",
                   help="task (Fashion-MNIST classifier), deepjscc (image codec on photo crops, PSNR) or "
                        "deepsc (text codec on WordNet sentences, BLEU-1)")
    p.add_argument("--width", type=int_at_least(1), default=16, help="codec CNN width (deepsc: d_model)")
    p.add_argument("--n-symbols", type=int_at_least(1), default=16, help="task codec: complex channel uses per image")
    p.add_argument("--cbr", type=positive_float, default=1 / 6,
                   help="deepjscc: bandwidth ratio n / (3HW), k/48 for a whole k >= 1 (default 1/6)")
    p.add_argument("--crop", type=int_at_least(8, 256), default=32, help="deepjscc: crop side (a multiple of 4)")
    p.add_argument("--train-crops", type=int_at_least(1), default=300,
                   help="deepjscc: crops drawn from each training photo for the clients")
    p.add_argument("--layers", type=int_at_least(1), default=1, help="deepsc: transformer layers per side")
    p.add_argument("--train-sentences", type=int_at_least(2), default=4000,
                   help="deepsc: WordNet training sentences shared out among the clients")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="clients' local optimiser")
    p.add_argument("--momentum", type=non_negative_float, default=0.0, help="SGD momentum, in [0, 1)")
    p.add_argument("--min-clients", type=int_at_least(1), default=None, help="replies needed to aggregate a round")
    p.add_argument("--dp-noise", type=non_negative_float, default=0.0, help="DP-SGD noise multiplier on the clients (0: off)")
    p.add_argument("--dp-epsilon", type=positive_float, default=None,
                   help="DP-SGD with the noise that keeps every client within this epsilon after all rounds")
    p.add_argument("--dp-delta", type=positive_float, default=1e-3, help="DP delta")
    p.add_argument("--dp-clip", type=positive_float, default=1.0, help="DP-SGD per-example gradient clipping norm")
    p.add_argument("--engine", choices=ENGINES, default="inprocess",
                   help="inprocess (fast), flower-local (the Flower apps in process), simulation (Flower/Ray), "
                        "deployment (SuperLink + SuperNodes on loopback)")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--threads", type=int_at_least(1), default=1, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=Path("fl.json"), help="JSON record")
    p.add_argument("--plot", type=Path, default=None, help="PNG of accuracy, backdoor success and reputations")
    p.add_argument("--publish", metavar="KB", default=None,
                   help="publish the final global codec into this knowledge base (made with `semguard kb init`)")
    p.add_argument("--key", default=None, help="publisher Ed25519 key for --publish (PEM; passphrase from "
                   "$SEMGUARD_KEY_PASSPHRASE if set)")
    p.add_argument("--publish-name", default="fl-task", help="entry name of the published codec")
    p.add_argument("--max-drop", type=non_negative_float, default=2.0,
                   help="--publish refuses a held-out drop of more than this: points of accuracy (task) or "
                        "BLEU-1 (deepsc), dB of PSNR (deepjscc)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> Any:
    from dataclasses import fields

    from semguard.federated.client import LocalConfig
    from semguard.federated.engine import FLConfig
    from semguard.federated.setups import SETUPS

    if args.local_steps < 1 or args.batch < 1 or not args.lr > 0:
        raise ValueError("--local-steps, --batch and --lr must be positive")
    k = round(48 * args.cbr)  # "0.1667" means 8/48: snap what is a rounded k/48
    cbr = k / 48 if k >= 1 and abs(48 * args.cbr - k) < 0.01 else args.cbr
    image_args = {"cbr": cbr, "crop": args.crop, "train_crops": args.train_crops}
    text_args = {"layers": args.layers, "train_sentences": args.train_sentences}
    defaults = {f.name: f.default for f in fields(FLConfig)}
    for codec, setup in SETUPS.items():  # a flag that only another codec reads is a mistake, not a no-op
        given = [f"--{o.replace('_', '-')}" for o in setup.options if getattr(args, o) != defaults[o]]
        if given and args.codec != codec:
            raise ValueError(f"{', '.join(given)} only appl{'ies' if len(given) == 1 else 'y'} to --codec {codec}")
    return FLConfig(clients=args.clients, malicious=args.malicious, attack=args.attack, strategy=args.strategy,
                    rounds=args.rounds, alpha=args.alpha, seed=args.seed, width=args.width, n_symbols=args.n_symbols,
                    local=LocalConfig(steps=args.local_steps, batch=args.batch, lr=args.lr, optimizer=args.optimizer,
                                      momentum=args.momentum),
                    min_clients=args.min_clients, dp_noise=args.dp_noise, dp_clip=args.dp_clip,
                    dp_epsilon=args.dp_epsilon, dp_delta=args.dp_delta, codec=args.codec, **image_args,
                    **text_args)


def run_engine(cfg: Any, engine: str) -> dict[str, Any]:
    if engine == "inprocess":
        from semguard.federated.engine import run_inprocess

        return run_inprocess(cfg)
    if engine == "flower-local":
        from semguard.federated.flower_app import run_flower_local

        return run_flower_local(cfg)
    if engine == "simulation":
        from semguard.federated.flower_app import run_flower_simulation

        return run_flower_simulation(cfg)
    if engine == "deployment":
        from semguard.federated.deployment import run_deployment

        return run_deployment(cfg)
    raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")


def plot(rec: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r["round"] for r in rec["rounds"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    title = f"{rec['config']['strategy']} / {rec['config']['attack']}"
    if "psnr" in rec["final"]:
        axes[0].plot(rounds, [r["psnr"] for r in rec["rounds"]], "o-", label="PSNR (dB)")
        axes[0].set(xlabel="round", ylabel="PSNR (dB)", title=title)
    elif "bleu1" in rec["final"]:
        axes[0].plot(rounds, [r["bleu1"] for r in rec["rounds"]], "o-", label="BLEU-1")
        axes[0].plot(rounds, [r["token_accuracy"] for r in rec["rounds"]], "s--", label="token accuracy")
        axes[0].set(xlabel="round", ylim=(0, 1), title=title)
    else:
        axes[0].plot(rounds, [r["accuracy"] for r in rec["rounds"]], "o-", label="accuracy")
        axes[0].plot(rounds, [r["backdoor_success"] for r in rec["rounds"]], "s--", label="backdoor success")
        axes[0].set(xlabel="round", ylim=(0, 1), title=title)
    axes[0].legend()
    reps = [r.get("reputation") for r in rec["rounds"]]
    if all(reps):
        for cid in sorted({int(c) for r in reps for c in r}):
            mal = cid in rec["malicious_ids"]
            axes[1].plot(rounds, [r.get(cid, r.get(str(cid), float("nan"))) for r in reps],
                         color="tab:red" if mal else "tab:blue", alpha=0.8)
        axes[1].set(xlabel="round", ylabel="reputation", title="red: malicious, blue: honest")
    else:
        axes[1].axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _publish_inputs(args: argparse.Namespace) -> Any:
    """Check --publish / --key before any training; returns the key (or None without --publish)."""
    if args.publish is None:
        if args.key is not None:
            raise ValueError("--key is only used with --publish")
        return None
    if args.key is None:
        raise ValueError("--publish needs the publisher's key: --key PEM")
    if args.rounds < 3:
        raise ValueError(f"--publish needs --rounds >= 3 (the poisoning screen is fitted on the earlier rounds), "
                         f"got {args.rounds}")
    if args.engine != "inprocess":
        raise ValueError("--publish runs with --engine inprocess (it needs every round's global model)")
    check_in_file(args.publish, "--publish")
    import sqlite3

    from semguard.knowledge.keys import load_private_key
    from semguard.knowledge.records import KnowledgeError
    from semguard.knowledge.store import KnowledgeBase

    env = os.environ.get("SEMGUARD_KEY_PASSPHRASE")
    key = load_private_key(check_in_file(args.key, "--key"), env.encode() if env else None)
    try:  # a one-line error now, not after training
        KnowledgeBase(args.publish, readonly=True).close()
    except (KnowledgeError, sqlite3.Error) as e:
        raise ValueError(f"--publish {args.publish}: {e}") from e
    return key


def _publish(args: argparse.Namespace, key: Any, cfg: Any, rec: dict[str, Any]) -> None:
    from semguard.federated.engine import METRICS, Federation, evaluate
    from semguard.federated.model import get_vector
    from semguard.federated.publish import publish_run
    from semguard.knowledge.records import KnowledgeError

    fed = Federation(cfg)
    metric = METRICS[cfg.codec][0]  # accuracy, psnr or bleu1: what the gate scores on the held-out set
    scale, unit = (1.0, "dB") if metric == "psnr" else (100.0, "points")

    def accuracy(codec: torch.nn.Module) -> float:
        return scale * evaluate(fed, get_vector(codec))[metric]

    try:
        v = publish_run(args.publish, key, fed.codec, rec["vectors"], rec, accuracy, name=args.publish_name,
                        max_drop=args.max_drop, canary_label=metric, canary_unit=unit)
    except KnowledgeError as e:
        raise ValueError(f"--publish {args.publish}: {e}") from e
    print(f"published {args.publish_name} as version {v.version} of {args.publish}: root {v.root.hex()[:16]}…")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    cfg = config_from_args(args)
    key = _publish_inputs(args)
    if key is not None:
        from semguard.federated.engine import run_inprocess

        rec = run_inprocess(cfg, keep_vectors=True)
    else:
        rec = run_engine(cfg, args.engine)
    vec = rec.pop("final_vector", None)
    vectors = rec.pop("vectors", None)
    image, text = "psnr" in rec["final"], "bleu1" in rec["final"]
    head = f"{'psnr dB':>8}" if image else f"{'bleu1':>6} {'tok acc':>8}" if text else f"{'acc':>6} {'backdoor':>8}"
    print(f"{'round':>5} {head} {'replies':>7} {'eps':>6}  free riders / excluded")
    for r in rec["rounds"]:
        eps = f"{r['epsilon']:.2f}" if "epsilon" in r else "-"
        extra = f"{r.get('free_riders', '')} {r.get('excluded', '')}".strip()
        if r.get("skipped"):
            extra = "skipped (too few replies) " + extra
        score = (f"{r['psnr']:>8.2f}" if image else f"{r['bleu1']:>6.3f} {r['token_accuracy']:>8.3f}" if text
                 else f"{r['accuracy']:>6.3f} {r['backdoor_success']:>8.3f}")
        print(f"{r['round']:>5} {score} {r['replies']:>7} {eps:>6}  {extra}")
    print(f"malicious clients: {rec['malicious_ids']}; engine {rec['engine']}, {rec['seconds']:.1f} s")
    if rec.get("dp_noise"):
        print(f"DP-SGD noise multiplier {rec['dp_noise']:.3f}, clip {cfg.dp_clip}, delta {cfg.dp_delta}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rec, indent=1, default=str))
    print(f"wrote {args.out}")
    if args.plot is not None:
        plot(rec, args.plot)
        print(f"wrote {args.plot}")
    if key is not None:
        _publish(args, key, cfg, {**rec, "vectors": vectors, "final_vector": vec})
    return 0
