"""The PLKG session's configuration and the steps a receiver computes from its probe estimate and the
public discussion -- Bob's side of :mod:`semguard.runtime.plkg`, and the same steps an eavesdropper runs
on her own observation (:mod:`semguard.runtime.plkg_eve`).

Quantisation (Gray code, guard bands), BCH syndrome decoding and Toeplitz hashing are the keys
package's functions; here they are applied to the message fields the protocol makes public.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from semguard.keys import AgreementConfig, adaptive_config
from semguard.keys.amplify import bits_to_bytes, toeplitz_hash
from semguard.keys.quantize import Quantized, gray_bits, quantize, standardize
from semguard.keys.reconcile import bch_block_bits, bch_correct
from semguard.runtime.handshake import HandshakeError
from semguard.runtime.wire import (PROBE_KEY, bits_in, bytes_in, hex_field, idx_in, int_field, iq_in, iq_out)

__all__ = ["PlkgConfig", "pilots", "probe_block", "estimate", "quantize_block", "receiver_bits", "correct_blocks",
           "hashed_key", "sample_positions", "parities", "KDR_MAX"]

#: largest key disagreement (99 % upper bound on the disclosed sample) the protocol tries to reconcile
KDR_MAX = 0.25


@dataclass(frozen=True)
class PlkgConfig:
    """Probing and the declared channel the key is sized for.

    Attributes:
        n_probes: probes each way.
        probe_rate_hz: probes per second (the emulator's probe clock).
        doppler_hz / snr_db: the declared channel (Eve's information bound uses its spectrum).
        agreement: quantiser, hashing and Eve settings (default: :func:`~semguard.keys.adaptive_config`
            at ``snr_db`` with BCH over GF(2^12) and a 1024-bit disclosed sample; reconciliation is BCH
            whatever it says).  One-way BCH leaks more than Cascade: at 20 dB 4096 probes leave no key against
            the default Eve, at 30 dB about 2000 bits (docs/runtime.md).
    """

    n_probes: int = 4096
    probe_rate_hz: float = 250.0
    doppler_hz: float = 100.0
    snr_db: float = 30.0
    agreement: AgreementConfig | None = field(default=None)

    def __post_init__(self) -> None:
        if not 256 <= self.n_probes <= 65536:
            raise ValueError(f"n_probes must be in 256..65536, got {self.n_probes}")
        if not (self.probe_rate_hz > 0 and self.doppler_hz >= 0):
            raise ValueError(f"probe_rate_hz must be > 0 and doppler_hz >= 0, got {self.probe_rate_hz}, {self.doppler_hz}")

    @property
    def ac(self) -> AgreementConfig:
        return self.agreement or adaptive_config(self.snr_db, reconciliation="bch", kdr_sample=1024, bch_m=12)


def pilots(n: int) -> np.ndarray:
    """The known probe block: ``n`` unit pilots."""
    return np.ones(n, dtype=np.complex64)


def probe_block(round_id: str, cfg: PlkgConfig) -> dict[str, Any]:
    """The ``probe`` field of a hello: ``n`` pilots at the probe clock, keyed by the round."""
    return {"round": round_id, "n": cfg.n_probes, "rate_hz": cfg.probe_rate_hz, "iq": iq_out(pilots(cfg.n_probes))}


def estimate(msg: dict[str, Any], n: int) -> np.ndarray:
    """``h_hat = y / p`` from the probe block a message arrived with."""
    probe = msg.get(PROBE_KEY)
    if not isinstance(probe, dict):
        raise HandshakeError("plkg: the hello carries no probe block (is the emulator in the handshake path?)")
    y = iq_in(probe.get("iq"), "probe.iq", n)
    h = y / pilots(n)
    if np.ptp(h.real) == 0 and np.ptp(h.imag) == 0:
        raise HandshakeError("plkg: the probe block arrived unchanged (no channel between the two ends)")
    return h


def quantize_block(h: np.ndarray, step: int, ac: AgreementConfig) -> tuple[np.ndarray, Quantized]:
    """Every ``step``-th estimate, standardised, and its quantisation (levels and guard-band mask)."""
    x = standardize(h[::step])
    return x, quantize(x, ac.bits, guard=ac.guard, kind=ac.threshold, guard_unit=ac.guard_unit)


def receiver_bits(h: np.ndarray, tx_hello: dict[str, Any], ac: AgreementConfig,
                  keep_b: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The receiver's Gray bits at the positions both guard-band masks keep, and its own mask.

    ``keep_b`` (an eavesdropper's case) replaces the receiver's own mask by the one Bob published."""
    step = int_field(tx_hello, "step", 1, 64)
    _, q = quantize_block(h, step, ac)
    keep_a = bits_in(tx_hello.get("keep_a"), "keep_a", q.keep.size).reshape(q.keep.shape).astype(bool)
    own = q.keep if keep_b is None else keep_b.reshape(q.keep.shape)
    return gray_bits(q.levels[own & keep_a], ac.bits).reshape(-1), q.keep


def parities(n_bits: int, tx_pd: dict[str, Any]) -> tuple[tuple[bytes, ...], int, int, int]:
    """Alice's BCH parities of ``n_bits`` undisclosed bits from her pd message: (per-block parities, t, m,
    data bits per block)."""
    t, m = int_field(tx_pd, "t", 1, 200), int_field(tx_pd, "bch_m", 5, 15)
    try:
        data_bits, _ = bch_block_bits(t, m)
    except ValueError as exc:
        raise HandshakeError(f"plkg: {exc}") from None
    n_blocks = -(-n_bits // data_bits)
    raw = bytes_in(tx_pd.get("syndromes"), "syndromes")
    if int_field(tx_pd, "n_blocks", 0, 1 << 20) != n_blocks or n_blocks == 0 or len(raw) % n_blocks:
        raise HandshakeError(f"plkg: {len(raw)} syndrome bytes do not split into {n_blocks} blocks")
    size = len(raw) // n_blocks
    return tuple(raw[i * size:(i + 1) * size] for i in range(n_blocks)), t, m, data_bits


def correct_blocks(bits: np.ndarray, tx_pd: dict[str, Any]) -> tuple[np.ndarray, np.ndarray, int]:
    """BCH-correct ``bits`` (the undisclosed ones) against Alice's parities: (corrected bits, per-block
    success, data bits per block)."""
    syn, t, m, data_bits = parities(bits.size, tx_pd)
    fixed, ok = bch_correct(bits, syn, t, m)
    return fixed, ok, data_bits


def hashed_key(rec: np.ndarray, tx_pd2: dict[str, Any]) -> tuple[bytes, bytes, bytes]:
    """Toeplitz-hash the reconciled bits with Alice's seed: (key, confirmation nonce, Alice's tag)."""
    length = int_field(tx_pd2, "length", 8, rec.size)
    seed = bits_in(tx_pd2.get("seed"), "seed", rec.size + length - 1)
    nonce, tag_a = hex_field(tx_pd2, "nonce", 16), hex_field(tx_pd2, "tag_a", 32)
    return bits_to_bytes(toeplitz_hash(rec, length, seed)), nonce, tag_a


def sample_positions(bits: np.ndarray, rx_pd: dict[str, Any]) -> np.ndarray:
    """The disclosed positions Bob chose (validated against ``bits``)."""
    return idx_in(rx_pd.get("sample"), "sample", bits.size)
