"""Separate source + channel coding of sentences: Huffman (or UTF-8) + CRC16 + 5G LDPC + QAM.

The digital baseline for the text codec at the same number of complex channel uses per
sentence ``n_b`` (DeepSC's ``8 x tokens``).  Per sentence: source bits (Huffman code over the
characters of normalised training sentences, or UTF-8 bytes) -> CRC16 (Sionna, 3GPP 38.212) ->
zero-pad to a multiple of ``pad_bits`` -> 5G LDPC (Sionna ``LDPC5GEncoder``, BP decoding,
``num_iter`` iterations) -> Gray QAM (Sionna ``Mapper``/``Demapper``, APP).  The modulation is the
lowest order whose code rate fits under :data:`MCS_MAX_RATE` (switching points of the 5G MCS
tables); a rate below 1/5 (the lowest the 5G base graphs support) repeats the codeword to fill
the channel uses (LLRs are summed).  The receiver knows its payload length (like DeepSC's token
count).  A sentence whose bits do not fit, or whose CRC fails, is lost: output ``""``.

Fading: one-tap zero-forcing with the channel's CSI, LLRs with the per-symbol noise ``N0/|h|^2``.
Written here (not on ``semguard.baselines.link``, which did not exist yet) on Sionna directly.

Registered as baseline ``text_ldpc`` (:func:`text_ldpc`).  Its call shape differs from the image
baselines': ``link.transmit(sentences: list[str], channel, snr_db: float, channel_uses:
LongTensor[B], *, generator=None) -> TextLinkResult`` (per-sentence channel uses, e.g. DeepSC's
``codec.channel_uses(tokens)``), not ``baseline(images, channel, snr_db, n_symbols) -> dict``.
"""

from __future__ import annotations

import heapq
import json
import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from torch import Tensor

from semguard.channels.base import Channel
from semguard.data.text import ALPHABET, normalize_sentence
from semguard.registry import register

__all__ = ["HuffmanCode", "utf8_bits", "bits_to_utf8", "MCS_MAX_RATE", "choose_mcs", "TextLinkResult",
           "TextDigitalLink", "shipped_huffman", "text_ldpc", "CHARCOUNTS_FILE"]

log = logging.getLogger(__name__)

MCS_MAX_RATE: dict[int, float] = {2: 0.67, 4: 0.67, 6: 0.75, 8: 0.93}
MIN_LDPC_RATE = 0.2
CHARCOUNTS_FILE = "deepsc-charcounts.json"  # training-split character counts, next to the DeepSC weights


@dataclass(frozen=True)
class HuffmanCode:
    """Prefix code over characters; ``codes[ch]`` is a '0'/'1' string."""

    codes: dict[str, str]

    @classmethod
    def fit(cls, sentences: Sequence[str], alphabet: str = ALPHABET) -> HuffmanCode:
        """Huffman code from character counts of normalised ``sentences`` (+1 for every alphabet char)."""
        counts: Counter = Counter()
        for s in sentences:
            counts.update(normalize_sentence(s))
        return cls.from_counts(counts, alphabet)

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], alphabet: str = ALPHABET) -> HuffmanCode:
        """Huffman code from character counts (+1 for every ``alphabet`` character, so all are codable)."""
        counts = Counter({c: 1 for c in alphabet}) + Counter(dict(counts))
        heap = [(n, i, {c: ""}) for i, (c, n) in enumerate(sorted(counts.items()))]
        heapq.heapify(heap)
        tie = len(heap)
        while len(heap) > 1:
            n0, _, a = heapq.heappop(heap)
            n1, _, b = heapq.heappop(heap)
            merged = {c: "0" + w for c, w in a.items()} | {c: "1" + w for c, w in b.items()}
            heapq.heappush(heap, (n0 + n1, tie, merged))
            tie += 1
        return cls(codes=heap[0][2])

    def encode(self, sentence: str) -> np.ndarray:
        """Normalised sentence -> bits ``uint8 [k]``; ValueError for a character without a code."""
        try:
            word = "".join(self.codes[c] for c in sentence)
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} has no Huffman code; normalise the sentence first") from e
        return np.frombuffer(word.encode("ascii"), dtype=np.uint8) - ord("0")

    def decode(self, bits: np.ndarray) -> str | None:
        """Bits -> sentence, or None if they do not parse into whole code words."""
        inverse = {w: c for c, w in self.codes.items()}
        out, cur = [], ""
        for b in bits.astype(np.uint8).tolist():
            cur += "1" if b else "0"
            if cur in inverse:
                out.append(inverse[cur])
                cur = ""
        return None if cur else "".join(out)


def utf8_bits(sentence: str) -> np.ndarray:
    """UTF-8 bytes as bits ``uint8 [8 * bytes]`` (MSB first)."""
    return np.unpackbits(np.frombuffer(sentence.encode("utf-8"), dtype=np.uint8))


def bits_to_utf8(bits: np.ndarray) -> str | None:
    if bits.size % 8:
        return None
    try:
        return np.packbits(bits.astype(np.uint8)).tobytes().decode("utf-8")
    except UnicodeDecodeError:
        return None


def choose_mcs(k: Tensor, n_uses: Tensor) -> Tensor:
    """Bits per QAM symbol ``[B]`` (2, 4, 6 or 8; 0 when ``k`` bits cannot fit ``n_uses`` symbols)."""
    m = torch.zeros_like(k)
    for bps in sorted(MCS_MAX_RATE, reverse=True):
        fits = k.double() <= MCS_MAX_RATE[bps] * n_uses.double() * bps
        m = torch.where(fits, torch.full_like(k, bps), m)
    return m


@dataclass(frozen=True)
class TextLinkResult:
    """Per-sentence outcome: decoded text ("" if lost), CRC ok, bits per symbol, code rate."""

    sentences: list[str]
    ok: Tensor
    bits_per_symbol: Tensor
    rate: Tensor


class TextDigitalLink:
    """Huffman/UTF-8 + CRC16 + 5G LDPC + QAM over a semguard channel.

    Args:
        huffman: code for ``source_coding="huffman"`` (fit it on the training split).
        source_coding: ``"huffman"`` or ``"utf8"``.
        num_iter: BP iterations of the LDPC decoder.
        pad_bits: the CRC-protected payload is zero-padded to a multiple of this (groups sentences
            into fewer LDPC code shapes; costs < ``pad_bits`` bits of rate).
    """

    def __init__(self, *, huffman: HuffmanCode | None = None, source_coding: str = "huffman",
                 num_iter: int = 20, pad_bits: int = 8) -> None:
        if source_coding not in ("huffman", "utf8"):
            raise ValueError(f"source_coding must be 'huffman' or 'utf8', got {source_coding!r}")
        if source_coding == "huffman" and huffman is None:
            raise ValueError("source_coding='huffman' needs a HuffmanCode (HuffmanCode.fit(train_sentences))")
        from sionna.phy.fec.crc import CRCDecoder, CRCEncoder

        self.huffman, self.source_coding, self.num_iter, self.pad_bits = huffman, source_coding, num_iter, pad_bits
        self._crc_enc = CRCEncoder("CRC16")
        self._crc_dec = CRCDecoder(self._crc_enc)
        self._codes: dict[tuple[int, int], tuple[object, object]] = {}
        self._qam: dict[int, tuple[object, object]] = {}

    def source_bits(self, sentence: str) -> np.ndarray:
        s = normalize_sentence(sentence)
        return self.huffman.encode(s) if self.source_coding == "huffman" else utf8_bits(s)

    def _source_text(self, bits: np.ndarray) -> str | None:
        return self.huffman.decode(bits) if self.source_coding == "huffman" else bits_to_utf8(bits)

    def _ldpc(self, k: int, n: int) -> tuple[object, object]:
        if (k, n) not in self._codes:
            from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

            enc = LDPC5GEncoder(k, n)
            self._codes[(k, n)] = (enc, LDPC5GDecoder(enc, num_iter=self.num_iter))
        return self._codes[(k, n)]

    def _mapper(self, m: int) -> tuple[object, object]:
        if m not in self._qam:
            from sionna.phy.mapping import Demapper, Mapper

            self._qam[m] = (Mapper("qam", m), Demapper("app", "qam", m))
        return self._qam[m]

    @torch.no_grad()
    def transmit(self, sentences: Sequence[str], channel: Channel, snr_db: float,
                 channel_uses: Tensor, *, generator: torch.Generator | None = None) -> TextLinkResult:
        """Send each sentence in exactly ``channel_uses[b]`` complex symbols at ``snr_db`` (Es/N0)."""
        B = len(sentences)
        if channel_uses.shape != (B,) or (channel_uses < 1).any():
            raise ValueError(f"channel_uses must be [{B}] positive integers, got {tuple(channel_uses.shape)}")
        payload = [self.source_bits(s) for s in sentences]
        k_src = torch.tensor([p.size for p in payload])
        k = (k_src + 16 + self.pad_bits - 1) // self.pad_bits * self.pad_bits  # + CRC16, padded
        m = choose_mcs(k, channel_uses)
        out, ok = [""] * B, torch.zeros(B, dtype=torch.bool)
        rate = torch.where(m > 0, k.double() / (channel_uses * m.clamp_min(1)).double(), torch.nan)
        keys = torch.stack([k, channel_uses.long(), m], 1)
        for key in torch.unique(keys[m > 0], dim=0).tolist():
            kb, n, bps = key
            idx = ((keys == torch.tensor(key)).all(1)).nonzero().squeeze(1)
            info = torch.zeros(len(idx), kb - 16)
            for r, i in enumerate(idx.tolist()):
                info[r, :payload[i].size] = torch.from_numpy(payload[i].astype(np.float32))
            n_coded = n * bps
            n_code = min(n_coded, int(kb / MIN_LDPC_RATE))
            enc, dec = self._ldpc(kb, n_code)
            cw = enc(self._crc_enc(info))
            rep = torch.arange(n_coded) % n_code  # repetition when the rate would be < 1/5
            mapper, demapper = self._mapper(bps)
            x = mapper(cw[:, rep]).reshape(len(idx), n)
            state = channel.sample_state(len(idx), n, snr_db, generator=generator)
            y = channel.apply(x, state, generator=generator)
            h = state.h_est
            llr = demapper(y / h, state.n0 / h.abs().square().clamp_min(1e-12))
            llr_code = torch.zeros(len(idx), n_code).index_add_(1, rep, llr.reshape(len(idx), n_coded).float())
            bits, crc_ok = self._crc_dec(dec(llr_code))
            for r, i in enumerate(idx.tolist()):
                if bool(crc_ok[r].item()):
                    text = self._source_text(bits[r, :payload[i].size].round().to(torch.uint8).numpy())
                    if text is not None:
                        out[i], ok[i] = text, True
        return TextLinkResult(sentences=out, ok=ok, bits_per_symbol=m, rate=rate)


def shipped_huffman() -> HuffmanCode:
    """Huffman code from the shipped WordNet training-split character counts (``deepsc-charcounts.json``)."""
    ref = resources.files("semguard.codecs").joinpath("weights", CHARCOUNTS_FILE)
    try:
        counts = json.loads(ref.read_text(encoding="utf-8"))["counts"]
    except (OSError, ValueError, KeyError) as e:
        raise ValueError(f"{ref}: expected JSON with a 'counts' object of character counts ({e})") from e
    return HuffmanCode.from_counts(counts)


@register("baseline", "text_ldpc")
def text_ldpc(*, huffman: HuffmanCode | None = None, source_coding: str = "huffman",
              **kwargs: object) -> TextDigitalLink:
    """Huffman + CRC16 + 5G LDPC + QAM for sentences; Huffman code from the shipped counts unless given.

    Call ``.transmit(sentences, channel, snr_db, channel_uses [B])`` (not the image baselines' shape).
    """
    if source_coding == "huffman" and huffman is None:
        huffman = shipped_huffman()
    return TextDigitalLink(huffman=huffman, source_coding=source_coding, **kwargs)
