"""Adversarially trained DeepSC against the undefended one, on held-out sentences: BLEU-1 / BLEU-4 and
MiniLM similarity to the sent sentence, clean and under Gaussian jamming, white-box symbol PGD (the
standard 20-step token-CE attack), the strong adaptive attacks that know each codec's weights (APGD on
the token cross-entropy with restarts, PGD on the capped token margin with restarts, PGD on the
soft-MiniLM sentence objective; each sentence keeps its best iterate) and a universal perturbation
fitted against each codec, over a PSR grid at AWGN 10 dB; plus the clean cost on all 1000 shipped
held-out sentences over AWGN.  ``worst`` is, per sentence and per metric, the lowest score any of the
attacks left (what an attacker who tries them all and keeps the best gets).  JSON out, written after
every record.

    PYTHONPATH=src python bench/adv_text.py --threads 1 --out bench/results/adv_text.json

``--codecs`` takes zoo names or exported ``.safetensors`` files (with ``deepsc-tokenizer.json`` beside
them); every codec is attacked on the same sentences and channel draws.  ``--merge A B --out X`` joins
part files of the same configuration run one codec each.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.attacks.sentence import SoftSentenceEmbedder
from semguard.channels import AWGN
from semguard.codecs.deepsc import TOKENIZER_FILE
from semguard.codecs.zoo import ZOO, load_weights, pretrained
from semguard.data.text import load_shipped, load_wordnet_examples, split_sentences
from semguard.link import Link
from semguard.metrics.text import SentenceSimilarity, bleu
from semguard.registry import build

PSR = (-20.0, -15.0, -10.0, -5.0)
CLEAN_SNR = (0.0, 3.0, 6.0, 10.0)


def load_codec(spec: str):
    """A zoo name, or an exported DeepSC file with its tokenizer beside it."""
    if spec in ZOO:
        return pretrained(spec)
    path = Path(spec)
    codec = load_weights(path, codec="deepsc")
    codec.load_assets({TOKENIZER_FILE: path.parent / TOKENIZER_FILE})
    codec.zoo_name = path.name
    return codec.eval()


def _same(key: str, value):
    """A config value as merging compares it: the PSR grid in any order."""
    return sorted(value) if key == "psr" and value is not None else value


def merge(parts: list[str], out: Path) -> int:
    docs = [json.loads(Path(p).read_text()) for p in parts]
    keys = [k for k in docs[0]["config"] if k not in ("codecs", "out")]
    for p, d in zip(parts[1:], docs[1:]):
        diff = [k for k in keys if _same(k, d["config"].get(k)) != _same(k, docs[0]["config"].get(k))]
        if diff:
            raise SystemExit(f"{p}: config differs from {parts[0]} in {', '.join(diff)}")
    head = dict(docs[0])
    for k in ("codecs", "clean_cost", "records"):
        head[k] = [x for d in docs for x in d[k]]
    head["parts"] = [{"file": p, "codecs": d["config"]["codecs"], "seconds": d["seconds"]} for p, d in zip(parts, docs)]
    out.write_text(json.dumps(head, indent=1))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--codecs", default="deepsc-wordnet,deepsc-adv", help="comma-separated zoo names or files")
    p.add_argument("--n", type=int, default=64, help="evaluated held-out sentences")
    p.add_argument("--tokens", type=int, default=10, help="sentences of exactly this many tokens (one block size)")
    p.add_argument("--psr", type=float, nargs="+", default=list(PSR))
    p.add_argument("--steps", type=int, default=20, help="standard PGD steps (token CE, one start)")
    p.add_argument("--strong-steps", type=int, default=100, help="APGD-CE and PGD-margin steps per restart")
    p.add_argument("--restarts", type=int, default=2, help="random restarts of APGD-CE and PGD-margin")
    p.add_argument("--embed-steps", type=int, default=40, help="PGD steps on the soft-MiniLM objective (0: skip)")
    p.add_argument("--universal-steps", type=int, default=150)
    p.add_argument("--universal-batch", type=int, default=16)
    p.add_argument("--train-sentences", type=int, default=512, help="WordNet training-split sentences the "
                   "universal perturbation is fitted on (none evaluated)")
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--clean-n", type=int, default=1000, help="shipped held-out sentences for the clean cost")
    p.add_argument("--clean-snr", type=float, nargs="+", default=list(CLEAN_SNR))
    p.add_argument("--merge", nargs="+", metavar="PART", help="join part files into --out and stop")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/adv_text.json")
    a = p.parse_args(argv)
    if a.merge:
        return merge(a.merge, Path(a.out))
    torch.set_num_threads(a.threads)
    codecs = {name: load_codec(name) for name in a.codecs.split(",")}
    first = next(iter(codecs.values()))
    if len({c.tokenizer.to_str() for c in codecs.values()}) != 1:
        raise SystemExit("--codecs: the codecs use different tokenizers; the sentences would differ")
    shipped = load_shipped()
    pool = [s for s in shipped if first.tokenize([s]).shape[1] == a.tokens]
    evals = pool[: a.n]
    held = set(shipped)
    train = [s for s in split_sentences(load_wordnet_examples()).train if s not in held]
    train = [s for s in train if first.tokenize([s]).shape[1] == a.tokens][: a.train_sentences]
    tok, train_tok = first.tokenize(evals), first.tokenize(train)
    lengths = first.lengths(tok)
    sim = SentenceSimilarity()
    g = lambda: torch.Generator().manual_seed(0)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc: dict = {"name": "adv_text", "config": vars(a), "n_eval": len(evals), "n_train": len(train),
                 "codecs": [], "clean_cost": [], "records": [], "complete": False}
    t0 = time.perf_counter()

    def write() -> None:
        doc["seconds"] = time.perf_counter() - t0
        out.write_text(json.dumps(doc, indent=1))

    def per_sample(hyp: list[str]) -> dict:
        return {"bleu1": bleu(hyp, evals, 1).tolist(), "bleu4": bleu(hyp, evals, 4).tolist(),
                "similarity": torch.as_tensor(sim(hyp, evals)).float().tolist()}

    def means(ps: dict) -> dict:
        return {k: sum(v) / len(v) for k, v in ps.items()}

    for name, codec in codecs.items():
        link = Link(codec, AWGN())
        doc["codecs"].append({"codec": name, "sha256": codec.weights_sha256})
        for snr in a.clean_snr:  # the clean cost, on every shipped held-out sentence
            refs = shipped[: a.clean_n]
            gen = torch.Generator().manual_seed(int(snr * 100))
            with torch.no_grad():
                hyp = [h for i in range(0, len(refs), 250)
                       for h in codec.transmit(refs[i:i + 250], AWGN(), snr, generator=gen)[0]]
            rec = {"codec": name, "snr_db": snr, "sentences": len(refs), "bleu1": bleu(hyp, refs, 1).mean().item(),
                   "bleu4": bleu(hyp, refs, 4).mean().item(), "similarity": float(sim(hyp, refs).mean())}
            doc["clean_cost"].append(rec)
            print(f"{name:24} clean AWGN {snr:4g} dB ({len(refs)} sentences) bleu1 {rec['bleu1']:.3f} "
                  f"sim {rec['similarity']:.3f}", flush=True)
        write()

        def text(logits: torch.Tensor) -> list[str]:
            return codec.tokenizer.decode(logits.argmax(-1), lengths)

        with torch.no_grad():
            clean = per_sample(text(link(tok, a.snr_db, generator=g())["output"]))
        doc["records"].append({"codec": name, "attack": "clean", "psr_db": None, **means(clean)})
        print(f"{name:24} clean {a.snr_db:g} dB ({len(evals)} sentences) {means(clean)}", flush=True)
        emb = SoftSentenceEmbedder(codec.tokenizer.vocab(), similarity=sim) if a.embed_steps else None
        for b in a.psr:
            attacks = {
                "gaussian": build("attack", "gaussian", surface="symbols", psr_db=b),
                "pgd": build("attack", "pgd", surface="symbols", psr_db=b, steps=a.steps),
                "apgd-ce": build("attack", "apgd", surface="symbols", psr_db=b, steps=a.strong_steps,
                                 restarts=a.restarts),
                "pgd-margin": build("attack", "pgd", surface="symbols", psr_db=b, steps=a.strong_steps,
                                    restarts=a.restarts, task_loss="margin"),
            }
            if emb is not None:
                attacks["pgd-embedding"] = build("attack", "pgd", surface="symbols", psr_db=b, steps=a.embed_steps,
                                                 task_loss="embedding", embedder=emb)
            attacks["universal"] = None  # fitted below, against this codec
            scores = {}
            for label, atk in attacks.items():
                t = time.perf_counter()
                if atk is None:
                    atk = build("attack", "universal", surface="channel", psr_db=b, steps=a.universal_steps,
                                batch=a.universal_batch).fit(link, train_tok, a.snr_db)
                r = atk(link, tok, a.snr_db, generator=g())
                ps = scores[label] = per_sample(text(r.output))
                rec = {"codec": name, "attack": label, "psr_db": b, **means(ps), "per_sentence": ps,
                       "measured_psr_db": r.measured.mean().item(), "threat_model": r.threat_model.to_dict(),
                       "config": r.config, "seconds": time.perf_counter() - t}
                doc["records"].append(rec)
                write()
                print(f"{name:24} psr {b:>5g} {label:14} bleu1 {rec['bleu1']:.3f} bleu4 {rec['bleu4']:.3f} "
                      f"sim {rec['similarity']:.3f} ({rec['seconds']:.0f} s)", flush=True)
            worst = {k: [min(s[k][i] for s in scores.values()) for i in range(len(evals))] for k in clean}
            doc["records"].append({"codec": name, "attack": "worst", "psr_db": b, **means(worst),
                                   "per_sentence": worst, "of": list(scores)})
            print(f"{name:24} psr {b:>5g} {'worst':14} {means(worst)}", flush=True)
            write()
    doc["complete"] = True
    write()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
