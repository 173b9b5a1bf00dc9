"""Keyed spreading (``keyed-spread``, :mod:`semguard.defenses.keyed_spread`) on the default image codec
against the attacks that know it but not its key.  Prints one line per row and writes JSON.

    PYTHONPATH=src python bench/defenses_keyed.py --threads 1 --channel awgn --images 2 --steps 6 --keys 4 \\
        --universal-steps 20 --out bench/results/defenses_keyed.json

SNR 10 dB; PSR -20 / -15 / -10 / -5 dB (channel surface); PSNR in dB per photo (the first ``--images``
shipped 256x256 photos; the universal perturbation is learned on the remaining photos with their flips
and transposes).  Per PSR, on the defended link unless named:

* ``gaussian``: white Gaussian jamming at the budget (undefended and defended, one draw);
* ``pgd_undefended``: white-box PGD on the undefended link; ``non_adaptive``: it replayed through the
  defended link (zero on the pilots);
* ``key_known``: PGD through the defended link with its key (the bound: security rests on the key);
* ``eot``: PGD averaging each step over ``--keys`` guessed keys (channel draw known);
* ``universal_eot``: a universal perturbation learned through guessed keys (a fresh one every step);
* ``correlated``: the key-agnostic re-radiation ``c h s`` plus Gaussian rest (grid of phase and fraction);
* ``pilot`` (Rayleigh): pilot PGD on the undefended and the defended link;
* ``strongest``: per photo the worst of every attack that lacks the key.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from semguard.attacks.universal import UniversalPerturbation
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained
from semguard.defenses.keyed_attacks import CorrelatedJammer, GuessedKeyLink, KeyEOTPGD
from semguard.defenses.keyed_spread import KeyedSpreadDefense
from semguard.link import Link
from semguard.metrics import psnr
from semguard.registry import build

from _photos import split_photos  # bench/, beside this script

SNR = 10.0
PSRS = (-20.0, -15.0, -10.0, -5.0)
log = logging.getLogger("defenses_keyed")


def _gen(seed: int = 5) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _r(t: torch.Tensor) -> list[float]:
    return [round(float(a), 3) for a in t.reshape(-1)]



def _jam(ref: torch.Tensor, psr: float, seed: int) -> torch.Tensor:
    return F.project_psr(F.complex_normal(ref.shape, generator=_gen(seed)), ref, psr, exact=True)


def rows(link: Link, dl: Link, x: torch.Tensor, refs: torch.Tensor, a: argparse.Namespace) -> list[dict]:
    ch = type(link.channel).__name__
    fading = getattr(link.channel, "fading", False)
    with torch.no_grad():
        cu = torch.stack([psnr(link(x, SNR, generator=_gen(s))["output"], x) for s in range(a.draws)]).mean(0)
        cd = torch.stack([psnr(dl(x, SNR, generator=_gen(s))["output"], x) for s in range(a.draws)]).mean(0)
    out = [{"channel": ch, "attack": "none", "undefended": _r(cu), "defended": _r(cd), "cost_db": _r(cu - cd),
            "draws": a.draws}]
    log.info("%s", out[-1])
    m = dl.codec.pilots
    for psr in a.psr:
        t0 = time.time()
        row: dict = {"channel": ch, "psr_db": psr}
        with torch.no_grad():
            ou, od = link(x, SNR, generator=_gen(), decode=False), dl(x, SNR, generator=_gen(), decode=False)
            ju = _jam(ou["state"].h * ou["transmitted"], psr, 7)
            jd = _jam(od["state"].h * od["transmitted"], psr, 7)
            row["gaussian_undefended"] = _r(psnr(link(x, SNR, generator=_gen(), interference=ju)["output"], x))
            g_d = psnr(dl(x, SNR, generator=_gen(), interference=jd)["output"], x)
        pgd = build("attack", "pgd", surface="channel", psr_db=psr, steps=a.steps)
        r = pgd(link, x, SNR, generator=_gen())
        row["pgd_undefended"] = _r(psnr(r.output, x))
        with torch.no_grad():
            pad = torch.cat([r.link["interference"], torch.zeros(x.shape[0], m, dtype=torch.complex64)], 1)
            na = psnr(dl(x, SNR, generator=_gen(), interference=pad)["output"], x)
        row["key_known"] = _r(psnr(pgd(dl, x, SNR, generator=_gen()).output, x))
        eot = psnr(KeyEOTPGD(surface="channel", psr_db=psr, steps=a.steps, keys=a.keys)(dl, x, SNR, generator=_gen()).output, x)
        uni = UniversalPerturbation(surface="channel", psr_db=psr, steps=a.universal_steps, batch=2, seed=3)
        uni.fit(GuessedKeyLink(dl, _gen(99)), refs, SNR)
        un = psnr(uni(dl, x, SNR, generator=_gen()).output, x)
        co = psnr(CorrelatedJammer(psr_db=psr)(dl, x, SNR, generator=_gen()).output, x)
        found = {"gaussian": g_d, "non_adaptive": na, "eot": eot, "universal_eot": un, "correlated": co}
        if fading:
            row["pilot_undefended"] = _r(psnr(build("attack", "pilot", psr_db=psr, steps=a.steps)(
                link, x, SNR, generator=_gen()).output, x))
            found["pilot"] = psnr(build("attack", "pilot", psr_db=psr, steps=a.steps)(dl, x, SNR, generator=_gen()).output, x)
        for k, v in found.items():
            row[k] = _r(v)
        worst = torch.stack(list(found.values())).min(0)
        row["strongest"] = _r(worst.values)
        row["strongest_is"] = [list(found)[int(i)] for i in worst.indices]
        row["strongest_pct_of_clean"] = _r(100 * worst.values / cd)
        row["seconds"] = round(time.time() - t0, 1)
        out.append(row)
        log.info("%s", row)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channel", choices=["awgn", "rayleigh"], default="awgn")
    p.add_argument("--images", type=int, default=2, help="evaluated shipped photos (the rest train the universal one)")
    p.add_argument("--steps", type=int, default=8, help="PGD steps (every PGD, pilot PGD included)")
    p.add_argument("--keys", type=int, default=8, help="guessed keys per EOT step")
    p.add_argument("--universal-steps", type=int, default=40)
    p.add_argument("--draws", type=int, default=4, help="noise draws for the clean figures")
    p.add_argument("--psr", type=float, nargs="+", default=list(PSRS), help="PSR budgets in dB")
    p.add_argument("--pilots", type=int, default=512, help="known symbols per block inside the spreading")
    p.add_argument("--out", default="bench/results/defenses_keyed.json")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    x, refs = split_photos(a.images, "train the universal one")
    channel = AWGN() if a.channel == "awgn" else Rayleigh(csi="estimated", pilots=8)
    link = Link(pretrained(DEFAULT_IMAGE_CODEC), channel)
    dfn = KeyedSpreadDefense(key=bytes(range(32)), pilots=a.pilots)
    t = time.time()
    res = {"snr_db": SNR, "images": a.images, "steps": a.steps, "keys": a.keys, "universal_steps": a.universal_steps,
           "pilots": a.pilots, "image_codec": DEFAULT_IMAGE_CODEC, "defense": repr(dfn),
           "rows": rows(link, dfn.wrap(link), x, refs, a)}
    res["seconds"] = round(time.time() - t, 1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    old = json.loads(out.read_text()) if out.exists() else {}
    out.write_text(json.dumps({**old, a.channel: res}, indent=2) + "\n")
    log.info("-> %s (%s s)", out, res["seconds"])


if __name__ == "__main__":
    main()
