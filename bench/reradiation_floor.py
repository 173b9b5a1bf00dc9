"""Where keyed spreading's floor under the correlated re-radiation jammer comes from (issue 19, session 15).

The jammer ``d = c h s + u`` (``CorrelatedJammer``, ``knows="fading"``) is the strongest physical attack
on the keyed-spread link over Rayleigh.  Is its floor set by the receiver's channel estimate being fooled,
or by the signal it cancels?  Per PSR, on the jammer's own evaluated draw and its chosen ``c``:

* ``actual``: the jammer as evaluated; ``replayed``: its interference sent again (a sanity check, equal);
* ``gain_err`` / ``floor_ratio``: the receiver's despread gain ``a`` against the true ``h (1 + c) / h_est``,
  and its noise floor ``s2`` against the true ``(N0 + P_u) / |h_est|^2``;
* ``genie``: the same received block decoded with the true gain and floor (no estimation error at all);
* ``csi_reradiated``: the 8 public CSI pilots re-radiated too (``h_est + c h``): the jammer is then
  a channel change that the public estimate sees as well;
* ``sinr_bound``: the encoded symbols plus fresh white noise at the SINR the jammer leaves,
  ``|a|^2 / s2``, through the same decoder: what any receiver of this decoder gets once the signal is
  attenuated, with perfect knowledge of everything;
* physical relays with the chosen ``|c|``: ``relay_phase_unknown`` (Bob's fade phase unknown: mean and
  worst over 8 phases of ``c``) and ``relay_delayed`` (re-radiation one symbol late);
* ``spoof_guessed``: the whole budget on a fake pilot pattern ``-beta h U_k' [0, p]`` in anti-phase, under
  each of 8 guessed keys (the worst; an attacker who guesses where the pilots are), and ``spoof_keyed``
  with the true key (the bound);
* ``gaussian``: white Gaussian jamming at the budget.

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/reradiation_floor.py --threads 1 --channel rayleigh \\
        --out bench/results/defenses_keyed_s15_floor.json
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
from pathlib import Path

import torch

from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.channels.base import ChannelState
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, pretrained
from semguard.defenses.keyed_attacks import CorrelatedJammer
from semguard.defenses.keyed_spread import KeyedSpreadDefense, gain_and_floor
from semguard.link import Link
from semguard.metrics import psnr

from _photos import split_photos  # bench/, beside this script

SNR = 10.0
NONCE = b"\x00" * 12  # the link's default nonce, the one every attack's send uses
log = logging.getLogger("reradiation_floor")


def _gen(seed: int = 5) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _r(t: torch.Tensor) -> list[float]:
    return [round(float(a), 3) for a in t.reshape(-1)]


def true_gain_and_floor(state: ChannelState, c: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The despread block's true gain ``h (1 + c) / h_est [B, 1]`` and its true white noise-plus-jamming
    power ``(N0 + P_u) / |h_est|^2 [B, 1]`` for a flat fade, re-radiation ``c`` and Gaussian part ``u``."""
    h, he = state.h[:, :1], state.h_est[:, :1]
    pu = u.abs().square().mean(1, keepdim=True)
    return h * (1 + c) / he, (state.n0 + pu) / he.abs().square()


def decode_with(dl: Link, out: dict, a: torch.Tensor, s2: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """PSNR of the received block of ``out`` despread and decoded with gain ``a`` and floor ``s2``."""
    spc = dl.codec
    y_d, st_d = dl.cipher.decrypt_received(out["received"], out["state"], dl._key, NONCE)
    y_zf, _ = st_d.zero_forced(y_d)
    n = y_zf.shape[1] - spc.pilots
    g = (st_d.n0 * a.abs().square() / s2).sqrt().to(y_zf.dtype).expand(-1, n)
    st = ChannelState(h=g, h_est=g, snr_db=st_d.snr_db, n0=st_d.n0, equalizer="zf")
    return psnr(spc.codec.decode(y_zf[:, :n] / a, st), x)


def estimated(dl: Link, out: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The receiver's own despread gain and floor (``gain_and_floor``, as ``SpreadPilotCodec.correct``)."""
    y_d, st_d = dl.cipher.decrypt_received(out["received"], out["state"], dl._key, NONCE)
    y_zf, noise = st_d.zero_forced(y_d)
    n = y_zf.shape[1] - dl.codec.pilots
    return gain_and_floor(y_zf[:, n:], dl.codec.p, noise.mean(1, keepdim=True), y_zf[:, :n])


def sinr_bound(dl: Link, out: dict, a: torch.Tensor, s2: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The encoded symbols plus fresh white noise of power ``s2 / |a|^2`` through the same decoder."""
    spc = dl.codec
    n = out["symbols"].shape[1] - spc.pilots
    sym = out["symbols"][:, :n]
    v = s2 / a.abs().square()
    y = sym + F.complex_noise(tuple(sym.shape), v, generator=_gen(11))
    g = (out["state"].n0 / v).sqrt().to(sym.dtype).expand(-1, n)
    st = ChannelState(h=g, h_est=g, snr_db=out["state"].snr_db, n0=out["state"].n0, equalizer="zf")
    return psnr(spc.codec.decode(y, st), x)


def spoof(dl: Link, x: torch.Tensor, out: dict, psr: float, key: bytes, seed: int) -> torch.Tensor:
    """PSNR under ``-beta h U_key [0, p]``: the whole budget on a fake pilot pattern in anti-phase."""
    s = out["transmitted"]
    m = dl.codec.pilots
    z = torch.zeros_like(s)
    z[:, -m:] = dl.codec.p
    fake = dl.cipher.encrypt(z, key, NONCE)
    rx = out["state"].h * s
    beta = (10 ** (psr / 10) * F.block_power(rx) * s.shape[1] / m).sqrt().unsqueeze(1)
    d = -beta * out["state"].h[:, :1] / out["state"].h[:, :1].abs() * fake
    with torch.no_grad():
        return psnr(dl(x, SNR, generator=_gen(seed), interference=d)["output"], x)


def psr_row(link: Link, dl: Link, x: torch.Tensor, psr: float, guesses: int, seed: int) -> dict:
    """Every figure of one PSR on channel draw ``seed`` (the jammer's and every replay's)."""
    row: dict = {"psr_db": psr, "seed": seed}
    fading = getattr(link.channel, "fading", False)
    jam = CorrelatedJammer(psr_db=psr, knows="fading", eot=1)
    r = jam(dl, x, SNR, generator=_gen(seed))
    assert jam.chosen_c is not None
    out = r.link
    hs = out["state"].h * out["transmitted"]
    # c as radiated (the budget projection may rescale the chosen one); u is then orthogonal to h s
    c = ((hs.conj() * out["interference"]).sum(1, keepdim=True) / hs.abs().square().sum(1, keepdim=True))
    row["c_chosen"] = [[round(float(v.real), 4), round(float(v.imag), 4)] for v in jam.chosen_c.reshape(-1)]
    u = out["interference"] - c * hs
    found = {"actual": psnr(r.output, x)}
    with torch.no_grad():
        found["clean_same_draw"] = psnr(dl(x, SNR, generator=_gen(seed))["output"], x)
        found["replayed"] = psnr(dl(x, SNR, generator=_gen(seed), interference=out["interference"])["output"], x)
        a_t, s2_t = true_gain_and_floor(out["state"], c, u)
        a_e, s2_e = estimated(dl, out)
        row["c"] = [[round(float(v.real), 4), round(float(v.imag), 4)] for v in c.reshape(-1)]
        row["gain_err"] = _r((a_e / a_t - 1).abs())
        row["floor_ratio"] = _r(s2_e / s2_t)
        row["sinr_db"] = _r(10 * torch.log10(a_t.abs().square() / s2_t))
        st = out["state"]
        row["clean_snr_db"] = _r(10 * torch.log10(st.h_est[:, :1].abs().square() / st.n0 *
                                                  (st.h[:, :1] / st.h_est[:, :1]).abs().square()))
        found["genie"] = decode_with(dl, out, a_t, s2_t, x)
        found["estimated_redecoded"] = decode_with(dl, out, a_e, s2_e, x)
        found["sinr_bound"] = sinr_bound(dl, out, a_t, s2_t, x)
        if fading:
            found["csi_reradiated"] = psnr(dl(x, SNR, generator=_gen(seed), interference=out["interference"],
                                              pilot_interference=c * st.h[:, :1])["output"], x)
        phases = []
        for k in range(8):
            rot = complex(math.cos(2 * math.pi * k / 8), math.sin(2 * math.pi * k / 8))
            phases.append(psnr(dl(x, SNR, generator=_gen(seed), interference=c * rot * hs + u)["output"], x))
        ph = torch.stack(phases)
        found["relay_phase_unknown_mean"], found["relay_phase_unknown_worst"] = ph.mean(0), ph.min(0).values
        found["relay_delayed"] = psnr(dl(x, SNR, generator=_gen(seed),
                                         interference=c * torch.roll(hs, 1, dims=1) + u)["output"], x)
        found["gaussian"] = psnr(dl(x, SNR, generator=_gen(seed), interference=F.project_psr(
            F.complex_normal(hs.shape, generator=_gen(7)), hs, psr, exact=True))["output"], x)
        rng = _gen(123)
        sp = [spoof(dl, x, out, psr, bytes(torch.randint(0, 256, (32,), generator=rng).to(torch.uint8).tolist()), seed)
              for _ in range(guesses)]
        found["spoof_guessed"] = torch.stack(sp).min(0).values
        found["spoof_keyed"] = spoof(dl, x, out, psr, dl._key, seed)
    for k, v in found.items():
        row[k] = _r(v)
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channel", choices=["awgn", "rayleigh"], default="rayleigh")
    p.add_argument("--images", type=int, default=2)
    p.add_argument("--draws", type=int, default=4, help="noise draws for the clean figures")
    p.add_argument("--guesses", type=int, default=8, help="guessed keys of the pilot spoofer")
    p.add_argument("--pilots", type=int, default=512)
    p.add_argument("--psr", type=float, nargs="+", default=[-10.0, -20.0, -15.0, -5.0])
    p.add_argument("--seeds", type=int, nargs="+", default=[5, 0, 1, 2, 3],
                   help="channel draws attacked (5: the session-14 table's draw; 0-3: the clean figure's)")
    p.add_argument("--out", default="bench/results/defenses_keyed_s15_floor.json")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    x, _ = split_photos(a.images, "unused")
    t = time.time()

    def chan(pilots: int) -> AWGN | Rayleigh:
        return AWGN() if a.channel == "awgn" else Rayleigh(csi="estimated", pilots=pilots)

    codec = pretrained(DEFAULT_IMAGE_CODEC)
    link = Link(codec, chan(8))
    dl = KeyedSpreadDefense(key=bytes(range(32)), pilots=a.pilots).wrap(link)
    n = link.n_symbols(tuple(x.shape[1:]))
    with torch.no_grad():
        def clean(lk: Link) -> torch.Tensor:
            return torch.stack([psnr(lk(x, SNR, generator=_gen(s))["output"], x) for s in range(a.draws)]).mean(0)
        cd, cu = clean(dl), clean(link)
        same = clean(Link(codec, chan(8 + a.pilots))) if a.channel == "rayleigh" else cu
    pub = 8 if a.channel == "rayleigh" else 0
    res: dict = {"channel": a.channel, "snr_db": SNR, "image_codec": DEFAULT_IMAGE_CODEC, "pilots": a.pilots,
                 "clean": {"defended": _r(cd), "undefended": _r(cu), "undefended_same_pilots": _r(same),
                           "cost_db": _r(cu - cd), "cost_db_same_pilots": _r(same - cd),
                           "channel_uses": {"undefended": n + pub, "defended": n + a.pilots + pub,
                                            "extra_pct": round(100 * a.pilots / (n + pub), 2)}},
                 "rows": []}
    log.info("%s", res["clean"])
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    skip = ("c", "c_chosen", "gain_err", "floor_ratio", "sinr_db", "clean_snr_db")
    for psr in a.psr:
        t0 = time.time()
        draws = []
        for seed in a.seeds:
            row = psr_row(link, dl, x, psr, a.guesses, seed)
            row["pct_of_same_draw_clean"] = {k: _r(100 * torch.tensor(row[k]) / torch.tensor(row["clean_same_draw"]))
                                             for k in row if isinstance(row[k], list) and k not in skip}
            draws.append(row)
            log.info("%s", row)
        figs = [k for k in draws[0] if isinstance(draws[0][k], list) and k not in skip]
        mean = {k: torch.tensor([d[k] for d in draws]).mean(0) for k in figs}
        res["rows"].append({
            "psr_db": psr, "seeds": a.seeds, "draws": draws, "mean": {k: _r(v) for k, v in mean.items()},
            # the target's figure over the same fades: mean attacked PSNR over mean clean PSNR of those draws
            "pct_of_clean_same_draws": {k: _r(100 * v / mean["clean_same_draw"]) for k, v in mean.items()},
            "worst_draw_pct": {k: _r(torch.tensor([d["pct_of_same_draw_clean"][k] for d in draws]).min(0).values)
                               for k in figs},
            "seconds": round(time.time() - t0, 1)})
        res["seconds"] = round(time.time() - t, 1)
        log.info("psr %s: %% of clean over the same draws %s", psr, res["rows"][-1]["pct_of_clean_same_draws"])
        old = json.loads(out.read_text()) if out.exists() else {}
        out.write_text(json.dumps({**old, a.channel: res}, indent=2) + "\n")  # after every PSR
    log.info("-> %s (%s s)", out, res["seconds"])


if __name__ == "__main__":
    main()
