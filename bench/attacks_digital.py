"""The separated digital link (WebP + 5G LDPC + QAM, ``baseline webp_ldpc``) jammed at the same PSR
grid as the learned codecs: equal-power Gaussian jamming, the worst-case boundary jammer and (Rayleigh,
pilot-estimated CSI) the pilot jammer, then the attack power each link needs for equal damage (mean
PSNR down to ``--damage-db``), read against the learned codecs' records of ``bench/attacks.py``, JSON out.

    PYTHONPATH=src python bench/attacks_digital.py --images 3 --side 128 \\
        --learned bench/results/attacks40_awgn.json --out bench/results/attacks40_digital_awgn.json
    PYTHONPATH=src python bench/attacks_digital.py --images 3 --side 256 \\
        --learned bench/results/attacks256_awgn.json --out bench/results/attacks256_digital_awgn.json

Where a grid does not bracket the damage level the crossing is a bound (already damaged at the
weakest budget, or not reached by the strongest), and so is the power ratio: each record says which
(``power_ratio_bound``: ``=``, ``<=`` or ``>=``; none where the two sides' bounds point opposite ways).

A transfer attack has no meaning here: the separated link is a public standard (WebP, 5G LDPC, QAM)
with no learned weights, so the attacker holds the exact encoder and there is nothing to approximate
with a surrogate; its blind (symbol-agnostic) attacker is the Gaussian jammer, its white-box one the
boundary jammer.  ``--side 128`` sends the centre 128x128 crops of the shipped photos over
``side^2 * 3 / 6`` channel uses (cbr 1/6), as the learned codecs' grid does.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import torch

from semguard.attacks.digital import PILOT_MODES, JammedChannel, boundary_jam, burst_jam, gaussian_jam, pilot_jam
from semguard.channels import AWGN, Rayleigh
from semguard.data.images import center_crop
from semguard.data.photos import shipped_photos
from semguard.metrics.image import psnr
from semguard.registry import build

PSR = (-40.0, -35.0, -30.0, -25.0, -20.0, -15.0, -10.0, -5.0)


def damage_crossing(points: list[tuple[float, float]], level: float) -> tuple[float | None, str | None]:
    """The smallest PSR (dB, linear interpolation on the grid) at which the PSNR falls to ``level``, and
    what it is: ``"="`` interpolated (or on a grid point), ``"<="`` already damaged at the grid's
    weakest budget (the value is that budget, an upper bound), ``">"`` not reached by the strongest
    budget (the value is that budget, a lower bound); ``(None, None)`` with no points."""
    pts = sorted(points)
    if not pts:
        return None, None
    if pts[0][1] <= level:
        return pts[0][0], "<="
    for (b0, p0), (b1, p1) in itertools.pairwise(pts):
        if p1 <= level < p0:
            return b0 + (b1 - b0) * (p0 - level) / (p0 - p1), "="
    return pts[-1][0], ">"


def psr_for_damage(points: list[tuple[float, float]], level: float) -> float | None:
    """:func:`damage_crossing`'s PSR where the grid reaches ``level`` (an upper bound if already at its
    weakest budget), ``None`` where it does not."""
    psr, kind = damage_crossing(points, level)
    return None if kind in (None, ">") else psr


# how a side's bound on its PSR bounds the ratio learned / digital: the learned PSR in the numerator,
# the digital one in the denominator
_LEARNED = {"=": "=", "<=": "<=", ">": ">="}
_DIGITAL = {"=": "=", "<=": ">=", ">": "<="}


def power_ratio(learned: tuple[float | None, str | None],
                digital: tuple[float | None, str | None]) -> tuple[float | None, str | None]:
    """The attack-power ratio learned / digital for equal damage, ``10^((psr_l - psr_d) / 10)``, from two
    :func:`damage_crossing` results, and whether it is exact (``"="``) or a bound (``"<="``, ``">="``);
    ``(None, None)`` where the bounds point opposite ways (or a side has no points)."""
    (pl, kl), (pd, kd) = learned, digital
    if kl is None or kd is None:
        return None, None
    sides = {_LEARNED[kl], _DIGITAL[kd]} - {"="}
    if len(sides) > 1:
        return None, None
    return 10 ** ((pl - pd) / 10), sides.pop() if sides else "="


def strongest(crossings: list[tuple[float | None, str | None]]) -> tuple[float | None, str | None]:
    """The strongest of several jammers' :func:`damage_crossing` results: the lowest PSR that reaches the
    damage (``"<="`` before ``"="`` at a tie), else the highest lower bound; ``(None, None)`` if empty."""
    reached = [c for c in crossings if c[1] in ("=", "<=")]
    if reached:
        return min(reached, key=lambda c: (c[0], c[1] != "<="))
    above = [c for c in crossings if c[1] == ">"]
    return max(above) if above else (None, None)


def learned_records(path: Path) -> list[dict]:
    """The learned codecs' records of ``bench/attacks.py`` at ``path``, or, while that run is still going,
    its ``<path minus .json>.d/records.jsonl``; ``[]`` if neither exists."""
    if path.exists():
        return json.loads(path.read_text())["records"]
    q = path.with_suffix(".d") / "records.jsonl"
    return [json.loads(s) for s in q.read_text().splitlines() if s.strip()] if q.exists() else []


def run_digital(a: argparse.Namespace, done: list[dict] | None = None) -> list[dict]:
    """The digital link's records over ``a.psr_db`` (clean first); a record of ``done`` (same attack and
    PSR, from an earlier run of the same configuration) is kept instead of measured again."""
    have = {(r["attack"], r["psr_db"]): r for r in done or []}
    x = shipped_photos()[: a.images]
    if a.side != x.shape[-1]:
        x = torch.stack([center_crop(i, a.side) for i in x])
    n_symbols = a.n_symbols or a.side * a.side * 3 // 6
    link = build("baseline", "webp_ldpc")
    g = lambda: torch.Generator().manual_seed(0)
    make = (lambda: AWGN()) if a.channel == "awgn" else (lambda: Rayleigh(csi="estimated"))
    if ("clean", None) in have:
        rows = [have["clean", None]]
    else:
        clean = link(x, make(), a.snr_db, n_symbols, generator=g())
        c = psnr(clean["x_hat"], x)
        rows = [{"attack": "clean", "psr_db": None, "psnr": c.mean().item(), "per_image": c.tolist(),
                 "mcs": [i["mcs"] for i in clean["info"]]}]
    print(f"digital clean {rows[0]['psnr']:.2f} dB, MCS {rows[0]['mcs']}", flush=True)
    for b in a.psr_db:
        # the boundary jammer at its margins: just across the nearest boundary (0.1 d_min), onto the
        # neighbouring point (0.5) and past it (1.0); fewer, more confident flips win in noise
        jammers = [("gaussian", lambda ch, b=b: JammedChannel(ch, gaussian_jam(b)))]
        jammers += [(f"boundary-m{m:g}", lambda ch, b=b, m=m: JammedChannel(ch, boundary_jam(b, margin=m)))
                    for m in a.margins]
        # Gaussian jamming concentrated on a fraction of the block (one codeword or part of one)
        jammers += [(f"burst-{f:g}", lambda ch, b=b, f=f: JammedChannel(ch, burst_jam(b, f))) for f in a.bursts]
        if a.channel == "rayleigh":
            jammers += [(f"pilot-{m}", lambda ch, b=b, m=m: JammedChannel(ch, pilot_jammer=pilot_jam(b, m)))
                        for m in PILOT_MODES]
        for name, wrap in jammers:
            if (name, b) in have:
                rows.append(have[name, b])
                print(f"psr {b:>5g} {name:9} psnr {rows[-1]['psnr']:6.2f}  (kept from --out)", flush=True)
                continue
            out = link(x, wrap(make()), a.snr_db, n_symbols, generator=g())
            v = psnr(out["x_hat"], x)
            rows.append({"attack": name, "psr_db": b, "psnr": v.mean().item(), "per_image": v.tolist(),
                         "lost": sum(not i["success"] for i in out["info"]),
                         "codeword_errors": [i["codeword_errors"] for i in out["info"]],
                         "threat_model": {"surface": "pilots" if name.startswith("pilot") else "channel", "norm": "power", "budget": b, "unit": "psr_db",
                                          "knowledge": "none" if name == "gaussian" else "white-box",
                                          "objective": "reconstruction", "targeted": False}})
            print(f"psr {b:>5g} {name:9} psnr {v.mean().item():6.2f}  lost {rows[-1]['lost']}/{len(x)}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--images", type=int, default=3)
    p.add_argument("--psr-db", type=float, nargs="+", default=list(PSR))
    p.add_argument("--channel", default="awgn", choices=("awgn", "rayleigh"),
                   help="awgn, or rayleigh with pilot-estimated CSI (default: awgn)")
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--side", type=int, default=128, help="centre crop of the shipped photos (256: the full photos)")
    p.add_argument("--n-symbols", type=int, default=None, help="channel uses per image (default: cbr 1/6, side^2 * 3 / 6)")
    p.add_argument("--damage-db", type=float, default=20.0)
    p.add_argument("--bursts", type=float, nargs="+", default=[0.5, 0.25, 0.125, 0.0625],
                   help="fractions of the block the burst jammer concentrates on (default: 1/2 .. 1/16)")
    p.add_argument("--margins", type=float, nargs="+", default=[0.1, 0.5, 1.0],
                   help="boundary jammer margins in units of the minimum distance (default: 0.1 0.5 1)")
    p.add_argument("--learned", nargs="+", default=["bench/results/attacks40_awgn.json"],
                   help="the learned codecs' grids (bench/attacks.py JSON), their records pooled")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/attacks_digital.json")
    p.add_argument("--reuse", action="store_true", help="re-read the digital records in --out; recompute the ratios only")
    p.add_argument("--extend", action="store_true",
                   help="keep the records --out already has (same attack and PSR), measure the rest of --psr-db")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    t0 = time.perf_counter()
    earlier = 0.0  # seconds the kept records took (an --extend chain or a --reuse adds them up)
    if a.reuse:
        old = json.loads(Path(a.out).read_text())
        rows, earlier = old["records"], old.get("seconds_total", old.get("seconds", 0.0))
    else:
        done = None
        if a.extend and Path(a.out).exists():
            old = json.loads(Path(a.out).read_text())
            keys = ("images", "channel", "snr_db", "side", "n_symbols")
            if any(old["config"].get(k) != getattr(a, k) for k in keys):
                raise SystemExit(f"--extend: {a.out} was measured with another {'/'.join(keys)}; "
                                 f"got {[old['config'].get(k) for k in keys]}")
            done, earlier = old["records"], old.get("seconds_total", old.get("seconds", 0.0))
        rows = run_digital(a, done)
    level = a.damage_db
    names = [n for n in dict.fromkeys(r["attack"] for r in rows) if n != "clean"]
    cross = {n: damage_crossing([(r["psr_db"], r["psnr"]) for r in rows if r["attack"] == n], level)
             for n in names}
    cross["pilot"] = strongest([cross[n] for n in names if n.startswith("pilot-")])  # the stronger pilot jammer
    # the strongest white-box jammer (any margin, any burst)
    cross["boundary"] = strongest([cross[n] for n in names if n.startswith(("boundary", "burst"))])
    digital = {n: None if k in (None, ">") else v for n, (v, k) in cross.items()}
    ratios = {}
    learned = [r for f in a.learned for r in learned_records(Path(f))]
    for codec in dict.fromkeys(r["codec"] for r in learned):
        for att in ("gaussian", "pgd", "universal", "pilot"):
            pts = [(r["budget"], r["attacked"]) for r in learned if r["codec"] == codec and r["attack"] == att]
            if not pts:
                continue
            need = damage_crossing(pts, level)
            # white-box against white-box (PGD / boundary jammer; pilot PGD / pilot jammer),
            # blind against blind (Gaussian, universal / Gaussian)
            ref = {"pgd": cross["boundary"], "pilot": cross["pilot"]}.get(att, cross["gaussian"])
            ratio, bound = power_ratio(need, ref)
            ratios[f"{codec}/{att}"] = {
                "psr_db_for_damage": None if need[1] == ">" else need[0], "learned_crossing": list(need),
                "digital_psr_db_for_damage": None if ref[1] in (None, ">") else ref[0], "digital_crossing": list(ref),
                "learned_over_digital_power": ratio if bound == "=" else None,
                "power_ratio": ratio, "power_ratio_bound": bound, "budgets": sorted(b for b, _ in pts)}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "attacks_digital", "config": vars(a), "seconds": time.perf_counter() - t0,
                               "seconds_total": earlier + time.perf_counter() - t0,
                               "damage_db": level, "digital_psr_db_for_damage": digital,
                               "digital_crossing": {n: list(c) for n, c in cross.items()},
                               "learned_vs_digital": ratios, "records": rows}, indent=1))
    print(f"PSR for mean PSNR <= {level:g} dB: digital {digital}")
    for k, v in ratios.items():
        r = "-" if v["power_ratio"] is None else f"{v['power_ratio_bound']} {v['power_ratio']:.3g}x"
        (pl, kl), (pd, kd) = v["learned_crossing"], v["digital_crossing"]
        print(f"  {k}: PSR learned {kl} {pl}, digital {kd} {pd}, learned / digital power {r}")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
