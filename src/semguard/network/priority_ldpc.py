"""Critical words over one 5G LDPC + QPSK codeword per sentence: every critical bit of a
sentence (lexicon indices, escape headers and spelled characters) jointly channel-coded.

The codebook scheme (:mod:`~semguard.network.priority_codebook`) sends each critical word as its
own short random codeword, and a spelled word's characters as one more short codeword each, so
every word meets the channel alone.  Here a sentence's critical words become one bit string
(:func:`critical_bits`; a hand-checkable layout):

* per critical word in sentence order, ``index_bits`` bits (most significant first) of its
  lexicon row, or of the escape row :func:`~semguard.network.lexicon.escape_row` naming its
  length when it is out of the lexicon;
* right after an escape header, :data:`CHAR_BITS` bits per character (its row in
  :data:`~semguard.network.lexicon.SPELL_ALPHABET`), or, with ``char_code``, each character's
  codeword of a prefix (Huffman) code built on the training split
  (:func:`~semguard.network.huffman.char_code`; the receiver holds the same code).

The string (zero-padded to the 5G minimum of 12 information bits) is one LDPC codeword
(the shipped 5G NR LDPC + Gray QPSK of :mod:`semguard.baselines.phy`, rate matching and
the 5G bit interleaver, "app" LLRs, BP), mapped onto the channel uses of the sentence's critical
tokens, ``S T_c`` of them, and, when that would make the code rate exceed ``max_rate``, onto as
many extra uses after the DeepSC block as it needs (:func:`ldpc_uses`).  Energy is accounted as
for the codebook scheme (:func:`~semguard.network.priority_codebook.codebook_power`): the code's
symbols at power ``a = 10^(boost/10)`` per use (QPSK: every symbol exactly ``a``), the
non-critical DeepSC symbols at ``beta`` with ``a (S T_c + extra) + beta S (L - T_c) = S L``, so
every sentence spends exactly uniform's energy.  The receiver BP-decodes the codeword and parses
the bits in word order (a wrong escape length shifts the words after it); the DeepSC side is
decoded as in the codebook scheme (critical slots erased, then refilled;
:func:`~semguard.network.priority_codebook.receive_rest`).

Side information, beside the spans and the lexicon the codebook scheme already assumes: the
number of information bits ``K`` of the sentence's codeword (so the receiver knows ``k`` and the
extra uses; a real frame would carry it in its header).  With ``oov="deepsc"`` the codeword holds
only the in-lexicon words' indices and the out-of-lexicon words' tokens stay DeepSC symbols at
power ``a`` (which words are out is side information, as for the codebook scheme).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from semguard.baselines.phy import LdpcQamPhy, post_equalization
from semguard.channels.base import Channel
from semguard.codecs.deepsc import DeepSC
from semguard.network.huffman import decode_chars, encode_chars
from semguard.network.lexicon import MAX_SPELL, SPELL_ALPHABET, escape_length, escape_row, spell
from semguard.network.priority_codebook import _spans_mask, codebook_power, mark_deepsc_sent, receive_rest

__all__ = ["CHAR_BITS", "K_MIN", "critical_bits", "ldpc_uses", "parse_critical_bits", "pool_energy", "recall_limit",
           "send_ldpc", "shannon_snr_db"]

#: bits per spelled character: enough for every row of the spelling alphabet
CHAR_BITS = max(1, (len(SPELL_ALPHABET) - 1).bit_length())
#: fewest information bits of a 5G LDPC codeword (shorter strings are zero-padded)
K_MIN = 12
_QPSK = 2


def _to_bits(value: int, width: int) -> list[int]:
    return [(value >> (width - 1 - i)) & 1 for i in range(width)]


def _from_bits(bits: Sequence[int]) -> int:
    v = 0
    for b in bits:
        v = 2 * v + int(b)
    return v


def critical_bits(words: Sequence[str], lexicon: dict[str, int], index_bits: int, *, spell_oov: bool = True,
                  max_spell: int = MAX_SPELL, char_code: Mapping[int, tuple[int, ...]] | None = None) -> np.ndarray:
    """The bit string ``uint8 [K]`` of a sentence's critical ``words`` (layout in the module doc).

    ``spell_oov=False``: out-of-lexicon words are left out (they go by DeepSC).  ``char_code``
    (alphabet row -> bits): spelled characters as its codewords instead of :data:`CHAR_BITS` each."""
    out: list[int] = []
    for w in words:
        if w in lexicon:
            if not 0 <= lexicon[w] < 2 ** index_bits:
                raise ValueError(f"lexicon row {lexicon[w]} of {w!r} does not fit {index_bits} bits")
            out += _to_bits(lexicon[w], index_bits)
        elif spell_oov:
            out += _to_bits(escape_row(len(w), index_bits, max_spell=max_spell), index_bits)
            if char_code is not None:
                out += encode_chars(spell(w), char_code)
                continue
            for c in spell(w):
                out += _to_bits(c, CHAR_BITS)
    return np.array(out, dtype=np.uint8)


def parse_critical_bits(bits: Sequence[int], words: int, inverse: dict[int, str], index_bits: int, *,
                        max_spell: int = MAX_SPELL, char_code: Mapping[int, tuple[int, ...]] | None = None
                        ) -> list[str | None]:
    """Inverse of :func:`critical_bits`: ``words`` critical words from ``bits`` (``inverse``: row
    -> word; ``char_code`` as given to the sender).  A row that is neither a word nor an escape, a character past the alphabet, or a
    string that runs out gives None for that word (and the words after it read shifted bits)."""
    out: list[str | None] = []
    pos = 0
    for _ in range(words):
        if pos + index_bits > len(bits):
            out.append(None)
            continue
        row = _from_bits(bits[pos:pos + index_bits])
        pos += index_bits
        if row in inverse:
            out.append(inverse[row])
            continue
        c = escape_length(row, index_bits, max_spell=max_spell)
        if c is not None and char_code is not None:
            rows, pos = decode_chars(bits, pos, c, char_code)
            out.append(None if rows is None else "".join(SPELL_ALPHABET[i] for i in rows))
            continue
        if c is None or pos + c * CHAR_BITS > len(bits):
            out.append(None)
            continue
        idx = [_from_bits(bits[pos + j * CHAR_BITS:pos + (j + 1) * CHAR_BITS]) for j in range(c)]
        pos += c * CHAR_BITS
        out.append("".join(SPELL_ALPHABET[i] for i in idx) if max(idx) < len(SPELL_ALPHABET) else None)
    return out


def ldpc_uses(info_bits: int, critical_uses: int, max_rate: float = 0.5) -> tuple[int, int]:
    """``(k, N)``: the codeword's information bits ``k = max(info_bits, 12)`` and channel uses
    ``N = max(critical_uses, ceil(k / (2 max_rate)))`` (QPSK), i.e. the critical tokens' uses,
    or more when they would put the code rate ``k / 2N`` above ``max_rate``."""
    if not 0 < max_rate < 1:
        raise ValueError(f"max_rate must be in (0, 1), got {max_rate}")
    if info_bits < 1 or critical_uses < 0:
        raise ValueError(f"need >= 1 information bit and >= 0 uses, got {info_bits}, {critical_uses}")
    k = max(info_bits, K_MIN)
    return k, max(critical_uses, math.ceil(k / (_QPSK * max_rate)))


def shannon_snr_db(info_bits: int, energy: float, uses: int | None = None) -> float:
    """Lowest ``Es/N0`` (dB; ``Es`` uniform's power per use) at which ``info_bits`` bits sent with
    ``energy`` units of ``Es`` in all can be decoded reliably over AWGN by a long code: with
    ``uses`` channel uses the Gaussian capacity ``uses log2(1 + energy SNR / uses) >= K`` gives
    ``SNR = uses (2^(K/uses) - 1) / energy``; with unlimited uses the limit is ``K ln 2 / energy``
    (``Eb/N0 = ln 2``, -1.59 dB).  Short codes need more."""
    if info_bits < 1 or energy <= 0 or (uses is not None and uses < 1):
        raise ValueError(f"need info_bits >= 1, energy > 0, uses >= 1, got {info_bits}, {energy}, {uses}")
    snr = info_bits * math.log(2) / energy if uses is None else uses * math.expm1(info_bits / uses * math.log(2)) / energy
    return 10 * math.log10(snr)


def recall_limit(info_bits: Sequence[int], energy: Sequence[float], words: Sequence[int], threshold: float, *,
                 uses: Sequence[int] | None = None) -> float | None:
    """Lowest SNR (dB) at which a share ``threshold`` of the critical words lie in sentences whose
    ``info_bits`` fit their ``energy`` (:func:`shannon_snr_db`, each sentence's codeword whole or
    lost); sentences without critical bits count as delivered only if they have no words.  The
    long-code limit of any joint code over these bits at that per-sentence energy (short codes
    and a receiver that keeps part of a failed codeword are not covered); None if never reached."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    need = sorted((shannon_snr_db(k, e, None if uses is None else uses[i]), w)
                  for i, (k, e, w) in enumerate(zip(info_bits, energy, words)) if k > 0 and w > 0)
    total = sum(w for w in words)
    got = 0
    for snr, w in need:
        got += w
        if got >= threshold * total - 1e-9:
            return snr
    return None


def pool_energy(energy: Tensor, bits: Tensor, frame: int) -> Tensor:
    """Codeword energies ``[B]`` pooled over frames of ``frame`` consecutive messages: within each
    frame, the total ``energy`` of the messages with ``bits > 0`` is shared in proportion to their
    information bits (equal energy per bit in the frame); the others keep theirs.  The frame's
    total is unchanged (``frame = 1``: nothing moves)."""
    if frame < 1:
        raise ValueError(f"frame must be >= 1 message, got {frame}")
    if energy.shape != bits.shape or energy.dim() != 1:
        raise ValueError(f"energy and bits must be [B] alike, got {tuple(energy.shape)} and {tuple(bits.shape)}")
    if bool((energy < 0).any()) or bool((bits < 0).any()):
        raise ValueError("energy and bits must be >= 0")
    out = energy.double().clone()
    k = bits.double()
    for f0 in range(0, len(out), frame):
        sl = slice(f0, f0 + frame)
        has = k[sl] > 0
        if bool(has.any()):
            total = out[sl][has].sum()
            out[sl] = torch.where(has, total * k[sl] / k[sl][has].sum(), out[sl])
    return out


@lru_cache(maxsize=4096)
def _phy(n_cw: int, k: int, num_iter: int) -> LdpcQamPhy:
    return LdpcQamPhy(_QPSK, n_cw, k, num_iter)


@torch.no_grad()
def send_ldpc(codec: DeepSC, tokens: Tensor, spans: Sequence[Sequence[tuple[int, int, bool]]],
              critical: Sequence[Sequence[str]], lexicon: dict[str, int], index_bits: int, snr_db: float,
              channel: Channel, *, boost_db: float = 0.0, jam: Callable[[Tensor], Tensor] | None = None,
              generator: torch.Generator | None = None, two_pass: bool = True, oov: str = "spell",
              max_rate: float = 0.5, num_iter: int = 20, max_spell: int = MAX_SPELL,
              char_code: Mapping[int, tuple[int, ...]] | None = None, pool: int = 1) -> dict:
    """One batch over ``channel``: each sentence's critical words as one LDPC codeword, the rest by
    DeepSC (``codec``).  Arguments as :func:`~semguard.network.priority_codebook.send_codebook`;
    ``oov``: ``"spell"`` (out-of-lexicon words spelled inside the codeword) or ``"deepsc"``;
    ``char_code``: spelled characters as the codewords of this prefix code (see :func:`critical_bits`);
    ``pool``: the codewords' energy pooled over frames of this many consecutive sentences
    (:func:`pool_energy`, equal energy per critical bit in a frame; the frame's total energy is
    unchanged, a sentence's is not; each sentence's codeword power is side information).

    Returns the same keys as ``send_codebook`` plus ``"info_bits" [B]`` (``K``, 0 without a
    codeword) and ``"layout"`` per sentence ``(k, N)`` or None; ``"uses" = S L + extra_uses``."""
    if oov not in ("spell", "deepsc"):
        raise ValueError(f"oov must be 'spell' or 'deepsc', got {oov!r}")
    S = codec.S
    B, T = tokens.shape
    inv = {i: w for w, i in lexicon.items()}
    lengths = codec.lengths(tokens)
    real = torch.arange(T).unsqueeze(0) < lengths.unsqueeze(1)
    crit = _spans_mask(spans, (B, T)) & real
    dsc = torch.zeros_like(crit)
    flags, bits_b = [], []
    for b in range(B):
        cspans = [(s0, s1) for s0, s1, c in spans[b] if c]
        if len(critical[b]) != len(cspans):
            raise ValueError(f"sentence {b}: {len(critical[b])} critical words for its critical spans")
        fl = [w not in lexicon for w in critical[b]]
        if oov == "deepsc":
            for (s0, s1), f in zip(cspans, fl):
                dsc[b, s0:s1] = f
        flags.append(fl)
        bits_b.append(critical_bits(critical[b], lexicon, index_bits, spell_oov=oov == "spell", max_spell=max_spell,
                                    char_code=char_code))
    cw = crit & ~dsc
    nc = real & ~crit
    layout = [ldpc_uses(len(bb), int(cw[b].sum()) * S, max_rate) if len(bb) else None for b, bb in enumerate(bits_b)]
    extra = torch.tensor([0 if lay is None else lay[1] - int(cw[b].sum()) * S for b, lay in enumerate(layout)])
    a, beta = codebook_power(lengths, crit.sum(1), boost_db, extra / S)
    n_cw = torch.tensor([0 if lay is None else lay[1] for lay in layout], dtype=torch.float64)
    k_cw = torch.tensor([0 if lay is None else len(bb) for lay, bb in zip(layout, bits_b)], dtype=torch.float64)
    acw = a if pool == 1 else torch.where(n_cw > 0, pool_energy(a * n_cw, k_cw, pool) / n_cw.clamp_min(1), a)
    x = codec.encode(tokens, snr_db).view(B, T, S)

    def gain(mask: Tensor, power: Tensor) -> Tensor:
        p = (x.abs().square() * mask.unsqueeze(2)).sum((1, 2)) / (S * mask.sum(1)).clamp_min(1)
        return (power / p.double().clamp_min(1e-12)).sqrt().float()

    amp = nc * gain(nc, beta).view(B, 1) + dsc * gain(dsc, a).view(B, 1)
    tx = (x * amp.unsqueeze(2)).reshape(B, T * S)
    ext = torch.zeros(B, int(extra.max()) if B else 0, dtype=tx.dtype)
    where = []                                         # per sentence: its codeword's uses in the DeepSC block
    for b, lay in enumerate(layout):
        pos = (cw[b].nonzero().flatten().unsqueeze(1) * S + torch.arange(S)).flatten()
        where.append(pos)
        if lay is None:
            continue
        k, n = lay
        info = torch.zeros(1, 1, k)
        info[0, 0, :len(bits_b[b])] = torch.from_numpy(bits_b[b].astype(np.float32))
        sym = _phy(2 * n, k, num_iter).modulate(info, n, generator=generator)[0] * float(acw[b]) ** 0.5
        tx[b, pos] = sym[:len(pos)]
        ext[b, :n - len(pos)] = sym[len(pos):]
    full = torch.cat([tx, ext], 1)
    st = channel.sample_state(B, full.shape[1], snr_db, generator=generator)
    interf = None if jam is None else st.h * jam(full)
    y_raw = channel.apply(full, st, generator=generator, interference=interf)
    y_all = channel.equalize(y_raw, st)
    yz, no = post_equalization(channel, y_raw, st)
    ok = [[False] * len(ws) for ws in critical]
    decoded: list[dict[int, str | None]] = []
    for b, lay in enumerate(layout):
        coded = [k for k, f in enumerate(flags[b]) if not (f and oov == "deepsc")]
        if lay is None:
            decoded.append({})
            continue
        k, n = lay
        idx = torch.cat([where[b], T * S + torch.arange(n - len(where[b]))])
        phy = _phy(2 * n, k, num_iter)
        got = phy.demodulate(yz[b:b + 1, idx] / float(acw[b]) ** 0.5, no[b:b + 1, idx] / float(acw[b]), 1)[0, 0]
        words = parse_critical_bits(got[:len(bits_b[b])].round().to(torch.int64).tolist(), len(coded), inv,
                                    index_bits, max_spell=max_spell, char_code=char_code)
        decoded.append(dict(zip(coded, words)))
        for kk, w in zip(coded, words):
            ok[b][kk] = w == critical[b][kk]
    out = receive_rest(codec, y_all[:, :T * S], amp, nc, dsc, cw, spans, decoded, snr_db, two_pass=two_pass)
    if oov == "deepsc":
        mark_deepsc_sent(ok, out, tokens, spans, flags)
    return {"tokens": out, "critical_ok": ok, "oov": flags, "energy": full.abs().square().sum(1).double(),
            "uses": S * lengths + extra, "extra_uses": extra,
            "info_bits": torch.tensor([len(bb) for bb in bits_b]), "layout": layout}
