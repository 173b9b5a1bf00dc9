"""Benchmark of physical-layer key generation and semantic encryption.

    python bench/keys.py --out keys_bench.json [--quick]

1. KGR / KDR vs SNR (0-30 dB) for mobile, static, static+induced randomness and static+RIS, our
   pipeline vs a baseline built like public PLKG code (mean threshold, no guard band, every bit
   counted as secret, plain SHA-256), on the same channel traces.
2. Eve's KDR vs her distance in wavelengths (raw, and after the best constant rotation).
3. NIST SP 800-22 on the concatenated final keys.
4. PSNR of Bob and of eavesdroppers through the scrambling and the mixing cipher, a learned-inversion Eve
   (fresh nonces vs nonce reuse), and the latency overhead of encryption.
5. Secrecy against the eavesdropper the package models (``--secrecy-only`` runs just this part):
   key rate vs SNR for Eve at 0.1 / 0.25 / 0.5 / 1 / 2 wavelengths, sized today's way (Alice's
   unconditional min-entropy) and for the declared Eve at that distance; the replaying Eve's key
   match rate and the learned Eve's held-out bit accuracy with its 99 % interval at every point;
   a parity-rewriting attacker with and without the MAC'd discussion; NIST SP 800-22 on >= 10^6
   bits of keys sized for the declared Eve.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")                       # 2 shared cores: no BLAS oversubscription
import argparse
import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

import semguard
from semguard.data.photos import shipped_photos
from semguard.keys import BASELINE, KeyAgreement, ProbeConfig, adaptive_config, simulate_probes
from semguard.keys.ciphers import KeySchedule, MixingCipher, ScrambleCipher
from semguard.channels.jakes import spatial_correlation
from semguard.evaluation.studies.secrecy import latency_overhead, link_psnr, train_inversion
from semguard.keys.learned_eve import evaluate_learned_eve
from semguard.keys.nist import run_nist
from semguard.keys.sessions import json_safe


def sweep(snrs, modes, sessions, probes, rate):
    rows, keys = [], []
    for mode in modes:
        for snr in snrs:
            for name, cfg in (("semguard", adaptive_config(snr, mode)), ("baseline", BASELINE)):
                res = []
                for s in range(sessions):
                    pc = ProbeConfig(n_probes=probes, snr_db=snr, mode=mode, probe_rate_hz=rate)
                    trace = simulate_probes(pc, np.random.default_rng([s, int(snr), len(mode)]))
                    r = KeyAgreement(cfg).run(trace, np.random.default_rng([s, 99]))
                    res.append(r)
                    if name == "semguard" and r.key is not None:
                        keys.append(np.unpackbits(np.frombuffer(r.key, dtype=np.uint8)))
                f = lambda k: float(np.nanmean([getattr(r, k) for r in res]) if any(  # noqa: E731
                    np.isfinite(getattr(r, k)) for r in res) else float("nan"))
                rows.append({"mode": mode, "snr_db": snr, "pipeline": name, "success": f("success"),
                             "kgr_bits_per_probe": f("kgr_bits_per_probe"), "kgr_bits_per_s": f("kgr_bits_per_second"),
                             "kdr_raw": f("kdr_raw"), "kdr_reconciled": f("kdr_reconciled"),
                             "eve_kdr": f("eve_kdr_raw"), "eve_kdr_rotated": f("eve_kdr_aligned"),
                             "min_entropy_per_component": f("min_entropy_per_symbol")})
                print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()),
                      flush=True)
    return rows, keys


def _eve_sessions(make_config, agreement, sessions, seed_tag):
    """Means over ``sessions`` agreements on traces from ``make_config()`` of the rate and of
    Eve's raw / best-rotation KDR and key match."""
    res = [KeyAgreement(agreement).run(simulate_probes(make_config(), np.random.default_rng([s, seed_tag])),
                                       np.random.default_rng(s)) for s in range(sessions)]
    mean = lambda k: float(np.mean([getattr(r, k) for r in res]))  # noqa: E731
    return {"kgr_bits_per_probe": mean("kgr_bits_per_probe"), "eve_kdr": mean("eve_kdr_raw"),
            "eve_kdr_rotated": mean("eve_kdr_aligned"), "eve_key_match": mean("eve_key_match")}


def eve_distance(distances, sessions, probes):
    """Eve's KDR by her distance from Bob (mobile, 20 dB, the default 250 probes/s)."""
    rows = []
    for d in distances:
        r = _eve_sessions(lambda: ProbeConfig(n_probes=probes, snr_db=20.0, eve_distance=d),
                          adaptive_config(20.0), sessions, 7)
        rows.append({"distance_wavelengths": d, "rho": float(spatial_correlation(d)), **r})
        print(rows[-1], flush=True)
    return rows


def induced_eve_snr(eve_snrs, sessions, probes, rate, snr=20.0):
    """Induced randomness against an Eve who hears both random transmissions, by her SNR."""
    rows = []
    for es in eve_snrs:
        r = _eve_sessions(lambda: ProbeConfig(n_probes=probes, snr_db=snr, eve_snr_db=es, mode="induced",
                                              probe_rate_hz=rate), adaptive_config(snr, "induced"), sessions, 11)
        rows.append({"snr_db": snr, "eve_snr_db": es, **r})
        print(rows[-1], flush=True)
    return rows


def _key_bits(r):
    return np.unpackbits(np.frombuffer(r.key, dtype=np.uint8))


def secrecy(snrs, distances, sessions, probes, rate):
    """Before/after sizing on the same traces, the replaying Eve and the learned Eve, per (distance, SNR)."""
    rows = []
    for d in distances:
        for snr in snrs:
            row = {"eve_distance": d, "rho": float(spatial_correlation(d)), "snr_db": snr, "probes": probes,
                   "probe_rate_hz": rate, "sessions": sessions}
            for name, cfg in (("before", adaptive_config(snr, eve_sizing="none")),
                              ("after", adaptive_config(snr, eve_min_distance=d))):
                split = {}
                for part, tag in (("train", 1), ("test", 2)):
                    split[part] = [KeyAgreement(cfg).run(
                        simulate_probes(ProbeConfig(n_probes=probes, snr_db=snr, eve_distance=d, probe_rate_hz=rate),
                                        np.random.default_rng([s, tag, int(100 * d), int(snr)])),
                        np.random.default_rng([s, tag, 7])) for s in range(sessions)]
                res = split["test"]
                ok = [r for r in res if r.success]
                mean = lambda k, rs=res: float(np.mean([getattr(r, k) for r in rs])) if rs else float("nan")  # noqa: E731
                out = {"success": mean("success"), "key_bits": mean("key_bits"),
                       "kgr_bits_per_probe": mean("kgr_bits_per_probe"), "kgr_bits_per_s": mean("kgr_bits_per_second"),
                       "eve_key_match_rate": mean("eve_key_match", ok), "eve_kdr_raw": mean("eve_kdr_raw"),
                       "eve_kdr_reconciled": mean("eve_kdr_reconciled", ok), "eve_info_bits": mean("eve_info_bits"),
                       "kdr_reconciled_confirmed": mean("kdr_reconciled", ok), "sessions_with_key": len(ok),
                       "reasons": sorted({r.reason for r in res if r.reason}),
                       "eve_model": res[0].eve_model.get("description", "")}
                train = [(r.eve_features, _key_bits(r)) for r in split["train"] if r.success]
                test = [(r.eve_features, _key_bits(r)) for r in ok]
                out["learned_eve"] = evaluate_learned_eve(train, test).to_dict() if train and test else None
                row[name] = out
            rows.append(row)
            le = row["after"]["learned_eve"]
            print(f"d={d} snr={snr} before {row['before']['kgr_bits_per_probe']:.3f} b/probe "
                  f"match {row['before']['eve_key_match_rate']:.2f} | after {row['after']['kgr_bits_per_probe']:.3f} "
                  f"b/probe match {row['after']['eve_key_match_rate']:.2f} learned "
                  + (f"{le['accuracy']:.3f} [{le['ci_low']:.3f}, {le['ci_high']:.3f}]" if le else "n/a"), flush=True)
    return rows


def active_attack(probes, rate):
    """An attacker who rewrites Alice's first Cascade block parities, with and without the identity MAC."""
    def tamper(msg):
        if msg.kind != "cascade-block":
            return msg
        p = msg.payload.copy()
        p[:5] ^= 1
        return dataclasses.replace(msg, payload=p)
    trace = simulate_probes(ProbeConfig(n_probes=probes, snr_db=20.0, probe_rate_hz=rate), np.random.default_rng(5))
    out = {}
    for name, key in (("mac", os.urandom(32)), ("no_mac", None)):
        r = KeyAgreement(adaptive_config(20.0), identity_key=key).run(trace, np.random.default_rng(6), tamper=tamper)
        out[name] = {"success": r.success, "reason": r.reason, "authenticated": r.authenticated,
                     "leaked_bits": r.leaked_bits}
    print(out, flush=True)
    return out


def nist_new_keys(min_bits, probes, rate, snr=25.0):
    """NIST SP 800-22 on keys sized for the default declared Eve, concatenated to >= ``min_bits``."""
    keys, n, s = [], 0, 0
    while n < min_bits:
        trace = simulate_probes(ProbeConfig(n_probes=probes, snr_db=snr, probe_rate_hz=rate),
                                np.random.default_rng([s, 31]))
        r = KeyAgreement(adaptive_config(snr)).run(trace, np.random.default_rng([s, 32]))
        s += 1
        if r.key is not None:
            keys.append(_key_bits(r))
            n += keys[-1].size
    res = run_nist(np.concatenate(keys)).to_dict()
    res.update(sessions=s, snr_db=snr, probes=probes, eve_model=r.eve_model.get("description", ""))
    print(res, flush=True)
    return res


def photos(n, size, seed, names):
    from skimage import data

    g = np.random.default_rng(seed)
    imgs = [getattr(data, k)() for k in names]
    out = []
    for i in range(n):
        im = imgs[i % len(imgs)]
        y, x = g.integers(0, im.shape[0] - size), g.integers(0, im.shape[1] - size)
        out.append(im[y:y + size, x:x + size, :3])
    return torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255.0


def get_codec(train_seconds, name=None):
    try:
        from semguard.codecs import zoo
        name = name or zoo.DEFAULT_IMAGE_CODEC
        codec = zoo.pretrained(name)
        return codec, f"zoo:{name}"
    except Exception as exc:  # noqa: BLE001 - report which codec was used
        print(f"no pretrained codec ({exc}); training a small deepjscc for {train_seconds}s")
    codec = semguard.build("codec", "deepjscc", cbr=1 / 6, width=32)
    ch = semguard.build("channel", "rayleigh")
    opt = torch.optim.Adam(codec.parameters(), lr=2e-3)
    start, step = time.process_time(), 0
    while time.process_time() - start < train_seconds:
        x = photos(16, 32, step, ["astronaut", "coffee", "rocket"])
        out = codec(x, ch, float(np.random.default_rng(step).uniform(0, 20)))
        loss = (out["x_hat"] - x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
    return codec, f"deepjscc(width=32) trained {step} steps / {train_seconds}s on skimage crops"


def semantic(args):
    torch.manual_seed(0)
    codec, which = get_codec(args.train_seconds, args.codec)
    codec.eval()
    ch = semguard.build("channel", "rayleigh")
    test = photos(16, 32, 12345, ["chelsea"])
    full = shipped_photos()
    # Alice's and Eve's PLKG keys from one session
    trace = simulate_probes(ProbeConfig(n_probes=4096, snr_db=30.0, probe_rate_hz=100.0, eve_distance=0.5),
                            np.random.default_rng(1))
    res = KeyAgreement(adaptive_config(30.0)).run(trace, np.random.default_rng(2))
    if res.key is None:
        raise SystemExit("key agreement failed; cannot run the semantic benchmark")
    key = KeySchedule(res.key).key(0)
    # Eve's PLKG key: the whole public pipeline replayed on her own (correlated) measurements
    eve_keys = {"plkg_key": KeySchedule(res.eve_key).key(0), "wrong_key": KeySchedule(os.urandom(32)).key(0)}
    ciphers = {"scramble": ScrambleCipher(), "mixing": MixingCipher()}
    rows = []
    for cname, cipher in ciphers.items():
        for snr in (0.0, 5.0, 10.0, 15.0, 20.0):
            r = link_psnr(codec, test, ch, snr, cipher, key, eve_keys, generator=torch.Generator().manual_seed(3))
            rows.append({"cipher": cname, "snr_db": snr, **r})
            print(rows[-1], flush=True)
    sampler_state = {"i": 0}

    def sampler(b):
        sampler_state["i"] += 1
        return photos(b, 32, sampler_state["i"], ["astronaut", "coffee", "rocket"])

    # control: an Eve whose input carries no information learns only the image prior
    inv, lat = {"blind_control": train_inversion(codec, ScrambleCipher(), key, sampler, test, ch, 20.0, blind=True,
                                                 seconds=args.inversion_seconds)}, {}
    print(inv, flush=True)
    for cname, cipher in ciphers.items():
        for fresh in (True, False):
            inv[f"{cname}_{'fresh_nonce' if fresh else 'nonce_reuse'}"] = train_inversion(
                codec, cipher, key, sampler, test, ch, 20.0, fresh_nonce=fresh, seconds=args.inversion_seconds)
            print(inv, flush=True)
        lat[cname] = latency_overhead(codec, full, ch, 10.0, cipher, key)   # whole 256x256 photos
        print(lat, flush=True)
    return {"codec": which, "psnr": rows, "learned_inversion": inv, "latency": lat}


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--out", type=Path, default=Path("keys_bench.json"))
    p.add_argument("--quick", action="store_true")
    p.add_argument("--sessions", type=int, default=3)
    p.add_argument("--probes", type=int, default=4096)
    p.add_argument("--rate", type=float, default=100.0, help="probe rate in Hz (Doppler 100 Hz: f_d T = 100 / rate)")
    p.add_argument("--train-seconds", type=float, default=90.0)
    p.add_argument("--codec", default=None, help="zoo name of the image codec (default: the default image codec)")
    p.add_argument("--inversion-seconds", type=float, default=60.0)
    p.add_argument("--skip-semantic", action="store_true")
    p.add_argument("--semantic-only", action="store_true", help="only the Bob-vs-Eve link figures")
    p.add_argument("--secrecy-only", action="store_true", help="only part 5 (secrecy against the modelled Eve)")
    p.add_argument("--secrecy-sessions", type=int, default=8, help="train and held-out sessions per point (part 5)")
    p.add_argument("--nist-bits", type=int, default=1_000_000, help="key bits for NIST in part 5")
    args = p.parse_args()
    torch.set_num_threads(1)
    logging.basicConfig(level=logging.WARNING)
    snrs = [0.0, 10.0, 20.0, 30.0] if args.quick else [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    out = {"name": "keys", "config": {k: str(v) for k, v in vars(args).items()}}
    if args.semantic_only:
        out["semantic"] = semantic(args)
        args.out.write_text(json.dumps(json_safe(out), indent=2, default=float, allow_nan=False))
        print(f"wrote {args.out}")
        return
    if args.secrecy_only or not args.quick:
        out["secrecy"] = secrecy([5.0, 10.0, 20.0, 30.0], [0.1, 0.25, 0.5, 1.0, 2.0], args.secrecy_sessions,
                                 args.probes, 250.0)
        out["active_attack"] = active_attack(args.probes, 250.0)
        out["nist_new_keys"] = nist_new_keys(args.nist_bits, args.probes, 250.0)
    if args.secrecy_only:
        args.out.write_text(json.dumps(json_safe(out), indent=2, default=float, allow_nan=False))
        print(f"wrote {args.out}")
        return
    out["kgr_kdr"], keys = sweep(snrs, ["mobile", "static", "induced", "ris"], args.sessions, args.probes, args.rate)
    out["induced_eve_snr"] = induced_eve_snr([20.0, 10.0, 0.0, -10.0], args.sessions, args.probes, args.rate)
    out["eve_distance"] = eve_distance([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.75, 1.0], args.sessions, args.probes)
    bits = np.concatenate(keys)
    out["nist"] = run_nist(bits).to_dict()
    print(out["nist"], flush=True)
    if not args.skip_semantic:
        out["semantic"] = semantic(args)
    args.out.write_text(json.dumps(json_safe(out), indent=2, default=float, allow_nan=False))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
