"""Knowledge-base benchmark: proof timings, publish throughput, PDP, desync cost, poisoning detection.

    python bench/knowledge.py [--out results/knowledge.json] [--sizes 1000 10000 100000] [--quick]
                              [--parts proofs pdp codec]

Prints a summary and writes JSON ``{name, description, config, results}``.  No key material
is written: the bench generates throw-away keys and stores only public figures.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from semguard.knowledge import merkle
from semguard.knowledge.keys import generate_key
from semguard.knowledge.pdp import PdpClient, PossessionError, detection_probability, proof_size, prove
from semguard.knowledge.store import KnowledgeBase


def _timeit(fn, reps: int) -> float:
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t) / reps


def bench_proofs(sizes: list[int], workdir: str) -> dict:
    out = {}
    for n in sizes:
        data = [os.urandom(64) for _ in range(n)]
        t = time.perf_counter()
        levels = merkle.build_levels([merkle.leaf_hash(d) for d in data])
        build = time.perf_counter() - t
        root, i, m = merkle.root_of(levels), n // 3, n // 2
        path = merkle.inclusion_path(levels, i)
        cpath = merkle.consistency_path(levels, m, n)
        mroot = merkle.subtree_root(levels, 0, m)
        reps = 200
        res = {
            "tree_build_s": build,
            "inclusion_prove_us": 1e6 * _timeit(lambda: merkle.inclusion_path(levels, i), reps),
            "inclusion_verify_us": 1e6 * _timeit(
                lambda: merkle.verify_inclusion(merkle.leaf_hash(data[i]), i, n, path, root), reps),
            "consistency_prove_us": 1e6 * _timeit(lambda: merkle.consistency_path(levels, m, n), reps),
            "consistency_verify_us": 1e6 * _timeit(
                lambda: merkle.verify_consistency(m, n, mroot, root, cpath), reps),
            "inclusion_path_len": len(path), "consistency_path_len": len(cpath),
        }
        key = generate_key()
        kb = KnowledgeBase.init(Path(workdir) / f"tp{n}.db", key)
        entries = {f"e{j}": d for j, d in enumerate(data)}
        t = time.perf_counter()
        kb.publish(key, entries)
        res["publish_s"] = time.perf_counter() - t
        res["publish_entries_per_s"] = n / res["publish_s"]
        t = time.perf_counter()
        kb.publish(key, {"e0": os.urandom(64)})
        res["publish_one_change_s"] = time.perf_counter() - t
        t = time.perf_counter()
        KnowledgeBase(kb.path).verify()
        res["full_verify_s"] = time.perf_counter() - t
        t = time.perf_counter()
        kb.get(f"e{i}")
        res["verified_get_first_ms"] = 1e3 * (time.perf_counter() - t)
        res["verified_get_ms"] = 1e3 * _timeit(lambda: kb.get(f"e{i}"), 50)
        kb.close()
        out[str(n)] = res
        print(f"n={n:>6}: build {build:.3f}s  incl prove/verify {res['inclusion_prove_us']:.0f}/"
              f"{res['inclusion_verify_us']:.0f} us  cons prove/verify {res['consistency_prove_us']:.0f}/"
              f"{res['consistency_verify_us']:.0f} us  publish {res['publish_entries_per_s']:.0f} entries/s  "
              f"verify {res['full_verify_s']:.2f}s  get {res['verified_get_ms']:.2f} ms")
    return out


def bench_pdp(sizes: list[int], cs: list[int], fractions: list[float], trials: int, workdir: str) -> dict:
    """PDP: proof size and prove/verify time against n; detection rate against the fraction dropped."""
    out: dict = {"by_size": {}, "detection": {}}
    for n in sizes:
        key = generate_key()
        kb = KnowledgeBase.init(Path(workdir) / f"pdp{n}.db", key)
        kb.publish(key, {f"e{j:06d}": os.urandom(64) for j in range(n)})
        client = PdpClient.setup(kb)
        t = time.perf_counter()
        client, ch = client.challenge(cs[0])
        prove(kb, ch)
        first = time.perf_counter() - t
        res = {"entry_bytes": 64, "first_prove_s": first}
        for c in cs:
            reps = 20
            tp = tv = 0.0
            for _ in range(reps):
                client, ch = client.challenge(c)
                t = time.perf_counter()
                proof = prove(kb, ch)
                tp += time.perf_counter() - t
                t = time.perf_counter()
                client.check(ch, proof)
                tv += time.perf_counter() - t
            res[f"c{c}"] = {"proof_bytes": proof_size(proof), "prove_ms": 1e3 * tp / reps, "verify_ms": 1e3 * tv / reps,
                            "path_len_max": max(len(it.path) for it in proof.items)}
            print(f"pdp n={n:>6} c={c:>4}: proof {proof_size(proof) / 1024:.1f} KiB  prove {1e3 * tp / reps:.2f} ms  "
                  f"verify {1e3 * tv / reps:.2f} ms")
        out["by_size"][str(n)] = res
        kb.close()
    n = sizes[len(sizes) // 2]
    kb = KnowledgeBase(Path(workdir) / f"pdp{n}.db")
    man, names = kb.manifest(1), sorted(kb.manifest(1))
    order = torch.randperm(n, generator=torch.Generator().manual_seed(1)).tolist()
    dropped = 0
    for f in sorted(fractions):
        d = int(round(f * n))
        for j in order[dropped:d]:
            kb.conn.execute("DELETE FROM blobs WHERE hash = ?", (man[names[j]],))
        dropped = d
        client = PdpClient.setup(kb)
        row = {}
        for c in cs:
            caught = 0
            for _ in range(trials):
                client, ch = client.challenge(c)
                try:
                    client.check(ch, prove(kb, ch))
                except PossessionError:
                    caught += 1
            row[f"c{c}"] = {"measured": caught / trials, "theory": detection_probability(n, d, c), "trials": trials}
        out["detection"][f"{f:.2f}"] = {"n": n, "dropped": d, **row}
        print(f"pdp detection n={n} dropped {f:.0%}: " + "  ".join(
            f"c={c}: {row[f'c{c}']['measured']:.3f} (theory {row[f'c{c}']['theory']:.3f})" for c in cs))
    kb.close()
    return out


def bench_codec(workdir: str, steps: int, quick: bool) -> dict:
    from semguard.codecs.deepjscc import DeepJSCC, adjscc
    from semguard.data.images import random_crops
    from semguard.evaluation.studies.desync import build_trained_versions, canary_images, desync_cost, training_images
    from semguard.evaluation.studies.poisoning import run_poison_study
    key = generate_key()
    kb = KnowledgeBase.init(Path(workdir) / "codec.db", key)
    t = time.perf_counter()
    versions = build_trained_versions(kb, key, adjscc, name="adjscc", steps=steps, cbr=1 / 12, width=16)
    train_s = time.perf_counter() - t
    canary = canary_images()
    in_dist = random_crops(training_images(), 16, 32, torch.Generator().manual_seed(777))
    res = {"train_s": train_s, "steps_per_version": steps, "versions": versions}
    for label, imgs in (("canary_heldout", canary), ("in_distribution", in_dist)):
        rep = desync_cost(kb, "adjscc", DeepJSCC, versions[1:], imgs)
        res[f"desync_{label}"] = {"psnr": {f"enc{e}_dec{d}": p for (e, d), p in rep.psnr.items()},
                                  "drop_db": rep.drop_db, "handshake_detected": rep.detected,
                                  "mismatched_pairs": rep.mismatched, "false_alarms": rep.false_alarms}
        v, p = versions[-1], versions[-2]
        print(f"desync ({label}): matched v={v}: {rep.psnr[(v, v)]:.2f} dB, enc v / dec v-1: "
              f"{rep.psnr[(v, p)]:.2f} dB -> drop {rep.drop_db:.2f} dB; handshake flagged "
              f"{rep.detected}/{rep.mismatched} mismatched, {rep.false_alarms} false alarms")
    if not quick:
        t = time.perf_counter()
        pr = run_poison_study(str(kb.path), "adjscc", DeepJSCC, canary, key=key, workdir=workdir)
        res["poisoning"] = {"detection_rate": pr.detection_rate, "false_alarm_rate": pr.false_alarm_rate,
                            "n_poisoned": pr.n_poisoned, "n_benign": pr.n_benign,
                            "outcomes": {k: {"poisoned": a, "rejected": b, "reason": r}
                                         for k, (a, b, r) in pr.outcomes.items()},
                            "time_s": time.perf_counter() - t}
        for k, (a, b, r) in pr.outcomes.items():
            print(f"  {'POISON' if a else 'benign'} {'REJECTED' if b else 'accepted'}: {k}  {r[:90]}")
        print(f"poisoning: detection {pr.detection_rate:.2%} of {pr.n_poisoned}, "
              f"false alarms {pr.false_alarm_rate:.2%} of {pr.n_benign}")
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/knowledge.json")
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--steps", type=int, default=300, help="training steps per codec version")
    ap.add_argument("--quick", action="store_true", help="skip the poisoning study")
    ap.add_argument("--parts", nargs="+", default=["proofs", "pdp", "codec"], choices=["proofs", "pdp", "codec"])
    ap.add_argument("--pdp-c", type=int, nargs="+", default=[50, 100, 300, 460], help="challenged entries")
    ap.add_argument("--pdp-fractions", type=float, nargs="+", default=[0.01, 0.05, 0.10])
    ap.add_argument("--pdp-trials", type=int, default=200)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    results = {}
    with tempfile.TemporaryDirectory() as wd:
        if "proofs" in args.parts:
            results["proofs"] = bench_proofs(args.sizes, wd)
        if "pdp" in args.parts:
            results["pdp"] = bench_pdp(args.sizes, args.pdp_c, args.pdp_fractions, args.pdp_trials, wd)
        if "codec" in args.parts:
            results["codec"] = bench_codec(wd, args.steps, args.quick)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "knowledge", "description": __doc__.splitlines()[0],
                               "config": vars(args), "results": results}, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
