"""``semguard attack``: one codec under one or more attacks over a budget grid.

Prints a table (fidelity per attack and budget), writes ``attack.json`` (every record with its
threat model and configuration) and ``attack.png`` (fidelity against budget); records are appended
to ``records.jsonl`` as they finish, so an interrupted run resumes where it stopped.

With ``--defense NAME`` every attack x budget is also run against the defended link twice: crafted on
the undefended link and sent through the defended one (non-adaptive), and as the attack that knows the
defence (adaptive: :func:`semguard.defenses.deploy.adaptive_attacks`); each record names its mode and
threat model.  A defence that does not apply to the codec or channel is refused with one line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from semguard.attacks.evaluate import robust_fidelity
from semguard.attacks.sources import attacker_photos, attacker_surrogate
from semguard.channels import AWGN, Rayleigh
from semguard.channels.base import Channel
from semguard.cli.common import (
    add_device_seed,
    finite_float,
    int_at_least,
    non_negative_float,
)
from semguard.link import Link
from semguard.registry import available, build

__all__ = ["add_parser", "load_codec", "make_channel", "run", "run_grid"]

log = logging.getLogger(__name__)
AIR_ATTACKS = ("gaussian", "pgd", "fgsm", "apgd", "universal", "transfer", "pilot", "pgd-transfer",
               "pgd-continuation", "pgd-ladder")
# grid names that are not registry names: white-box PGD whose random restart is joined by one more
# start from the transfer attack's perturbation (the best of both per sample: the white-box bound
# over both starts)
WARM_STARTED = {"pgd-transfer": "transfer"}
#: the most copies ``--keyed-repeat`` takes (semguard.defenses.keyed_spread.MAX_REPEAT; not imported,
#: so ``semguard attack --help`` stays fast)
KEYED_REPEAT_MAX = 16
INPUT_ATTACKS = ("gaussian", "pgd", "fgsm", "apgd", "square", "autoattack")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("attack", help="attack a codec over a budget grid (PSR in dB, or eps on the input)")
    p.add_argument("--codec", default="switched-cbr1_6", help="a zoo name (semguard list codec) (default: switched-cbr1_6)")
    p.add_argument("--attack", nargs="+", default=["gaussian", "pgd"],
                   help=f"attacks (air: {', '.join(AIR_ATTACKS)}; input: {', '.join(INPUT_ATTACKS)}) "
                        "(default: gaussian pgd)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--psr-db", type=finite_float, nargs="+", help="PSR budgets in dB (air surfaces; default -20 -10)")
    g.add_argument("--eps", type=non_negative_float, nargs="+", help="input budgets (images in [0, 1]; input surface)")
    p.add_argument("--norm", default="linf", choices=("linf", "l2"), help="input norm with --eps (default: linf)")
    p.add_argument("--surface", default=None, choices=("symbols", "channel"),
                   help="air surface of pgd/gaussian/universal/transfer (default: channel)")
    p.add_argument("--snr-db", type=finite_float, default=10.0, help="Bob's SNR in dB (default: 10)")
    p.add_argument("--channel", default="awgn", choices=("awgn", "rayleigh"),
                   help="awgn, or rayleigh with pilot-estimated CSI (default: awgn)")
    p.add_argument("--images", type=int_at_least(1), default=3, help="evaluation sources: first N (default: 3)")
    p.add_argument("--steps", type=int_at_least(1), default=20,
                   help="PGD / APGD / autoattack / pilot / transfer steps (default: 20)")
    p.add_argument("--queries", type=int_at_least(1), default=1000,
                   help="square and autoattack's Square queries (default: 1000)")
    p.add_argument("--targeted", action="store_true", help="task codecs: drive every decision to class 0")
    p.add_argument("--universal-steps", type=int_at_least(1), default=100, help="universal training steps (default: 100)")
    p.add_argument("--train-images", type=int_at_least(1), default=12, help="attacker's training photos (default: 12)")
    p.add_argument("--surrogate-steps", type=int_at_least(1), default=300, help="surrogate training steps (default: 300)")
    p.add_argument("--defense", default=None, metavar="NAME",
                   help="also attack the link behind this defence, non-adaptive and adaptive "
                        "(blur, blanking, interference-lmmse, keyed-spread, pilot-check)")
    p.add_argument("--keyed-repeat", type=int_at_least(1, KEYED_REPEAT_MAX), default=None, metavar="N",
                   help="with --defense keyed-spread: send the block N times inside one keyed spreading and "
                        "combine the copies (N times the channel uses; default: 1)")
    p.add_argument("--out", default="semguard-attack", help="output folder (default: semguard-attack)")
    p.add_argument("--fresh", action="store_true", help="ignore finished records in --out (default: resume)")
    add_device_seed(p)
    p.set_defaults(func=run)


def make_channel(name: str) -> Channel:
    if name == "awgn":
        return AWGN()
    if name == "rayleigh":
        return Rayleigh(csi="estimated")
    raise ValueError(f"--channel must be 'awgn' or 'rayleigh', got {name!r}")


def load_codec(name: str) -> torch.nn.Module:
    from semguard.codecs.zoo import ZOO, pretrained
    if name == "deepsc":
        return build("codec", "deepsc", pretrained=True)
    if name not in ZOO:
        raise ValueError(f"--codec {name!r} is not shipped; choose one of {', '.join(sorted(ZOO))}, deepsc")
    return pretrained(name)


def _data(codec: torch.nn.Module, n: int, side: int | None = None) -> tuple[Tensor, Tensor | None]:
    if hasattr(codec, "tokenize"):  # DeepSC: the first n shipped sentences of 10 tokens (one block size)
        from semguard.data.text import load_shipped
        pool = [s for s in load_shipped() if codec.tokenize([s]).shape[1] == 10][:n]
        return codec.tokenize(pool), None
    if codec.output_key == "x_hat":
        from semguard.data.photos import shipped_photos
        x = shipped_photos()[:n]
        if side is not None and side != x.shape[-1]:  # centre crops: a cheaper grid on the same photos
            from semguard.data.images import center_crop
            x = torch.stack([center_crop(i, side) for i in x])
        return x, None
    from semguard.data.shipped import shipped_fashion_mnist
    x, y = shipped_fashion_mnist(n)
    return x, y


def _references(codec: torch.nn.Module, n: int, side: int | None = None) -> Tensor:
    """Sources a defence is fitted on, disjoint from the first ``n`` evaluated ones."""
    if hasattr(codec, "tokenize"):
        from semguard.data.text import load_shipped
        pool = [s for s in load_shipped() if codec.tokenize([s]).shape[1] == 10][n:n + 256]
        if len(pool) < 2:
            raise ValueError(f"--images {n} leaves fewer than 2 shipped sentences to fit the defence on")
        return codec.tokenize(pool)
    if codec.output_key == "x_hat":
        from semguard.data.photos import shipped_photos
        x = shipped_photos()
        if n >= x.shape[0] - 1:
            raise ValueError(f"--images {n} leaves fewer than 2 of the {x.shape[0]} shipped photos to fit "
                             f"the defence on; give --images {x.shape[0] - 2} or fewer")
        x = x[n:]
        if side is not None and side != x.shape[-1]:
            from semguard.data.images import center_crop
            x = torch.stack([center_crop(i, side) for i in x])
        return torch.cat([x, x.flip(-1), x.flip(-2), x.transpose(-1, -2)])
    from semguard.data.shipped import shipped_fashion_mnist
    return shipped_fashion_mnist(n + 512)[0][n:]


def _metric(codec: torch.nn.Module):
    if hasattr(codec, "tokenize"):
        from semguard.metrics.text import bleu

        def bleu1(logits: Tensor, tokens: Tensor) -> Tensor:
            lengths = codec.lengths(tokens)
            hyp = codec.tokenizer.decode(logits.argmax(-1), lengths)
            return bleu(hyp, codec.tokenizer.decode(tokens, lengths), 1)
        return bleu1, "bleu1"
    if codec.output_key == "x_hat":
        from semguard.metrics.image import psnr
        return psnr, "psnr"
    return (lambda logits, y: (logits.argmax(1) == y).float()), "accuracy"


def run_grid(cfg: dict[str, Any], out: Path, *, progress: bool = True,
             finished_only: bool = False) -> list[dict[str, Any]]:
    """Every attack x budget of ``cfg`` (the parsed options as a dict); resumes from ``records.jsonl``.
    ``finished_only``: return the finished records of the grid and run nothing."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "records.jsonl"
    done: dict[tuple, dict[str, Any]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done[(r["codec"], r["channel"], r["snr_db"], r["attack"], r["budget"], r.get("defense"),
                  r.get("mode", "undefended"), r.get("adaptive_attack"))] = r
    codec = load_codec(cfg["codec"])
    link = Link(codec, make_channel(cfg["channel"]))
    x, y = _data(codec, cfg["images"], cfg.get("side"))
    dep = None
    if cfg.get("defense"):
        from semguard.defenses.deploy import deploy
        dep = deploy(cfg["defense"], link, _references(codec, cfg["images"], cfg.get("side")), cfg["snr_db"],
                     label=cfg["codec"], seed=cfg["seed"], keyed_repeat=cfg.get("keyed_repeat") or 1)
    # a defended record resumes only under the same deployment (e.g. the same number of keyed copies)
    dep_config = json.loads(json.dumps(dep.config)) if dep is not None else None
    metric, metric_name = _metric(codec)
    budgets = cfg["eps"] if cfg.get("eps") else (cfg.get("psr_db") or [-20.0, -10.0])
    for b in budgets:
        if not math.isfinite(b):
            raise ValueError(f"--{'eps' if cfg.get('eps') else 'psr-db'}: budgets must be finite, got {b}")
    targets = torch.zeros_like(y) if (cfg.get("targeted") and y is not None) else None
    if cfg.get("targeted") and y is None:
        raise ValueError("--targeted: only task codecs have a target class here")
    shared: dict[str, Any] = {}
    records = []
    cells = [(a, float(b)) for a in cfg["attack"] for b in budgets]
    for i, (name, b) in enumerate(cells):
        base = None
        for mode in ("undefended",) if dep is None else ("undefended", "non-adaptive", "adaptive"):
            on, dname = (link, None) if mode == "undefended" else (dep.deployed, dep.name)
            prefix = (cfg["codec"], cfg["channel"], cfg["snr_db"], name, b, dname, mode)
            finished = [r for k, r in done.items()
                        if k[:-1] == prefix and (dname is None or r.get("defense_config") == dep_config)]
            if finished:
                records += finished
                continue
            if finished_only:
                continue
            t0 = time.perf_counter()
            base = base or _build(name, b, cfg, link, x, y, shared)
            variants = _variants(dep, base, mode)
            if not variants and progress:
                print(f"[{i + 1}/{len(cells)}] {name} budget {b:g}: no {mode} run of a {base.surface} attack "
                      f"through {dname} (input and channel surfaces only)", flush=True)
            for lab, atk in variants:
                rec = robust_fidelity(on, x, atk, cfg["snr_db"], metric=metric, labels=y, targets=targets,
                                      seed=cfg["seed"])
                rec.update({"codec": cfg["codec"], "channel": cfg["channel"], "snr_db": cfg["snr_db"],
                            "attack": name, "budget": b, "metric": metric_name, "n": int(x.shape[0]),
                            "defense": dname, "mode": mode, "adaptive_attack": lab,
                            "defense_config": dep.config if dname else None,
                            "fit_seconds": getattr(atk, "fit_seconds", None),
                            "fit_budget": getattr(atk, "fit_budget", None),
                            "components": getattr(atk, "components", None) or None,
                            "wall_seconds": time.perf_counter() - t0})
                if targets is not None:
                    r = atk(on, x, cfg["snr_db"], labels=y, target=targets, generator=torch.Generator().manual_seed(0))
                    rec["target_success"] = (r.output.argmax(1) == targets).float().mean().item()
                with path.open("a") as f:
                    f.write(json.dumps(rec) + "\n")
                records.append(rec)
                if progress:
                    print(f"[{i + 1}/{len(cells)}] {_row(rec)} budget {b:g}: {metric_name} {rec['clean']:.3f} -> "
                          f"{rec['attacked']:.3f} ({rec['wall_seconds']:.1f} s)", flush=True)
                t0 = time.perf_counter()
    return records


def _variants(dep: Any, base: Any, mode: str) -> list[tuple[str | None, Any]]:
    """``(adaptive label, attack)`` of one mode: the attack itself undefended, crafted on the undefended
    link and replayed (non-adaptive), or the attacks that know the defence (adaptive)."""
    if mode == "undefended":
        return [(None, base)]
    from semguard.defenses.deploy import adaptive_attacks, non_adaptive
    if mode == "non-adaptive":
        return [("crafted-undefended", non_adaptive(dep, base))] if base.surface in ("input", "channel") else []
    return adaptive_attacks(dep, base)


def _row(r: dict[str, Any]) -> str:
    if r.get("mode", "undefended") == "undefended":
        return r["attack"]
    return f"{r['attack']}/{r['defense']}:{r['adaptive_attack']}"


def _build(name: str, b: float, cfg: dict[str, Any], link: Link, x: Tensor, y: Tensor | None,
           shared: dict[str, Any], warm_start: Any = None):
    if name in WARM_STARTED:
        return _build("pgd", b, cfg, link, x, y, shared,
                      warm_start=_build(WARM_STARTED[name], b, cfg, link, x, y, shared))
    if name not in available("attack"):
        raise ValueError(f"--attack {name!r}: choose from {', '.join(available('attack'))}")
    eps = cfg.get("eps")
    seed, steps = cfg["seed"], cfg["steps"]
    common: dict[str, Any] = {"seed": seed, "targeted": bool(cfg.get("targeted"))}
    if eps:
        if name not in INPUT_ATTACKS:
            raise ValueError(f"--attack {name}: with --eps only {', '.join(INPUT_ATTACKS)} attack the input")
        common.update(surface="input", eps=b, norm=cfg.get("norm", "linf"))
    else:
        if name not in AIR_ATTACKS:
            raise ValueError(f"--attack {name}: it attacks the input only; give --eps instead of --psr-db")
        if name == "apgd" and cfg.get("surface") != "symbols":
            raise ValueError("--attack apgd: on the air it attacks the symbols; add --surface symbols")
        common["psr_db"] = b
        if name != "pilot":
            common["surface"] = cfg.get("surface") or "channel"
    if name == "pilot":
        return build("attack", name, steps=cfg.get("pilot_steps") or steps, **common)
    if name == "pgd":
        return build("attack", name, steps=steps, warm_start=warm_start, **common)
    if name == "pgd-continuation":
        # white-box PGD also started from its own solution one rung (5 dB) lower, down to -25 dB (the
        # grid's smallest PSR), whatever budgets this run lists; the rungs are cached across the budgets
        return build("attack", name, steps=steps, from_db=cfg.get("continuation_from_db", -25.0),
                     step_db=cfg.get("continuation_step_db", 5.0), cache=shared.setdefault("continuation", {}),
                     **common)
    if name == "pgd-ladder":
        # white-box PGD from the random, transfer, continuation (from -25 dB) and own lower-rung starts,
        # its ladder from -40 dB (cfg "ladder_from_db"); rungs and transfer starts cached across budgets
        return build("attack", name, steps=steps, from_db=cfg.get("ladder_from_db", -40.0),
                     step_db=cfg.get("continuation_step_db", 5.0),
                     continuation_from_db=cfg.get("continuation_from_db", -25.0),
                     surrogate=_surrogate(cfg, link, x, shared), cache=shared.setdefault("ladder", {}), **common)
    if name == "apgd":
        return build("attack", name, steps=steps, **common)
    if name == "square":
        return build("attack", name, queries=cfg.get("queries", 1000), **common)
    if name == "autoattack":
        if common.pop("targeted"):
            raise ValueError("--attack autoattack: the ensemble is untargeted; drop --targeted")
        return build("attack", name, steps=steps, queries=cfg.get("queries", 1000), **common)
    if name == "fgsm":
        return build("attack", name, **common)
    if name == "gaussian":
        return build("attack", name, **common)
    if name == "universal":
        # learned on the attacker's photos (never the evaluated ones) at this very budget (the block is
        # scaled onto the PSR sphere at the receiver, so its best shape depends on the budget); with
        # cfg["universal_per_budget"] False, learned once at the first budget and replayed at every one
        per_budget = cfg.get("universal_per_budget", True)
        key = f"universal@{b:g}" if per_budget else "universal"
        if key not in shared:
            if x.dim() != 4:
                raise ValueError("--attack universal: from this command only for image codecs (see bench/attacks_text.py)")
            photos = attacker_photos(cfg["train_images"], side=x.shape[-1], seed=seed)
            u = build("attack", "universal", steps=cfg["universal_steps"], batch=cfg.get("universal_batch", 2),
                      **common)
            shared[key] = (u.fit(link, photos, cfg["snr_db"]), b)
        u, fit_b = shared[key]
        v = build("attack", "universal", delta=u.delta, steps=u.steps, batch=u.batch, **common)
        v.fit_seconds = u.fit_seconds
        v.fit_budget = fit_b
        return v
    if name == "transfer":
        return build("attack", "transfer", surrogate=_surrogate(cfg, link, x, shared), steps=steps, **common)
    raise ValueError(f"--attack {name}: not runnable from this command")


def _surrogate(cfg: dict[str, Any], link: Link, x: Tensor, shared: dict[str, Any]) -> Any:
    """The attacker's own surrogate codec, trained once per grid on its own photos (never the evaluated ones)."""
    if "surrogate" not in shared:
        photos = attacker_photos(cfg["train_images"], side=x.shape[-1], seed=cfg["seed"])
        shared["surrogate"] = attacker_surrogate(link.codec, photos, steps=cfg["surrogate_steps"], seed=cfg["seed"] + 1)
    return shared["surrogate"]


def format_records(records: list[dict[str, Any]]) -> str:
    budgets = sorted({r["budget"] for r in records})
    attacks = list(dict.fromkeys(_row(r) for r in records))
    unit = records[0]["threat_model"]["unit"] if records else "budget"
    w = max([12] + [len(a) + 1 for a in attacks])
    lines = [f"{records[0]['metric'] if records else ''} ({unit} across)".strip(),
             f"{'attack':<{w}}" + "".join(f"{b:>9g}" for b in budgets)]
    clean = records[0]["clean"] if records else float("nan")
    lines.append(f"{'clean':<{w}}" + "".join(f"{clean:9.3f}" for _ in budgets))
    defended = [r for r in records if r.get("mode", "undefended") != "undefended"]
    if defended:
        lines.append(f"{'clean/' + defended[0]['defense']:<{w}}" + "".join(f"{defended[0]['clean']:9.3f}" for _ in budgets))
    for a in attacks:
        row = {r["budget"]: r["attacked"] for r in records if _row(r) == a}
        lines.append(f"{a:<{w}}" + "".join(f"{row[b]:9.3f}" if b in row else f"{'-':>9}" for b in budgets))
    return "\n".join(lines)


def plot_records(records: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for a in dict.fromkeys(_row(r) for r in records):
        pts = sorted((r["budget"], r["attacked"]) for r in records if _row(r) == a)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=a)
    if records:
        ax.axhline(records[0]["clean"], color="k", ls=":", label="clean")
        ax.set_xlabel(records[0]["threat_model"]["unit"])
        ax.set_ylabel(records[0]["metric"])
        ax.set_title(f"{records[0]['codec']}, {records[0]['channel']}, SNR {records[0]['snr_db']:g} dB")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.images < 1 or args.steps < 1:
        raise ValueError("--images and --steps must be >= 1")
    if args.eps and any(e < 0 for e in args.eps):
        raise ValueError(f"--eps must be >= 0 (inputs in [0, 1]), got {args.eps}")
    if getattr(args, "keyed_repeat", None) is not None and args.defense != "keyed-spread":
        raise ValueError(f"--keyed-repeat: copies of the keyed block go with --defense keyed-spread, "
                         f"not {'no --defense' if args.defense is None else '--defense ' + args.defense}")
    out = Path(args.out)
    if args.fresh:
        (out / "records.jsonl").unlink(missing_ok=True)
    cfg = {k: v for k, v in vars(args).items() if k not in ("func",)}
    print(f"semguard attack: {args.codec} over {args.channel} at {args.snr_db:g} dB -> {out}/", flush=True)
    records = run_grid(cfg, out)
    print(format_records(records))
    (out / "attack.json").write_text(json.dumps({"name": "attack", "config": {k: v for k, v in cfg.items()
                                                                              if k != "command"},
                                                 "records": records}, indent=1))
    plot_records(records, out / "attack.png")
    print(f"wrote {out / 'attack.json'} and {out / 'attack.png'}")
    return 0
