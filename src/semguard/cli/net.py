"""``semguard net``: networked semantic inference, emergency priority and edge offloading.

    semguard net [fusion] --agents 10 --byzantine 3 --attack crafted --fusion median trust
    semguard net fusion --agents 10 --byzantine 2 --gossip complete --rounds 30
    semguard net --byzantine 3 --attack adaptive --fusion trust-median --protocol commit-reveal [--late]
    semguard net emergency --snr-db -8 -4 0 4 8 [--jam-psr-db -10]
    semguard net emergency --lexicon train --oov-modes deepsc --ldpc-boost-db 1
    semguard net offload --devices 20 --edges 3 --untrusted 1 --audit 0.05

Each mode prints a table, writes JSON to ``--out`` and draws its figure next to it.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from semguard.cli.common import finite_float, int_at_least, non_negative_float

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)

MODES = ("fusion", "emergency", "offload")


def add_parser(subparsers: Any) -> None:
    """Add the ``net`` subcommand."""
    from semguard.network.byzantine import ATTACKS, MAX_PSR_DB
    from semguard.network.multiagent import PROTOCOLS
    from semguard.network.graph import GRAPHS
    from semguard.registry import available

    p = subparsers.add_parser("net", help="multi-agent fusion with Byzantine agents, emergency priority, offloading",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", nargs="?", default="fusion", choices=MODES, help="experiment (default: fusion)")
    g = p.add_argument_group("fusion")
    g.add_argument("--agents", type=int_at_least(2), default=10, help="agents N")
    g.add_argument("--byzantine", type=int_at_least(0), default=0, help="Byzantine agents f")
    g.add_argument("--attack", default="crafted", choices=ATTACKS, help="what the Byzantine agents send")
    g.add_argument("--psr-db", type=finite_float, default=MAX_PSR_DB, help="attack budget ||x_adv - x||^2 / ||x||^2 in dB")
    g.add_argument("--fusion", nargs="+", default=["mean", "median", "trust"], choices=available("fusion"),
                   help="fusion rule(s)")
    g.add_argument("--domain", default="logprob", choices=("logprob", "symbols"), help="what is fused")
    g.add_argument("--protocol", default="plain", choices=PROTOCOLS,
                   help="commit-reveal: every agent commits to its block (SHA-256) before any reveals; the attack "
                        "is then played against the attackers' prediction of the round (default: plain)")
    g.add_argument("--late", action="store_true",
                   help="commit-reveal: the attackers commit to the prediction, then reply to the seen round "
                        "(rushing; the opening fails)")
    g.add_argument("--objects", type=int_at_least(1), default=200, help="objects (rounds x batch of 25)")
    g.add_argument("--steps", type=int_at_least(1), default=20, help="attack PGD steps")
    g.add_argument("--gossip", choices=GRAPHS, help="decentralised mode on this graph instead of a fusion node")
    g.add_argument("--radius", type=finite_float, default=0.6, help="geometric graph radius")
    g.add_argument("--rounds", type=int_at_least(1), default=30, help="gossip rounds")
    e = p.add_argument_group("emergency")
    e.add_argument("--snr-db", type=finite_float, nargs="+", default=[-8, -6, -4, -2, 0, 2, 4, 6, 8, 10])
    e.add_argument("--roi-weight", type=finite_float, default=16.0, help="importance of the region of interest")
    e.add_argument("--saliency", action="store_true", help="weights from local contrast instead of a region")
    e.add_argument("--jam-psr-db", type=finite_float, default=None, help="partial-band jammer power (dB re the signal)")
    e.add_argument("--jam-targeted", action="store_true",
                   help="the jammer knows the allocation: images, the strongest symbols; text, the critical slots")
    e.add_argument("--threshold-db", type=finite_float, default=25.0, help="region PSNR that counts as delivered")
    e.add_argument("--sentences", type=int_at_least(0), default=200, help="DeepSC sentences (0: images only)")
    e.add_argument("--boost-db", type=non_negative_float, default=1.0,
                   help="text 'power': extra power on critical tokens (same energy), dB")
    e.add_argument("--repeat", type=int_at_least(2), default=2, help="text 'repeat': copies of critical tokens")
    e.add_argument("--codebook-boost-db", type=non_negative_float, nargs="+", default=[0.0, 1.0],
                   help="text 'codebook': power of the critical words' codewords over the rest (same energy), dB")
    e.add_argument("--index-bits", type=int_at_least(1, 20), default=None,
                   help="text 'codebook': bits per lexicon index (default: the fewest that hold the lexicon)")
    e.add_argument("--lexicon", choices=("oracle", "train"), default="oracle",
                   help="text 'codebook'/'ldpc': the evaluated sentences' own critical words (oracle), or a lexicon "
                        "built without them from the WordNet training split, digits 0-999 and number words (train)")
    e.add_argument("--oov-modes", nargs="+", choices=("spell", "deepsc"), default=["spell"],
                   help="text: how critical words outside the lexicon go (spelled, or by DeepSC)")
    e.add_argument("--spell-uses", type=int_at_least(3), default=6, help="text 'codebook': channel uses per spelled character")
    e.add_argument("--ldpc-boost-db", type=non_negative_float, nargs="*", default=[],
                   help="text 'ldpc': every critical bit of a sentence in one 5G LDPC + QPSK codeword at this "
                        "power over the rest (same energy), dB; none by default")
    e.add_argument("--ldpc-max-rate", type=finite_float, default=0.5,
                   help="text 'ldpc': highest code rate before extra channel uses are added")
    e.add_argument("--budgets", type=finite_float, nargs="+", default=[1.0, 0.5, 0.3, 0.15, 0.05],
                   help="channel-use budgets (fractions of the queue's full size) for message scheduling")
    e.add_argument("--critical", type=int_at_least(0), default=2, help="the last N shipped photos are critical messages")
    e.add_argument("--schedule-snr-db", type=finite_float, default=5.0, help="SNR of the scheduling runs")
    o = p.add_argument_group("offload")
    o.add_argument("--devices", type=int_at_least(1), default=20)
    o.add_argument("--edges", type=int_at_least(1), default=3)
    o.add_argument("--untrusted", type=int_at_least(0), default=0, help="edge nodes that tamper with features")
    o.add_argument("--audit", type=finite_float, default=0.0, help="fraction of each batch re-encoded locally")
    o.add_argument("--scenarios", type=int_at_least(1), default=20)
    o.add_argument("--episodes", type=int_at_least(1), default=1500, help="policy-gradient training episodes")
    o.add_argument("--fidelity", choices=("measured", "table"), default="measured",
                   help="accuracy per delivery by running the codec over the chosen path, or read off the SNR table")
    o.add_argument("--per-device", type=int_at_least(1), default=8, help="images each device sends per round (measured)")
    p.add_argument("--seed", type=int_at_least(0), default=0)
    p.add_argument("--threads", type=int_at_least(1), default=1)
    p.add_argument("--out", type=Path, default=Path("net.json"), help="JSON results (figures beside it)")
    p.set_defaults(func=run)


def _table(rows: list[dict], cols: list[str]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)
    w = [max(len(c), *(len(cell(r.get(c))) for r in rows)) for c in cols]
    lines = ["  ".join(c.ljust(n) for c, n in zip(cols, w)), "  ".join("-" * n for n in w)]
    lines += ["  ".join(cell(r.get(c)).ljust(n) for c, n in zip(cols, w)) for r in rows]
    return "\n".join(lines)


def _fusion(args: argparse.Namespace) -> dict:
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.network.byzantine import ByzantineThreat
    from semguard.network.multiagent import MultiAgentConfig, run_multiagent
    from semguard.network.plots import line_plot

    if args.objects < 25 or args.objects > 2000:
        raise ValueError(f"--objects must be between 25 and 2000 (shipped images), got {args.objects}")
    x, y = shipped_fashion_mnist(args.objects)
    if args.gossip:
        return _gossip(args, x, y)
    from semguard.network.byzantine import SEES_ROUND, TIMED

    sealed = args.protocol == "commit-reveal"
    if args.late and not sealed:
        raise ValueError("--late needs --protocol commit-reveal (on the plain protocol every attacker already "
                         "sees the round)")
    attack, base = args.attack, "crafted"
    if sealed and attack in SEES_ROUND:   # commit-reveal hides the round: the same attack, timed
        attack, base = ("rushing" if args.late else "predictive"), args.attack
    elif args.late and attack not in TIMED:
        raise ValueError(f"--late: attack {attack!r} does not reply to the honest messages")
    elif args.late:
        attack = "rushing"
    threat = ByzantineThreat(attack, psr_db=args.psr_db, steps=args.steps, base=base)
    rows, runs = [], {}
    for rule in args.fusion:
        cfg = MultiAgentConfig(agents=args.agents, byzantine=args.byzantine, fusion=rule, threat=threat,
                               rounds=args.objects // 25, batch=25, seed=args.seed, domain=args.domain,
                               protocol=args.protocol)
        res = run_multiagent(cfg, x, y)
        runs[rule] = res
        last = res["rounds"][-1]
        row = {"fusion": rule, "accuracy": res["accuracy"], "honest_only_mean": res["oracle_accuracy"],
               "single_agent": res["single_agent_accuracy"], "recall_last": last["recall"],
               "precision_last": last["precision"]}
        if sealed:
            row |= {"failed_openings": sum(len(r["failed_openings"]) for r in res["rounds"]),
                    "air_rejected": sum(len(r["air_rejected"]) for r in res["rounds"]),
                    "dropped_honest": sum(r["dropped_honest"] for r in res["rounds"])}
        rows.append(row)
    shown = attack if attack not in TIMED else f"{attack} (base {base})"
    print(f"N={args.agents} f={args.byzantine} attack={shown} psr={args.psr_db:.2f} dB domain={args.domain} "
          f"protocol={args.protocol}")
    cols = ["fusion", "accuracy", "honest_only_mean", "single_agent", "recall_last", "precision_last"]
    print(_table(rows, cols + (["failed_openings", "air_rejected", "dropped_honest"] if sealed else [])))
    if sealed:
        c = next(iter(runs.values()))["cost"]
        print(f"commit-reveal cost per round: {c['up_bytes']} bytes up ({c['message_bytes']} per opened block), "
              f"{c['broadcast_bytes']}-byte broadcast, {c['extra_round_trips']} extra round trip")
    line_plot({rule: ([r["round"] for r in res["rounds"]], [r["accuracy"] for r in res["rounds"]])
               for rule, res in runs.items()}, args.out.with_suffix(".png"), xlabel="round", ylabel="accuracy",
              title=f"N={args.agents}, f={args.byzantine}, {shown}, {args.protocol}")
    return {"mode": "fusion", "protocol": args.protocol, "rows": rows, "runs": runs}


def _gossip(args: argparse.Namespace, x: torch.Tensor, y: torch.Tensor) -> dict:
    from semguard.codecs.zoo import pretrained
    from semguard.network import graph
    from semguard.network.plots import line_plot
    from semguard.network.propagation import initial_beliefs, propagation

    adj = graph.check_graph(graph.make_graph(args.gossip, args.agents, radius=args.radius, seed=args.seed),
                            name=f"--gossip {args.gossip}")
    if 2 * args.byzantine >= args.agents:
        raise ValueError(f"--byzantine must be < agents/2 for W-MSR, got f={args.byzantine} of N={args.agents}")
    r = graph.robustness(adj) if args.agents <= graph.MAX_EXACT_NODES else None
    beliefs = initial_beliefs(pretrained("task-fmnist").eval(), x, args.agents, seed=args.seed)
    g = torch.Generator().manual_seed(args.seed)
    bad = torch.zeros(args.agents, dtype=torch.bool)
    bad[torch.randperm(args.agents, generator=g)[:args.byzantine]] = True
    rows, series = [], {}
    for rule in ("average", "wmsr"):
        for mode in ("extreme", "in-range"):
            res = propagation(beliefs, adj, bad, args.rounds, rule=rule, f=args.byzantine, mode=mode, labels=y)
            rows.append({"rule": rule, "byzantine_belief": mode, "flipped_final": res["flipped"][-1],
                         "accuracy_final": res["accuracy"][-1], "left_honest_range": res["left_honest_range"]})
            series[f"{rule} {mode}"] = (list(range(args.rounds + 1)), res["flipped"])
    print(f"gossip on {args.gossip} (N={args.agents}, robustness r={r}; W-MSR guarantee needs r >= 2f+1 = "
          f"{2 * args.byzantine + 1}), f={args.byzantine}, {args.rounds} rounds")
    print(_table(rows, ["rule", "byzantine_belief", "flipped_final", "accuracy_final", "left_honest_range"]))
    line_plot(series, args.out.with_suffix(".png"), xlabel="gossip round", ylabel="honest agents flipped",
              title=f"{args.gossip}, N={args.agents}, f={args.byzantine}")
    return {"mode": "gossip", "graph": args.gossip, "robustness": r, "rows": rows}


def _emergency(args: argparse.Namespace) -> dict:
    from semguard.data.photos import shipped_photos
    from semguard.network.emergency import gain_at, image_sweep
    from semguard.network.plots import line_plot

    snrs = sorted(args.snr_db)
    if not 0 < args.ldpc_max_rate < 1:
        raise ValueError(f"--ldpc-max-rate must be in (0, 1), got {args.ldpc_max_rate}")
    lexicon, bits = None, args.index_bits
    if args.sentences and args.lexicon == "train":      # before the image runs: a bad --index-bits fails at once
        from semguard.data.text import load_shipped, load_wordnet_examples, split_sentences
        from semguard.network.lexicon import build_lexicon
        try:
            lexicon, bits = build_lexicon(split_sentences(load_wordnet_examples()).train, exclude=load_shipped(),
                                          index_bits=args.index_bits)
        except ValueError as err:
            raise ValueError(f"--lexicon train --index-bits {args.index_bits}: {err}") from err
    rows = image_sweep(shipped_photos(), snrs, weight=args.roi_weight, saliency=args.saliency,
                       jam_psr_db=args.jam_psr_db, jam_targeted=args.jam_targeted, seed=args.seed)
    gain = gain_at(rows, "roi_psnr", args.threshold_db)
    print("image: region PSNR (dB) and background PSNR, uniform vs priority")
    print(_table(rows, ["snr_db", "scheme", "roi_psnr", "background_psnr"]))
    print(f"SNR to reach {args.threshold_db} dB region PSNR: priority {gain['priority']}, uniform {gain['uniform']}, "
          f"gain {gain['gain_db']} dB")
    line_plot({s: (snrs, [r["roi_psnr"] for r in rows if r["scheme"] == s]) for s in ("uniform", "priority")},
              args.out.with_suffix(".png"), xlabel="SNR (dB)", ylabel="region PSNR (dB)",
              title="critical region fidelity", hline=args.threshold_db)
    doc = {"mode": "emergency", "image": rows, "image_gain": gain}
    if args.budgets:
        from semguard.codecs.zoo import pretrained
        from semguard.network.schedule import budget_sweep
        from semguard.registry import build
        photos = shipped_photos()
        if not 0 < args.critical <= photos.shape[0]:
            raise ValueError(f"--critical must be in 1..{photos.shape[0]}, got {args.critical}")
        crit = [i >= photos.shape[0] - args.critical for i in range(photos.shape[0])]
        srows = budget_sweep(pretrained("softcast-cbr1_6"), photos, crit, args.budgets, build("channel", "awgn"),
                             args.schedule_snr_db, seed=args.seed)
        print(f"scheduling {photos.shape[0]} photos ({args.critical} critical, last in the queue) at "
              f"{args.schedule_snr_db} dB: mean PSNR by channel-use budget")
        print(_table(srows, ["budget_fraction", "policy", "critical_psnr", "routine_psnr"]))
        doc["schedule"] = srows
    if args.sentences:
        from semguard.data.text import load_shipped
        from semguard.network.emergency_text import codebook_scheme, gain_ci, ldpc_scheme, text_sweep
        s = load_shipped()
        trows = text_sweep(s[:args.sentences], snrs, reference=s, jam_psr_db=args.jam_psr_db, seed=args.seed,
                           jam_targeted=args.jam_targeted, boost_db=args.boost_db, repeat=args.repeat,
                           codebook_boosts=args.codebook_boost_db, index_bits=bits, lexicon=lexicon,
                           oov_modes=args.oov_modes, spell_uses=args.spell_uses, ldpc_boosts=args.ldpc_boost_db,
                           ldpc_max_rate=args.ldpc_max_rate)
        doc["lexicon"] = {"kind": args.lexicon, "index_bits": trows[0]["index_bits"], "words": len(lexicon) if lexicon else None,
                          "oov_words": trows[0]["oov_words"], "critical_words": trows[0]["critical_words"]}
        print(f"text: exact recall of critical words (lexicon {args.lexicon}, index {trows[0]['index_bits']} bits, "
              f"{trows[0]['oov_words']} of {trows[0]['critical_words']} critical words out of it)")
        print(_table(trows, ["snr_db", "scheme", "critical_recall", "other_word_accuracy", "bleu1", "bleu4",
                             "channel_uses"]))
        schemes = ["power", "repeat", "repeat-energy"] + [codebook_scheme(b, o) for o in args.oov_modes
                                                          for b in args.codebook_boost_db]
        schemes += [ldpc_scheme(b, o) for o in args.oov_modes for b in args.ldpc_boost_db]
        doc["text_gain"] = {sch: gain_ci(trows, 0.9, sch, seed=args.seed) for sch in schemes}
        doc["text"] = [{k: v for k, v in r.items() if k not in ("hits", "words")} for r in trows]
        uses = {r["scheme"]: r["channel_uses"] for r in trows}
        energy = {r["scheme"]: r["energy_ratio"] for r in trows}
        for sch, gn in doc["text_gain"].items():     # measured energy against uniform's S L per sentence
            gn["extra_energy_db"] = 10 * math.log10(energy[sch])
            gn["gain_at_equal_energy_db"] = None if gn["gain_db"] is None else gn["gain_db"] - gn["extra_energy_db"]
            gn["extra_channel_uses"] = uses[sch] / uses["uniform"] - 1
        print("text gain at critical recall 0.9 (dB, 95% bootstrap interval over sentences):")
        print(_table([{"scheme": k, "snr_db": gn[k], "uniform_snr_db": gn["uniform"], "gain_db": gn["gain_db"],
                       "ci95_low": gn["ci95_db"][0], "ci95_high": gn["ci95_db"][1],
                       "extra_uses": gn["extra_channel_uses"], "extra_energy_db": gn["extra_energy_db"]}
                      for k, gn in doc["text_gain"].items()],
                     ["scheme", "snr_db", "uniform_snr_db", "gain_db", "ci95_low", "ci95_high", "extra_uses",
                      "extra_energy_db"]))
        line_plot({sch: (snrs, [r["critical_recall"] for r in trows if r["scheme"] == sch])
                   for sch in ["uniform", *schemes]}, args.out.with_name(args.out.stem + "-text.png"),
                  xlabel="SNR (dB)", ylabel="critical word recall", title="DeepSC critical words", hline=0.9)
    return doc


def _offload(args: argparse.Namespace) -> dict:
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.network.offload_sim import compare_mechanisms, measure_fidelity

    x, y = shipped_fashion_mnist(500)
    fid = measure_fidelity(x, y, seed=args.seed)
    delivery = None
    if args.fidelity == "measured":
        from semguard.network.offload_measured import MeasuredDelivery
        delivery = MeasuredDelivery(x, y, per_device=args.per_device, seed=args.seed)
    res = compare_mechanisms(fid, scenarios=args.scenarios, devices=args.devices, edges=args.edges,
                             untrusted=args.untrusted, audit=args.audit, episodes=args.episodes, seed=args.seed,
                             delivery=delivery)
    print(f"{args.devices} devices, {args.edges} edge nodes ({args.untrusted} untrusted), audit {args.audit}, "
          f"fidelity {res['settings']['fidelity']}")
    print(_table(res["rows"], ["mechanism", "latency_s", "energy_j", "accuracy", "tampered_share", "untrusted_caught",
                               "honest_nodes_dropped"]))
    from semguard.network.plots import bar_plot
    bar_plot({m: {r["mechanism"]: r[m] for r in res["rows"]} for m in ("latency_s", "energy_j", "accuracy")},
             args.out.with_suffix(".png"), title=f"{args.devices} devices, {args.edges} nodes, {args.untrusted} untrusted")
    return {"mode": "offload", "fidelity": fid.record(), **res}


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    doc = {"fusion": _fusion, "emergency": _emergency, "offload": _offload}[args.mode](args)
    doc["argv"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k != "func"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str))
    print(f"wrote {args.out}")
    return 0
