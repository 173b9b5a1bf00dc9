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
probability of deep fades; the image is still lost whenever a fade is deeper than its MCS survives.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor

from semguard.baselines._image import (check_call, decode_image, encode_image, from_uint8, grey, pil_format,
                                      to_uint8)
from semguard.baselines.capacity import encode_at_budget
from semguard.baselines.mcs import best_mcs, choose_fading, expected_quality_fading
from semguard.baselines.phy import MAX_CW_BITS, MCS, codeword_layout, get_phy, post_equalization
from semguard.channels.base import Channel
from semguard.metrics.image import psnr
from semguard.registry import register

__all__ = ["LdpcLink", "bytes_to_bits", "bits_to_bytes"]

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


class LdpcLink:
    """WebP/JPEG over a 5G-LDPC + QAM link with adaptive (or fixed) modulation and coding.

    Args:
        fmt: ``"webp"`` or ``"jpeg"``.
        mcs: ``"auto"`` (AMC: :func:`best_mcs` on AWGN, :func:`best_mcs_fading` on fading
            channels, both at the given average SNR), an :class:`MCS`,
            or its name such as ``"QPSK-1/2"``.
        max_cw_bits: longest LDPC codeword in coded bits.
        num_iter: BP decoder iterations.
        target_image_error, bler_codewords: AMC settings (see :func:`best_mcs`).

    Call: ``(images [B,3,H,W] in [0,1], channel, snr_db, n_symbols, *, generator=None)`` ->
    ``{"x_hat": [B,3,H,W], "bits": [B] file bits sent (0 when nothing fits), "info": [...]}``;
    per-image ``info``: ``quality`` (None: nothing fits), ``mcs`` (name), ``success``,
    ``payload_bits``, ``codeword_errors``, and with the fading AMC ``psnr_expected`` (the PSNR the
    AMC expects of that image: its outage-weighted mean over many fades, not this draw's luck).
    """

    def __init__(self, *, fmt: str = "webp", mcs: str | MCS = "auto", max_cw_bits: int = MAX_CW_BITS,
                 num_iter: int = 20, target_image_error: float = 0.1, bler_codewords: int = 128) -> None:
        pil_format(fmt)
        self.fmt = fmt.lower()
        self.mcs: MCS | None = None if mcs == "auto" else (mcs if isinstance(mcs, MCS) else MCS.parse(mcs))
        if max_cw_bits < 24:
            raise ValueError(f"max_cw_bits must be >= 24, got {max_cw_bits}")
        if num_iter < 1 or bler_codewords < 1:
            raise ValueError(f"num_iter and bler_codewords must be >= 1, got {num_iter}, {bler_codewords}")
        self.max_cw_bits = max_cw_bits
        self.num_iter = num_iter
        self.target_image_error = target_image_error
        self.bler_codewords = bler_codewords
        self._quality: dict[tuple[str, int], int | None] = {}  # (image sha256, payload bits) -> quality
        self._psnr: dict[tuple[str, int], float] = {}

    def __repr__(self) -> str:
        mcs = "auto" if self.mcs is None else self.mcs.name
        return f"LdpcLink(fmt={self.fmt!r}, mcs={mcs!r}, max_cw_bits={self.max_cw_bits})"

    def choose_mcs(self, snr_db: float, n_symbols: int) -> MCS:
        """The fixed MCS, or AMC's choice at (average) ``snr_db`` for ``n_symbols``."""
        if self.mcs is not None:
            return self.mcs
        return best_mcs(snr_db, n_symbols, max_cw_bits=self.max_cw_bits,
                        target_image_error=self.target_image_error,
                        num_codewords=self.bler_codewords, num_iter=self.num_iter)

    def _compress(self, pixels: np.ndarray, payload_bits: int) -> tuple[bytes, int | None]:
        """:func:`encode_at_budget` with its quality search cached per (image, payload): a sweep
        searches each image's qualities once, then re-encodes the found quality."""
        key = (hashlib.sha256(pixels.tobytes()).hexdigest(), payload_bits)
        if key in self._quality:
            quality = self._quality[key]
            return (encode_image(pixels, self.fmt, quality) if quality is not None else b""), quality
        data, self._quality[key] = encode_at_budget(pixels, self.fmt, payload_bits)
        return data, self._quality[key]

    def _psnr_at(self, pixels: np.ndarray, image: Tensor, payload_bits: int) -> float:
        """PSNR (dB) of ``image`` compressed to ``payload_bits`` and decoded error-free (cached): what
        the fading AMC expects from an MCS; only that path pays for the decode."""
        key = (hashlib.sha256(pixels.tobytes()).hexdigest(), payload_bits)
        if key not in self._psnr:
            data, _ = self._compress(pixels, payload_bits)
            h, w = pixels.shape[:2]
            x_hat = from_uint8(decode_image(data, h, w)[None], image[None]) if data else grey(1, h, w, image[None])
            self._psnr[key] = float(psnr(x_hat, image[None])[0])
        return self._psnr[key]

    def _choose_fading_mcs(self, images: Tensor, pixels: np.ndarray, channel: Channel, snr_db: float,
                           n_symbols: int) -> list[tuple[MCS, float]]:
        """Per image: the MCS with the best expected PSNR of that image (each image is its own
        transmission, and its transmitter knows its own rate-quality curve), and that expectation."""
        b, _, height, width = images.shape
        lost = psnr(grey(b, height, width, images), images)
        kw = {"max_cw_bits": self.max_cw_bits, "num_codewords": self.bler_codewords, "num_iter": self.num_iter}
        return [choose_fading(expected_quality_fading(
                    channel, snr_db, n_symbols, lambda lay, i=i: self._psnr_at(pixels[i], images[i], lay.payload_bits),
                    float(lost[i]), **kw))
                for i in range(b)]

    def __call__(self, images: Tensor, channel: Channel, snr_db: float, n_symbols: int, *,
                 generator: torch.Generator | None = None) -> dict[str, Any]:
        check_call(images, channel, snr_db, n_symbols)
        b, _, height, width = images.shape
        pixels = to_uint8(images)
        expected: list[float] | None = None
        if self.mcs is None and channel.fading:
            chosen, expected = map(list, zip(*self._choose_fading_mcs(images, pixels, channel, snr_db, n_symbols)))
        else:
            chosen = [self.choose_mcs(snr_db, n_symbols)] * b
        x_hat = grey(b, height, width, images)
        bits = torch.zeros(b, dtype=torch.int64)
        info: list[dict[str, Any]] = [{} for _ in range(b)]
        for mcs in dict.fromkeys(chosen):  # each MCS once, in order of first use
            idx = [i for i in range(b) if chosen[i] == mcs]
            self._send(images, pixels, idx, mcs, channel, snr_db, n_symbols, generator, x_hat, bits, info)
        if expected is not None:  # the AMC's own outage-weighted PSNR, free of this draw's luck
            for i in range(b):
                info[i]["psnr_expected"] = expected[i]
        log.debug("%s: snr %.1f dB, n %d, MCS %s, ok %d/%d", self, snr_db, n_symbols,
                  sorted({m.name for m in chosen}), sum(d["success"] for d in info), b)
        return {"x_hat": x_hat, "bits": bits, "info": info}

    def _send(self, images: Tensor, pixels: np.ndarray, idx: list[int], mcs: MCS, channel: Channel,
              snr_db: float, n_symbols: int, generator: torch.Generator | None, x_hat: Tensor, bits: Tensor,
              info: list[dict[str, Any]]) -> None:
        """Images ``idx`` over one MCS: compress, encode, send, decode; fills ``x_hat``, ``bits``, ``info``."""
        height, width = images.shape[-2:]
        lay = codeword_layout(mcs, n_symbols, self.max_cw_bits)  # ValueError if n is too small
        phy = get_phy(mcs.bits_per_symbol, lay.n_cw, lay.k, self.num_iter)
        files = [self._compress(pixels[i], lay.payload_bits) for i in idx]
        payload = torch.stack([bytes_to_bits(data, lay.payload_bits, generator=generator)
                               for data, _ in files]).reshape(len(idx), lay.num_cw, lay.k)
        x = phy.modulate(payload, n_symbols, generator=generator)
        state = channel.sample_state(len(idx), n_symbols, snr_db, generator=generator)
        y, no = post_equalization(channel, channel.apply(x, state, generator=generator), state)
        received = phy.demodulate(y, no, lay.num_cw)
        cw_errors = (received != payload).any(dim=-1).sum(dim=-1).tolist()
        for j, (i, (data, quality)) in enumerate(zip(idx, files)):
            success = bool(data) and cw_errors[j] == 0
            if success:
                got = bits_to_bytes(received[j].reshape(-1))
                x_hat[i] = from_uint8(decode_image(got, height, width)[None], images)[0]
            if data:
                bits[i] = 8 * len(data)
            info[i] = {"quality": quality, "mcs": mcs.name, "success": success,
                       "payload_bits": lay.payload_bits, "codeword_errors": cw_errors[j]}


@register("baseline", "webp_ldpc")
def webp_ldpc(**kwargs: Any) -> LdpcLink:
    """WebP over 5G LDPC + QAM with AMC (``mcs="auto"``) unless an MCS is given."""
    return LdpcLink(fmt="webp", **kwargs)


@register("baseline", "jpeg_ldpc")
def jpeg_ldpc(**kwargs: Any) -> LdpcLink:
    """JPEG over 5G LDPC + QAM with AMC (``mcs="auto"``) unless an MCS is given."""
    return LdpcLink(fmt="jpeg", **kwargs)
