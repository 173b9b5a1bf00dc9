"""DeepSC federated on WordNet sentences: global BLEU-1 per round, clean and under poisoning, per rule.

    PYTHONPATH=src python bench/federated_text.py --out bench/results/federated_text.json

A small DeepSC (``--width`` d_model, ``--layers`` per side, the shipped tokenizer) trained in process
by ``--clients`` clients on WordNet training sentences split non-IID by semantic domain (the
lexicographer file; Dirichlet ``--alpha``); BLEU-1 and token accuracy on held-out test sentences at
10 dB AWGN.  Runs: clean FedAvg, honest-only FedAvg (the malicious clients' data simply absent), and
every (attack, strategy) pair at ``--malicious`` of the clients, plus each strategy clean.  Results
are written after each run; a rerun with the same --out skips the runs already there.

``--dp-epsilons``: the same runs again under client-side DP-SGD at each epsilon (delta ``--dp-delta``,
per-example clipping at ``--dp-clip``, per-example gradients by microbatches of one), with the local
optimiser ``--dp-optimizer`` at ``--dp-lr`` (plain SGD is the sound choice under DP noise):

    PYTHONPATH=src python bench/federated_text.py --strategies fedavg --attacks --dp-epsilons 8 4 1 \
        --out bench/results/federated_text_dp.json
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from semguard.federated.client import LocalConfig
from semguard.federated.engine import Federation, FLConfig, evaluate, run_inprocess
from semguard.federated.strategy import STRATEGIES


def one(cfg: FLConfig) -> dict:
    rec = run_inprocess(cfg)
    return {**{k: round(v, 4) for k, v in rec["final"].items()},
            "bleu1_by_round": [round(r["bleu1"], 4) for r in rec["rounds"]],
            "token_accuracy_by_round": [round(r["token_accuracy"], 4) for r in rec["rounds"]],
            "malicious_ids": rec["malicious_ids"], "excluded_last_round": rec["rounds"][-1].get("excluded"),
            "seconds": round(rec["seconds"], 1), "sha256": rec["final_sha256"],
            **({"noise_multiplier": round(rec["dp_noise"], 4),
                "epsilon_by_round": [round(r["epsilon"], 3) for r in rec["rounds"]]} if rec.get("dp_noise") else {})}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--malicious", type=int, default=3)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--local-steps", type=int, default=5)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--alpha", type=float, default=0.5)
    p.add_argument("--train-sentences", type=int, default=4000)
    p.add_argument("--test-size", type=int, default=300)
    p.add_argument("--attacks", nargs="*", default=["sign_flip"])
    p.add_argument("--strategies", nargs="+", default=["fedavg", "reputation"], choices=STRATEGIES)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dp-epsilons", type=float, nargs="*", default=[])
    p.add_argument("--dp-delta", type=float, default=1e-3)
    p.add_argument("--dp-clip", type=float, default=1.0)
    p.add_argument("--dp-optimizer", choices=("sgd", "adam"), default="sgd")
    p.add_argument("--dp-lr", type=float, default=0.5)
    p.add_argument("--dp-batch", type=int, default=32, help="local batch of the DP runs")
    p.add_argument("--dp-momentum", type=float, default=0.0)
    p.add_argument("--out", type=Path, default=Path("bench/results/federated_text.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")  # a line per round
    base = dict(codec="deepsc", clients=args.clients, rounds=args.rounds, alpha=args.alpha, width=args.width,
                layers=args.layers, train_sentences=args.train_sentences, test_size=args.test_size, seed=args.seed,
                local=LocalConfig(steps=args.local_steps, lr=args.lr))
    res = json.loads(args.out.read_text()) if args.out.exists() else {}
    fed = Federation(FLConfig(**base))
    res.setdefault("settings", {**{k: v for k, v in base.items() if k != "local"}, "local_steps": args.local_steps,
                                "batch": 32, "lr": args.lr, "malicious": args.malicious, "params": fed.dim,
                                "test_sentences": len(fed.test_sentences),
                                "data": "WordNet gloss examples (train split), split by lexicographer file; "
                                        "BLEU-1 on held-out test-split sentences; shipped tokenizer",
                                "eval": "BLEU-1 and token accuracy at 10 dB AWGN"})
    res.setdefault("initial", evaluate(fed, fed.initial))
    runs = res.setdefault("runs", {})
    t0 = time.monotonic()

    def run(key: str, cfg: FLConfig) -> None:
        if key in runs:
            return
        runs[key] = one(cfg)
        print(f"{time.monotonic() - t0:7.0f}s {key:40s} BLEU-1 by round {runs[key]['bleu1_by_round']}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=1))

    sfx = str(args.seed)
    for strat in args.strategies:
        run(f"clean|{strat}|{sfx}", FLConfig(**base, strategy=strat))
    ids = Federation(FLConfig(**base, malicious=args.malicious, attack="sign_flip")).malicious
    run(f"honest_only|fedavg|{args.malicious}|{sfx}", FLConfig(**base, crash=tuple(ids)))
    for attack in args.attacks:
        for strat in args.strategies:
            run(f"{strat}|{attack}|{args.malicious}|{sfx}",
                FLConfig(**base, malicious=args.malicious, attack=attack, strategy=strat))
    dp_tag = (f"clip{args.dp_clip:g}|{args.dp_optimizer}{args.dp_lr:g}" + (f"|m{args.dp_momentum:g}" if args.dp_momentum
                                                                            else "")
              + (f"|b{args.dp_batch}" if args.dp_batch != 32 else ""))
    if args.dp_epsilons:
        res.setdefault("dp_settings", {})[dp_tag] = {
            "delta": args.dp_delta, "clip": args.dp_clip, "optimizer": args.dp_optimizer, "lr": args.dp_lr,
            "batch": args.dp_batch, "momentum": args.dp_momentum,
            "per_example": "microbatches of one (federated.privacy.MicrobatchDPTrainer); Opacus DPOptimizer "
                           "clips, noises and steps; RDP accountant, worst client"}
    dp_local = LocalConfig(steps=args.local_steps, lr=args.dp_lr, optimizer=args.dp_optimizer, batch=args.dp_batch,
                           momentum=args.dp_momentum)
    if args.dp_epsilons:  # the DP runs' optimiser without DP: what the noise alone costs
        for strat in args.strategies:
            run(f"nodp|{dp_tag}|clean|{strat}|{sfx}", FLConfig(**{**base, "local": dp_local},
                                                                                       strategy=strat))
    for eps in args.dp_epsilons:
        dp = {**base, "local": dp_local, "dp_epsilon": eps, "dp_clip": args.dp_clip, "dp_delta": args.dp_delta}
        tag = f"dp{eps:g}|{dp_tag}"
        for strat in args.strategies:
            run(f"{tag}|clean|{strat}|{sfx}", FLConfig(**dp, strategy=strat))
        for attack in args.attacks:
            for strat in args.strategies:
                run(f"{tag}|{strat}|{attack}|{args.malicious}|{sfx}",
                    FLConfig(**dp, malicious=args.malicious, attack=attack, strategy=strat))


if __name__ == "__main__":
    main()
