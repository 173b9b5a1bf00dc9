"""DeepSC under a radiated adversarial jammer, undefended, keyed spreading with one and two copies, and
a repetition without the key at the same channel uses.  Prints one line per attack and writes JSON.

    PYTHONPATH=src python bench/defenses_text.py --threads 1 --codec deepsc --channel awgn --n 16 \\
        --out bench/results/defenses_text_s19_awgn.json

Bob at SNR 10 dB; PSR (``--psr``, default -5 dB) measured at the receiver over the whole sent block
(data, pilots and copies); BLEU-1 per sentence against the sent sentence (the first ``--n`` shipped
sentences of 10 tokens, 80 symbols each).  The links (``uses``: complex channel uses per sentence):

* ``undefended``: DeepSC as shipped (80 uses);
* ``keyed_r1``: ``keyed-spread`` with 16 pilots, one copy (96 uses, as ``semguard.defenses.deploy``);
* ``keyed_r2``: ``keyed-spread`` with 8 pilots per copy, ``repeat=2`` (176 uses);
* ``repeat_pilots``: the same two copies and pilots and the same combining receiver, no key (176 uses);
* ``repeat_csi``: the same 176 symbols, the copies combined by the channel's CSI (the pilots unused).

Per link, under each ``--knows`` (``all``: the attacker knows the evaluated draw, Bob's noise included,
the oracle bound; ``fading``: fading and CSI error, fresh noise per draw, the physical threat), the
attacks that know the defence but not the key: ``gaussian`` (control), ``pgd_<loss>`` per ``--losses``
(PGD through the link; on a keyed link every step averages ``--keys`` guessed keys, ``KeyEOTPGD``, its
first restart from the correlated jammer's choice), ``apgd_<loss>`` with ``--apgd STEPS`` (key-EOT APGD,
``KeyEOTAPGD``, keyed links only), ``correlated`` (the re-radiation ``c h s`` plus
Gaussian rest, ``CorrelatedJammer``), ``non_adaptive`` (the undefended ``pgd_ce`` replayed; zero on the
extra symbols) and, over Rayleigh, ``pilot`` (PGD on the CSI pilots).  ``worst`` is per sentence the
lowest of them; ``key_known`` (PGD with the key, keyed links) is the bound that shows the protection
rests on the key and is not in ``worst``.  ``told_sinr_db`` is the SINR the keyed receiver hands the
decoder under the correlated jammer, and ``oracle_gain`` (``keyed_r1``, AWGN) its BLEU-1 when the
receiver is handed the true despread gain and floor instead of its pilots' estimate.  ``noise_cos`` is
each PGD's mean cosine between its perturbation and Bob's noise realisation.

The JSON is rewritten after every link, so a stopped run keeps what it finished.  ``--render A.json
B.json`` prints the docs table of finished files; ``--union A.json B.json`` the per-sentence worst over
both runs' attack sets (same sentences and seed).
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

from semguard.attacks.base import CHANNEL_KNOWLEDGE
from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.channels.base import ChannelState
from semguard.cli.attack import _data, _metric, load_codec
from semguard.defenses.deploy import replay, session_key
from semguard.defenses.keyed_attacks import CorrelatedJammer, KeyEOTAPGD, KeyEOTPGD
from semguard.defenses.keyed_spread import KeyedSpreadDefense, SpreadPilotCodec
from semguard.link import Link
from semguard.registry import build

SNR = 10.0
LINKS = ("undefended", "keyed_r1", "keyed_r2", "repeat_pilots", "repeat_csi")
log = logging.getLogger("defenses_text")


class RepeatCSICodec(SpreadPilotCodec):
    """The copies of :class:`SpreadPilotCodec` (same symbols, same uses), combined by the channel's own
    CSI per symbol (maximum ratio over ``|h_est|^2 / N0``); its pilots are sent and not read."""

    def correct(self, y: Tensor, state: ChannelState) -> tuple[Tensor, ChannelState]:
        y_zf, noise = state.zero_forced(y)
        b, r = y.shape[0], self.repeat
        z = y_zf.reshape(b, r, -1)[:, :, : -self.pilots]
        w = (1.0 / noise).reshape(b, r, -1)[:, :, : -self.pilots]  # |h_est|^2 / N0 per symbol and copy
        x_hat = (z * w).sum(1) / w.sum(1)
        h = (state.n0 * w.sum(1)).sqrt().to(y.dtype)
        return x_hat, ChannelState(h=h, h_est=h, snr_db=state.snr_db, n0=state.n0, equalizer="zf")


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _r(t: Tensor | list[float]) -> list[float]:
    return [round(float(a), 4) for a in torch.as_tensor(t).reshape(-1)]


def _mean(v: list[float]) -> float:
    return round(sum(v) / len(v), 4)


def make_links(codec: Any, channel: Any, seed: int) -> dict[str, Link]:
    base = Link(codec, channel)
    key = session_key(seed)
    return {
        "undefended": base,
        "keyed_r1": KeyedSpreadDefense(key=key, pilots=16).wrap(base),
        "keyed_r2": KeyedSpreadDefense(key=key, pilots=8, repeat=2).wrap(base),
        "repeat_pilots": Link(SpreadPilotCodec(codec, 8, 2), channel),
        "repeat_csi": Link(RepeatCSICodec(codec, 8, 2), channel),
    }


def noise_cosine(out: dict[str, Any]) -> list[float]:
    """Per block, the cosine ``Re<d, w> / (|d| |w|)`` between the perturbation ``d`` at Bob's receiver and
    his noise ``w`` (chance: about ``1 / sqrt(2 n)``): an attack that knows the noise aims along it."""
    d = out["interference"]
    w = out["raw"] - out["state"].h * out["transmitted"] - d
    dot = (d.conj() * w).sum(1).real
    return _r(dot / (torch.linalg.vector_norm(d, dim=1) * torch.linalg.vector_norm(w, dim=1)).clamp_min(1e-30))


def told_sinr_db(link: Link, out: dict[str, Any]) -> float | None:
    """Mean over blocks of the SINR (dB) a pilot receiver hands the decoder (None for the shipped codec)."""
    if not isinstance(link.codec, SpreadPilotCodec):
        return None
    with torch.no_grad():
        _, st = link.codec.correct(out["deciphered"], out["deciphered_state"])
    return round(10 * math.log10((st.h.abs().square() / st.n0).mean().item()), 3)


def oracle_gain(
    link: Link, x: Tensor, jam: CorrelatedJammer, psr: float, metric: Any, seed: int
) -> dict[str, list[float]]:
    """``keyed_r1`` over AWGN under ``jam``'s last choice ``c`` re-radiated with a fresh Gaussian rest:
    BLEU-1 with the pilots' gain and floor (``pilots``) and with the true despread gain ``1 + c`` and
    floor ``N0 + (rho - |c|^2)`` (the rest, white after despreading) instead (``oracle``)."""
    c = jam.chosen_c
    assert c is not None
    rho = 10.0 ** (psr / 10.0)
    with torch.no_grad():
        ref = link(x, SNR, generator=_gen(seed), decode=False)
        r = ref["transmitted"]  # AWGN: h = 1
        noise = F.normalize_power(F.complex_normal(r.shape, generator=_gen(seed + 101)))
        rest = (rho - c.abs().square()).clamp_min(0)
        d = c * r + noise * rest.sqrt()
        out = link(x, SNR, generator=_gen(seed), interference=d, decode=False)
        st = out["deciphered_state"]
        y_zf, n0 = st.zero_forced(out["deciphered"])
        n = y_zf.shape[1] - link.codec.pilots
        a = 1 + c
        s2 = n0.mean(1, keepdim=True) + rest
        g = (st.n0 * a.abs().square() / s2).sqrt().to(y_zf.dtype).expand(-1, n)
        state = ChannelState(h=g, h_est=g, snr_db=st.snr_db, n0=st.n0, equalizer="zf")
        inner = link.codec.codec
        oracle = metric(inner.decode(y_zf[:, :n] / a, state, **inner.decode_kwargs(x)), x)
        pilots = metric(link(x, SNR, generator=_gen(seed), interference=d)["output"], x)
        return {"pilots": _r(pilots), "oracle": _r(oracle)}


def attack_link(
    name: str,
    link: Link,
    base: Link,
    x: Tensor,
    psr: float,
    a: argparse.Namespace,
    metric: Any,
    undefended_pgd: dict[str, Any],
) -> dict[str, Any]:
    """Every attack of the set on ``link``; per-sentence BLEU-1 by attack, worst per knows mode."""
    seed = a.seed
    keyed = link.cipher is not None
    fading = bool(getattr(link.channel, "fading", False))
    res: dict[str, Any] = {"uses": link.n_symbols(tuple(x.shape[1:])), "attacks": {}, "seconds": {}}
    with torch.no_grad():
        res["clean_draws"] = _r(
            torch.stack([metric(link(x, SNR, generator=_gen(s))["output"], x) for s in range(a.draws)]).mean(0)
        )
        res["clean_same_draw"] = _r(metric(link(x, SNR, generator=_gen(seed))["output"], x))

    def put(key: str, scores: Tensor | list[float], t0: float) -> None:
        res["attacks"][key] = _r(scores)
        res["seconds"][key] = round(time.time() - t0, 1)
        log.info(
            "%-14s psr %g %-22s BLEU-1 %.3f (%.0f s)", name, psr, key, _mean(res["attacks"][key]), res["seconds"][key]
        )

    t0 = time.time()
    g = build("attack", "gaussian", surface="channel", psr_db=psr, seed=seed)
    put("gaussian", metric(g(link, x, SNR, generator=_gen(seed)).output, x), t0)
    for knows in a.knows:
        sfx = f"@{knows}"
        common = {"knows": knows, "eot": a.eot}
        for loss in a.losses:
            t0 = time.time()
            kw = {
                "surface": "channel",
                "psr_db": psr,
                "steps": a.steps,
                "restarts": a.restarts,
                "task_loss": loss,
                "seed": seed,
                **common,
            }
            if keyed:
                atk = KeyEOTPGD(keys=a.keys, correlated_start=True, **kw)
            else:
                atk = build("attack", "pgd", **kw)
            r = atk(link, x, SNR, generator=_gen(seed))
            put(f"pgd_{loss}{sfx}", metric(r.output, x), t0)
            res.setdefault("noise_cos", {})[f"pgd_{loss}{sfx}"] = _mean(noise_cosine(r.link))
            if name == "undefended":
                undefended_pgd[f"{loss}{sfx}"] = r
            if a.apgd and keyed:  # semguard's plain APGD has no channel surface
                t0 = time.time()
                akw = {k: v for k, v in kw.items() if k != "surface"}
                akw["steps"] = a.apgd
                ra = KeyEOTAPGD(keys=a.keys, **akw)(link, x, SNR, generator=_gen(seed))
                put(f"apgd_{loss}{sfx}", metric(ra.output, x), t0)
                res["noise_cos"][f"apgd_{loss}{sfx}"] = _mean(noise_cosine(ra.link))
            if keyed and a.key_known:
                t0 = time.time()
                rk = build("attack", "pgd", **kw)(link, x, SNR, generator=_gen(seed))
                res.setdefault("key_known", {})[f"pgd_{loss}{sfx}"] = _r(metric(rk.output, x))
        t0 = time.time()
        jam = CorrelatedJammer(psr_db=psr, knows=knows, eot=max(a.eot, 2) if knows != "all" else 1, seed=seed)
        rj = jam(link, x, SNR, generator=_gen(seed))
        put(f"correlated{sfx}", metric(rj.output, x), t0)
        res.setdefault("told_sinr_db", {})[f"correlated{sfx}"] = told_sinr_db(link, rj.link)
        res.setdefault("chosen_c", {})[f"correlated{sfx}"] = [
            [round(float(v.real), 3), round(float(v.imag), 3)] for v in jam.chosen_c.reshape(-1)
        ]
        if name == "keyed_r1" and not fading:
            res.setdefault("oracle_gain", {})[f"correlated{sfx}"] = oracle_gain(link, x, jam, psr, metric, seed)
        if name != "undefended" and f"ce{sfx}" in undefended_pgd:
            t0 = time.time()
            out = replay(link, x, SNR, undefended_pgd[f"ce{sfx}"], _gen(seed))
            put(f"non_adaptive{sfx}", metric(out["output"], x), t0)
        if fading:
            t0 = time.time()
            pilot = build("attack", "pilot", psr_db=psr, steps=a.steps, seed=seed, **common)
            put(f"pilot{sfx}", metric(pilot(link, x, SNR, generator=_gen(seed)).output, x), t0)
        keys = [k for k in res["attacks"] if k.endswith(sfx) or k == "gaussian"]
        worst = torch.stack([torch.tensor(res["attacks"][k]) for k in keys]).min(0)
        res[f"worst{sfx}"] = _r(worst.values)
        res[f"worst_is{sfx}"] = [keys[int(i)] for i in worst.indices]
        res[f"worst_mean{sfx}"] = _mean(res[f"worst{sfx}"])
        log.info("%-14s psr %g worst%s BLEU-1 %.3f", name, psr, sfx, res[f"worst_mean{sfx}"])
    res["means"] = {k: _mean(v) for k, v in res["attacks"].items()}
    res["clean_mean"] = _mean(res["clean_draws"])
    return res


def _most(names: list[str]) -> str:
    return max(set(names), key=names.count).split("@")[0]


def render(paths: list[str]) -> str:
    """A markdown table of result files: per link its uses, clean BLEU-1 (mean of the clean draws),
    Gaussian, and the worst per sentence under each knowledge mode (the attack that is worst most often)."""
    lines = [
        "| file | codec | channel | n | link | uses | clean | Gaussian | worst, noise known | worst, noise not known |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for path in paths:
        d = json.loads(Path(path).read_text())
        c = d["config"]
        for psr, rows in d["by_psr"].items():
            for name, r in rows.items():
                cells = []
                for k in ("@all", "@fading"):
                    cells.append(
                        f"{r['worst_mean' + k]:.3f} ({_most(r['worst_is' + k])})" if "worst" + k in r else "not run"
                    )
                lines.append(
                    f"| {Path(path).name} | {c['codec']} | {c['channel']} | {c['n']} | {name} | {r['uses']} | "
                    f"{r['clean_mean']:.3f} | {r['means']['gaussian']:.3f} | {cells[0]} | {cells[1]} |"
                )
    return "\n".join(lines)


def union(paths: list[str]) -> str:
    """Per link and knowledge mode, the mean over sentences of the worst over every file's attack set
    (the files must hold the same sentences, seed and channel: e.g. the default and the stronger run)."""
    docs = [json.loads(Path(p).read_text()) for p in paths]
    keys = ("codec", "channel", "n", "seed")
    if any(tuple(d["config"][k] for k in keys) != tuple(docs[0]["config"][k] for k in keys) for d in docs):
        raise SystemExit(f"--union: the files differ in {', '.join(keys)}")
    lines = [f"union of {', '.join(Path(p).name for p in paths)}"]
    for psr, rows in docs[0]["by_psr"].items():
        for name in rows:
            for k in ("@all", "@fading"):
                got = [
                    d["by_psr"][psr][name]["worst" + k] for d in docs if "worst" + k in d["by_psr"][psr].get(name, {})
                ]
                if got:
                    worst = torch.tensor(got).min(0).values.mean().item()
                    lines.append(f"psr {psr} {name} worst{k}: {worst:.3f} over {len(got)} file(s)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--render", nargs="+", metavar="JSON", help="print the markdown table of result files and stop")
    p.add_argument("--union", nargs="+", metavar="JSON", help="print the worst over several runs' attack sets and stop")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--codec", default="deepsc", help="a DeepSC of the zoo (deepsc, deepsc-adv)")
    p.add_argument("--channel", choices=["awgn", "rayleigh"], default="awgn")
    p.add_argument("--n", type=int, default=16, help="evaluated shipped sentences of 10 tokens")
    p.add_argument("--psr", type=float, nargs="+", default=[-5.0], help="PSR budgets in dB")
    p.add_argument("--steps", type=int, default=20, help="PGD steps (pilot PGD too)")
    p.add_argument("--restarts", type=int, default=1, help="PGD restarts (a keyed link's first from the jammer)")
    p.add_argument("--keys", type=int, default=8, help="guessed keys per EOT step on a keyed link")
    p.add_argument(
        "--apgd", type=int, default=0, help="also APGD with this many steps per loss (key-EOT on keyed links)"
    )
    p.add_argument("--losses", nargs="+", choices=["ce", "margin"], default=["ce", "margin"])
    p.add_argument("--knows", nargs="+", choices=CHANNEL_KNOWLEDGE, default=["all", "fading"])
    p.add_argument("--eot", type=int, default=1, help="draws of what the attack does not know, per step")
    p.add_argument("--draws", type=int, default=4, help="noise draws for the clean figure")
    p.add_argument("--links", nargs="+", choices=LINKS, default=list(LINKS))
    p.add_argument("--no-key-known", dest="key_known", action="store_false", help="skip the key-known bound")
    p.add_argument("--seed", type=int, default=5, help="the evaluated channel draw and the session key")
    p.add_argument("--out", default="bench/results/defenses_text_s19_awgn.json")
    a = p.parse_args(argv)
    if a.render:
        print(render(a.render))
        return 0
    if a.union:
        print(union(a.union))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(a.threads)
    codec = load_codec(a.codec).eval()
    if not hasattr(codec, "tokenize"):
        raise SystemExit(f"--codec {a.codec} is not a DeepSC text codec")
    x, _ = _data(codec, a.n)
    if x.shape[0] < a.n:
        raise SystemExit(f"--n {a.n}: only {x.shape[0]} shipped sentences of 10 tokens")
    metric, _ = _metric(codec)
    channel = AWGN() if a.channel == "awgn" else Rayleigh(csi="estimated")
    links = make_links(codec, channel, a.seed)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    t = time.time()
    doc: dict[str, Any] = {"name": "defenses_text", "config": {**vars(a), "snr_db": SNR}, "by_psr": {}}
    for psr in a.psr:
        rows: dict[str, Any] = {}
        doc["by_psr"][f"{psr:g}"] = rows
        undefended_pgd: dict[str, Any] = {}
        for name in ("undefended", *[n for n in a.links if n != "undefended"]):  # the replay needs it first
            rows[name] = attack_link(name, links[name], links["undefended"], x, psr, a, metric, undefended_pgd)
            doc["seconds"] = round(time.time() - t, 1)
            out.write_text(json.dumps(doc, indent=1) + "\n")
    log.info("-> %s (%s s)", out, doc["seconds"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
