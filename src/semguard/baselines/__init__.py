"""Separate source and channel coding baselines at the same number of channel uses.

* ``jpeg_capacity`` / ``webp_capacity``: the codec at the ideal-code budget ``n log2(1+SNR)``
  (:mod:`~semguard.baselines.capacity`), an upper bound for separation with that codec;
  ``best_capacity``: per image the best of JPEG 4:2:0, JPEG 4:4:4 and WebP at that budget.
* ``webp_ldpc`` / ``jpeg_ldpc``: a real 5G LDPC + QAM link with adaptive modulation and coding
  that fails (flat grey output) when a codeword is lost (:mod:`~semguard.baselines.link`).

These four share the call ``baseline(images [B,3,H,W] in [0,1], channel, snr_db, n_symbols, *,
generator=None) -> {"x_hat", "bits", "info"}``.

* ``text_ldpc``: sentences by Huffman + CRC16 + 5G LDPC + QAM (:mod:`~semguard.baselines.text_link`).
  Different call shape: ``link.transmit(sentences: list[str], channel, snr_db: float,
  channel_uses: LongTensor[B], *, generator=None) -> TextLinkResult`` (decoded sentences, "" when
  lost; CRC flags; bits per symbol; code rate) — do not list it among image baselines.
"""

from semguard.baselines.bler_table import (BlerEstimate, BlerTable, clopper_pearson_upper, codewords_needed,
                                           load_bler_table, shipped_bler_table)
from semguard.baselines.capacity import (CapacityBaseline, best_capacity, block_capacity_bits, capacity_bits,
                                         encode_at_budget, jpeg_capacity, webp_capacity)
from semguard.baselines.link import LdpcLink, jpeg_ldpc, webp_ldpc
from semguard.baselines.mcs import LOW_RATE_5G, MCS_TABLE, best_mcs, estimate_bler
from semguard.baselines.phy import MCS, CodewordLayout, codeword_layout
from semguard.baselines.text_link import TextDigitalLink, TextLinkResult, shipped_huffman, text_ldpc

__all__ = [
    "CapacityBaseline", "LdpcLink", "MCS", "MCS_TABLE", "LOW_RATE_5G", "BlerEstimate", "BlerTable",
    "CodewordLayout", "capacity_bits", "block_capacity_bits", "encode_at_budget", "codeword_layout",
    "best_mcs", "estimate_bler", "clopper_pearson_upper", "codewords_needed", "load_bler_table",
    "shipped_bler_table", "jpeg_capacity", "webp_capacity", "best_capacity", "jpeg_ldpc", "webp_ldpc",
    "TextDigitalLink", "TextLinkResult", "shipped_huffman", "text_ldpc",
]
