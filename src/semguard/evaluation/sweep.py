"""The sweep engine: a scenario's cartesian grid as independent cells, run serially, in local
processes or on a Ray cluster, each cell's records appended to the store as it completes.

A cell is a plain dict (picklable, so any executor can ship it; :mod:`.cells` measures it): what to
measure (``kind``: ``image``, ``baseline``, ``task``, ``text``, ``cost``, ``secrecy``, ``robustness``,
``text_robustness``), which system, channel and SNR,
and the configuration its records carry.  Every cell draws its randomness from its own seed,
derived from the scenario's seed, the channel and the SNR (:func:`cell_seed`), never from the
order cells run in; so an interrupted run resumed, a run in two processes and a run on Ray all
end with the same records.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict
from typing import Any

import torch

from semguard.evaluation.cells import _cached, _codec, _images, clear_cache, run_cell
from semguard.evaluation.records import Record, ResultStore, config_key
from semguard.evaluation.scenario import Scenario

__all__ = ["plan", "run_cell", "timed_cell", "execute", "cell_seed", "clear_cache", "EXECUTORS"]

log = logging.getLogger(__name__)

EXECUTORS = ("serial", "process", "ray")


def cell_seed(seed: int, channel: str, snr_db: float) -> int:
    """The seed of one (channel, SNR) cell: fresh fades and noise per cell, shared by every system
    measured in it (so two systems are compared on the same draws of their images)."""
    digest = hashlib.sha256(f"{seed}|{channel}|{float(snr_db)!r}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


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
            for defense in ("", *rob.defenses):
                for attack in rob.attacks:
                    for psr in rob.psr_db:
                        add("robustness", codec + (f"+{defense}" if defense else ""), rob.channel, rob.snr_db,
                            {**base, "codec": codec, "snr_db": rob.snr_db, "channel": rob.channel, "attack": attack,
                             "psr_db": psr, "steps": rob.steps, "attack_images": rob.images, "defense": defense,
                             "reference": psr == rob.reference_psr_db, "weights_sha256": ZOO[codec].sha256},
                            codec=codec)
        for attack in rob.text_attacks if cfg.text_codec else ():
            for psr in rob.psr_db:
                add("text_robustness", cfg.text_codec, rob.channel, rob.snr_db,
                    {**base, "codec": cfg.text_codec, "snr_db": rob.snr_db, "channel": rob.channel, "attack": attack,
                     "psr_db": psr, "steps": rob.steps, "attack_sentences": rob.text_sentences,
                     "text": "shipped WordNet test sentences", "reference": psr == rob.reference_psr_db}, group="text")
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
                     "digital": "Huffman+CRC16+5G LDPC+QAM"}, group="text")
    return cells


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
        return done
    batches = _batches(todo)
    if executor == "process":
        import multiprocessing as mp

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                 initializer=_worker_init) as pool:
            pending: dict[Future, list[dict[str, Any]]] = {pool.submit(timed_batch, b): b for b in batches}
            while pending:
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in ready:
                    for cell, timed in zip(pending.pop(fut), fut.result(), strict=True):
                        finished(cell, timed)
    else:
        _ray_execute(batches, workers, finished)
    return done


GROUP_CELLS = 8  # at most this many cells of one group per task


def _batches(todo: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The tasks of a parallel executor, longest first (no long cell left alone at the end):
    cells of one ``group`` (those that load the same heavy model, e.g. DeepSC's sentence
    similarity model) go together, up to :data:`GROUP_CELLS` a task, so one worker loads it
    instead of every worker; other cells are tasks of their own.  Results never depend on it."""
    groups: dict[str, list[dict[str, Any]]] = {}
    batches: list[list[dict[str, Any]]] = []
    for cell in todo:
        if cell.get("group"):
            groups.setdefault(cell["group"], []).append(cell)
        else:
            batches.append([cell])
    for cells in groups.values():
        batches += [cells[i:i + GROUP_CELLS] for i in range(0, len(cells), GROUP_CELLS)]
    return sorted(batches, key=lambda b: sum(map(cost_hint, b)), reverse=True)


def cost_hint(cell: dict[str, Any]) -> float:
    """A cell's rough cost in CPU seconds (measured on the quick default: the LDPC link, DeepSC and
    the PGD cells are the longest), used to start long tasks first on parallel executors."""
    kind = cell["kind"]
    if kind in ("robustness", "text_robustness"):
        return 0.5 if cell["conf"]["attack"] == "gaussian" else 3.0
    if kind == "baseline":
        return 3.0 if "ldpc" in cell["name"] else 0.7
    return {"text": 3.0, "secrecy": 0.5, "image": 0.5, "cost": 0.5}.get(kind, 0.1)


def timed_cell(cell: dict[str, Any]) -> tuple[list[Record], float]:
    """:func:`run_cell` and the seconds it took (its measuring time, wherever it ran)."""
    t0 = time.monotonic()
    records = run_cell(cell)
    return records, time.monotonic() - t0


def timed_batch(cells: list[dict[str, Any]]) -> list[tuple[list[Record], float]]:
    """:func:`timed_cell` of each cell, in one worker."""
    return [timed_cell(c) for c in cells]


def _worker_init() -> None:
    torch.set_num_threads(1)  # the processes share the machine's cores


def _ray_execute(batches: list[list[dict[str, Any]]], workers: int,
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
        remote = ray.remote(num_cpus=1)(_ray_batch)
        refs = {remote.remote(b): b for b in batches}
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1)
            for r in ready:
                for cell, timed in zip(refs.pop(r), ray.get(r), strict=True):
                    finished(cell, timed)
    finally:
        if started_here:
            ray.shutdown()


def _ray_batch(cells: list[dict[str, Any]]) -> list[tuple[list[Record], float]]:
    _worker_init()
    return timed_batch(cells)
