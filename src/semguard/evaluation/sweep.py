"""The sweep engine: a scenario's cartesian grid as independent cells, run serially, in local
processes or on a Ray cluster, each cell's records appended to the store as it completes.

A cell is a plain dict (picklable, so any executor can ship it): what to measure (``kind``:
``image``, ``baseline``, ``task``, ``text``, ``cost``, ``secrecy``), which system, channel and SNR,
and the configuration its records carry.  Every cell draws its randomness from its own seed,
derived from the scenario's seed, the channel and the SNR (:func:`cell_seed`), never from the
order cells run in; so an interrupted run resumed, a run in two processes and a run on Ray all
end with the same records.
"""

from __future__ import annotations

import hashlib
import logging
import statistics
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from typing import Any

import torch

from semguard.evaluation.records import Record, ResultStore, config_key
from semguard.evaluation.scenario import Scenario

__all__ = ["plan", "run_cell", "timed_cell", "execute", "cell_seed", "clear_cache", "EXECUTORS"]

log = logging.getLogger(__name__)

EXECUTORS = ("serial", "process", "ray")
_CACHE: dict[tuple[str, str], Any] = {}  # per process: loaded codecs, baselines, data


def cell_seed(seed: int, channel: str, snr_db: float) -> int:
    """The seed of one (channel, SNR) cell: fresh fades and noise per cell, shared by every system
    measured in it (so two systems are compared on the same draws of their images)."""
    digest = hashlib.sha256(f"{seed}|{channel}|{float(snr_db)!r}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


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


def plan(scenario: Scenario) -> list[dict[str, Any]]:
    """Every cell of ``scenario``, in a fixed order."""
    from semguard.codecs.zoo import ZOO
    from semguard.registry import build

    cfg = scenario.run
    images = _images(cfg.images)
    base = {"run": asdict(cfg), "images": f"shipped photos x{images.shape[0]} {tuple(images.shape[1:])}",
            "seeds": "per cell"}
    codecs = {name: _codec(name) for name in (cfg.image_codec, *cfg.reference_codecs) if name}
    shape = tuple(images.shape[1:])
    n = codecs[cfg.image_codec].n_symbols(shape) if cfg.image_codec else 0
    for name, c in codecs.items():
        if c.n_symbols(shape) != n:
            raise ValueError(f"reference codec {name} uses {c.n_symbols(shape)} channel uses per image, "
                             f"{cfg.image_codec} {n}: compare codecs at the same cbr")
    cells: list[dict[str, Any]] = []

    def add(kind: str, name: str, ch: str, snr: float, conf: dict[str, Any], **extra: Any) -> None:
        cells.append({"kind": kind, "name": name, "channel": ch, "snr_db": float(snr), "conf": conf,
                      "key": config_key(conf), "seed": cell_seed(cfg.seed, ch, snr), "n_symbols": n,
                      "scenario": scenario.to_json(), **extra})

    for ch in cfg.channels:
        channel = build("channel", ch)
        reps = cfg.fading_realizations if channel.fading else 1
        for snr in cfg.snr_db:
            common = {**base, "channel": repr(channel), "n_symbols": n, "cbr": n / images[0].numel(),
                      "realizations": reps}
            for name, c in codecs.items():
                add("image", name, ch, snr, {**common, "codec_config": c.config, "weights_sha256": ZOO[name].sha256,
                                             "codec": name, "snr_db": snr}, realizations=reps)
            for b in cfg.baselines if codecs else ():
                add("baseline", b, ch, snr, {**common, "codec": b, "snr_db": snr}, realizations=reps)
    cost_channel = "awgn" if "awgn" in cfg.channels else cfg.channels[0]
    for name in codecs:
        for snr in cfg.snr_db:
            add("cost", name, cost_channel, snr, {**base, "codec": name, "snr_db": snr, "measure": "latency+energy",
                                                  "energy": asdict(scenario.energy), "weights_sha256": ZOO[name].sha256})
    if scenario.secrecy is not None:
        sec = scenario.secrecy
        codec = sec.codec or cfg.image_codec
        for ch in cfg.channels:
            for snr in cfg.snr_db:
                add("secrecy", f"{codec}+{sec.cipher}", ch, snr,
                    {**base, "codec": codec, "snr_db": snr, "channel": ch, "secrecy": asdict(sec),
                     "weights_sha256": ZOO[codec].sha256}, codec=codec)
    if scenario.robustness is not None:
        rob = scenario.robustness
        for codec in rob.codecs:
            for attack in rob.attacks:
                for psr in rob.psr_db:
                    add("robustness", codec, rob.channel, rob.snr_db,
                        {**base, "codec": codec, "snr_db": rob.snr_db, "channel": rob.channel, "attack": attack,
                         "psr_db": psr, "steps": rob.steps, "attack_images": rob.images,
                         "reference": psr == rob.reference_psr_db, "weights_sha256": ZOO[codec].sha256})
    if cfg.task_codec:
        from semguard.data.shipped import shipped_fashion_mnist

        x, _ = _cached("data", f"fmnist{cfg.task_images}", lambda: shipped_fashion_mnist(cfg.task_images))
        task = _codec(cfg.task_codec)
        for ch in cfg.channels:
            channel = build("channel", ch)
            reps = cfg.fading_realizations if channel.fading else 1
            for snr in cfg.snr_db:
                add("task", cfg.task_codec, ch, snr,
                    {**base, "codec": cfg.task_codec, "channel": repr(channel), "snr_db": snr,
                     "task": f"fashion-mnist test[:{x.shape[0]}]", "n_symbols": task.n_symbols(tuple(x.shape[1:])),
                     "codec_config": task.config, "realizations": reps, "weights_sha256": ZOO[cfg.task_codec].sha256},
                    realizations=reps)
    if cfg.text_codec:
        for ch in cfg.channels:
            channel = build("channel", ch)
            for snr in cfg.snr_db:
                add("text", cfg.text_codec, ch, snr,
                    {**base, "codec": cfg.text_codec, "channel": repr(channel), "snr_db": snr,
                     "text": f"shipped WordNet test sentences x{cfg.text_sentences}",
                     "digital": "Huffman+CRC16+5G LDPC+QAM"})
    return cells


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


def _robustness(cell: dict[str, Any], channel: Any) -> list[Record]:
    """PSNR under one attack at one PSR (channel surface, attacker knows the link), on the same
    channel draws as the clean pass; ``robust_psnr`` at the reference PSR feeds the envelope."""
    from semguard.attacks.evaluate import robust_fidelity
    from semguard.link import Link
    from semguard.metrics.image import psnr

    conf = cell["conf"]
    kw: dict[str, Any] = {"surface": "channel", "psr_db": conf["psr_db"], "seed": cell["seed"]}
    if conf["attack"] != "gaussian":
        kw["steps"] = conf["steps"]
    from semguard.registry import build

    attack = build("attack", conf["attack"], **kw)
    res = robust_fidelity(Link(_codec(cell["name"]), channel), _images(conf["attack_images"]), attack,
                          cell["snr_db"], metric=psnr, seed=cell["seed"])
    label = f"{cell['name']} vs {conf['attack']}"
    out = [Record(label, cell["channel"], cell["snr_db"], "psnr_under_attack", float(res["attacked"]), conf,
                  [round(float(x), 4) for x in res["attacked_per_sample"]])]
    if conf["reference"]:
        out.append(Record(cell["name"], cell["channel"], cell["snr_db"], "robust_psnr", float(res["attacked"]), conf))
    return out


def _progress(total: int, done: int, started: float, label: str) -> str:
    rate = (time.monotonic() - started) / max(done, 1)
    eta = rate * (total - done)
    width = 24
    filled = int(width * done / max(total, 1))
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} cells, ETA {eta:5.0f} s  {label}"


def execute(cells: Iterable[dict[str, Any]], store: ResultStore, *, executor: str = "serial", workers: int = 2,
            on_progress: Callable[[str], None] | None = None) -> int:
    """Run the cells ``store`` does not hold yet; returns how many ran.  ``executor``: ``serial``,
    ``process`` (``workers`` local processes) or ``ray`` (a Ray cluster: the one ``ray.init`` finds
    through ``RAY_ADDRESS``, else a local one of ``workers`` CPUs, shut down afterwards)."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    todo = [c for c in cells if not store.done(c["key"])]
    say = on_progress or (lambda m: log.info("%s", m))
    started, done = time.monotonic(), 0

    def finished(cell: dict[str, Any], timed: tuple[list[Record], float]) -> None:
        nonlocal done
        records, seconds = timed
        store.add(records, cell["key"], seconds=seconds)
        done += 1
        say(_progress(len(todo), done, started, f"{cell['name']} {cell['channel']} {cell['snr_db']:g} dB"))

    if not todo:
        return 0
    if executor == "serial" or (executor == "process" and workers == 1):
        for cell in todo:
            finished(cell, timed_cell(cell))
    elif executor == "process":
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init) as pool:
            pending: dict[Future, dict[str, Any]] = {pool.submit(timed_cell, c): c for c in todo}
            while pending:
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in ready:
                    finished(pending.pop(fut), fut.result())
    else:
        _ray_execute(todo, workers, finished)
    return done


def timed_cell(cell: dict[str, Any]) -> tuple[list[Record], float]:
    """:func:`run_cell` and the seconds it took (its measuring time, wherever it ran)."""
    t0 = time.monotonic()
    records = run_cell(cell)
    return records, time.monotonic() - t0


def _worker_init() -> None:
    torch.set_num_threads(1)  # the processes share the machine's cores


def _ray_execute(todo: list[dict[str, Any]], workers: int,
                 finished: Callable[[dict[str, Any], tuple[list[Record], float]], None]) -> None:
    try:
        import ray
    except ImportError as e:
        raise RuntimeError("--executor ray needs Ray: pip install 'semguard[ray]'") from e
    import os

    started_here = not ray.is_initialized()
    if started_here:
        address = os.environ.get("RAY_ADDRESS")
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        remote = ray.remote(num_cpus=1)(_ray_cell)
        refs = {remote.remote(c): c for c in todo}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for r in ready:
                finished(refs.pop(r), ray.get(r))
    finally:
        if started_here:
            ray.shutdown()


def _ray_cell(cell: dict[str, Any]) -> tuple[list[Record], float]:
    _worker_init()
    return timed_cell(cell)

