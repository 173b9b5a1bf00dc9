"""Emergency text: critical-word exact recall against SNR, every allocation against uniform.

Schemes over the shipped DeepSC (:mod:`~semguard.network.priority_text`,
:mod:`~semguard.network.priority_codebook`):

* ``uniform``: DeepSC as trained, ``S`` uses and power 1 per use on every token;
* ``power``: critical tokens' symbols at ``+boost_db`` over the others, then one scale per
  sentence so that it spends exactly uniform's energy (same uses; the scale is side information);
* ``repeat`` / ``repeat-energy``: critical tokens' symbols sent ``repeat`` times and averaged
  (more uses; ``repeat-energy`` scaled, as ``power``, to exactly uniform's energy);
* ``codebook+<B>dB``: the critical tokens' uses carry the critical words' lexicon indices as
  ML-decoded QPSK codewords at ``+B`` dB over the renormalised DeepSC symbols of the rest (same
  uses and energy as uniform);
* ``ldpc+<B>dB``: every critical bit of the sentence (lexicon indices, escape headers and spelled
  characters) in one 5G LDPC + QPSK codeword on the critical tokens' uses (plus extra uses when
  the code rate would pass ``ldpc_max_rate``) at ``+B`` dB, BP-decoded
  (:mod:`~semguard.network.priority_ldpc`; uniform's energy exactly); ``ldpc+<B>dB/huffman``
  spells the characters with a Huffman code built on the training split
  (:mod:`~semguard.network.huffman`).

SNR is ``Es/N0`` with ``Es`` uniform's power per use for every scheme (each sentence spends
``S L`` units of energy except ``repeat``).  Rows carry per-sentence hit counts (``hits``,
``words``) so that :func:`gain_ci` can bootstrap over sentences.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import numpy as np
import torch

from semguard.codecs.base import SemanticCodec
from semguard.metrics.text import sentence_bleu
from semguard.network.emergency import snr_to_reach
from semguard.network.priority import jammer
from semguard.network.priority_codebook import critical_lexicon, send_codebook
from semguard.network.priority_ldpc import send_ldpc
from semguard.network.priority_text import (
    SCHEMES,
    allocate_power,
    critical_token_mask,
    critical_words,
)
from semguard.registry import build

__all__ = ["codebook_scheme", "critical_jammer", "gain_ci", "ldpc_scheme", "text_sweep"]

log = logging.getLogger(__name__)


def codebook_scheme(boost_db: float, oov: str = "spell") -> str:
    """Row name of the codebook scheme at ``boost_db``; ``oov="deepsc"`` (out-of-lexicon critical
    words sent by DeepSC) adds ``/deepsc``."""
    return f"codebook+{boost_db:g}dB" + ("" if oov == "spell" else f"/{oov}")


def ldpc_scheme(boost_db: float, oov: str = "spell") -> str:
    """Row name of the joint LDPC scheme at ``boost_db`` (``/deepsc`` as for :func:`codebook_scheme`)."""
    return f"ldpc+{boost_db:g}dB" + ("" if oov == "spell" else f"/{oov}")


def _parse_boosted(scheme: str) -> tuple[float, str]:
    """``(boost dB, oov mode)`` of a ``codebook+<B>dB[/oov]`` or ``ldpc+<B>dB[/oov]`` row name."""
    head, _, oov = scheme.partition("/")
    return float(head[head.index("+") + 1:-2]), oov or "spell"


def _check_sentences(sentences: Sequence[str]) -> None:
    if not len(sentences):
        raise ValueError("sentences: expected at least one sentence, got an empty list")
    for i, s in enumerate(sentences):
        if not s.split():
            raise ValueError(f"sentences[{i}]: expected a non-empty message, got {s!r}")


def _score(pred, tokens, spans, ok_override=None) -> tuple[list[int], list[int], int, int, list[list[bool]]]:
    ok = pred == tokens
    hits, words, ow, no, goods = [], [], 0, 0, []
    for b, sp in enumerate(spans):
        h = n = k = 0
        gb = []
        for s0, s1, c in sp:
            good = bool(ok[b, s0:s1].all())
            if c:
                if ok_override is not None:
                    good = bool(ok_override[b][k])
                    k += 1
                h, n = h + good, n + 1
                gb.append(good)
            else:
                ow, no = ow + good, no + 1
        hits.append(h)
        words.append(n)
        goods.append(gb)
    return hits, words, ow, no, goods


@torch.no_grad()
def _deepsc(m, tokens, crit, lengths, scheme, snr, ch, *, boost_db, repeat, jam, g):
    S = m.S
    B, T = tokens.shape
    real = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    x = m.encode(tokens, snr)
    if scheme == "power":
        amp = allocate_power(crit, lengths, boost_db).sqrt().repeat_interleave(S, 1)
    else:
        amp = real.float().repeat_interleave(S, 1)
    copies = repeat if scheme.startswith("repeat") else 1
    cs = crit.repeat_interleave(S, 1)
    if scheme in ("power", "repeat-energy"):   # one scale per sentence: exactly uniform's energy S L
        p = x.abs().square()
        energy = (p * amp.square()).sum(1) + (copies - 1) * (p * amp.square() * cs).sum(1)
        amp = amp * (S * lengths / energy.clamp_min(1e-12)).sqrt().unsqueeze(1)
    acc = torch.zeros_like(x)
    for k in range(copies):
        tx = x * amp
        st = ch.sample_state(B, tx.shape[1], snr, generator=g)
        y = ch.equalize(ch.apply(tx, st, generator=g, interference=None if jam is None else st.h * jam(tx)), st)
        y = y / amp.clamp_min(1e-6) * (amp > 0)
        acc = acc + (y if k == 0 else y * cs)     # non-critical tokens are sent once
    pred = m.decode(acc / (1 + (copies - 1) * cs.float()), None, lengths=lengths).argmax(-1)
    energy = (x * amp).abs().square().sum(1) + (copies - 1) * ((x * amp).abs().square() * cs).sum(1)
    uses = int((S * lengths).sum()) + (copies - 1) * S * int((crit & real).sum())
    return pred, uses, energy.double()


def critical_jammer(tx: torch.Tensor, critical: torch.Tensor, *, psr_db: float, fraction: float = 0.25,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Gaussian jamming ``[B, n]`` that knows the allocation: total power ``psr_db`` relative to the
    sentence's signal energy, on ``fraction`` of its real symbols chosen among the critical
    slots ``critical [B, n]`` (all of them when there are fewer)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"jammed fraction must be in (0, 1], got {fraction}")
    out = torch.zeros_like(tx)
    energy = tx.abs().square().sum(1)
    real = tx != 0
    for b in range(tx.shape[0]):
        cand = critical[b].nonzero().flatten()
        if not len(cand):
            continue
        m = min(len(cand), max(1, round(fraction * int(real[b].sum()))))
        idx = cand[torch.randperm(len(cand), generator=generator)[:m]]
        per = 10 ** (psr_db / 10) * float(energy[b]) / m
        out[b, idx] = torch.view_as_complex((torch.randn(m, 2, generator=generator) * (per / 2) ** 0.5).contiguous())
    return out


@torch.no_grad()
def text_sweep(sentences: Sequence[str], snrs: Sequence[float], *, schemes: Sequence[str] = SCHEMES,
               boost_db: float = 1.0, repeat: int = 2, codebook_boosts: Sequence[float] = (0.0, 1.0),
               index_bits: int | None = None, channel: str = "awgn", reference: Sequence[str] | None = None,
               jam_psr_db: float | None = None, jam_targeted: bool = False, seed: int = 0,
               codec: SemanticCodec | None = None, names: frozenset[str] = frozenset(),
               lexicon: dict[str, int] | None = None, oov_modes: Sequence[str] = ("spell",),
               spell_uses: int = 6, ldpc_boosts: Sequence[float] = (), ldpc_max_rate: float = 0.5,
               char_code: dict[int, tuple[int, ...]] | None = None, ldpc_pool: int = 1) -> list[dict]:
    """Critical-word exact recall, other-word accuracy and BLEU-1/4 per SNR and scheme.

    ``lexicon`` (with its ``index_bits``; see :func:`~semguard.network.lexicon.build_lexicon`):
    a shared lexicon built without ``sentences``; the critical words outside it go by each of
    ``oov_modes`` (``spell`` with ``spell_uses`` uses per character, or ``deepsc``; see
    :func:`~semguard.network.priority_codebook.send_codebook`).  Without it (the oracle lexicon)
    the lexicon is the critical words of ``reference`` (default ``sentences``) and of
    ``sentences`` themselves, at ``index_bits`` bits per index (default: the fewest that hold it).
    Which words are critical is decided on the counts of ``reference`` either way.  ``ldpc_boosts``
    adds the joint LDPC scheme at each boost and each of ``oov_modes`` (code rate at most
    ``ldpc_max_rate``; :func:`~semguard.network.priority_ldpc.send_ldpc`); the mode ``huffman``
    (LDPC only) spells with the prefix code ``char_code`` (:func:`~semguard.network.huffman.char_code`);
    ``ldpc_pool``: the LDPC codewords' energy pooled over frames of that many sentences.  ``jam_targeted``: the jammer knows the
    allocation and hits the critical slots (:func:`critical_jammer`), else a random 25 %.  Each row also has ``hits`` and ``words``
    per sentence (critical words decoded right, critical words)."""
    _check_sentences(sentences)
    if "huffman" in oov_modes and char_code is None:
        raise ValueError("the oov mode 'huffman' needs a char_code (network.huffman.char_code of the training split)")
    if repeat < 2:
        raise ValueError(f"repeat must be >= 2 copies, got {repeat}")
    if ldpc_boosts and not 0 < ldpc_max_rate < 1:
        raise ValueError(f"ldpc_max_rate must be in (0, 1), got {ldpc_max_rate}")
    m = codec or build("codec", "deepsc", pretrained=True)
    m.eval()
    ref = list(reference or sentences)
    counts = Counter(" ".join(ref).split())
    crit, spans = critical_token_mask(m.tokenizer, sentences, counts, names=names)
    crit_words = [[w for w, f in zip(s.split(), critical_words(s, counts, names=names)) if f] for s in sentences]
    if lexicon is None:
        lex_words = [w for s in ref for w, f in zip(s.split(), critical_words(s, counts, names=names)) if f]
        lex_words += [w for ws in crit_words for w in ws]
        bits = index_bits or max(1, (len(set(lex_words)) - 1).bit_length())
        lexicon = critical_lexicon(lex_words, index_bits=bits)
    elif index_bits is None:
        raise ValueError("a given lexicon needs its index_bits")
    else:
        bits = index_bits
    oov_flags = [[w not in lexicon for w in ws] if sp else [] for ws, sp in zip(crit_words, spans)]
    oov_words = sum(map(sum, oov_flags))
    tokens = m.tokenizer.encode(list(sentences), max_tokens=m.max_tokens)
    lengths = m.lengths(tokens)
    ch = build("channel", channel)
    crit_sym = (crit & (torch.arange(tokens.shape[1]) < lengths.unsqueeze(1))).repeat_interleave(m.S, 1)
    names_all = list(schemes) + [codebook_scheme(b, o) for o in oov_modes if o != "huffman" for b in codebook_boosts]
    names_all += [ldpc_scheme(b, o) for o in oov_modes for b in ldpc_boosts]
    rows = []
    for snr in snrs:
        for scheme in names_all:
            g = torch.Generator().manual_seed(seed)
            jam = None
            if jam_psr_db is not None and jam_targeted:
                def jam(tx, g=g):                # spelled characters, past the DeepSC block, are critical too
                    c = torch.cat([crit_sym, tx[:, crit_sym.shape[1]:] != 0], 1)
                    return critical_jammer(tx, c, psr_db=jam_psr_db, generator=g)
            elif jam_psr_db is not None:
                def jam(tx, g=g):
                    return jammer(tuple(tx.shape), tx.abs().square(), psr_db=jam_psr_db, generator=g)
            override, extra = None, 0
            if scheme.startswith("codebook"):
                b_db, oov = _parse_boosted(scheme)
                out = send_codebook(m, tokens, spans, crit_words, lexicon, bits, snr, ch, boost_db=b_db, jam=jam,
                                    generator=g, seed=seed, oov=oov, spell_uses=spell_uses)
                pred, override, uses, energy = out["tokens"], out["critical_ok"], int(out["uses"].sum()), out["energy"]
                extra = int(out["extra_uses"].sum())
            elif scheme.startswith("ldpc"):
                b_db, oov = _parse_boosted(scheme)
                out = send_ldpc(m, tokens, spans, crit_words, lexicon, bits, snr, ch, boost_db=b_db, jam=jam,
                                generator=g, oov="spell" if oov == "huffman" else oov, max_rate=ldpc_max_rate,
                                char_code=char_code if oov == "huffman" else None, pool=ldpc_pool)
                pred, override, uses, energy = out["tokens"], out["critical_ok"], int(out["uses"].sum()), out["energy"]
                extra = int(out["extra_uses"].sum())
            else:
                pred, uses, energy = _deepsc(m, tokens, crit, lengths, scheme, snr, ch, boost_db=boost_db, repeat=repeat,
                                     jam=jam, g=g)
            hits, words, ow, no, goods = _score(pred, tokens, spans, override)
            oov_hits = sum(hit for gb, fb in zip(goods, oov_flags) for hit, f in zip(gb, fb) if f)
            hyp = m.tokenizer.decode(pred, lengths)
            b1 = float(np.mean([sentence_bleu(h, r, 1) for h, r in zip(hyp, sentences)]))
            b4 = float(np.mean([sentence_bleu(h, r, 4) for h, r in zip(hyp, sentences)]))
            rows.append({"snr_db": snr, "scheme": scheme, "critical_recall": sum(hits) / max(sum(words), 1),
                         "other_word_accuracy": ow / max(no, 1), "bleu1": b1, "bleu4": b4,
                         "critical_words": sum(words), "channel_uses": uses, "index_bits": bits,
                         "energy_ratio": float(energy.sum() / (m.S * lengths).sum()),
                         "extra_channel_uses": extra, "oov_words": oov_words,
                         "oov_recall": oov_hits / oov_words if oov_words else None,
                         "hits": hits, "words": words})
            log.info("%5.1f dB %-14s critical recall %.3f, other words %.3f, BLEU-1 %.3f", snr, scheme,
                     rows[-1]["critical_recall"], rows[-1]["other_word_accuracy"], b1)
    return rows


def gain_ci(rows: list[dict], threshold: float, a: str, b: str = "uniform", *, draws: int = 1000,
            seed: int = 0) -> dict:
    """SNR each scheme needs for critical recall ``>= threshold``, the gain ``b - a`` in dB, and its
    95 % interval from a bootstrap over sentences (the same resampled sentences for every SNR and
    both schemes; only the SNRs both were run at); ``unreached`` is the share of draws where a
    scheme never reaches it."""
    grids = [{r["snr_db"] for r in rows if r["scheme"] == name} for name in (a, b)]
    common = grids[0] & grids[1]                      # the SNRs both schemes were run at
    sel = {name: sorted((r for r in rows if r["scheme"] == name and r["snr_db"] in common), key=lambda r: r["snr_db"])
           for name in (a, b)}
    if not sel[a] or not sel[b]:
        raise ValueError(f"no rows for scheme {a!r} or {b!r} at a common SNR")
    snrs = [r["snr_db"] for r in sel[a]]
    hits = {k: np.array([r["hits"] for r in v], dtype=float) for k, v in sel.items()}      # [snr, sentences]
    words = {k: np.array([r["words"] for r in v], dtype=float) for k, v in sel.items()}

    def reach(idx: np.ndarray) -> tuple[float | None, float | None]:
        out = []
        for k in (a, b):
            rec = hits[k][:, idx].sum(1) / np.maximum(words[k][:, idx].sum(1), 1)
            out.append(snr_to_reach(snrs, rec.tolist(), threshold))
        return out[0], out[1]

    n = hits[a].shape[1]
    sa, sb = reach(np.arange(n))
    rng = np.random.default_rng(seed)
    gains, unreached = [], 0
    for _ in range(draws):
        ra, rb = reach(rng.integers(0, n, n))
        if ra is None or rb is None:
            unreached += 1
        else:
            gains.append(rb - ra)
    lo, hi = (np.percentile(gains, [2.5, 97.5]).tolist() if gains else (None, None))
    return {a: sa, b: sb, "gain_db": None if None in (sa, sb) else sb - sa, "ci95_db": [lo, hi],
            "unreached_share": unreached / draws, "threshold": threshold}
