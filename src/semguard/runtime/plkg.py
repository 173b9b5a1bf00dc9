"""Physical-layer key generation between the transmitter (Alice, ``tx``) and the receiver (Bob, ``rx``)
over the emulator's reciprocal probes, as two message-driven state machines.

The handshake messages travel rx -> emulator -> tx and back (REQ/REP through the emulator's
ROUTER/DEALER relay).  Each carries the public discussion; the first two also carry a probe block
(``"probe"``: ``n`` unit pilots), which the emulator replaces by what the other side receives
through one time-correlated (Jakes) realisation: ``y = h(t_k) p + n`` towards Alice, ``h(t_k + tau) p + n'``
towards Bob, independent noise (:mod:`semguard.runtime.probe_channel`).  Each side estimates
``h_hat = y / p`` from its own samples only.

Rounds (Bob asks, Alice answers)::

    rx hello  {role, nonce, kb (signed root), id, key_source, probe}
    tx hello  {.., step (Alice's decorrelation step), keep_a (her guard-band mask), probe}
    rx pd     {keep_b, sample (random positions), sample_bits (Bob's bits there)}
    tx pd     {sample_bits (Alice's), t, bch_m, syndromes (BCH parities of her remaining bits)}
    rx pd2    {block_ok (blocks Bob decoded)}
    tx pd2    {length, seed (Toeplitz), nonce, tag_a}
    rx sig    {tag_b, sig = Ed25519(rx, transcript)}
    tx sig    {sig = Ed25519(tx, transcript)}

Quantisation (Gray, guard bands), BCH syndrome reconciliation, min-entropy estimation, Toeplitz
hashing sized against the declared Eve and the HMAC key confirmation are the keys package's
(:class:`~semguard.keys.AgreementConfig` settings, BCH because it is one-way: Alice's parities and
Bob's block verdicts are the whole reconciliation).  The transcript (every public field in order, the
probe samples left out) is signed by both identities; with a pinned peer key a man in the middle who ran
his own key agreement with each side is refused at the signature.  The master is
``HKDF(key, info = "semguard-runtime-master|plkg|" + transcript)``.  ``info`` holds the session's
figures (never key material).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from semguard.keys import EveModel
from semguard.keys.amplify import bits_to_bytes, confirm, confirmation_tag, mcv_min_entropy, predictive_min_entropy, \
    toeplitz_hash
from semguard.keys.quantize import decorrelation_step, gray_bits, thresholds
from semguard.keys.reconcile import bch_block_bits, bch_reconcile, kdr_upper_bound
from semguard.keys.secrecy import channel_spectrum, eve_information, secret_length
from semguard.runtime.handshake import (HandshakeError, KbView, check_hello, derive_master, sign_transcript,
                                        verify_transcript)
from semguard.runtime.plkg_steps import (KDR_MAX, PlkgConfig, correct_blocks, estimate, hashed_key, pilots,
                                         probe_block, quantize_block, receiver_bits)
from semguard.runtime.wire import (PROBE_KEY, Transcript, WireError, bits_in, bits_out, bytes_out, hex_field, idx_in,
                                   idx_out)

__all__ = ["PlkgConfig", "PlkgInitiator", "PlkgResponder", "pilots"]

log = logging.getLogger(__name__)


class _Side:
    def __init__(self, role: str, kb: KbView, cfg: PlkgConfig, identity: Ed25519PrivateKey | None,
                 peer_public: bytes | None, rng: np.random.Generator | None) -> None:
        self.role, self.kb, self.cfg = role, kb, cfg
        self._identity, self._peer_public = identity, peer_public
        self._rng = rng if rng is not None else np.random.default_rng(int.from_bytes(os.urandom(8), "big"))
        self.nonce = os.urandom(16).hex()
        self.transcript = Transcript(b"plkg")
        self.master: bytes | None = None
        self.info: dict[str, Any] = {"key_source": "plkg", "n_probes": cfg.n_probes}
        self._stage = 0
        self._key: bytes | None = None

    def hello(self) -> dict[str, Any]:
        return {"m": "hello", "role": self.role, "nonce": self.nonce, "kb": self.kb.to_dict(), "key_source": "plkg",
                "id": None if self._identity is None else _pub_hex(self._identity)}

    def _finish(self) -> None:
        assert self._key is not None
        self.master = derive_master(self._key, b"plkg", self.transcript.digest())
        self._key = None


def _pub_hex(key: Ed25519PrivateKey) -> str:
    from semguard.knowledge.keys import public_bytes
    return public_bytes(key).hex()


class PlkgResponder(_Side):
    """Alice (the transmitter): answers each of Bob's messages; ``master`` is set after the last."""

    def __init__(self, kb: KbView, cfg: PlkgConfig | None = None, *, identity: Ed25519PrivateKey | None = None,
                 peer_public: bytes | None = None, rng: np.random.Generator | None = None) -> None:
        super().__init__("tx", kb, cfg or PlkgConfig(), identity, peer_public, rng)

    def handle(self, msg: dict[str, Any]) -> dict[str, Any]:
        try:
            want = ("hello", "pd", "pd2", "sig")[self._stage]
            if msg.get("m") != want:
                raise HandshakeError(f"plkg: expected a {want!r} message, got {msg.get('m')!r}")
            reply = getattr(self, f"_on_{want}")(msg)
        except WireError as exc:
            raise HandshakeError(f"plkg: {exc}") from None
        self._stage += 1
        if want != "sig":
            self.transcript.add("rx", msg)
            self.transcript.add("tx", reply)
        return reply

    def _on_hello(self, msg: dict[str, Any]) -> dict[str, Any]:
        check_hello(msg, self.role, self.kb, self._peer_public)
        h = estimate(msg, self.cfg.n_probes)
        ac = self.cfg.ac
        self._step = decorrelation_step(h, ac.decorrelate) if ac.decorrelate is not None else 1
        self._x, self._q = quantize_block(h, self._step, ac)
        probe = probe_block(str(msg[PROBE_KEY].get("round", "")), self.cfg)
        return {**self.hello(), "step": self._step, "keep_a": bits_out(self._q.keep.reshape(-1)), PROBE_KEY: probe}

    def _on_pd(self, msg: dict[str, Any]) -> dict[str, Any]:
        ac = self.cfg.ac
        keep_b = bits_in(msg.get("keep_b"), "keep_b", self._q.keep.size).reshape(self._q.keep.shape).astype(bool)
        self._keep = self._q.keep & keep_b
        ba = gray_bits(self._q.levels[self._keep], ac.bits).reshape(-1)
        idx = idx_in(msg.get("sample"), "sample", ba.size)
        if idx.size != min(ac.kdr_sample, ba.size // 2):
            raise HandshakeError(f"plkg: sample must disclose {min(ac.kdr_sample, ba.size // 2)} positions, got {idx.size}")
        sample_b = bits_in(msg.get("sample_bits"), "sample_bits", idx.size)
        k = int((ba[idx] != sample_b).sum())
        upper = kdr_upper_bound(k, idx.size, 0.99)
        self.info.update(step=self._step, quantized_bits=int(ba.size), kdr_estimate=k / max(idx.size, 1),
                         kdr_upper=upper)
        if upper >= KDR_MAX:
            raise HandshakeError(f"plkg: estimated key disagreement {k}/{idx.size} (upper bound {upper:.3f}) is too "
                                 "high to reconcile")
        rest = np.ones(ba.size, dtype=bool)
        rest[idx] = False
        self._ba = ba[rest]
        code = ac.bch_code(upper)                              # Bob reads the chosen m from pd
        if code is None:
            raise HandshakeError(f"plkg: no BCH code (m={ac.bch_m}..8) corrects a disagreement of {upper:.3f} "
                                 "and leaves bits beyond its parities")
        m, t = code
        self._t, self._m = t, m
        syn = bch_reconcile(self._ba, self._ba, t, m).syndromes     # Alice's parities (Bob = Alice here)
        return {"m": "pd", "sample_bits": bits_out(ba[idx]), "t": t, "bch_m": m,
                "syndromes": bytes_out(b"".join(syn)), "n_blocks": len(syn)}

    def _on_pd2(self, msg: dict[str, Any]) -> dict[str, Any]:
        ac, cfg = self.cfg.ac, self.cfg
        data_bits, ecc_bits = bch_block_bits(self._t, self._m)
        n_blocks = -(-self._ba.size // data_bits)
        ok = bits_in(msg.get("block_ok"), "block_ok", n_blocks).astype(bool)
        rec = self._ba[np.repeat(ok, data_bits)[: self._ba.size]]
        leaked = int(ok.sum()) * ecc_bits
        levels = self._q.levels[self._keep]
        h_sym = mcv_min_entropy(levels) if levels.size > 1 else 0.0
        if self._x.shape[0] > 4 * 32:
            h_sym = min(h_sym, predictive_min_entropy(self._x, thresholds(self._x, ac.bits, ac.threshold)) / 2)
        h_total = h_sym / ac.bits * rec.size
        eve = EveModel(ac.eve_min_distance, ac.eve_max_correlation, ac.eve_snr_db)
        spec = channel_spectrum(cfg.n_probes, "mobile", cfg.doppler_hz, cfg.probe_rate_hz)
        eve_bits, eve_disp = eve_information(spec, self._step, eve.correlation, cfg.snr_db, eve.snr_db)
        length = secret_length(h_total, eve_bits, eve_disp, leaked, ac.eps)
        length -= length % 8
        self.info.update(reconciled_bits=int(rec.size), leaked_bits=leaked, min_entropy_bits=round(h_total, 1),
                         eve_info_bits=round(eve_bits, 1), key_bits=length, bch_t=self._t, bch_m=self._m,
                         failed_blocks=int((~ok).sum()))
        if length < ac.min_key_bits:
            raise HandshakeError(f"plkg: only {length} secret bits against the declared Eve ({eve.describe()}), "
                                 f"need {ac.min_key_bits}; probe longer or at a higher SNR")
        seed = self._rng.integers(0, 2, size=rec.size + length - 1, dtype=np.uint8)
        self._nonce = os.urandom(16)
        self._key = bits_to_bytes(toeplitz_hash(rec, length, seed))
        return {"m": "pd2", "length": length, "seed": bits_out(seed), "nonce": self._nonce.hex(),
                "tag_a": confirmation_tag(self._key, self._nonce, b"alice").hex()}

    def _on_sig(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._key is not None
        tag_b = hex_field(msg, "tag_b", 32)
        if not confirm(self._key, tag_b, self._nonce, b"bob"):
            raise HandshakeError("plkg: key confirmation failed (Bob's key differs from Alice's)")
        self.transcript.add("rx", {"m": "sig", "tag_b": msg["tag_b"]})
        sig = hex_field(msg, "sig", 64) if self._peer_public is not None else b""
        verify_transcript(self._peer_public, "rx", self.transcript.digest(), sig)
        reply = {"m": "sig", "sig": sign_transcript(self._identity, "tx", self.transcript.digest()).hex()}
        self._finish()
        return reply


class PlkgInitiator(_Side):
    """Bob (the receiver): :meth:`first`, then :meth:`handle` each reply until it returns None (``master`` set)."""

    def __init__(self, kb: KbView, cfg: PlkgConfig | None = None, *, identity: Ed25519PrivateKey | None = None,
                 peer_public: bytes | None = None, rng: np.random.Generator | None = None) -> None:
        super().__init__("rx", kb, cfg or PlkgConfig(), identity, peer_public, rng)
        self._last: dict[str, Any] | None = None

    def first(self) -> dict[str, Any]:
        self._last = {**self.hello(), PROBE_KEY: probe_block(self.nonce, self.cfg)}
        return self._last

    def handle(self, reply: dict[str, Any]) -> dict[str, Any] | None:
        want = ("hello", "pd", "pd2", "sig")[self._stage]
        if reply.get("m") == "error":
            raise HandshakeError(f"transmitter refused: {reply.get('e')}")
        if reply.get("m") != want:
            raise HandshakeError(f"plkg: expected a {want!r} reply, got {reply.get('m')!r}")
        if want != "sig":
            assert self._last is not None
            self.transcript.add("rx", self._last)
            self.transcript.add("tx", reply)
        try:
            out = getattr(self, f"_on_{want}")(reply)
        except WireError as exc:
            raise HandshakeError(f"plkg: {exc}") from None
        self._stage += 1
        self._last = out
        return out

    def _on_hello(self, reply: dict[str, Any]) -> dict[str, Any]:
        check_hello(reply, self.role, self.kb, self._peer_public)
        bb, keep = receiver_bits(estimate(reply, self.cfg.n_probes), reply, self.cfg.ac)
        idx = np.sort(self._rng.choice(bb.size, size=min(self.cfg.ac.kdr_sample, bb.size // 2), replace=False))
        rest = np.ones(bb.size, dtype=bool)
        rest[idx] = False
        self._bb, self._idx, self._sample = bb[rest], idx, bb[idx]
        return {"m": "pd", "keep_b": bits_out(keep.reshape(-1)), "sample": idx_out(idx),
                "sample_bits": bits_out(bb[idx])}

    def _on_pd(self, reply: dict[str, Any]) -> dict[str, Any]:
        sample_a = bits_in(reply.get("sample_bits"), "sample_bits", self._idx.size)
        self.info["kdr_estimate"] = float(np.mean(sample_a != self._sample)) if sample_a.size else float("nan")
        fixed, ok, data_bits = correct_blocks(self._bb, reply)
        self._rec = fixed[np.repeat(ok, data_bits)[: fixed.size]]
        self.info.update(bch_t=int(reply["t"]), failed_blocks=int((~ok).sum()))
        return {"m": "pd2", "block_ok": bits_out(ok.astype(np.uint8))}

    def _on_pd2(self, reply: dict[str, Any]) -> dict[str, Any]:
        key, nonce, tag_a = hashed_key(self._rec, reply)
        if not confirm(key, tag_a, nonce, b"alice"):
            raise HandshakeError("plkg: key confirmation failed (Alice's key differs from Bob's)")
        self._key = key
        self.info["key_bits"] = 8 * len(key)
        tag_b = confirmation_tag(key, nonce, b"bob").hex()
        self.transcript.add("rx", {"m": "sig", "tag_b": tag_b})
        return {"m": "sig", "tag_b": tag_b, "sig": sign_transcript(self._identity, "rx", self.transcript.digest()).hex()}

    def _on_sig(self, reply: dict[str, Any]) -> None:
        sig = hex_field(reply, "sig", 64) if self._peer_public is not None else b""
        verify_transcript(self._peer_public, "tx", self.transcript.digest(), sig)
        self._finish()
        return None
