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

``--knows`` says what the white-box attacks know of the evaluated channel draw: ``all`` (the old rows,
Bob's thermal noise included: an oracle bound no physical attacker reaches), ``fading`` (the fading and
CSI error, fresh noise per draw: rows ending ``_fading``, and ``strongest_fading``).  ``noise_cos_*`` is
the cosine between an attack's perturbation at Bob's receiver and his noise realisation (chance:
about ``1/sqrt(2 n)`` = 0.004).  ``--strong-steps`` adds a longer key-EOT PGD (``eot_strong``, with
``--correlated-start`` its first restart from the correlated jammer's choice) and with ``--strong-attacks apgd``
a key-EOT APGD (``apgd_strong``) under the ``--strong-knows`` modes; ``--strong-only`` runs only those
and Gaussian jamming (``--with-correlated``: and the correlated jammer).  ``--repeat r`` sends the block
``r`` times inside one spreading (``r`` times the channel uses) and runs every attack against that link.
The JSON is written after every PSR.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import torch

from semguard.attacks.universal import UniversalPerturbation
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained
from semguard.attacks.base import CHANNEL_KNOWLEDGE
from semguard.defenses.keyed_attacks import CorrelatedJammer, GuessedKeyLink, KeyEOTAPGD, KeyEOTPGD
from semguard.defenses.keyed_spread import KeyedSpreadDefense
from semguard.link import Link
from semguard.metrics import psnr
from semguard.registry import build

from _photos import split_photos  # bench/, beside this script

SNR = 10.0
PSRS = (-20.0, -15.0, -10.0, -5.0)
log = logging.getLogger("defenses_keyed")


EVAL_SEED = 5  # the evaluated channel draw (``--seed``); the clean figures use draws 0 .. draws - 1


def _gen(seed: int | None = None) -> torch.Generator:
    return torch.Generator().manual_seed(EVAL_SEED if seed is None else seed)


def _r(t: torch.Tensor) -> list[float]:
    return [round(float(a), 3) for a in t.reshape(-1)]



def _jam(ref: torch.Tensor, psr: float, seed: int) -> torch.Tensor:
    return F.project_psr(F.complex_normal(ref.shape, generator=_gen(seed)), ref, psr, exact=True)


def noise_cosine(out: dict) -> list[float]:
    """Per block, the cosine ``Re<d, w> / (|d| |w|)`` between the perturbation ``d`` at Bob's receiver and
    his thermal noise ``w = raw - h s - d`` (a link result dict).  ``U_k^H`` is unitary and the one-tap
    equaliser divides both by the same gain, so this is also their cosine after despreading."""
    d = out["interference"]
    w = out["raw"] - out["state"].h * out["transmitted"] - d
    dot = (d.conj() * w).sum(1).real
    return _r(dot / (torch.linalg.vector_norm(d, dim=1) * torch.linalg.vector_norm(w, dim=1)).clamp_min(1e-30))


def _suffix(knows: str) -> str:
    return "" if knows == "all" else f"_{knows}"


def knowing_rows(link: Link, dl: Link, x: torch.Tensor, psr: float, knows: str, a: argparse.Namespace,
                 row: dict) -> dict[str, torch.Tensor]:
    """The white-box attacks under channel knowledge ``knows`` (their row keys end in ``_<knows>`` but for
    ``"all"``, the old names); returns those that lack the key, by name, for the strongest."""
    sfx, fading = _suffix(knows), getattr(link.channel, "fading", False)
    eot = {"knows": knows, "eot": a.eot}
    found: dict[str, torch.Tensor] = {}
    if not a.strong_only:
        pgd = build("attack", "pgd", surface="channel", psr_db=psr, steps=a.steps, **eot)
        r = pgd(link, x, SNR, generator=_gen())
        row["pgd_undefended" + sfx], row["noise_cos_pgd_undefended" + sfx] = _r(psnr(r.output, x)), noise_cosine(r.link)
        with torch.no_grad():
            intf = r.link["interference"]  # zero on the pilots (and on every further copy with --repeat)
            extra = dl.n_symbols(tuple(x.shape[1:])) - intf.shape[1]
            pad = torch.cat([intf, torch.zeros(x.shape[0], extra, dtype=torch.complex64)], 1)
            na = psnr(dl(x, SNR, generator=_gen(), interference=pad)["output"], x)
        r = pgd(dl, x, SNR, generator=_gen())
        row["key_known" + sfx], row["noise_cos_key_known" + sfx] = _r(psnr(r.output, x)), noise_cosine(r.link)
        r = KeyEOTPGD(surface="channel", psr_db=psr, steps=a.steps, keys=a.keys, **eot)(dl, x, SNR, generator=_gen())
        found |= {"non_adaptive": na, "eot": psnr(r.output, x)}
        row["noise_cos_eot" + sfx] = noise_cosine(r.link)
        log.info("psr %s knows=%s: eot %s (noise cosine %s)", psr, knows, _r(found["eot"]), row["noise_cos_eot" + sfx])
    if a.strong_steps and knows in a.strong_knows:
        strong = {"steps": a.strong_steps, "keys": a.strong_keys, "restarts": a.strong_restarts, **eot}
        if "pgd" in a.strong_attacks:
            r = KeyEOTPGD(surface="channel", psr_db=psr, correlated_start=a.correlated_start, **strong)(
                dl, x, SNR, generator=_gen())
            found["eot_strong"], row["noise_cos_eot_strong" + sfx] = psnr(r.output, x), noise_cosine(r.link)
            log.info("psr %s knows=%s: eot_strong %s", psr, knows, _r(found["eot_strong"]))
        if "apgd" in a.strong_attacks:
            r = KeyEOTAPGD(psr_db=psr, **strong)(dl, x, SNR, generator=_gen())
            found["apgd_strong"], row["noise_cos_apgd_strong" + sfx] = psnr(r.output, x), noise_cosine(r.link)
    if not a.strong_only or a.with_correlated:
        found["correlated"] = psnr(CorrelatedJammer(psr_db=psr, knows=knows, eot=a.eot)(dl, x, SNR, generator=_gen()).output, x)
    if not a.strong_only:
        if fading:
            pilot = build("attack", "pilot", psr_db=psr, steps=a.steps, **eot)
            row["pilot_undefended" + sfx] = _r(psnr(pilot(link, x, SNR, generator=_gen()).output, x))
            found["pilot"] = psnr(pilot(dl, x, SNR, generator=_gen()).output, x)
    log.info("psr %s knows=%s: %s", psr, knows, {k: _r(v) for k, v in found.items()})
    return found


def _strongest(row: dict, found: dict[str, torch.Tensor], clean: torch.Tensor, sfx: str) -> None:
    worst = torch.stack(list(found.values())).min(0)
    row["strongest" + sfx] = _r(worst.values)
    row["strongest_is" + sfx] = [list(found)[int(i)] for i in worst.indices]
    row["strongest_pct_of_clean" + sfx] = _r(100 * worst.values / clean)


def rows(link: Link, dl: Link, x: torch.Tensor, refs: torch.Tensor, a: argparse.Namespace,
         save: Callable[[list[dict]], None] = lambda done: None) -> list[dict]:
    ch = type(link.channel).__name__
    with torch.no_grad():
        cu = torch.stack([psnr(link(x, SNR, generator=_gen(s))["output"], x) for s in range(a.draws)]).mean(0)
        cd = torch.stack([psnr(dl(x, SNR, generator=_gen(s))["output"], x) for s in range(a.draws)]).mean(0)
    out = [{"channel": ch, "attack": "none", "undefended": _r(cu), "defended": _r(cd), "cost_db": _r(cu - cd),
            "draws": a.draws}]
    same = None
    if getattr(a, "clean_same_draw", False):  # the evaluated draw's own clean figure (its fade, its noise)
        with torch.no_grad():
            same = psnr(dl(x, SNR, generator=_gen())["output"], x)
        out[0]["defended_same_draw"] = _r(same)
    log.info("%s", out[-1])
    for psr in a.psr:
        t0 = time.time()
        row: dict = {"channel": ch, "psr_db": psr}
        with torch.no_grad():
            ou, od = link(x, SNR, generator=_gen(), decode=False), dl(x, SNR, generator=_gen(), decode=False)
            ju = _jam(ou["state"].h * ou["transmitted"], psr, 7)
            jd = _jam(od["state"].h * od["transmitted"], psr, 7)
            row["gaussian_undefended"] = _r(psnr(link(x, SNR, generator=_gen(), interference=ju)["output"], x))
            g_d = psnr(dl(x, SNR, generator=_gen(), interference=jd)["output"], x)
        common = {"gaussian": g_d}
        if a.universal_steps:
            uni = UniversalPerturbation(surface="channel", psr_db=psr, steps=a.universal_steps, batch=2, seed=3)
            uni.fit(GuessedKeyLink(dl, _gen(99)), refs, SNR)
            common["universal_eot"] = psnr(uni(dl, x, SNR, generator=_gen()).output, x)
        log.info("psr %s: %s", psr, {k: _r(v) for k, v in common.items()})
        for knows in a.knows:
            found = {**common, **knowing_rows(link, dl, x, psr, knows, a, row)}
            sfx = _suffix(knows)
            for k, v in found.items():
                row[k if k in common else k + sfx] = _r(v)
            _strongest(row, found, cd, sfx)
            if same is not None:
                row["strongest_pct_of_same_draw" + sfx] = _r(100 * torch.tensor(row["strongest" + sfx]) / same)
            log.info("psr %s knows=%s: %s", psr, knows, {k: row[k] for k in row if k.startswith("strongest")})
        row["seconds"] = round(time.time() - t0, 1)
        out.append(row)
        log.info("%s", row)
        save(out)
    return out


def main() -> None:
    global EVAL_SEED
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channel", choices=["awgn", "rayleigh"], default="awgn")
    p.add_argument("--images", type=int, default=2, help="evaluated shipped photos (the rest train the universal one)")
    p.add_argument("--steps", type=int, default=8, help="PGD steps (every PGD, pilot PGD included)")
    p.add_argument("--keys", type=int, default=8, help="guessed keys per EOT step")
    p.add_argument("--universal-steps", type=int, default=40)
    p.add_argument("--draws", type=int, default=4, help="noise draws for the clean figures")
    p.add_argument("--psr", type=float, nargs="+", default=list(PSRS), help="PSR budgets in dB")
    p.add_argument("--codec", default=DEFAULT_IMAGE_CODEC,
                   help="the image codec (a zoo name; e.g. switched-cbr1_12 for half the channel uses)")
    p.add_argument("--pilots", type=int, default=512, help="known symbols per block inside the spreading")
    p.add_argument("--knows", nargs="+", choices=CHANNEL_KNOWLEDGE, default=["all"],
                   help="what the white-box attacks know of the evaluated draw: all (Bob's noise too, the "
                        "oracle bound), fading (not the noise: physical), none")
    p.add_argument("--eot", type=int, default=1, help="draws of what the attack does not know, per guessed key")
    p.add_argument("--strong-steps", type=int, default=0, help="also a stronger key-EOT PGD with this many steps")
    p.add_argument("--strong-keys", type=int, default=16)
    p.add_argument("--strong-restarts", type=int, default=2)
    p.add_argument("--strong-knows", nargs="+", choices=CHANNEL_KNOWLEDGE, default=["fading"],
                   help="the knowledge modes the stronger attacks run under")
    p.add_argument("--strong-attacks", nargs="+", choices=["pgd", "apgd"], default=["pgd"],
                   help="the stronger attacks: key-EOT PGD (eot_strong), key-EOT APGD (apgd_strong)")
    p.add_argument("--strong-only", action="store_true",
                   help="run only the stronger attacks (with Gaussian jamming) under each --knows mode")
    p.add_argument("--with-correlated", action="store_true",
                   help="with --strong-only, also the correlated jammer (row correlated_<knows>) under each --knows mode")
    p.add_argument("--repeat", type=int, default=1,
                   help="copies of [data, pilots] inside one keyed spreading, combined at the receiver "
                        "(KeyedSpreadDefense(repeat=...): repeat times the channel uses); every attack runs "
                        "against that link")
    p.add_argument("--correlated-start", action="store_true",
                   help="the stronger key-EOT PGD's first restart starts from the correlated jammer's choice")
    p.add_argument("--seed", type=int, default=EVAL_SEED,
                   help="the evaluated channel draw (fade, CSI error, noise) of every attack")
    p.add_argument("--clean-same-draw", action="store_true",
                   help="also the clean PSNR on the evaluated draw, and every strongest as %% of it")
    p.add_argument("--out", default="bench/results/defenses_keyed.json")
    a = p.parse_args()
    EVAL_SEED = a.seed
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    x, refs = split_photos(a.images, "train the universal one")
    channel = AWGN() if a.channel == "awgn" else Rayleigh(csi="estimated", pilots=8)
    link = Link(pretrained(a.codec), channel)
    dfn = KeyedSpreadDefense(key=bytes(range(32)), pilots=a.pilots, repeat=a.repeat)
    n = link.n_symbols(tuple(x.shape[1:]))
    t = time.time()
    res = {"snr_db": SNR, "images": a.images, "steps": a.steps, "keys": a.keys, "universal_steps": a.universal_steps,
           "pilots": a.pilots, "seed": a.seed, "knows": a.knows, "eot": a.eot, "image_codec": a.codec, "defense": repr(dfn),
           "repeat": a.repeat, "channel_uses": {"undefended": n, "defended": a.repeat * (n + a.pilots)},
           "with_correlated": a.with_correlated,
           "strong": {"steps": a.strong_steps, "keys": a.strong_keys, "restarts": a.strong_restarts, "attacks": a.strong_attacks, "only": a.strong_only,
                      "knows": a.strong_knows, "correlated_start": a.correlated_start}, "rows": []}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save(done: list[dict]) -> None:  # after every PSR: a killed run keeps the rows it finished
        res["rows"], res["seconds"] = done, round(time.time() - t, 1)
        old = json.loads(out.read_text()) if out.exists() else {}
        out.write_text(json.dumps({**old, a.channel: res}, indent=2) + "\n")  # other channels' runs kept

    save(rows(link, dfn.wrap(link), x, refs, a, save))
    log.info("-> %s (%s s)", out, res["seconds"])

if __name__ == "__main__":
    main()
