"""Text SemCom benchmark: DeepSC vs Huffman + CRC16 + 5G LDPC + QAM at equal channel uses.

    python bench/text.py --out bench_text.json                 # shipped held-out WordNet sentences
    python bench/text.py --corpus wordnet --n 3465 --out ...    # the whole WordNet test split

For every channel (AWGN, Rayleigh block fading: one coefficient per sentence) and SNR (Es/N0 dB),
both systems send each held-out sentence in the same number of complex channel uses
(``8 x WordPiece tokens``, DeepSC's count); reports mean sentence BLEU-1..4, mean MiniLM
similarity (lost sentences score 0) and the mean channel uses per sentence.  Results are
written after every condition; a rerun with the same ``--out`` skips conditions already done.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import torch

from semguard.baselines.text_link import TextDigitalLink, shipped_huffman
from semguard.codecs.deepsc import DeepSC
from semguard.data.text import load_shipped, load_wordnet_examples, split_sentences
from semguard.metrics.text import SentenceSimilarity, bleu_table
from semguard.registry import build

log = logging.getLogger("bench.text")


def held_out(corpus: str, n: int) -> list[str]:
    if corpus == "shipped":
        return load_shipped()[:n]
    return split_sentences(load_wordnet_examples()).test[:n]


def run_deepsc(model: DeepSC, refs: list[str], channel, snr: float, g: torch.Generator,
               batch: int) -> tuple[list[str], torch.Tensor]:
    hyps, uses = [], []
    for i in range(0, len(refs), batch):
        h, u = model.transmit(refs[i:i + batch], channel, snr, generator=g)
        hyps += h
        uses.append(u)
    return hyps, torch.cat(uses)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_text.json"))
    p.add_argument("--corpus", choices=["shipped", "wordnet"], default="shipped")
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--snrs", type=float, nargs="+", default=[0, 3, 6, 9, 12, 18])
    p.add_argument("--channels", nargs="+", default=["awgn", "rayleigh"])
    p.add_argument("--weights", type=Path, default=None, help="folder with deepsc.safetensors (default: shipped)")
    p.add_argument("--no-similarity", action="store_true")
    p.add_argument("--batch", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(1)
    model = build("codec", "deepsc", pretrained=True) if a.weights is None else DeepSC.from_pretrained(a.weights)
    refs = held_out(a.corpus, a.n)
    link = TextDigitalLink(huffman=shipped_huffman())
    sim = None if a.no_similarity else SentenceSimilarity()
    config = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    doc = {"name": "text", "description": __doc__.splitlines()[0], "config": config, "results": []}
    if a.out.is_file():
        old = json.loads(a.out.read_text())
        if old.get("config") == config:
            doc = old
    done = {(r["channel"], r["snr_db"], r["system"]) for r in doc["results"]}
    for ci, ch_name in enumerate(a.channels):
        channel = build("channel", ch_name)
        for si, snr in enumerate(a.snrs):
            if {(ch_name, snr, s) for s in ("deepsc", "digital")} <= done:
                continue
            g = torch.Generator().manual_seed(a.seed + 1000 * ci + si)
            t0 = time.time()
            hyps, uses = run_deepsc(model, refs, channel, snr, g, a.batch)
            t1 = time.time()
            res = link.transmit(refs, channel, snr, uses, generator=g)
            t2 = time.time()
            for system, out, extra in (
                ("deepsc", hyps, {"seconds": t1 - t0}),
                ("digital", res.sentences, {"seconds": t2 - t1, "decoded_fraction": float(res.ok.float().mean()),
                                            "bits_per_symbol_counts": {str(m): int((res.bits_per_symbol == m).sum())
                                                                       for m in (0, 2, 4, 6, 8)}}),
            ):
                rec = {"channel": ch_name, "snr_db": snr, "system": system, "sentences": len(refs),
                       "channel_uses_per_sentence": float(uses.float().mean()), **bleu_table(out, refs),
                       "similarity": None if sim is None else float(sim(out, refs).mean()), **extra}
                doc["results"].append(rec)
                print(f"{ch_name:8s} {snr:5.1f} dB {system:8s} BLEU-1 {rec['bleu1']:.3f} BLEU-4 {rec['bleu4']:.3f} "
                      f"sim {rec['similarity'] if rec['similarity'] is None else round(rec['similarity'], 3)} "
                      f"uses/sentence {rec['channel_uses_per_sentence']:.1f}", flush=True)
            a.out.write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
