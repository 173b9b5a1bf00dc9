"""A real separate source-channel link: WebP/JPEG bytes over 5G LDPC + QAM, with the cliff.

Per image: compress at the largest quality whose file fits the link's payload
``num_cw * k`` (:func:`~semguard.baselines.phy.codeword_layout`; about
``floor(n * log2(M) * R)`` bits less the < one-codeword remainder), pad the file with random
bits, LDPC-encode, QAM-map, send ``n`` symbols over the semguard channel, equalise, demap
("app" LLRs with the post-equalisation noise variance), BP-decode.  If any codeword differs
from what was sent -- the simulator knows the truth, standing in for the CRC a real link has --
the image is lost and the receiver shows flat grey 0.5.  Otherwise the received bytes are
decoded by Pillow (trailing padding is ignored by both codecs; the file length is carried by
the RIFF header for WebP and the EOI marker for JPEG).

The MCS is fixed (``mcs="16QAM-1/2"``) or chosen per call (``mcs="auto"``) from the SNR the
transmitter is told.  Over AWGN, :func:`~semguard.baselines.mcs.best_mcs` takes the largest
payload whose image error is below the target.  On block-fading channels the transmitter knows
only the average SNR (no CSI), so :func:`~semguard.baselines.mcs.best_mcs_fading` takes, for
each image, the MCS with the best expected PSNR of that image, trading rate against the outage
probability of deep fades; the image is still lost whenever a fade is deeper than its MCS survives.  Both read the shipped
BLER table (:mod:`~semguard.baselines.bler_table`) and simulate only codeword lengths it lacks.

``charge_pilots=True`` spends ``channel.pilots`` of the ``n`` symbols on pilots at the start of
every coherence block of a fading channel (unit-power known symbols the receiver estimates ``h``
from), so only the rest carry codewords; by default pilots are free, as in the channel model's
CSI.  The cost is ``pilots / coherence`` of the channel uses (one block-fading coefficient per
image: ``pilots / n``).
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from semguard.baselines._image import check_call, decode_image, from_uint8, grey, to_uint8
from semguard.metrics.image import psnr
from semguard.baselines.bler_table import CONFIDENCE
from semguard.baselines.capacity import Encoding, best_encoding, codec_candidates
from semguard.baselines.mcs import TableArg, best_mcs, choose_fading, expected_quality_fading
from semguard.baselines.phy import MAX_CW_BITS, MCS, codeword_layout, get_phy, post_equalization
from semguard.channels.base import Channel
from semguard.registry import register

__all__ = ["LdpcLink", "bytes_to_bits", "bits_to_bytes", "pilot_positions"]

log = logging.getLogger(__name__)


def bytes_to_bits(data: bytes, n_bits: int, *, generator: torch.Generator | None = None) -> Tensor:
    """File bytes -> ``[n_bits]`` float {0,1} (MSB first), padded with random bits."""
    if 8 * len(data) > n_bits:
        raise ValueError(f"{len(data)} bytes do not fit a payload of {n_bits} bits")
    bits = torch.from_numpy(np.unpackbits(np.frombuffer(data, dtype=np.uint8)).astype(np.float32))
    pad = torch.randint(0, 2, (n_bits - bits.numel(),), generator=generator).to(torch.float32)
    return torch.cat([bits, pad])


def bits_to_bytes(bits: Tensor) -> bytes:
    """``[n_bits]`` {0,1} -> bytes (MSB first; a trailing partial byte is dropped)."""
    arr = bits.detach().to("cpu").round().to(torch.uint8).numpy()
    return np.packbits(arr[: arr.size // 8 * 8]).tobytes()


# (image sha256, payload bits, codec candidates) -> file: shared by every link in the process, so
# the per-cell links of a sweep search each image's qualities once (a bounded LRU)
_ENC_CACHE: OrderedDict[tuple, Encoding] = OrderedDict()
_ENC_CACHE_SIZE = 2048


def pilot_positions(n_symbols: int, coherence: int | None, pilots: int) -> torch.Tensor:
    """Bool mask ``[n_symbols]``: True at the ``pilots`` first symbols of every coherence block
    (``coherence`` None: one block).  ValueError when the pilots leave no data symbol."""
    length = coherence or n_symbols
    mask = (torch.arange(n_symbols) % length) < pilots
    if bool(mask.all()):
        raise ValueError(f"{pilots} pilots per coherence block of {length} symbols leave no data symbol")
    return mask


class LdpcLink:
    """WebP/JPEG over a 5G-LDPC + QAM link with adaptive (or fixed) modulation and coding.

    Args:
        fmt: ``"webp"``, ``"jpeg"`` or ``"best"`` (per image the better of both at the payload).
        mcs: ``"auto"`` (AMC: :func:`best_mcs` on AWGN, :func:`best_mcs_fading` on fading
            channels, both at the given average SNR), an :class:`MCS`,
            or its name such as ``"QPSK-1/2"``.
        max_cw_bits: longest LDPC codeword in coded bits.
        num_iter: BP decoder iterations.
        target_image_error, confidence: AMC settings (see :func:`best_mcs`): the image error rate
            allowed and the Clopper-Pearson confidence that it holds.
        bler_codewords: codewords simulated per BLER point where the table lacks the codeword length
            (None: sized from the target by :func:`~semguard.baselines.bler_table.codewords_needed`).
        bler_table: ``"shipped"`` (default), a :class:`~semguard.baselines.bler_table.BlerTable`, or None
            to simulate every BLER point at run time.
        subsampling: JPEG chroma (``"auto"``: per image the better of 4:2:0 and 4:4:4 at the payload).
        charge_pilots: spend ``channel.pilots`` symbols per coherence block of a fading channel on pilots.

    Call: ``(images [B,3,H,W] in [0,1], channel, snr_db, n_symbols, *, generator=None)`` ->
    ``{"x_hat": [B,3,H,W], "bits": [B] file bits sent (0 when nothing fits), "info": [...]}``;
    per-image ``info``: ``quality`` (None: nothing fits), ``format``, ``subsampling``, ``mcs`` (name),
    ``success``, ``payload_bits``, ``data_symbols`` (``n`` less charged pilots), ``codeword_errors``, and with the fading AMC ``psnr_expected`` (the PSNR the
    AMC expects of that image: its outage-weighted mean over many fades, not this draw's luck).
    """

    def __init__(self, *, fmt: str = "webp", mcs: str | MCS = "auto", max_cw_bits: int = MAX_CW_BITS,
                 num_iter: int = 20, target_image_error: float = 0.1, confidence: float = CONFIDENCE,
                 bler_codewords: int | None = None, bler_table: TableArg = "shipped", subsampling: str = "auto",
                 charge_pilots: bool = False) -> None:
        self.candidates = codec_candidates(fmt, subsampling)
        self.fmt = fmt.lower()
        self.mcs: MCS | None = None if mcs == "auto" else (mcs if isinstance(mcs, MCS) else MCS.parse(mcs))
        if max_cw_bits < 24:
            raise ValueError(f"max_cw_bits must be >= 24, got {max_cw_bits}")
        if num_iter < 1 or (bler_codewords is not None and bler_codewords < 1):
            raise ValueError(f"num_iter and bler_codewords must be >= 1, got {num_iter}, {bler_codewords}")
        if not 0 < confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {confidence}")
        self.max_cw_bits = max_cw_bits
        self.num_iter = num_iter
        self.target_image_error = target_image_error
        self.confidence = confidence
        self.bler_codewords = bler_codewords
        self.bler_table = bler_table
        self.charge_pilots = bool(charge_pilots)

    def __repr__(self) -> str:
        mcs = "auto" if self.mcs is None else self.mcs.name
        return (f"LdpcLink(fmt={self.fmt!r}, mcs={mcs!r}, max_cw_bits={self.max_cw_bits}, "
                f"charge_pilots={self.charge_pilots})")

    def _amc_kw(self) -> dict[str, Any]:
        return {"max_cw_bits": self.max_cw_bits, "target_image_error": self.target_image_error,
                "confidence": self.confidence, "num_codewords": self.bler_codewords, "num_iter": self.num_iter,
                "bler_table": self.bler_table}

    def data_mask(self, channel: Channel, n_symbols: int) -> torch.Tensor | None:
        """Where the codeword symbols go in a block of ``n_symbols``: None when all of them carry data
        (pilots free, or AWGN), else the bool mask of data symbols (pilots at each coherence block's start)."""
        if not (self.charge_pilots and channel.fading):
            return None
        return ~pilot_positions(n_symbols, channel.coherence, channel.pilots)

    def choose_mcs(self, snr_db: float, n_symbols: int) -> MCS:
        """The fixed MCS, or AMC's choice at (average) ``snr_db`` for ``n_symbols``."""
        if self.mcs is not None:
            return self.mcs
        return best_mcs(snr_db, n_symbols, **self._amc_kw())

    def _compress(self, pixels: np.ndarray, image: Tensor, payload_bits: int) -> Encoding:
        """:func:`best_encoding` over the codec candidates at ``payload_bits``, cached per (image,
        payload, candidates) across links: a sweep searches each image's qualities once."""
        key = (hashlib.sha256(pixels.tobytes()).hexdigest(), payload_bits, self.candidates)
        if key in _ENC_CACHE:
            _ENC_CACHE.move_to_end(key)
            return _ENC_CACHE[key]
        floats = image.detach().to("cpu", torch.float64).permute(1, 2, 0).numpy()
        enc = _ENC_CACHE[key] = best_encoding(pixels, floats, self.candidates, payload_bits)
        if len(_ENC_CACHE) > _ENC_CACHE_SIZE:
            _ENC_CACHE.popitem(last=False)
        return enc

    def _psnr_at(self, pixels: np.ndarray, image: Tensor, payload_bits: int) -> float:
        """PSNR (dB) of ``image`` compressed to ``payload_bits`` and decoded error-free (cached): what
        the fading AMC expects from an MCS."""
        return self._compress(pixels, image, payload_bits).psnr

    def _choose_fading_mcs(self, images: Tensor, pixels: np.ndarray, channel: Channel, snr_db: float,
                           n_symbols: int) -> list[tuple[MCS, float]]:
        """Per image: the MCS with the best expected PSNR of that image (each image is its own
        transmission, and its transmitter knows its own rate-quality curve), and that expectation."""
        lost = psnr(grey(images.shape[0], *images.shape[-2:], images), images).tolist()
        return [choose_fading(expected_quality_fading(
                    channel, snr_db, n_symbols, lambda lay, i=i: self._psnr_at(pixels[i], images[i], lay.payload_bits),
                    lost[i], **self._amc_kw()))
                for i in range(images.shape[0])]

    def __call__(self, images: Tensor, channel: Channel, snr_db: float, n_symbols: int, *,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        check_call(images, channel, snr_db, n_symbols)
        b, _, height, width = images.shape
        pixels = to_uint8(images)
        mask = self.data_mask(channel, n_symbols)
        n_data = n_symbols if mask is None else int(mask.sum())
        expected: list[float] | None = None
        if self.mcs is None and channel.fading:
            chosen, expected = map(list, zip(*self._choose_fading_mcs(images, pixels, channel, snr_db, n_data)))
        else:
            chosen = [self.choose_mcs(snr_db, n_data)] * b
        x_hat = grey(b, height, width, images)
        bits = torch.zeros(b, dtype=torch.int64)
        info: list[dict[str, Any]] = [{} for _ in range(b)]
        for mcs in dict.fromkeys(chosen):  # each MCS once, in order of first use
            idx = [i for i in range(b) if chosen[i] == mcs]
            self._send(images, pixels, idx, mcs, channel, snr_db, n_symbols, mask, generator, x_hat, bits, info)
        if expected is not None:  # the AMC's own outage-weighted PSNR, free of this draw's luck
            for i in range(b):
                info[i]["psnr_expected"] = expected[i]
        log.debug("%s: snr %.1f dB, n %d, MCS %s, ok %d/%d", self, snr_db, n_symbols,
                  sorted({m.name for m in chosen}), sum(d["success"] for d in info), b)
        return {"x_hat": x_hat, "bits": bits, "info": info}

    def _send(self, images: Tensor, pixels: np.ndarray, idx: list[int], mcs: MCS, channel: Channel,
              snr_db: float, n_symbols: int, mask: Tensor | None, generator: torch.Generator | None, x_hat: Tensor,
              bits: Tensor, info: list[dict[str, Any]]) -> None:
        """Images ``idx`` over one MCS: compress, encode, send, decode; fills ``x_hat``, ``bits``, ``info``.
        All codewords of all these images go through one demapper and one decoder call."""
        height, width = images.shape[-2:]
        n_data = n_symbols if mask is None else int(mask.sum())
        lay = codeword_layout(mcs, n_data, self.max_cw_bits)  # ValueError if n is too small
        phy = get_phy(mcs.bits_per_symbol, lay.n_cw, lay.k, self.num_iter)
        files = [self._compress(pixels[i], images[i], lay.payload_bits) for i in idx]
        payload = torch.stack([bytes_to_bits(f.data, lay.payload_bits, generator=generator)
                               for f in files]).reshape(len(idx), lay.num_cw, lay.k)
        x = phy.modulate(payload, n_data, generator=generator)
        if mask is not None:  # known unit pilots at the start of every coherence block
            full = torch.ones(len(idx), n_symbols, dtype=x.dtype)
            full[:, mask] = x
            x = full
        state = channel.sample_state(len(idx), n_symbols, snr_db, generator=generator)
        y, no = post_equalization(channel, channel.apply(x, state, generator=generator), state)
        if mask is not None:
            y, no = y[:, mask], no[:, mask]
        received = phy.demodulate(y, no, lay.num_cw)
        cw_errors = (received != payload).any(dim=-1).sum(dim=-1).tolist()
        for j, (i, f) in enumerate(zip(idx, files)):
            success = bool(f.data) and cw_errors[j] == 0
            if success:
                got = bits_to_bytes(received[j].reshape(-1))
                x_hat[i] = from_uint8(decode_image(got, height, width)[None], images)[0]
            if f.data:
                bits[i] = 8 * len(f.data)
            info[i] = {"quality": f.quality, "format": f.fmt if f.data else None,
                       "subsampling": f.subsampling if f.data else None, "mcs": mcs.name, "success": success,
                       "payload_bits": lay.payload_bits, "data_symbols": n_data, "codeword_errors": cw_errors[j]}


@register("baseline", "webp_ldpc")
def webp_ldpc(**kwargs: Any) -> LdpcLink:
    """WebP over 5G LDPC + QAM with AMC (``mcs="auto"``) unless an MCS is given."""
    return LdpcLink(fmt="webp", **kwargs)


@register("baseline", "jpeg_ldpc")
def jpeg_ldpc(**kwargs: Any) -> LdpcLink:
    """JPEG over 5G LDPC + QAM with AMC (``mcs="auto"``) unless an MCS is given."""
    return LdpcLink(fmt="jpeg", **kwargs)
