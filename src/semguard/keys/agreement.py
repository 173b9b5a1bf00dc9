"""The whole key-agreement pipeline (its settings are in :mod:`semguard.keys.agreement_config`, its
record in :mod:`semguard.keys.key_result`; both are importable from here).

probe trace -> standardise -> decimate to decorrelated probes -> quantise (Gray, guard bands)
-> KDR estimate from a disclosed sample -> Cascade or BCH syndrome reconciliation -> min-entropy
estimate -> Toeplitz hashing sized against a declared eavesdropper -> HMAC confirmation.

Every public message goes through one :class:`~semguard.keys.auth.PublicChannel` (MAC'd under a
pre-shared identity key when one is given, so an active attacker who rewrites a parity is detected).

Eve replays every public message with her best decoder (:mod:`semguard.keys.replay`): she fits
her correlation to the disclosed sample, decodes her soft bits against all of Alice's disclosed
parities (Cascade's block and binary-search parities by belief propagation, or the BCH syndromes by
Chase-II), hashes with the public seed and searches her least reliable bits against Bob's
public confirmation tag.  Her reconciled KDR and whether her key equals Alice's are measured.

The key length is Alice's min-entropy minus the Gaussian bound on what the declared Eve
(:class:`~semguard.keys.secrecy.EveModel`; default: at least 0.5 wavelengths from Bob, noiseless)
knows, minus the leakage and the hashing margin (:func:`~semguard.keys.secrecy.secret_length`).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, dataclass
from typing import Any

from collections.abc import Callable

import numpy as np

from semguard.channels.functional import snr_db_to_n0
from semguard.keys.agreement_config import BASELINE, QUANTIZER_TABLE, AgreementConfig, adaptive_config
from semguard.keys.amplify import (bits_to_bytes, confirm, confirmation_tag, lhl_length,
                                   mcv_min_entropy, predictive_min_entropy, toeplitz_hash)
from semguard.keys.auth import AuthenticationError, Message, PublicChannel
from semguard.keys.cascade import cascade
from semguard.keys.key_result import KeyResult
from semguard.keys.probing import ProbeTrace
from semguard.keys.quantize import decorrelation_step, gray_bits, quantize, standardize, thresholds
from semguard.keys.reconcile import bch_block_bits, bch_reconcile, chase_correct, estimate_kdr
from semguard.keys.replay import bit_llrs, bp_decode, fit_correlation, tag_search, wiener_smooth, xor_reliability
from semguard.keys.secrecy import EveModel, channel_spectrum, eve_information, secret_length

__all__ = ["AgreementConfig", "KeyResult", "KeyAgreement", "BASELINE", "QUANTIZER_TABLE", "adaptive_config"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Rec:
    alice: np.ndarray
    bob: np.ndarray
    leaked_bits: int


def _bits(levels: np.ndarray, bits: int) -> np.ndarray:
    return gray_bits(levels, bits).reshape(-1)


def _kdr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean(a != b)) if a.size else float("nan")


class KeyAgreement:
    """Run the pipeline of :class:`AgreementConfig` on a :class:`ProbeTrace`."""

    def __init__(self, config: AgreementConfig | None = None, *, identity_key: bytes | None = None) -> None:
        self.config = config or AgreementConfig()
        if identity_key is not None and len(identity_key) < 16:
            raise ValueError(f"identity_key must have at least 16 bytes, got {len(identity_key)}")
        self._identity_key = identity_key

    def __repr__(self) -> str:
        return f"KeyAgreement({self.config})"

    def _amplify(self, bits: np.ndarray, length: int, seed: np.ndarray) -> bytes:
        if self.config.amplifier == "sha256":
            return hashlib.sha256(bits_to_bytes(bits)).digest()[: length // 8]
        return bits_to_bytes(toeplitz_hash(bits, length, seed))

    def eve_model(self) -> EveModel | None:
        """The declared eavesdropper the key is sized against (None: unconditional sizing)."""
        c = self.config
        if c.eve_sizing == "none":
            return None
        return EveModel(min_distance=c.eve_min_distance, max_correlation=c.eve_max_correlation, snr_db=c.eve_snr_db)

    def run(self, trace: ProbeTrace, rng: np.random.Generator,
            tamper: Callable[[Message], Message] | None = None) -> KeyResult:
        """Agree on a key from ``trace``; ``rng`` draws the public sample, seed and nonce.

        ``tamper`` is an active attacker on the public channel (see :class:`PublicChannel`).
        """
        c = self.config
        pc = trace.config
        eve_model = self.eve_model()
        pub = PublicChannel(self._identity_key, rng.bytes(16), tamper)
        base: dict[str, Any] = {"n_probes": pc.n_probes, "authenticated": pub.authenticated,
                                "eve_model": eve_model.to_dict() if eve_model else {"description": "none declared"},
                                "config": {"agreement": asdict(c), "probing": pc.to_dict()}}
        step = decorrelation_step(trace.alice, c.decorrelate) if c.decorrelate is not None else 1
        xa, xb, xe = (standardize(z[::step]) for z in (trace.alice, trace.bob, trace.eve))
        qa = quantize(xa, c.bits, guard=c.guard, kind=c.threshold, guard_unit=c.guard_unit)
        qb = quantize(xb, c.bits, guard=c.guard, kind=c.threshold, guard_unit=c.guard_unit)
        qe = quantize(xe, c.bits, guard=0.0, kind=c.threshold)
        keep = qa.keep & qb.keep                          # [T, 2], public: indices only
        ba, bb, be = (_bits(q.levels[keep], c.bits) for q in (qa, qb, qe))
        h_sym = self._min_entropy(xa, qa.levels[keep])
        h_bit = h_sym / c.bits
        kdr_raw, eve_raw = _kdr(ba, bb), _kdr(ba, be)
        eve_aligned = self._eve_aligned(trace.eve[::step], keep, ba)
        common = dict(base, step=step, quantized_bits=int(keep.sum()) * c.bits, kdr_raw=kdr_raw,
                      eve_kdr_raw=eve_raw, eve_kdr_aligned=eve_aligned, min_entropy_per_symbol=h_sym)
        try:
            return self._discuss(trace, rng, pub, eve_model, step, keep, xe, ba, bb, h_bit, common)
        except AuthenticationError as exc:
            log.warning("key agreement aborted: %s", exc)
            return KeyResult.failed(dict(common, kdr_estimate=float("nan")), f"active attack detected: {exc}", None)

    def _discuss(self, trace: ProbeTrace, rng: np.random.Generator, pub: PublicChannel,
                 eve_model: EveModel | None, step: int, keep: np.ndarray, xe: np.ndarray, ba: np.ndarray,
                 bb: np.ndarray, h_bit: float, common: dict[str, Any]) -> KeyResult:
        """The public discussion (every message through ``pub``) and Eve's replay of it."""
        c = self.config
        pc = trace.config
        kdr_hat, kdr_up, rest = estimate_kdr(ba, bb, c.kdr_sample, rng)
        shown = np.flatnonzero(~rest)
        alice_shown = pub.send("kdr-sample", ba[shown])                   # Bob sends his sample bits too
        bob_shown = pub.send("kdr-sample-bob", bb[shown])
        kdr_hat = _kdr(alice_shown, bob_shown)
        spec = channel_spectrum(pc.n_probes, pc.mode, pc.doppler_hz, pc.probe_rate_hz, pc.ris_direct_power)
        n0_e = float(snr_db_to_n0(pc.snr_db if pc.eve_snr_db is None else pc.eve_snr_db))   # Eve knows her own noise
        smooth = standardize(wiener_smooth(trace.eve, spec, n0_e)[::step])
        fits = [(fit_correlation(z[keep], c.bits, shown, alice_shown), z[keep]) for z in (xe, smooth)]
        (r_eve, _), xe_kept = max(fits, key=lambda f: f[0][1])           # Eve's components at the public positions
        llr_e = bit_llrs(xe_kept, r_eve, c.bits)[rest]
        ba, bb = ba[rest], bb[rest]
        common = dict(common, kdr_estimate=kdr_hat, kdr_upper=kdr_up)
        if ba.size == 0 or kdr_up >= 0.25:
            log.info("key agreement aborted: estimated KDR upper bound %.3f too high", kdr_up)
            return KeyResult.failed(common, "KDR too high to reconcile", None)
        rec = self._reconcile(ba, bb, llr_e, kdr_up, rng, pub)
        if rec is None:
            log.info("key agreement aborted: estimated KDR upper bound %.3f too high for BCH (m <= %d)", kdr_up, c.bch_m)
            return KeyResult.failed(common, "KDR too high to reconcile", None)
        rec, be_r, post_e, code, failed = rec
        m, t = code if code is not None else (None, None)
        n_rec = rec.alice.size
        h_total = h_bit * n_rec
        unconditional = lhl_length(h_total, rec.leaked_bits, c.eps)
        eve_bits = eve_disp = 0.0
        if eve_model is not None:
            rho = 1.0 if pc.mode == "induced" and c.eve_max_correlation is None else eve_model.correlation
            eve_bits, eve_disp = eve_information(spec, step, rho, pc.snr_db, eve_model.snr_db)
        if c.amplifier == "toeplitz":
            length = (secret_length(h_total, eve_bits, eve_disp, rec.leaked_bits, c.eps) if eve_model is not None
                      else unconditional)
        else:
            length = min(256, n_rec)
        length -= length % 8                                              # whole bytes: no padding bits
        short = 0 < length < c.min_key_bits
        length = 0 if short else length
        seed = pub.send("toeplitz-seed", rng.integers(0, 2, size=max(n_rec + length - 1, 0), dtype=np.uint8))
        nonce = bytes(pub.send("confirm-nonce", rng.bytes(16)))
        key_a = self._amplify(rec.alice, length, seed) if length else b""
        key_b = self._amplify(rec.bob, length, seed) if length else b""
        tag_b = bytes(pub.send("confirm-tag-bob", confirmation_tag(key_b, nonce, b"bob")))
        ok = bool(length >= 8) and confirm(key_a, tag_b, nonce, b"bob")
        key_e, eve_confirmed = self._eve_key(be_r, post_e, length, seed, nonce, tag_b)
        feats = None
        if ok and c.amplifier == "toeplitz":
            feats = np.stack([np.unpackbits(np.frombuffer(key_e, np.uint8)).astype(np.float64),
                              xor_reliability(post_e, length, seed), np.full(length, float(eve_confirmed))], axis=1)
        bits_out = 8 * len(key_a) if ok else 0
        reason = "" if ok else self._no_key_reason(length, h_total, eve_bits, rec.leaked_bits, eve_model)
        if short:
            reason = (f"secret length below min_key_bits={c.min_key_bits} (the public confirmation tag would let "
                      f"Eve test every shorter key)")
        log.info("key agreement: %d secret bits from %d probes (leaked %d, Eve bound %.0f)", bits_out,
                 pc.n_probes, rec.leaked_bits, eve_bits)
        return KeyResult(key=key_a if ok else None, success=ok, key_bits=bits_out, reconciled_bits=n_rec,
                         kgr_bits_per_probe=bits_out / pc.n_probes,
                         kgr_bits_per_second=bits_out / pc.n_probes * pc.probe_rate_hz,
                         kdr_reconciled=_kdr(rec.alice, rec.bob), eve_kdr_reconciled=_kdr(rec.alice, be_r),
                         eve_key_match=bool(ok and key_e == key_a), leaked_bits=rec.leaked_bits,
                         min_entropy_bits=h_total, bch_t=t, bch_m=m, failed_blocks=failed, eve_info_bits=eve_bits,
                         eve_info_dispersion=eve_disp, unconditional_key_bits=unconditional - unconditional % 8,
                         eve_tag_confirmed=eve_confirmed, eve_correlation_fit=r_eve,
                         reason=reason, eve_key=key_e if ok else None, eve_features=feats, **common)

    def _eve_key(self, be_r: np.ndarray, post_e: np.ndarray, length: int, seed: np.ndarray, nonce: bytes,
                 tag_b: bytes) -> tuple[bytes, bool]:
        """Eve's key from her replayed string, searched against Bob's public tag (Toeplitz only)."""
        if not length:
            return b"", False
        if self.config.amplifier != "toeplitz":
            key = self._amplify(be_r, length, seed)
            return key, confirm(key, tag_b, nonce, b"bob")
        bits, hit = tag_search(be_r, post_e, length, seed, toeplitz_hash,
                               lambda k: confirm(bits_to_bytes(k), tag_b, nonce, b"bob"))
        return bits_to_bytes(bits), hit

    @staticmethod
    def _no_key_reason(length: int, h_total: float, eve_bits: float, leaked: int, model: EveModel | None) -> str:
        if length >= 8:
            return "confirmation failed"
        if model is not None and eve_bits > 0 and h_total - leaked > 0 and h_total - eve_bits - leaked < 8 + 40:
            return (f"no secret bits against the declared Eve ({model.describe()}): she may know "
                    f"{eve_bits:.0f} bits of Alice's {h_total:.0f}-bit min-entropy, {leaked} more leaked")
        return "no secret bits left after leakage"

    def _min_entropy(self, xa: np.ndarray, kept_levels: np.ndarray) -> float:
        """Min-entropy per quantised component: the smaller of the IID most-common-value estimate
        on the kept levels and the predictive estimate from the probe sequence's own past.

        The real and imaginary parts of a probe are treated as independent, which holds for
        circularly symmetric fading (Rayleigh, the RIS sum, a uniform induced phase)."""
        c = self.config
        if c.entropy == "none":
            return float(c.bits)
        if len(kept_levels) < 2:
            return 0.0
        h = mcv_min_entropy(kept_levels)
        if xa.shape[0] > 4 * 32:
            h = min(h, predictive_min_entropy(xa, thresholds(xa, c.bits, c.threshold)) / xa.shape[1])
        return h

    def _eve_aligned(self, eve: np.ndarray, keep: np.ndarray, alice_bits: np.ndarray, n_phases: int = 32) -> float:
        """Eve's KDR after the best of ``n_phases`` constant rotations of her measurements.

        A constant unknown factor between Eve's and Alice's observations (the static case) is
        one real parameter Eve can search, picking the rotation consistent with the public
        parities; choosing it with Alice's bits here makes this an upper bound on that Eve.
        """
        c = self.config
        best = 1.0
        for phi in np.linspace(0.0, 2.0 * np.pi, n_phases, endpoint=False):   # loop over phases, not samples
            q = quantize(standardize(eve * np.exp(1j * phi)), c.bits, kind=c.threshold)
            best = min(best, _kdr(alice_bits, _bits(q.levels[keep], c.bits)))
        return best

    def _reconcile(self, ba: np.ndarray, bb: np.ndarray, llr_e: np.ndarray, kdr_up: float,
                   rng: np.random.Generator, pub: PublicChannel
                   ) -> tuple[_Rec, np.ndarray, np.ndarray, tuple[int, int] | None, int] | None:
        """Reconcile Bob to Alice over ``pub``; Eve decodes her soft bits ``llr_e`` against every parity
        Alice disclosed (Cascade's blocks and halves, or the BCH syndromes).

        Returns ``(reconciled, Eve's bits, Eve's posterior LLRs, BCH (m, t), failed blocks)``."""
        c = self.config
        if c.reconciliation == "cascade":
            res = cascade(ba, bb, kdr_up, rng, send=pub.send)
            be_r, post = bp_decode(llr_e, res.checks.matrix, res.checks.parities)
            return _Rec(ba, res.bob, res.leaked_bits), be_r, post, None, 0
        code = c.bch_code(kdr_up)                                         # the runtime's PLKG choice too
        if code is None:
            return None
        m, t = code
        data_bits, _ = bch_block_bits(t, m)
        rec = bch_reconcile(ba, bb, t, m, send=pub.send)
        be_fixed, _ = chase_correct(llr_e, rec.syndromes, t, m, p=6)        # soft: Chase-II over her 6 weakest bits
        kept = np.repeat(rec.block_ok, data_bits)[: llr_e.size]
        post = np.where(be_fixed == (llr_e < 0), llr_e, -llr_e)          # a decoded flip: trust it as much
        return _Rec(rec.alice, rec.bob, rec.leaked_bits), be_fixed[kept], post[kept], (m, t), int((~rec.block_ok).sum())
