"""DeepSC under attack: BLEU-1 / BLEU-4 and sentence similarity to the sent sentence under Gaussian
jamming, white-box PGD over the air and a universal perturbation, over the PSR grid; the
targeted-sentence success rate (Bob reads the next sentence of the batch); the word-substitution
attack (nearest embedding tokens, and WordNet synonyms) beside random substitution, JSON out.

The universal perturbation is fitted at every PSR of the grid (EOT over Bob's channel and the
attacker's own), on the attacker's sentences: WordNet example sentences of the training split
(``--universal-source wordnet``, needs Debian's wordnet-base; the evaluated sentences are the
shipped held-out test split) or the shipped sentences not evaluated (``shipped``).

    PYTHONPATH=src python bench/attacks_text.py --n 64 --steps 20 --universal-steps 150 --threads 1 \\
        --out bench/results/attacks_text.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.channels import AWGN
from semguard.attacks.substitution import synonym_candidates
from semguard.data.text import load_shipped, load_wordnet_examples, split_sentences
from semguard.data.wordnet import wordnet_synonyms
from semguard.metrics.text import SentenceSimilarity, bleu
from semguard.link import Link
from semguard.registry import build

PSR = (-25.0, -20.0, -15.0, -10.0, -5.0)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=64, help="evaluation sentences")
    p.add_argument("--tokens", type=int, default=10, help="sentences of exactly this many tokens (one block size)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--universal-steps", type=int, default=150)
    p.add_argument("--universal-batch", type=int, default=16)
    p.add_argument("--universal-source", default="wordnet", choices=("wordnet", "shipped"))
    p.add_argument("--train-sentences", type=int, default=512)
    p.add_argument("--universal-once", action="store_true", help="fit once at the first PSR and replay it")
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/attacks_text.json")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    codec = build("codec", "deepsc", pretrained=True).eval()
    pool = [s for s in load_shipped() if codec.tokenize([s]).shape[1] == a.tokens]
    evals, train = pool[: a.n], pool[a.n:]
    if a.universal_source == "wordnet":
        held = set(load_shipped())
        train = [s for s in split_sentences(load_wordnet_examples()).train if s not in held]
        train = [s for s in train if codec.tokenize([s]).shape[1] == a.tokens][: a.train_sentences]
    tok, train_tok = codec.tokenize(evals), codec.tokenize(train)
    lengths = codec.lengths(tok)
    sim = SentenceSimilarity()
    link = Link(codec, AWGN())
    snr = a.snr_db

    def text(logits: torch.Tensor) -> list[str]:
        return codec.tokenizer.decode(logits.argmax(-1), lengths)

    def score(hyp: list[str], ref: list[str]) -> dict:
        return {"bleu1": bleu(hyp, ref, 1).mean().item(), "bleu4": bleu(hyp, ref, 4).mean().item(),
                "similarity": float(torch.as_tensor(sim(hyp, ref)).mean())}

    g = lambda: torch.Generator().manual_seed(0)
    rows = []
    t0 = time.perf_counter()
    with torch.no_grad():
        clean = score(text(link(tok, snr, generator=g())["output"]), evals)
    print(f"clean {clean}  ({len(evals)} eval / {len(train)} universal-training sentences of {a.tokens} tokens)")
    fits: dict[float, object] = {}

    def universal(b: float):
        key = PSR[0] if a.universal_once else b
        if key not in fits:
            fits[key] = build("attack", "universal", surface="channel", psr_db=key, steps=a.universal_steps,
                              batch=a.universal_batch).fit(link, train_tok, snr)
        return build("attack", "universal", surface="channel", psr_db=b, delta=fits[key].delta)
    target = tok.roll(1, dims=0)
    target_text = codec.tokenizer.decode(target, lengths)
    for b in PSR:
        for name, atk in (("gaussian", build("attack", "gaussian", surface="channel", psr_db=b)),
                          ("pgd", build("attack", "pgd", surface="channel", psr_db=b, steps=a.steps)),
                          ("universal", universal(b))):
            t = time.perf_counter()
            r = atk(link, tok, snr, generator=g())
            rec = {"attack": name, "psr_db": b, **score(text(r.output), evals), "threat_model": r.threat_model.to_dict(),
                   "ms_per_sentence_step": 1000 * (time.perf_counter() - t) / (len(evals) * getattr(atk, "steps", 1)
                                                                               if name == "pgd" else len(evals))}
            rows.append(rec)
            print(f"psr {b:>5g} {name:10} bleu1 {rec['bleu1']:.3f} bleu4 {rec['bleu4']:.3f} sim {rec['similarity']:.3f}",
                  flush=True)
        r = build("attack", "pgd", surface="channel", psr_db=b, steps=a.steps, targeted=True)(
            link, tok, snr, target=target, generator=g())
        got = text(r.output)
        rec = {"attack": "pgd-targeted", "psr_db": b, "exact_match": sum(h == t for h, t in zip(got, target_text)) / len(got),
               "bleu1_to_target": bleu(got, target_text, 1).mean().item(), **score(got, evals)}
        rows.append(rec)
        print(f"psr {b:>5g} targeted   exact {rec['exact_match']:.3f} bleu1->target {rec['bleu1_to_target']:.3f}", flush=True)
    syn_table = synonym_candidates(codec.tokenizer._tok.get_vocab(), wordnet_synonyms(), 8)
    covered = (syn_table != torch.arange(syn_table.shape[0])[:, None]).any(1)
    real = tok >= 2
    print(f"WordNet: {int(covered.sum())} of {syn_table.shape[0]} tokens have a one-token synonym; "
          f"{covered[tok][real].float().mean().item():.3f} of the evaluated tokens", flush=True)
    for k in (1, 2, 3):
        for kind, rnd in (("", False), ("-random", True), ("-synonyms", False), ("-synonyms-random", True)):
            kw = {"neighbours": syn_table} if "synonyms" in kind else {}
            r = build("attack", "word-substitution", k=k, random=rnd, **kw)(link, tok, snr, generator=g())
            sent = codec.tokenizer.decode(r.perturbation, lengths)
            rec = {"attack": "word-substitution" + kind, "k": k, **score(text(r.output), evals),
                   "sent_vs_original": score(sent, evals), "substituted": r.measured.mean().item()}
            rows.append(rec)
            print(f"subst k={k} {kind or 'greedy'} (mean {rec['substituted']:.2f} substituted) received-vs-original bleu1 {rec['bleu1']:.3f} "
                  f"sim {rec['similarity']:.3f}; sent-vs-original sim {rec['sent_vs_original']['similarity']:.3f}", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"name": "attacks_text", "config": vars(a), "clean": clean, "n_eval": len(evals),
                               "n_train": len(train), "universal_fit_seconds": {str(k): u.fit_seconds for k, u in fits.items()},
                               "seconds": time.perf_counter() - t0, "records": rows}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
