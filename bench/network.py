"""Networked inference benchmark: every fusion rule side by side against Byzantine agents.

    python bench/network.py [--out bench-network] [--sections fusion attacks strength detection gossip]

``fusion``: accuracy of every rule at f = 0..floor((N-1)/2) Byzantine agents (adaptive crafted
attack at the full 6.02 dB budget), N in {5, 10, 20}; ``attacks``: N = 10, f = 0..4, every rule
against each of ``--attacks`` (crafted, stale, colluding, camouflage, adaptive), with the round the
Byzantine agents first attack and their share of the trust weight after it; ``strength``: N = 10, f = 3 against the
attack budget; ``detection``: per-round precision/recall of the Byzantine flags (N = 10, f = 3)
for each attack over ``--detection-seeds`` seeds; the ``adaptive`` attacker's parameters (``--slacks``,
``--splits``) are searched and the worst run is reported; ``camouflage``: N = 10, f = 3 against attackers that attack only part of each
round to keep their reputation; ``gossip``: propagation over gossip rounds, plain averaging against W-MSR;
``emergency``: critical-word exact recall of DeepSC text against SNR, every allocation against uniform
(clean, a random partial-band jammer, a jammer on the critical slots), with the SNR gain at recall
``--recall`` and its bootstrap interval (``network/emergency_text.py``); ``emergency_oov``: the same
with a lexicon built without the evaluated sentences, out-of-lexicon words spelled or by DeepSC
(one SNR at a time, resumable, ``--max-minutes``); ``--ldpc-boost-db`` adds the joint 5G LDPC
code over each sentence's critical bits (``network/priority_ldpc.py``); ``--oov-modes huffman``
spells with a Huffman character code built on the lexicon's source, ``--ldpc-pool N`` pools the
codewords' energy over frames of N sentences, ``--split fit`` evaluates held-out training-split
sentences instead of the shipped ones; ``emergency_adaptive``: the SNR-adaptive choice of scheme,
fitted on ``--fit-runs`` and evaluated on ``--test-runs`` (``network/emergency_adaptive.py``).
Writes ``<out>/network.json`` (section by section, as they finish) and PNG figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from dataclasses import replace
from pathlib import Path

import torch

from semguard.data.shipped import shipped_fashion_mnist
from semguard.network.byzantine import MAX_PSR_DB, ByzantineThreat
from semguard.network.multiagent import RULES, MultiAgentConfig, run_multiagent
from semguard.network.plots import line_plot

log = logging.getLogger("bench.network")
#: per-run bounds (network/bounds.py): the median / vote worst case against f undetected agents, the honest-only median
#: emergency_oov --split fit: the training-split sentences (a seed-0 sample) held out of the lexicon to fit the adaptive rule on
FIT_POOL = 1000
BOUNDS = ("median_bound_accuracy", "vote_bound_accuracy", "honest_median_accuracy")


def fusion_section(x, y, args, codec) -> list[dict]:
    rows = []
    th = ByzantineThreat("crafted", steps=args.steps, eot=args.eot)
    for n in args.agents:
        for f in range((n - 1) // 2 + 1):
            for rule in args.rules:
                t0 = time.time()
                res = run_multiagent(MultiAgentConfig(agents=n, byzantine=f, fusion=rule, threat=th,
                                                      rounds=args.rounds, batch=args.batch, seed=args.seed),
                                     x, y, codec=codec)
                rec = [r["recall"] for r in res["rounds"][1:] if r["recall"] is not None]
                prec = [r["precision"] for r in res["rounds"][1:] if r["precision"] is not None]
                rows.append({"agents": n, "byzantine": f, "fusion": rule, "accuracy": res["accuracy"],
                             "oracle_accuracy": res["oracle_accuracy"],
                             "single_agent_accuracy": res["single_agent_accuracy"],
                             "recall": sum(rec) / len(rec) if rec else None,
                             "precision": sum(prec) / len(prec) if prec else None})
                log.info("N=%2d f=%d %-12s acc %.3f (honest-only mean %.3f)  %.1fs", n, f, rule, res["accuracy"],
                         res["oracle_accuracy"], time.time() - t0)
    return rows


def _worst_adaptive(cfg: MultiAgentConfig, x, y, codec, slacks, splits, counts=(0,), stealths=(0.0,)) -> dict:
    """The rule-aware attacker searches its parameters (slack, split groups, counting flips through
    the rule, low-confidence pushes): the run of lowest accuracy, with every setting's accuracy under
    ``slack_search``."""
    grid = [(s, bool(sp), bool(c), st) for st in stealths for c in counts for sp in splits for s in slacks]
    runs = [run_multiagent(replace(cfg, threat=replace(cfg.threat, slack=s, split=sp, count_flips=c, stealth=st)),
                           x, y, codec=codec) for s, sp, c, st in grid]
    worst = min(runs, key=lambda r: r["accuracy"])
    return worst | {"slack_search": {f"slack={s} split={int(sp)}" + (f" count={int(c)}" if len(counts) > 1 or c else "")
                                     + (f" stealth={st:g}" if len(stealths) > 1 or st else ""):
                                     r["accuracy"] for (s, sp, c, st), r in zip(grid, runs)}}


def attacks_section(x, y, args, codec) -> list[dict]:
    rows = []
    for attack in args.attacks:
        th = ByzantineThreat(attack, steps=args.steps, eot=args.eot, sleep_rounds=args.sleep)
        for f in args.byzantine:
            for rule in args.rules:
                t0 = time.time()
                cfg = MultiAgentConfig(agents=10, byzantine=f, fusion=rule, threat=th, rounds=args.rounds,
                                       batch=args.batch, seed=args.seed, aligned_drop=args.aligned_drop,
                                       cap=args.cap, z_horizon=args.z_horizon, horizon_rounds=args.horizon_rounds)
                res = (_worst_adaptive(cfg, x, y, codec, args.slacks, args.splits, args.counts, args.stealths)
                       if attack == "adaptive" and f > 0 else run_multiagent(cfg, x, y, codec=codec))
                att = [r for r in res["rounds"] if r["attacking"]]
                rows.append({"attack": attack, "byzantine": f, "fusion": rule, "accuracy": res["accuracy"],
                             "oracle_accuracy": res["oracle_accuracy"], "threat": res["config"]["threat"],
                             "z_horizon": args.z_horizon, "cap": args.cap if rule == "trust-capped" else None,
                             **{k: res[k] for k in BOUNDS if k in res},
                             "first_attack_round": att[0]["round"] if att else None,
                             "byzantine_weight": [r["byzantine_weight"] for r in res["rounds"]],
                             "recall": [r["recall"] for r in res["rounds"]],
                             "precision": [r["precision"] for r in res["rounds"]],
                             "false_positive_rate": [r["false_positive_rate"] for r in res["rounds"]],
                             "slack_search": res.get("slack_search")})
                log.info("%-10s f=%d %-13s acc %.3f (honest-only mean %.3f)  %.1fs", attack, f, rule, res["accuracy"],
                         res["oracle_accuracy"], time.time() - t0)
    return rows


def strength_section(x, y, args, codec) -> list[dict]:
    rows = []
    for psr in (-15.0, -10.0, -5.0, 0.0, MAX_PSR_DB):
        th = ByzantineThreat("crafted", psr_db=psr, steps=args.steps, eot=args.eot)
        for rule in args.rules:
            res = run_multiagent(MultiAgentConfig(agents=10, byzantine=3, fusion=rule, threat=th, rounds=args.rounds,
                                                  batch=args.batch, seed=args.seed), x, y, codec=codec)
            rows.append({"psr_db": psr, "fusion": rule, "accuracy": res["accuracy"]})
            log.info("psr %6.2f dB %-12s acc %.3f", psr, rule, res["accuracy"])
    return rows


def detection_section(x, y, args, codec) -> list[dict]:
    """Per-round precision / recall of the flags (N = 10, f = 3, trust-median) for each attack, over
    ``--detection-seeds`` seeds; ``none`` gives the honest agents' false-flag rate."""
    rows = []
    for attack in ("crafted", "solo", "stale", "sleeper", "camouflage", "adaptive", "none"):
        th = ByzantineThreat(attack, steps=args.steps, eot=args.eot, sleep_rounds=args.rounds // 2)
        for seed in range(args.seed, args.seed + args.detection_seeds):
            res = run_multiagent(MultiAgentConfig(agents=10, byzantine=3, fusion="trust-median", threat=th,
                                                  rounds=args.rounds, batch=args.batch, seed=seed), x, y, codec=codec)
            for r in res["rounds"]:
                rows.append({"attack": attack, "seed": seed, "run_accuracy": res["accuracy"], **r})
            log.info("%-10s seed %d trust-median acc %.3f  recall by round %s", attack, seed, res["accuracy"],
                     [None if r["recall"] is None else round(r["recall"], 2) for r in res["rounds"]])
    return rows


def camouflage_section(x, y, args, codec) -> list[dict]:
    """N = 10, f = 3: crafted on only a fraction of each round's objects, to keep the reputation."""
    rows = []
    for frac in (0.2, 0.3, 0.45):
        th = ByzantineThreat("camouflage", camouflage=frac, steps=args.steps, eot=args.eot)
        for rule in args.rules:
            res = run_multiagent(MultiAgentConfig(agents=10, byzantine=3, fusion=rule, threat=th, rounds=args.rounds,
                                                  batch=args.batch, seed=args.seed), x, y, codec=codec)
            rec = [r["recall"] for r in res["rounds"] if r["recall"] is not None]
            rows.append({"camouflage": frac, "fusion": rule, "accuracy": res["accuracy"],
                         "mean_recall": sum(rec) / len(rec) if rec else None})
            log.info("camouflage %.2f %-12s acc %.3f  mean recall %.2f", frac, rule, res["accuracy"],
                     rows[-1]["mean_recall"] or 0.0)
    return rows


def emergency_section(args) -> dict:
    """Text emergency: ``--sentences`` shipped sentences, SNR ``--snr-db``, clean and jammed."""
    from semguard.data.text import load_shipped
    from semguard.network.emergency_text import codebook_scheme, gain_ci, text_sweep
    from semguard.network.priority_text import SCHEMES
    s = load_shipped()
    out = {}
    for name, jam, targeted, boosts in (("clean", None, False, args.codebook_boost_db),
                                        ("jammer", args.jam_psr_db, False, args.codebook_boost_db),
                                        ("jammer_critical", args.jam_psr_db, True, args.codebook_boost_db)):
        if name not in args.jam_cases:
            continue
        t0 = time.time()
        rows = text_sweep(s[:args.sentences], args.snr_db, reference=s, jam_psr_db=jam, jam_targeted=targeted,
                          codebook_boosts=boosts, index_bits=args.index_bits, seed=args.seed)
        schemes = [sc for sc in list(SCHEMES) + [codebook_scheme(b) for b in boosts] if sc != "uniform"]
        gains = {sc: gain_ci(rows, args.recall, sc, draws=args.draws, seed=args.seed) for sc in schemes}
        for sc, gn in gains.items():
            log.info("%-16s %-14s needs %s dB, uniform %s dB: gain %s dB, 95%% CI %s", name, sc, gn[sc], gn["uniform"],
                     gn["gain_db"], gn["ci95_db"])
        if args.index_bits:
            name = f"{name}_{args.index_bits}bit"
        out[name] = {"jam_psr_db": jam, "index_bits": rows[0]["index_bits"], "jam_targets_critical": targeted, "gains": gains,
                     "rows": [{k: v for k, v in r.items() if k not in ("hits", "words")} for r in rows],
                     "seconds": round(time.time() - t0, 1)}
    return out


def _oov_rate(sec: dict) -> None:
    if sec["rows"]:
        r0 = sec["rows"][0]
        sec["lexicon"].update(oov_words=r0["oov_words"], critical_words=r0["critical_words"],
                              oov_rate=r0["oov_words"] / max(r0["critical_words"], 1))


def _ldpc_limits(evaluated: list[str], reference: list[str], lexicon: dict, bits: int, thresholds,
                 code: dict | None = None) -> dict:
    """The long-code limit (``priority_ldpc.recall_limit``) of a joint code over each sentence's
    spelled critical bits (characters by ``code`` when given, else 6 bits each), with all of the
    sentence's energy ``S L``: with unlimited channel uses, and with uniform's ``S L`` uses."""
    from collections import Counter
    from semguard.network.priority_ldpc import critical_bits, recall_limit
    from semguard.network.priority_text import critical_words
    from semguard.registry import build
    m = build("codec", "deepsc", pretrained=True)
    counts = Counter(" ".join(reference).split())
    crit = [[w for w, f in zip(x.split(), critical_words(x, counts)) if f] for x in evaluated]
    k = [len(critical_bits(ws, lexicon, bits, char_code=code)) for ws in crit]
    su = (m.S * m.lengths(m.tokenizer.encode(evaluated, max_tokens=m.max_tokens))).tolist()
    w = [len(ws) for ws in crit]
    out = {"info_bits_mean": sum(k) / len(k), "energy_per_bit_median": sorted(e / b for e, b in zip(su, k) if b)[
        sum(1 for b in k if b) // 2]}
    for thr in thresholds:
        out[f"unlimited_uses@{thr:g}"] = recall_limit(k, su, w, thr)
        out[f"uniform_uses@{thr:g}"] = recall_limit(k, su, w, thr, uses=su)
    return out


def emergency_oov_section(args, path: Path, doc: dict) -> dict:
    """Text emergency with a lexicon built without the evaluated sentences (the training split of
    the WordNet examples, digits 0-999 and number words; ``network/lexicon.py``): uniform against
    the codebook schemes, out-of-lexicon critical words spelled or sent by DeepSC.  One SNR at a
    time, written as it finishes; a rerun resumes (the SNRs already in ``path`` are kept)."""
    from semguard.data.text import load_shipped, load_wordnet_examples, split_sentences
    from semguard.network.emergency_text import codebook_scheme, gain_ci, ldpc_scheme, text_sweep
    from semguard.network.huffman import char_code
    from semguard.network.lexicon import SPELL_ALPHABET, build_lexicon
    s = load_shipped()
    train = split_sentences(load_wordnet_examples()).train
    source = "wordnet train split + digits 0-999 + number words"
    if args.split == "fit":   # FIT_POOL training-split sentences play the shipped ones (rule fitting)
        held = set(random.Random(0).sample(range(len(train)), FIT_POOL))     # train is in file order: sample
        s = [x for i, x in enumerate(train) if i in held]
        train = [x for i, x in enumerate(train) if i not in held]
        source = f"wordnet train split minus {FIT_POOL} sampled (seed 0) + digits 0-999 + number words"
    evaluated = s[:args.sentences]
    lexicon, bits = build_lexicon(train, exclude=s, index_bits=args.index_bits)   # excludes all of s
    code = char_code(train)          # Huffman code of the spelled characters, from the lexicon's source only
    if args.lexicon == "oracle":     # the control: the evaluated sentences' own critical words, at the same bits
        lexicon, source = None, "oracle: the critical words of the shipped sentences, evaluated ones included"
    sec = doc.get("emergency_oov") or {}
    if sec.get("lexicon", {}).get("index_bits") not in (None, bits):
        raise SystemExit(f"{path} holds a {sec['lexicon']['index_bits']}-bit run; use another --out")
    sec["lexicon"] = {"source": source, "split": args.split, "source_sentences": len(train) if lexicon else None,
                      "words": len(lexicon) if lexicon else None, "index_bits": bits, "evaluated_sentences": len(evaluated),
                      "spell_uses": args.spell_uses, "oov_modes": args.oov_modes,
                      "ldpc_max_rate": args.ldpc_max_rate if args.ldpc_boost_db else None,
                      "ldpc_pool": args.ldpc_pool if args.ldpc_boost_db else None,
                      "huffman_code_bits": {ch: len(code[i]) for i, ch in enumerate(SPELL_ALPHABET)}
                      if "huffman" in args.oov_modes else None}
    sec["jam"] = {"case": args.oov_jam, "psr_db": None if args.oov_jam == "clean" else args.jam_psr_db}
    rows = sec.setdefault("rows", [])
    t_start = time.time()
    for snr in args.snr_db:
        if any(r["snr_db"] == snr for r in rows):
            continue
        if args.max_minutes and time.time() - t_start > 60 * args.max_minutes:
            log.info("emergency_oov: --max-minutes reached before %s dB; rerun to resume", snr)
            break
        t0 = time.time()
        rows += text_sweep(evaluated, [snr], reference=s, codebook_boosts=args.codebook_boost_db, index_bits=bits,
                           lexicon=lexicon, oov_modes=args.oov_modes, spell_uses=args.spell_uses,
                           schemes=("uniform",), seed=args.seed, jam_targeted=args.oov_jam == "jammer_critical",
                           jam_psr_db=None if args.oov_jam == "clean" else args.jam_psr_db,
                           ldpc_boosts=args.ldpc_boost_db, ldpc_max_rate=args.ldpc_max_rate, char_code=code,
                           ldpc_pool=args.ldpc_pool)
        sec["seconds"] = round(sec.get("seconds", 0) + time.time() - t0, 1)
        _oov_rate(sec)
        doc["emergency_oov"] = sec
        path.write_text(json.dumps(doc, indent=1))
        log.info("emergency_oov %s dB done in %.0f s", snr, time.time() - t0)
    _oov_rate(sec)
    schemes = [codebook_scheme(b, o) for o in args.oov_modes if o != "huffman" for b in args.codebook_boost_db]
    schemes += [ldpc_scheme(b, o) for o in args.oov_modes for b in args.ldpc_boost_db]
    if args.ldpc_boost_db and lexicon is not None:
        sec["ldpc_limit"] = _ldpc_limits(evaluated, s, lexicon, bits, sorted({args.recall, 0.8, 0.6}))
        sec["ldpc_limit_huffman"] = _ldpc_limits(evaluated, s, lexicon, bits, sorted({args.recall, 0.8, 0.6}), code)
        log.info("long-code limit of the spelled bits at each sentence's energy: %s", sec["ldpc_limit"])
    sec["gains"] = {}
    for thr in sorted({args.recall, 0.8, 0.6}):         # 0.6: where uniform has lost 40 % of the critical words
        for sc in schemes:
            if any(r["scheme"] == sc for r in rows):
                gn = gain_ci(rows, thr, sc, draws=args.draws, seed=args.seed)
                sec["gains"][f"{sc}@{thr:g}"] = gn
                log.info("%-20s recall %.2f: needs %s dB, uniform %s dB: gain %s dB, 95%% CI %s", sc, thr, gn[sc],
                         gn["uniform"], gn["gain_db"], gn["ci95_db"])
    return sec


def _merged_rows(paths: list[str]) -> tuple[list[dict], dict]:
    """The ``emergency_oov`` rows of several runs, each non-uniform scheme renamed
    ``<scheme>@r<max rate>[+pool<frame>]`` (one run per LDPC rate cap and pooling frame); uniform rows are kept once and checked
    equal across runs (the same sentences, seed and code give the same hits)."""
    rows, uniform, lexicons = [], {}, []
    for p in paths:
        sec = json.loads(Path(p).read_text())["emergency_oov"]
        rate = sec["lexicon"].get("ldpc_max_rate")
        pool = sec["lexicon"].get("ldpc_pool") or 1
        lexicons.append({k: sec["lexicon"].get(k) for k in ("source", "split", "evaluated_sentences", "oov_rate")})
        for r in sec["rows"]:
            if r["scheme"] == "uniform":
                old = uniform.setdefault(r["snr_db"], r)
                if old["hits"] != r["hits"]:
                    raise SystemExit(f"{p}: uniform at {r['snr_db']} dB differs from an earlier run's")
            else:
                tag = (f"@r{rate:g}" if rate else "") + (f"+pool{pool}" if pool > 1 else "")
                rows.append(dict(r, scheme=r["scheme"] + tag))
    if len({(lx["split"], lx["evaluated_sentences"]) for lx in lexicons}) > 1:
        raise SystemExit(f"runs of different splits or sentence counts: {lexicons}")
    return sorted(uniform.values(), key=lambda r: r["snr_db"]) + rows, lexicons[0]


def emergency_adaptive_section(args) -> dict:
    """SNR-adaptive emergency text (``network/emergency_adaptive.py``): the rule is fitted on the
    ``--fit-runs`` (``emergency_oov --split fit``) and applied to the ``--test-runs``; gains at
    critical recall 0.5-0.9 with the sentence bootstrap, other-word accuracy and channel uses."""
    from semguard.network.emergency_adaptive import adaptive_rows, fit_rule, uses_ratio
    from semguard.network.emergency_text import gain_ci
    fit, fit_lex = _merged_rows(args.fit_runs)
    test, test_lex = _merged_rows(args.test_runs)
    candidates = sorted({r["scheme"] for r in fit} - {"uniform"})
    out = {"fit": fit_lex, "test": test_lex, "candidates": candidates, "threshold": args.adaptive_threshold,
           "uses_vs_uniform": {c: uses_ratio(test, c) for c in sorted({r["scheme"] for r in test} - {"uniform"})},
           "variants": {}}
    for max_uses in args.adaptive_max_uses:
        name = "adaptive(any uses)" if max_uses == float("inf") else f"adaptive(uses<={max_uses:g}x)"
        rule = fit_rule(fit, candidates, threshold=args.adaptive_threshold, max_uses=max_uses)
        rows = test + adaptive_rows(test, rule, name=name)
        v = {"rule": {f"{s:g}": c for s, c in rule.items()},
             "curve": [{k: r[k] for k in ("snr_db", "chosen", "critical_recall", "other_word_accuracy", "oov_recall",
                                          "bleu1", "channel_uses")} | {"uses_vs_uniform": r["channel_uses"] / u["channel_uses"],
                                                                       "uniform_critical_recall": u["critical_recall"],
                                                                       "uniform_other_word_accuracy": u["other_word_accuracy"]}
                       for r in rows if r["scheme"] == name
                       for u in rows if u["scheme"] == "uniform" and u["snr_db"] == r["snr_db"]],
             "gains": {}}
        for thr in args.adaptive_recalls:
            gn = gain_ci(rows, thr, name, draws=args.draws, seed=args.seed)
            v["gains"][f"{thr:g}"] = gn
            log.info("%s recall %.2f: needs %s dB, uniform %s dB: gain %s dB, 95%% CI %s", name, thr, gn[name],
                     gn["uniform"], gn["gain_db"], gn["ci95_db"])
        log.info("%s rule (fitted on %s): %s", name, fit_lex["split"], v["rule"])
        out["variants"][name] = v
    out["fixed_gains"] = {f"{sc}@{thr:g}": gain_ci(test, thr, sc, draws=args.draws, seed=args.seed)
                          for sc in out["uses_vs_uniform"] for thr in args.adaptive_recalls}
    out["test_rows"] = [{k: v for k, v in r.items() if k not in ("hits", "words")} for r in test]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench-network")
    p.add_argument("--sections", nargs="+", default=["fusion", "attacks", "strength", "detection", "camouflage",
                                                     "gossip"])
    p.add_argument("--attacks", nargs="+", default=["crafted", "stale", "colluding", "camouflage", "adaptive"])
    p.add_argument("--sleep", type=int, default=3, help="rounds the camouflage / sleeper agents stay honest")
    p.add_argument("--agents", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--eot", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--slacks", type=float, nargs="+", default=[0.6, 0.8, 0.95],
                   help="the adaptive attacker's slack values searched (the worst is reported)")
    p.add_argument("--splits", type=int, nargs="+", choices=(0, 1), default=[0, 1],
                   help="adaptive attacker: push with all attackers only (0) or also with smaller groups (1)")
    p.add_argument("--counts", type=int, nargs="+", choices=(0, 1), default=[0],
                   help="adaptive attacker: also keep a push only if the round's flips through the rule rise (1)")
    p.add_argument("--rules", nargs="+", choices=RULES,
                   default=[r for r in RULES if r not in ("trust-aligned", "trust-capped")],
                   help="the fusion rules run (trust-aligned and trust-capped, measured no better, only when named)")
    p.add_argument("--stealths", type=float, nargs="+", default=[0.0],
                   help="adaptive attacker: weight of its own gap in a low-confidence push (0: none), searched")
    p.add_argument("--cap", type=float, default=1.0, help="trust-capped: one agent's deviation from the centre, nats")
    p.add_argument("--z-horizon", type=float, default=float("inf"),
                   help="trust rules: strong round when the long-run leave-group-out excess gap z is over this (inf: off)")
    p.add_argument("--horizon-rounds", type=int, default=3, help="the long-run check from this many rounds on")
    p.add_argument("--byzantine", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="attacks: the f values (N = 10)")
    p.add_argument("--aligned-drop", type=float, default=-float("inf"),
                   help="trust-aligned: drop the most aligned f agents only when their least aligned pair's "
                        "sqrt(n) x cosine is over this (default: always)")
    p.add_argument("--detection-seeds", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sentences", type=int, default=400, help="emergency: shipped sentences")
    p.add_argument("--snr-db", type=float, nargs="+", default=[float(v) for v in range(-4, 8)])
    p.add_argument("--codebook-boost-db", type=float, nargs="*", default=[0.0, 1.0, 2.0])
    p.add_argument("--ldpc-boost-db", type=float, nargs="*", default=[],
                   help="emergency_oov: boosts of the joint 5G LDPC scheme over each sentence's critical bits")
    p.add_argument("--ldpc-max-rate", type=float, default=0.5,
                   help="emergency_oov: highest LDPC code rate before extra channel uses are added")
    p.add_argument("--ldpc-pool", type=int, default=1,
                   help="emergency_oov: pool the LDPC codewords' energy over frames of this many sentences (1: none)")
    p.add_argument("--jam-psr-db", type=float, default=-10.0)
    p.add_argument("--jam-cases", nargs="+", default=["clean", "jammer", "jammer_critical"])
    p.add_argument("--index-bits", type=int, default=None,
                   help="emergency: codebook bits per critical word (default: the fewest for the lexicon)")
    p.add_argument("--recall", type=float, default=0.9, help="emergency: critical recall that counts as delivered")
    p.add_argument("--draws", type=int, default=1000, help="emergency: bootstrap draws")
    p.add_argument("--oov-modes", nargs="+", choices=("spell", "deepsc", "huffman"), default=["spell", "deepsc"],
                   help="emergency_oov: how out-of-lexicon critical words go (spelled, by DeepSC, or (ldpc only) "
                        "spelled with a Huffman character code built on the lexicon's source sentences)")
    p.add_argument("--lexicon", choices=("train", "oracle"), default="train",
                   help="emergency_oov: lexicon from the training split, or (control) the evaluated sentences' own "
                        "critical words at the same --index-bits")
    p.add_argument("--oov-jam", choices=("clean", "jammer", "jammer_critical"), default="clean",
                   help="emergency_oov: no jammer, a random 25 %% partial-band one, or one on the critical slots "
                        "(spelled characters included), at --jam-psr-db")
    p.add_argument("--split", choices=("test", "fit"), default="test",
                   help="emergency_oov: evaluate the shipped (test) sentences, or (fit) "
                        f"{FIT_POOL} training-split sentences sampled (seed 0), the lexicon built from the rest (for fitting the adaptive rule)")
    p.add_argument("--spell-uses", type=int, default=6, help="emergency_oov: channel uses per spelled character")
    p.add_argument("--fit-runs", nargs="+", default=[],
                   help="emergency_adaptive: network.json files of emergency_oov --split fit runs (the rule is fitted on these)")
    p.add_argument("--test-runs", nargs="+", default=[],
                   help="emergency_adaptive: network.json files of emergency_oov runs on the test sentences")
    p.add_argument("--adaptive-threshold", type=float, default=0.9,
                   help="emergency_adaptive: send uniform where its fitted critical recall is at least this")
    p.add_argument("--adaptive-max-uses", type=float, nargs="+", default=[1.5, float("inf")],
                   help="emergency_adaptive: candidates with at most this many times uniform's channel uses (one variant each)")
    p.add_argument("--adaptive-recalls", type=float, nargs="+", default=[0.5, 0.6, 0.7, 0.8, 0.9])
    p.add_argument("--max-minutes", type=float, default=None,
                   help="emergency_oov: start no new SNR after this long (rerun to resume)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "network.json"
    doc = json.loads(path.read_text()) if path.exists() else {"name": "network"}
    doc["settings"] = {k: v for k, v in vars(args).items() if k != "out"}
    if set(args.sections) - {"emergency", "emergency_oov", "emergency_adaptive"}:
        x, y = shipped_fashion_mnist(args.rounds * args.batch)
        from semguard.codecs.zoo import pretrained
        codec = pretrained("task-fmnist").eval()
        for prm in codec.parameters():
            prm.requires_grad_(False)
    for sec in args.sections:
        t0 = time.time()
        if sec == "emergency_adaptive":
            doc[sec] = emergency_adaptive_section(args)
            path.write_text(json.dumps(doc, indent=1))
            continue
        if sec in ("emergency", "emergency_oov"):
            doc[sec] = emergency_section(args) if sec == "emergency" else emergency_oov_section(args, path, doc)
            path.write_text(json.dumps(doc, indent=1))
            log.info("section %s done in %.0f s -> %s", sec, time.time() - t0, path)
            continue
        if sec == "fusion":
            rows = fusion_section(x, y, args, codec)
            for n in sorted({r["agents"] for r in rows}):
                sel = [r for r in rows if r["agents"] == n]
                line_plot({rule: ([r["byzantine"] for r in sel if r["fusion"] == rule],
                                  [r["accuracy"] for r in sel if r["fusion"] == rule]) for rule in args.rules}
                          | {"honest-only mean": ([r["byzantine"] for r in sel if r["fusion"] == "mean"],
                                                  [r["oracle_accuracy"] for r in sel if r["fusion"] == "mean"])},
                          out / f"accuracy_vs_f_N{n}.png", xlabel="Byzantine agents f", ylabel="accuracy",
                          title=f"N={n}, crafted attack at {MAX_PSR_DB:.2f} dB")
        elif sec == "attacks":
            rows = attacks_section(x, y, args, codec)
            for attack in args.attacks:
                sel = [r for r in rows if r["attack"] == attack]
                line_plot({rule: ([r["byzantine"] for r in sel if r["fusion"] == rule],
                                  [r["accuracy"] for r in sel if r["fusion"] == rule]) for rule in args.rules},
                          out / f"accuracy_vs_f_{attack}.png", xlabel="Byzantine agents f", ylabel="accuracy",
                          title=f"N=10, {attack}")
        elif sec == "strength":
            rows = strength_section(x, y, args, codec)
            line_plot({rule: ([r["psr_db"] for r in rows if r["fusion"] == rule],
                              [r["accuracy"] for r in rows if r["fusion"] == rule]) for rule in args.rules},
                      out / "accuracy_vs_psr.png", xlabel="attack budget psr_db", ylabel="accuracy",
                      title="N=10, f=3")
        elif sec == "detection":
            rows = detection_section(x, y, args, codec)
        elif sec == "camouflage":
            rows = camouflage_section(x, y, args, codec)
        elif sec == "gossip":
            from semguard.network.propagation import gossip_section
            rows = gossip_section(x, y, out, seed=args.seed, codec=codec)
        else:
            raise SystemExit(f"unknown section {sec!r}")
        doc[sec] = {"rows": rows, "seconds": round(time.time() - t0, 1)}
        path.write_text(json.dumps(doc, indent=1))
        log.info("section %s done in %.0f s -> %s", sec, time.time() - t0, path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
