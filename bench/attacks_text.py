"""DeepSC under attack: BLEU-1 / BLEU-4 and sentence similarity to the sent sentence under Gaussian
jamming, white-box symbol PGD (token cross-entropy, and a soft MiniLM sentence-embedding surrogate)
and a universal perturbation, over the PSR grid; the targeted-sentence attack (Bob reads the next
sentence of the batch) with exact match and BLEU to the target, and the budgets where exact match
reaches 50 % and 90 %; the word-substitution attack (nearest embedding tokens, and WordNet synonyms,
greedy on the token cross-entropy or on Bob's MiniLM similarity) beside random substitution. JSON out.

The universal perturbation is fitted at every PSR of the grid (Adam, EOT over Bob's channel and the
attacker's own) on the attacker's sentences: WordNet example sentences of the training split
(``--universal-source wordnet``, needs Debian's wordnet-base; the evaluated sentences are the
shipped held-out test split) or the shipped sentences not evaluated (``shipped``).

    PYTHONPATH=src python bench/attacks_text.py --threads 1 --out bench/results/attacks_text.json

``--codec deepsc-magmaw`` attacks the Magmaw-calibrated DeepSC (3 symbols per token, trained at 5-10 dB)
instead of the shipped one.

``shapes``: universal blocks shaped by DeepSC's layout (``S`` symbols per token slot): the whole block,
one pattern repeated on every slot, all power on one slot (first, middle, last) or on two slots.

``universal``: the universal block against the white-box bound on the ``--psr`` grid: Gaussian, the
universal block trained on each ``--universal-losses`` objective (``--universal-restarts`` fits, the one
with the highest token error rate on ``--validation-sentences`` further WordNet sentences kept; the
attacker's sentences only), and white-box symbol PGD on the capped token margin (``--margin-steps`` x
``--margin-restarts``, the strongest white-box attack at -10 dB and above) and on the token
cross-entropy (``pgd-ce``, ``--steps``; the strongest at -16 dB and below); ``--compare`` picks a
subset (to run parts side by side and ``--merge`` them):

    PYTHONPATH=src python bench/attacks_text.py --threads 1 --sections universal --psr -20 -16 -10 -5 \
        --universal-losses ce margin --universal-restarts 4 --out bench/results/attacks_text_universal.json

``calibration``: clean and Gaussian jamming at ``--calibration-psr`` over Bob's ``--calibration-snr`` grid
(how noise-fragile the codec is, against Magmaw's random-noise point).

``--sections`` runs a part (``untargeted``, ``targeted``, ``substitution``, ``shapes``, ``universal``,
``calibration``) into its own file;
``--merge A B C --out X`` joins such parts (their records, in order) into one file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from semguard.attacks.sentence import SoftSentenceEmbedder, similarity_score
from semguard.attacks.substitution import synonym_candidates
from semguard.channels import AWGN
from semguard.codecs.deepsc import DeepSC
from semguard.codecs.zoo import pretrained
from semguard.data.text import load_shipped, load_wordnet_examples, split_sentences
from semguard.data.wordnet import wordnet_synonyms
from semguard.link import Link
from semguard.metrics.text import SentenceSimilarity, bleu
from semguard.registry import build

PSR = (-25.0, -20.0, -16.0, -15.0, -10.0, -5.0)  # -16: Magmaw's anchor
TARGETED_PSR = (-25.0, -20.0, -15.0, -10.0, -5.0, -4.0, -3.0, -2.0, -1.0, 0.0, 1.0)
SECTIONS = ("untargeted", "targeted", "substitution", "shapes", "universal", "calibration")
COMPARE = ("gaussian", "universal", "pgd-margin", "pgd-ce")
SHAPE_PSR = (-15.0, -10.0)
SUBST_KINDS = ("greedy", "minilm", "random", "synonyms", "synonyms-minilm", "synonyms-random")


def crossing(psr: list[float], rate: list[float], level: float) -> float | None:
    """The lowest PSR where ``rate`` (measured at increasing ``psr``) reaches ``level``, linearly
    interpolated between the two grid points around it; None when it never does."""
    for i, (b, r) in enumerate(zip(psr, rate)):
        if r >= level:
            if i == 0:
                return b
            b0, r0 = psr[i - 1], rate[i - 1]
            return b0 + (level - r0) * (b - b0) / (r - r0)
    return None


def merge(parts: list[str], out: Path) -> int:
    docs = [json.loads(Path(p).read_text()) for p in parts]
    head = dict(docs[0])
    # each record says which codec and Bob SNR it was measured at when its part's config records them
    head["records"] = [{**{k: d["config"][k] for k in ("codec", "snr_db") if k in d["config"]}, **r}
                       for d in docs for r in d["records"]]
    head["parts"] = [{"file": p, "config": d["config"], "seconds": d["seconds"]} for p, d in zip(parts, docs)]
    for d in docs[1:]:
        head.update({k: v for k, v in d.items() if k in ("targeted_budget", "universal_fit_seconds") and v})
    out.write_text(json.dumps(head, indent=1))
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=64, help="evaluation sentences")
    p.add_argument("--tokens", type=int, default=10, help="sentences of exactly this many tokens (one block size)")
    p.add_argument("--steps", type=int, default=20, help="PGD steps (untargeted)")
    p.add_argument("--embed-steps", type=int, default=20, help="PGD steps on the MiniLM surrogate (0: skip)")
    p.add_argument("--targeted-steps", type=int, default=100)
    p.add_argument("--universal-steps", type=int, default=400)
    p.add_argument("--universal-batch", type=int, default=32)
    p.add_argument("--universal-loss", default="ce", choices=("ce", "margin", "prob"))
    p.add_argument("--universal-source", default="wordnet", choices=("wordnet", "shipped"))
    p.add_argument("--train-sentences", type=int, default=512)
    p.add_argument("--validation-sentences", type=int, default=256,
                   help="further attacker sentences that rank the universal restarts (section universal)")
    p.add_argument("--universal-restarts", type=int, default=1, help="universal fits per PSR (section universal)")
    p.add_argument("--universal-losses", nargs="+", default=["ce", "margin", "prob"], choices=("ce", "margin", "prob", "embedding"),
                   help="universal objectives (section universal; embedding: the soft-MiniLM cosine)")
    p.add_argument("--margin-steps", type=int, default=100, help="white-box margin PGD steps (section universal)")
    p.add_argument("--margin-restarts", type=int, default=2)
    p.add_argument("--psr", type=float, nargs="+", default=[-20.0, -16.0, -10.0, -5.0], help="PSR grid of section universal")
    p.add_argument("--compare", nargs="+", default=list(COMPARE[:3]), choices=COMPARE, help="attacks of section universal")
    p.add_argument("--snr-db", type=float, default=10.0)
    p.add_argument("--codec", default="deepsc-wordnet",
                   help="zoo name of the DeepSC attacked (deepsc-magmaw: the Magmaw-calibrated victim)")
    p.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    p.add_argument("--shape-psr", type=float, nargs="+", default=list(SHAPE_PSR), help="PSR grid of the shapes section")
    p.add_argument("--substitution-kinds", nargs="+", default=list(SUBST_KINDS), choices=SUBST_KINDS)
    p.add_argument("--ks", nargs="+", type=int, default=[1, 2, 3], help="substitution budgets (tokens)")
    p.add_argument("--calibration-snr", type=float, nargs="+", default=[10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 25.0],
                   help="section calibration: Bob's SNRs (dB) where clean and Gaussian jamming at --calibration-psr are measured")
    p.add_argument("--calibration-psr", type=float, default=-16.0)
    p.add_argument("--merge", nargs="+", metavar="PART", help="join part files into --out and stop")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="bench/results/attacks_text.json")
    a = p.parse_args(argv)
    if a.merge:
        return merge(a.merge, Path(a.out))
    torch.set_num_threads(a.threads)
    codec = pretrained(a.codec).eval()
    if not isinstance(codec, DeepSC):
        raise SystemExit(f"--codec {a.codec} is not a DeepSC text codec")
    pool = [s for s in load_shipped() if codec.tokenize([s]).shape[1] == a.tokens]
    evals, train = pool[: a.n], pool[a.n:]
    valid: list[str] = []
    if a.universal_source == "wordnet":
        held = set(load_shipped())
        train = [s for s in split_sentences(load_wordnet_examples()).train if s not in held]
        train = [s for s in train if codec.tokenize([s]).shape[1] == a.tokens]
        train, valid = train[: a.train_sentences], train[a.train_sentences:a.train_sentences + a.validation_sentences]
    tok, train_tok = codec.tokenize(evals), codec.tokenize(train)
    valid_tok = codec.tokenize(valid) if valid else None
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
    rows: list[dict] = []
    extra: dict = {}
    t0 = time.perf_counter()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def dump(complete: bool) -> None:  # after every record too, so a stopped run keeps what it measured
        out.write_text(json.dumps({"name": "attacks_text", "config": vars(a), "clean": clean, "n_eval": len(evals),
                                   "n_train": len(train), "n_validation": len(valid), **extra,
                                   "seconds": time.perf_counter() - t0, "complete": complete,
                                   "records": rows}, indent=1))
    with torch.no_grad():
        clean = score(text(link(tok, snr, generator=g())["output"]), evals)
    print(f"clean {clean}  ({len(evals)} eval / {len(train)} universal-training sentences of {a.tokens} tokens)")

    def run(name: str, atk, b: float, **kw) -> tuple[dict, object]:
        t = time.perf_counter()
        r = atk(link, tok, snr, generator=g(), **kw)
        rec = {"attack": name, "psr_db": b, **score(text(r.output), evals), "threat_model": r.threat_model.to_dict(),
               "measured_psr_db": r.measured.mean().item(), "config": r.config,
               "seconds": time.perf_counter() - t}
        rows.append(rec)
        dump(False)
        print(f"psr {b:>5g} {name:16} bleu1 {rec['bleu1']:.3f} bleu4 {rec['bleu4']:.3f} sim {rec['similarity']:.3f}"
              f" ({rec['seconds']:.0f} s)", flush=True)
        return rec, r

    if "untargeted" in a.sections:
        emb = SoftSentenceEmbedder(codec.tokenizer.vocab(), similarity=sim)
        fit_s: dict[str, float | None] = {}
        for b in PSR:
            run("gaussian", build("attack", "gaussian", surface="symbols", psr_db=b), b)
            run("pgd", build("attack", "pgd", surface="symbols", psr_db=b, steps=a.steps), b)
            if a.embed_steps:
                run("pgd-embedding", build("attack", "pgd", surface="symbols", psr_db=b, steps=a.embed_steps,
                                           task_loss="embedding", embedder=emb), b)
            u = build("attack", "universal", surface="channel", psr_db=b, steps=a.universal_steps,
                      batch=a.universal_batch, task_loss=a.universal_loss).fit(link, train_tok, snr)
            fit_s[str(b)] = u.fit_seconds
            rec, _ = run("universal", u, b)
            power = u.delta.abs().square().view(a.tokens, -1).mean(1)
            rec["slot_power_share"] = (power / power.sum()).tolist()  # where the block puts its power
        extra["universal_fit_seconds"] = fit_s

    if "universal" in a.sections:
        if a.universal_restarts > 1 and valid_tok is None:
            raise SystemExit("--universal-restarts > 1 ranks the fits on further WordNet sentences: "
                             "use --universal-source wordnet")
        fit_u: dict[str, float | None] = {}
        extra["universal_fit_seconds"] = fit_u
        for b in a.psr:
            if "gaussian" in a.compare:
                run("gaussian", build("attack", "gaussian", surface="symbols", psr_db=b), b)
            if "universal" in a.compare:
                for loss in a.universal_losses:
                    kw = {"embedder": SoftSentenceEmbedder(codec.tokenizer.vocab(), similarity=sim)} if loss == "embedding" else {}
                    u = build("attack", "universal", surface="channel", psr_db=b, steps=a.universal_steps,
                              batch=a.universal_batch, task_loss=loss, restarts=a.universal_restarts, **kw)
                    u.fit(link, train_tok, snr, validation=valid_tok)
                    name = f"universal-{loss}" + (f"-r{a.universal_restarts}" if a.universal_restarts > 1 else "")
                    fit_u[f"{name}@{b:g}"] = u.fit_seconds
                    rec, _ = run(name, u, b)
                    power = u.delta.abs().square().view(a.tokens, -1).mean(1)
                    rec["slot_power_share"] = (power / power.sum()).tolist()
            if "pgd-ce" in a.compare:  # the strongest white-box objective at -16 dB and below (session 11)
                run("pgd", build("attack", "pgd", surface="symbols", psr_db=b, steps=a.steps), b)
            if "pgd-margin" in a.compare:
                run("pgd-margin", build("attack", "pgd", surface="symbols", psr_db=b, steps=a.margin_steps,
                                        restarts=a.margin_restarts, task_loss="margin"), b)

    if "calibration" in a.sections:  # how fragile to noise the codec is, against Magmaw's 0.927 at -16 dB, 10 dB
        for snr_b in a.calibration_snr:
            with torch.no_grad():
                rec = {"attack": "clean", "snr_db": snr_b, **score(text(link(tok, snr_b, generator=g())["output"]), evals)}
            rows.append(rec)
            r = build("attack", "gaussian", surface="symbols", psr_db=a.calibration_psr)(link, tok, snr_b, generator=g())
            rows.append({"attack": "gaussian", "snr_db": snr_b, "psr_db": a.calibration_psr, **score(text(r.output), evals)})
            dump(False)
            print(f"snr {snr_b:g} clean bleu1 {rec['bleu1']:.3f}; gaussian at {a.calibration_psr:g} dB bleu1 "
                  f"{rows[-1]['bleu1']:.3f} bleu4 {rows[-1]['bleu4']:.3f}", flush=True)

    if "shapes" in a.sections:
        n, S = codec.n_symbols((a.tokens,)), codec.S

        def slots(*ks: int) -> torch.Tensor:
            m = torch.zeros(n, dtype=torch.bool)
            for k in ks:
                m[S * k:S * (k + 1)] = True
            return m
        last = a.tokens - 1
        shapes = {"whole": {}, "per-token pattern": {"period": S}, "slot 0": {"support": slots(0)},
                  f"slot {last // 2}": {"support": slots(last // 2)}, f"slot {last}": {"support": slots(last)},
                  "slots 0-1": {"support": slots(0, 1)}}
        for b in a.shape_psr:
            for shape, kw in shapes.items():
                u = build("attack", "universal", surface="channel", psr_db=b, steps=a.universal_steps,
                          batch=a.universal_batch, task_loss=a.universal_loss, **kw).fit(link, train_tok, snr)
                rec, _ = run("universal-shaped", u, b)
                rec["shape"] = shape

    if "targeted" in a.sections:
        target = tok.roll(1, dims=0)
        target_text = codec.tokenizer.decode(target, lengths)
        rates = []
        for b in TARGETED_PSR:
            atk = build("attack", "pgd", surface="symbols", psr_db=b, steps=a.targeted_steps, targeted=True)
            rec, r = run("pgd-targeted", atk, b, target=target)
            got = text(r.output)
            rec.update({"exact_match": sum(h == t for h, t in zip(got, target_text)) / len(got),
                        "bleu1_to_target": bleu(got, target_text, 1).mean().item(),
                        "bleu4_to_target": bleu(got, target_text, 4).mean().item(),
                        "token_match_to_target": (r.output.argmax(-1) == target).float().mean().item()})
            rates.append(rec["exact_match"])
            print(f"psr {b:>5g} targeted   exact {rec['exact_match']:.3f} bleu1->target {rec['bleu1_to_target']:.3f}",
                  flush=True)
        extra["targeted_budget"] = {"exact_50": crossing(list(TARGETED_PSR), rates, 0.5),
                                    "exact_90": crossing(list(TARGETED_PSR), rates, 0.9)}
        print(f"targeted exact match reaches 50 % at {extra['targeted_budget']['exact_50']} dB, "
              f"90 % at {extra['targeted_budget']['exact_90']} dB", flush=True)

    if "substitution" in a.sections:
        syn_table = synonym_candidates(codec.tokenizer.vocab(), wordnet_synonyms(), 8)
        covered = (syn_table != torch.arange(syn_table.shape[0])[:, None]).any(1)
        real = tok >= 2
        print(f"WordNet: {int(covered.sum())} of {syn_table.shape[0]} tokens have a one-token synonym; "
              f"{covered[tok][real].float().mean().item():.3f} of the evaluated tokens", flush=True)
        minilm = similarity_score(codec.tokenizer.decode, sim)
        kinds = (("", False, None), ("-minilm", False, minilm), ("-random", True, None),
                 ("-synonyms", False, None), ("-synonyms-minilm", False, minilm), ("-synonyms-random", True, None))
        kinds = tuple(kd for kd, name in zip(kinds, SUBST_KINDS) if name in a.substitution_kinds)
        for k in a.ks:
            for kind, rnd, sc in kinds:
                kw = {"neighbours": syn_table} if "synonyms" in kind else {}
                t = time.perf_counter()
                r = build("attack", "word-substitution", k=k, random=rnd, score=sc, **kw)(link, tok, snr, generator=g())
                sent = codec.tokenizer.decode(r.perturbation, lengths)
                rec = {"attack": "word-substitution" + kind, "k": k, **score(text(r.output), evals),
                       "sent_vs_original": score(sent, evals), "substituted": r.measured.mean().item(),
                       "config": r.config, "seconds": time.perf_counter() - t}
                rows.append(rec)
                print(f"subst k={k} {kind or 'greedy'} (mean {rec['substituted']:.2f} substituted) received-vs-original "
                      f"bleu1 {rec['bleu1']:.3f} sim {rec['similarity']:.3f}; sent-vs-original sim "
                      f"{rec['sent_vs_original']['similarity']:.3f} ({rec['seconds']:.0f} s)", flush=True)

    dump(True)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
