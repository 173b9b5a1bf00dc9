"""One cell of the main job's grid, measured in whatever process the executor chose: image
fidelity of a codec or a baseline, the task and text codecs, latency and energy, Bob against
Eve, and fidelity under attack (images and text).  Codecs, baselines and data are loaded once per
process (:func:`clear_cache` forgets them).  Every cell draws its randomness from ``cell["seed"]``.
"""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from semguard.evaluation.records import Record

__all__ = ["clear_cache", "run_cell"]

_CACHE: dict[tuple[str, str], Any] = {}  # per process: loaded codecs, baselines, data


def clear_cache() -> None:
    """Forget the codecs, baselines and data this process loaded (a new run loads them afresh)."""
    _CACHE.clear()


def _cached(kind: str, name: str, make: Callable[[], Any]) -> Any:
    if (kind, name) not in _CACHE:
        _CACHE[(kind, name)] = make()
    return _CACHE[(kind, name)]


def _images(n: int | None) -> torch.Tensor:
    from semguard.data.photos import shipped_photos

    imgs = _cached("data", "photos", shipped_photos)
    return imgs if n is None else imgs[:n]


def _codec(name: str) -> Any:
    from semguard.codecs.zoo import pretrained

    return _cached("codec", name, lambda: pretrained(name))


def _records(name: str, cell: dict[str, Any], samples: dict[str, torch.Tensor]) -> list[Record]:
    return [Record(name, cell["channel"], cell["snr_db"], m, float(v.mean()), cell["conf"],
                   [round(float(x), 4) for x in v]) for m, v in samples.items()]


@torch.no_grad()
def run_cell(cell: dict[str, Any]) -> list[Record]:
    """Measure one cell (in whatever process the executor chose)."""
    from semguard.registry import build

    kind, run = cell["kind"], cell["scenario"]["run"]
    channel = build("channel", cell["channel"])
    snr, seed = cell["snr_db"], cell["seed"]
    if kind == "image":
        from semguard.evaluation.image_eval import codec_samples
        from semguard.link import Link

        return _records(cell["name"], cell, codec_samples(Link(_codec(cell["name"]), channel), _images(run["images"]),
                                                          None, snr, realizations=cell["realizations"], seed=seed))
    if kind == "baseline":
        from semguard.evaluation.image_eval import baseline_samples

        baseline = _cached("baseline", cell["name"], lambda: build("baseline", cell["name"]))
        return _records(cell["name"], cell, baseline_samples(baseline, _images(run["images"]), channel, snr,
                                                             cell["n_symbols"], realizations=cell["realizations"],
                                                             seed=seed))
    if kind == "cost":
        return _cost(cell, channel)
    if kind == "secrecy":
        return _secrecy(cell, channel)
    if kind == "robustness":
        return _robustness(cell, channel)
    if kind == "text_robustness":
        return _text_robustness(cell, channel)
    if kind == "task":
        return _task(cell, channel)
    if kind == "text":
        return _text(cell, channel)
    raise ValueError(f"unknown cell kind {kind!r}")


def _task(cell: dict[str, Any], channel: Any) -> list[Record]:
    from semguard.data.shipped import shipped_fashion_mnist
    from semguard.link import Link
    from semguard.metrics.image import accuracy

    n = cell["scenario"]["run"]["task_images"]
    x, y = _cached("data", f"fmnist{n}", lambda: shipped_fashion_mnist(n))
    link = Link(_codec(cell["name"]), channel)
    gen = torch.Generator().manual_seed(cell["seed"])
    accs = [float(accuracy(link(x, cell["snr_db"], generator=gen)["output"], y)) for _ in range(cell["realizations"])]
    return [Record(cell["name"], cell["channel"], cell["snr_db"], "accuracy", sum(accs) / len(accs), cell["conf"])]


def _text(cell: dict[str, Any], channel: Any) -> list[Record]:
    from semguard.baselines.text_link import TextDigitalLink, shipped_huffman
    from semguard.data.text import load_shipped
    from semguard.evaluation.text_eval import eval_text, similarity_or_none
    from semguard.registry import build

    run = cell["scenario"]["run"]
    model = _cached("codec", "deepsc-shipped", lambda: build("codec", cell["name"], pretrained=True))
    refs = _cached("data", "sentences", load_shipped)[: run["text_sentences"]]
    link = _cached("baseline", "text_digital", lambda: TextDigitalLink(huffman=shipped_huffman()))
    similarity = _cached("metric", "similarity", similarity_or_none)
    res = eval_text(model, link, refs, channel, cell["snr_db"], similarity=similarity, seed=cell["seed"])
    names = {"deepsc": cell["name"], "digital": "text_digital"}
    return [Record(names[s], cell["channel"], cell["snr_db"], m, float(v), cell["conf"])
            for s, metrics in res.items() for m, v in metrics.items()]


def _cost(cell: dict[str, Any], channel: Any, repeats: int = 3) -> list[Record]:
    """Latency (median wall time of encode / channel / decode for one photo) and the energy estimate."""
    from semguard.channels.base import as_snr_tensor
    from semguard.evaluation.energy import EnergyModel, count_flops

    codec = _codec(cell["name"])
    x = _images(1)
    snr = as_snr_tensor(cell["snr_db"], 1, x.device)
    gen = torch.Generator().manual_seed(cell["seed"])
    kw = codec.decode_kwargs(x)
    times: dict[str, list[float]] = {"encode": [], "channel": [], "decode": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        s = codec.encode(x, snr)
        t1 = time.perf_counter()
        y, state = channel(s, snr, generator=gen)
        t2 = time.perf_counter()
        codec.decode(y, state, **kw)
        t3 = time.perf_counter()
        for k, a, b in (("encode", t0, t1), ("channel", t1, t2), ("decode", t2, t3)):
            times[k].append(1e3 * (b - a))
    model = EnergyModel(**cell["conf"]["energy"])
    f_enc = count_flops(lambda: codec.encode(x, snr))
    f_dec = count_flops(lambda: codec.decode(y, state, **kw))
    lat = {f"latency_{k}_ms": statistics.median(v) for k, v in times.items()}
    vals = {**lat, "latency_ms": sum(lat.values()), "flops_encode": float(f_enc), "flops_decode": float(f_dec),
            "energy_compute_mj": 1e3 * model.compute_j(f_enc + f_dec),
            "energy_tx_mj": 1e3 * model.transmit_j(s.shape[1])}
    vals["energy_mj"] = vals["energy_compute_mj"] + vals["energy_tx_mj"]
    return [Record(cell["name"], cell["channel"], cell["snr_db"], m, float(v), cell["conf"]) for m, v in vals.items()]


def _secrecy(cell: dict[str, Any], channel: Any) -> list[Record]:
    """Bob's and a keyless Eve's PSNR through the scenario's cipher, Eve on her own channel."""
    from semguard.evaluation.image_eval import fidelity_per_image
    from semguard.link import Eavesdropper, Link, batch_nonce
    from semguard.registry import build

    sec = cell["conf"]["secrecy"]
    images = _images(cell["scenario"]["run"]["images"])
    key = hashlib.sha256(f"scenario-key|{cell['seed']}".encode()).digest()   # a fresh key per cell, never logged
    link = Link(_codec(cell["codec"]), channel, cipher=build("cipher", sec["cipher"]), key=key,
                eavesdropper=Eavesdropper(build("channel", sec["eve_channel"]), snr_offset_db=sec["eve_snr_offset_db"]))
    gen = torch.Generator().manual_seed(cell["seed"])
    bob, eve = [], []
    for i in range(0, images.shape[0], 4):
        x = images[i:i + 4]
        out = link(x, cell["snr_db"], generator=gen, nonce=batch_nonce(i))
        bob.append(fidelity_per_image(out["output"], x)["psnr"])
        eve.append(fidelity_per_image(out["eve"]["output"], x)["psnr"])
    return _records(cell["name"], cell, {"psnr_bob": torch.cat(bob), "psnr_eve": torch.cat(eve)})


def _attack(conf: dict[str, Any], seed: int) -> Any:
    from semguard.registry import build

    kw: dict[str, Any] = {"surface": "channel", "psr_db": conf["psr_db"], "seed": seed}
    if conf["attack"] != "gaussian":
        kw["steps"] = conf["steps"]
    return build("attack", conf["attack"], **kw)


def _robustness(cell: dict[str, Any], channel: Any) -> list[Record]:
    """PSNR and MS-SSIM under one attack at one PSR (channel surface, the attacker knows the link and
    its defence: behind a defence the attack is that defence's first adaptive attack, e.g. PGD averaged
    over guessed keys against keyed spreading), on the same channel draws as the clean pass;
    ``robust_psnr`` / ``robust_ms_ssim`` at the reference PSR feed the envelope (the strongest
    attack's, see envelope.configurations)."""
    from semguard.evaluation.robust_cells import image_under_attack
    from semguard.link import Link

    conf = cell["conf"]
    images = _images(None)
    link = Link(_codec(cell["codec"]), channel)
    attack = _attack(conf, cell["seed"])
    if conf["defense"]:
        from semguard.defenses.deploy import adaptive_attacks, deploy

        # fitted on the photos that are not attacked (and their mirror images), never on the attacked ones
        ref = images[conf["attack_images"]:]
        dep = deploy(conf["defense"], link, torch.cat([ref, ref.flip(-1)]), cell["snr_db"], label=cell["codec"],
                     seed=cell["seed"])
        link, attack = dep.deployed, adaptive_attacks(dep, attack)[0][1]
    res = image_under_attack(link, images[:conf["attack_images"]], attack, cell["snr_db"], seed=cell["seed"])
    label = f"{cell['name']} vs {conf['attack']}"
    metrics = [m for m in ("psnr", "ms_ssim") if m in res]
    out = _records(label, cell, {f"{m}_under_attack": res[m] for m in metrics}
                   | {f"{m}_clean": res[f"clean_{m}"] for m in metrics}
                   | {"measured_psr_db": res["measured_psr_db"]})
    if conf["reference"]:
        out += [Record(cell["name"], cell["channel"], cell["snr_db"], f"robust_{m}", float(res[m].mean()), conf)
                for m in metrics]
    return out


def _text_robustness(cell: dict[str, Any], channel: Any) -> list[Record]:
    """DeepSC's BLEU-1 and similarity under one attack at one PSR (channel surface, token
    cross-entropy objective), on the first ``attack_sentences`` shipped test sentences."""
    from semguard.data.text import load_shipped
    from semguard.evaluation.robust_cells import text_under_attack
    from semguard.evaluation.text_eval import similarity_or_none
    from semguard.registry import build

    conf = cell["conf"]
    model = _cached("codec", "deepsc-shipped", lambda: build("codec", cell["name"], pretrained=True))
    refs = _cached("data", "sentences", load_shipped)[: conf["attack_sentences"]]
    res = text_under_attack(model, refs, channel, _attack(conf, cell["seed"]), cell["snr_db"], seed=cell["seed"],
                            similarity=_cached("metric", "similarity", similarity_or_none))
    label = f"{cell['name']} vs {conf['attack']}"
    metrics = [m for m in ("bleu1", "similarity") if m in res]
    out = _records(label, cell, {f"{m}_under_attack": res[m] for m in metrics}
                   | {f"{m}_clean": res[f"clean_{m}"] for m in metrics})
    if conf["reference"]:
        out += [Record(cell["name"], cell["channel"], cell["snr_db"], f"robust_{m}", float(res[m].mean()), conf)
                for m in metrics]
    return out
