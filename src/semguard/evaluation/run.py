"""The main job (``semguard run``): shipped codecs against the separation baselines.

Image fidelity (PSNR, SSIM, MS-SSIM) of the shipped image codec, the other shipped image codecs
at the same bandwidth (``reference_codecs``) and the baselines on the shipped photos, over AWGN
and Rayleigh block fading across an SNR sweep, plus the task codec's accuracy on the shipped
Fashion-MNIST test subset.  Every unit of work (codec x channel x SNR) is appended to
``records.jsonl`` when it finishes, so an interrupted run resumes where it stopped;
``results.json`` and ``fidelity.png`` are written at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from semguard.channels.base import Channel
from semguard.codecs.zoo import DEFAULT_IMAGE_CODEC, DEFAULT_TASK_CODEC, REFERENCE_IMAGE_CODECS, ZOO, pretrained
from semguard.data.photos import shipped_photos
from semguard.data.shipped import shipped_fashion_mnist
from semguard.evaluation.image_eval import baseline_samples, codec_samples
from semguard.metrics.image import accuracy
from semguard.evaluation.records import Record, ResultStore, config_key
from semguard.evaluation.report import gaps
from semguard.evaluation.stats import Gap
from semguard.link import Link
from semguard.registry import build

__all__ = ["RunConfig", "run_main_job", "run_gaps", "grid", "measure_cell", "QUICK"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunConfig:
    """What the main job measures (the embedded defaults)."""

    image_codec: str = DEFAULT_IMAGE_CODEC
    # other shipped image codecs at the same channel uses, measured alongside (zoo names)
    reference_codecs: tuple[str, ...] = REFERENCE_IMAGE_CODECS
    task_codec: str = DEFAULT_TASK_CODEC
    baselines: tuple[str, ...] = ("jpeg_capacity", "webp_capacity", "webp_ldpc")
    # the real link, and the ideal-code limit (at each SNR the better of these two)
    link_baseline: str = "webp_ldpc"
    limit_baselines: tuple[str, ...] = ("jpeg_capacity", "webp_capacity")
    channels: tuple[str, ...] = ("awgn", "rayleigh")
    # -5 dB is below the link's most robust MCS: it shows the cliff
    snr_db: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0)
    images: int | None = None  # None: every shipped photo
    fading_realizations: int = 3  # channel draws per image on fading channels
    task_images: int = 2000
    text_codec: str | None = "deepsc"
    text_sentences: int = 300  # of the 1000 shipped held-out WordNet sentences
    seed: int = 0


QUICK = RunConfig(snr_db=(0.0, 10.0, 20.0), images=2, fading_realizations=1, task_images=500,
                  text_sentences=100)


@torch.no_grad()
def _task_accuracy(link: Link, x: torch.Tensor, y: torch.Tensor, snr_db: float, realizations: int,
                   seed: int) -> float:
    gen = torch.Generator(device=x.device)
    gen.manual_seed(seed)
    accs = [float(accuracy(link(x, snr_db, generator=gen)["output"], y)) for _ in range(realizations)]
    return sum(accs) / len(accs)


def grid(channels: tuple[str, ...], snrs: tuple[float, ...], device: str | torch.device = "cpu"
         ) -> Iterator[tuple[str, Channel, float]]:
    """The channel x SNR cells of a sweep: ``(channel name, built channel, snr_db)``."""
    for ch_name in channels:
        channel = build("channel", ch_name).to(device)
        for snr in snrs:
            yield ch_name, channel, snr


def measure_cell(store: ResultStore, conf: dict[str, Any], label: str, measure: Callable[[], list[Record]],
                 say: Callable[[str], None]) -> bool:
    """Run one cell unless ``store`` already holds it (resume); its records are appended under the
    cell's :func:`config_key`.  Returns True when it measured."""
    key = config_key(conf)
    if store.done(key):
        return False
    say(label)
    store.add(measure(), key)
    return True


def _image_records(name: str, ch_name: str, snr: float, conf: dict[str, Any],
                   samples: dict[str, torch.Tensor]) -> list[Record]:
    return [Record(name, ch_name, float(snr), m, float(v.mean()), conf, [round(float(x), 4) for x in v])
            for m, v in samples.items()]


def run_main_job(out_dir: str | Path, cfg: RunConfig = RunConfig(), *, device: str | torch.device = "cpu",
                 on_progress: Callable[[str], None] | None = None) -> ResultStore:
    """Measure everything in ``cfg``; records go to ``out_dir/records.jsonl`` as they finish."""
    out = Path(out_dir)
    store = ResultStore(out / "records.jsonl")
    say = on_progress or (lambda msg: log.info("%s", msg))
    images = shipped_photos()
    if cfg.images is not None:
        images = images[: cfg.images]
    base_cfg = {"run": asdict(cfg), "images": f"shipped photos x{images.shape[0]} {tuple(images.shape[1:])}"}

    codecs = {name: pretrained(name, device=device) for name in (cfg.image_codec, *cfg.reference_codecs)}
    n = codecs[cfg.image_codec].n_symbols(tuple(images.shape[1:]))
    for name, c in codecs.items():
        if c.n_symbols(tuple(images.shape[1:])) != n:
            raise ValueError(f"reference codec {name} uses {c.n_symbols(tuple(images.shape[1:]))} channel uses per "
                             f"image, {cfg.image_codec} {n}: compare codecs at the same cbr")
    cbr = n / images[0].numel()
    for ch_name, channel, snr in grid(cfg.channels, cfg.snr_db, device):
        reps = cfg.fading_realizations if channel.fading else 1
        common = {**base_cfg, "channel": repr(channel), "n_symbols": n, "cbr": cbr, "realizations": reps}
        entries: list[tuple[str, Callable[[], dict[str, torch.Tensor]], dict[str, Any]]] = [
            (name, lambda c=c: codec_samples(Link(c, channel), images, None, snr, realizations=reps, seed=cfg.seed),
             # results belong to these weights
             {"codec_config": c.config, "weights_sha256": ZOO[name].sha256}) for name, c in codecs.items()]
        for bname in cfg.baselines:
            baseline = build("baseline", bname)
            entries.append((bname, lambda b=baseline: baseline_samples(b, images.cpu(), channel.cpu(), snr, n,
                                                                      realizations=reps, seed=cfg.seed), {}))
        for name, measure, extra in entries:
            conf = {**common, **extra, "codec": name, "snr_db": snr}
            measure_cell(store, conf, f"{name:>16} {ch_name:>9} {snr:5.1f} dB",
                         lambda m=measure, name=name, conf=conf: _image_records(name, ch_name, snr, conf, m()), say)

    if cfg.task_codec:
        task = pretrained(cfg.task_codec, device=device)
        x, y = shipped_fashion_mnist(cfg.task_images)
        x, y = x.to(device), y.to(device)
        for ch_name, channel, snr in grid(cfg.channels, cfg.snr_db, device):
            reps = cfg.fading_realizations if channel.fading else 1
            conf = {**base_cfg, "codec": cfg.task_codec, "channel": repr(channel), "snr_db": snr,
                    "task": f"fashion-mnist test[:{x.shape[0]}]", "n_symbols": task.n_symbols(tuple(x.shape[1:])),
                    "codec_config": task.config, "realizations": reps,
                    "weights_sha256": ZOO[cfg.task_codec].sha256}
            measure_cell(store, conf, f"{cfg.task_codec:>16} {ch_name:>9} {snr:5.1f} dB",
                         lambda channel=channel, conf=conf, snr=snr, reps=reps, ch_name=ch_name: [Record(
                             cfg.task_codec, ch_name, float(snr), "accuracy",
                             _task_accuracy(Link(task, channel), x, y, snr, reps, cfg.seed), conf)], say)

    if cfg.text_codec:
        _text_part(store, cfg, base_cfg, say)
    return store


def run_gaps(records: list[Record], cfg: RunConfig) -> dict[str, dict[str, dict[float, Gap]]]:
    """The comparisons the main job is judged by, ``{title: {channel: {snr_db: Gap}}}`` (PSNR):
    the image codec against the real link (measured, and over fading against the PSNR the link's
    AMC expected) and against the ideal-code limit."""
    ours, link = cfg.image_codec, cfg.link_baseline
    table = {
        f"{ours} - {link}": gaps(records, ours, [link]),
        f"{ours} - {link}'s AMC expectation": gaps(records, ours, [link], reference_metric="psnr_expected"),
        f"{ours} - ideal-code limit (best of {', '.join(cfg.limit_baselines)})":
            gaps(records, ours, cfg.limit_baselines),
    }
    return {title: rows for title, rows in table.items() if rows}


def _text_part(store: ResultStore, cfg: RunConfig, base_cfg: dict[str, Any], say: Callable[[str], None]) -> None:
    from semguard.baselines.text_link import TextDigitalLink, shipped_huffman
    from semguard.data.text import load_shipped
    from semguard.evaluation.text_eval import eval_text, similarity_or_none

    model = build("codec", cfg.text_codec, pretrained=True)
    refs = load_shipped()[: cfg.text_sentences]
    link = TextDigitalLink(huffman=shipped_huffman())
    similarity: list[Any] = []  # the MiniLM model loads only if some text work is left to do
    names = {"deepsc": cfg.text_codec, "digital": "text_digital"}

    def measure(channel: Channel, ch_name: str, snr: float, conf: dict[str, Any]) -> list[Record]:
        if not similarity:
            similarity.append(similarity_or_none())
        res = eval_text(model, link, refs, channel, snr, similarity=similarity[0], seed=cfg.seed)
        return [Record(names[sys_], ch_name, float(snr), m, float(v), conf)
                for sys_, metrics in res.items() for m, v in metrics.items()]

    for ch_name, channel, snr in grid(cfg.channels, cfg.snr_db):
        conf = {**base_cfg, "codec": cfg.text_codec, "channel": repr(channel), "snr_db": snr,
                "text": f"shipped WordNet test sentences x{len(refs)}", "digital": "Huffman+CRC16+5G LDPC+QAM"}
        measure_cell(store, conf, f"{cfg.text_codec:>16} {ch_name:>9} {snr:5.1f} dB (and the digital link)",
                     lambda channel=channel, ch_name=ch_name, snr=snr, conf=conf: measure(channel, ch_name, snr, conf),
                     say)
