"""Eve runs the key agreement herself: from her tap (the whole public discussion of each PLKG session)
and her own observation of Alice's probe block (a channel correlated with Bob's at her distance,
:mod:`semguard.runtime.probe_channel`), she does what Bob does (:mod:`semguard.runtime.plkg_steps`):
quantise her estimate with Alice's decorrelation step and both published guard-band masks, drop the
disclosed sample, BCH-correct her bits with Alice's parities, keep the blocks Bob reported decoded,
Toeplitz-hash with Alice's seed, and test the result against Alice's public confirmation tag.  She
tries her estimate and its negation (at 0.5 wavelengths ``J0(pi) < 0``: her channel is anti-correlated).

What she learns is measured from the tap alone: her bit disagreement with Alice on the disclosed sample
(Alice's bits there are public), and whether her key passes Alice's tag.

``decoder="chase"`` is the soft-decision Eve: instead of her own hard quantisation she turns each kept
component of her estimate (raw, or Wiener-smoothed with the declared channel's spectrum, whichever
explains the disclosed sample better, see below) into log-likelihood ratios of Alice's Gray bits under
``x_A | x_E ~ N(r x_E, 1 - r^2)``, ``r`` fitted to the disclosed sample by maximum likelihood
(:mod:`semguard.keys.replay`; a negative ``r`` covers the sign), and decodes each block by Chase-II
(:func:`semguard.keys.reconcile.chase_correct`: flip subsets of her ``chase_p`` least reliable bits, decode
each with bchlib, keep the candidate consistent with Alice's parity that is closest in soft metric).  Her
LLRs also give a measured lower bound on what she knows per bit, ``1 - mean log2(1 + exp(-L (1 - 2a)))``
over the disclosed sample ``a`` (the cross-entropy of her posteriors against Alice's public bits).  Her
candidate estimates are also mapped through her own empirical CDF (Alice's thresholds are empirical
quantiles, not Gaussian ones); the fit's likelihood picks among the four.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.special import ndtri

from semguard.keys.amplify import confirm
from semguard.keys.quantize import standardize
from semguard.keys.reconcile import chase_correct
from semguard.keys.replay import bit_llrs, fit_correlation, wiener_smooth
from semguard.keys.secrecy import channel_spectrum
from semguard.runtime.frames import FrameError, FrameType, decode_frame
from semguard.runtime.handshake import HandshakeError, derive_master
from semguard.runtime.plkg_steps import PlkgConfig, correct_blocks, estimate, hashed_key, parities, receiver_bits, \
    sample_positions
from semguard.runtime.relay import EVE_PROBE
from semguard.runtime.wire import Transcript, WireError, bits_in, int_field

__all__ = ["EveResult", "eve_attempt", "eve_master", "sessions_from_messages", "sessions_from_tap", "DECODERS"]

#: Eve's decoders: her own hard quantisation + bchlib, or soft LLRs + Chase-II
DECODERS = ("hard", "chase")

_ORDER = ("rx_hello", "tx_hello", "rx_pd", "tx_pd", "rx_pd2", "tx_pd2")


@dataclass(frozen=True)
class EveResult:
    """One session as Eve saw it."""

    key_matched: bool            #: her key passed Alice's confirmation tag
    sample_disagreement: float   #: her bit disagreement with Alice on the disclosed sample (best sign)
    sample_bits: int
    reconciled_bits: int         #: bits Alice hashed (the blocks Bob decoded)
    eve_blocks_ok: int           #: of those blocks, how many Eve's BCH decoding accepted
    key_bits: int
    decoder: str = "hard"        #: "hard" or "chase"
    #: soft Eve: bits of information per bit her LLRs carry about Alice's, measured on the disclosed sample
    #: (``1 - cross-entropy``; a lower bound), and the correlation she fitted (None for the hard Eve)
    sample_information: float | None = None
    correlation_fit: float | None = None
    #: her key when it passed Alice's tag (never printed nor exported; for :func:`eve_master`)
    key: bytes | None = field(default=None, repr=False)

    @property
    def bsc_bits(self) -> float:
        """``reconciled_bits * (1 - H2(e))``: what a channel with her disagreement ``e`` carries about Alice's bits."""
        e = min(max(self.sample_disagreement, 1e-12), 1 - 1e-12)
        return self.reconciled_bits * (1.0 + e * math.log2(e) + (1 - e) * math.log2(1 - e))

    @property
    def soft_bits(self) -> float | None:
        """``reconciled_bits * sample_information``: what her soft observation carries about Alice's bits."""
        return None if self.sample_information is None else self.reconciled_bits * self.sample_information

    def to_dict(self) -> dict[str, Any]:
        """Every figure, without the key."""
        d = {k: v for k, v in asdict(self).items() if k != "key"}
        return {**d, "bsc_bits": self.bsc_bits, "soft_bits": self.soft_bits}


def sessions_from_messages(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Group tapped handshake messages (in relay order) into PLKG sessions that reached Alice's
    confirmation tag, each with Eve's own probe observation of that round."""
    sessions: list[dict[str, Any]] = []
    eve: dict[str, dict[str, Any]] = {}
    cur: dict[str, Any] | None = None
    for m in msgs:
        kind = m.get("m")
        if kind == EVE_PROBE:
            eve[str(m.get("round"))] = m
        elif kind == "hello" and m.get("role") == "rx" and m.get("key_source") == "plkg":
            cur = {"rx_hello": m}
            sessions.append(cur)
        elif cur is None or kind == "error":
            cur = None
        elif kind == "hello" and m.get("role") == "tx":
            cur["tx_hello"] = m
        elif kind == "pd":
            cur["rx_pd" if "keep_b" in m else "tx_pd"] = m
        elif kind == "pd2":
            cur["rx_pd2" if "block_ok" in m else "tx_pd2"] = m
        elif kind == "sig" and "tag_b" in m:
            cur["rx_sig"] = m
    out = []
    for s in sessions:
        rid = str(s["rx_hello"].get("probe", {}).get("round", ""))
        if all(k in s for k in _ORDER) and rid in eve:
            out.append({**s, "eve": eve[rid]})
    return out


def sessions_from_tap(frames: list[bytes]) -> list[dict[str, Any]]:
    """:func:`sessions_from_messages` over the HANDSHAKE frames of a tap (:func:`~semguard.runtime.emulator.read_tap`)."""
    msgs = []
    for raw in frames:
        try:
            f = decode_frame(raw)
            if f.type == FrameType.HANDSHAKE:
                m = json.loads(f.payload)
                if isinstance(m, dict):
                    msgs.append(m)
        except (FrameError, ValueError):
            continue
    return sessions_from_messages(msgs)


def eve_master(session: dict[str, Any], key: bytes) -> bytes:
    """The session master from a key Eve recovered: Alice's transcript rebuilt from the tapped public
    messages (hello, pd, pd2 each way, then Bob's confirmation tag), ``HKDF(key, transcript)`` as
    :meth:`semguard.runtime.plkg.PlkgResponder` derives it.  With it she opens the tapped frames."""
    if "rx_sig" not in session:
        raise ValueError("eve: the tap holds no rx sig message (Bob's confirmation tag) for this session")
    tr = Transcript(b"plkg")
    for rx, tx in (("rx_hello", "tx_hello"), ("rx_pd", "tx_pd"), ("rx_pd2", "tx_pd2")):
        tr.add("rx", session[rx])
        tr.add("tx", session[tx])
    tr.add("rx", {"m": "sig", "tag_b": session["rx_sig"].get("tag_b")})
    return derive_master(key, b"plkg", tr.digest())


def _try(h: np.ndarray, s: dict[str, Any], ac: Any) -> tuple[float, int, bool, int, int, bytes | None]:
    keep_b = bits_in(s["rx_pd"].get("keep_b"), "keep_b").astype(bool)
    bits, _ = receiver_bits(h, s["tx_hello"], ac, keep_b=keep_b)
    idx = sample_positions(bits, s["rx_pd"])
    alice_sample = bits_in(s["tx_pd"].get("sample_bits"), "sample_bits", idx.size)
    e = float(np.mean(bits[idx] != alice_sample)) if idx.size else 0.5
    rest = np.ones(bits.size, dtype=bool)
    rest[idx] = False
    fixed, ok_eve, data_bits = correct_blocks(bits[rest], s["tx_pd"])
    ok_bob = bits_in(s["rx_pd2"].get("block_ok"), "block_ok", ok_eve.size).astype(bool)
    rec = fixed[np.repeat(ok_bob, data_bits)[: fixed.size]]
    key, nonce, tag_a = hashed_key(rec, s["tx_pd2"])
    hit = confirm(key, tag_a, nonce, b"alice")
    return e, idx.size, hit, int(rec.size), int((ok_eve & ok_bob).sum()), key if hit else None


def _gaussianise(x: np.ndarray) -> np.ndarray:
    """Each column of ``x [T, D]`` mapped through its own empirical CDF onto N(0, 1) scores, so that the
    Gaussian thresholds of :func:`~semguard.keys.replay.bit_llrs` fall at her empirical quantiles, as
    Alice's quantile thresholds fall at hers."""
    ranks = np.argsort(np.argsort(x, axis=0, kind="stable"), axis=0)
    return ndtri((ranks + 0.5) / x.shape[0])


def _fit_r(xe: np.ndarray, bits: int, idx: np.ndarray, alice_sample: np.ndarray) -> tuple[float, float]:
    """:func:`~semguard.keys.replay.fit_correlation` (a grid up to |r| = 0.99), then the likelihood at
    ``|r| = 1 - 10^-k`` (k = 2.25 .. 5) on the fitted sign: near Bob her correlation is 0.9999 at 30 dB, and a
    posterior capped at 0.99 would understate how sure she is (and her measured information)."""
    r, ll = fit_correlation(xe, bits, idx, alice_sample)
    comp = idx // bits
    for k in np.arange(2.25, 5.01, 0.25):                                 # a 1-D grid, not a loop over bits
        rr = float(np.copysign(1.0 - 10.0 ** -k, r))
        llr = bit_llrs(xe[comp], rr, bits).reshape(-1, bits)[np.arange(comp.size), idx % bits]
        cand = -float(np.logaddexp(0.0, np.where(alice_sample == 1, llr, -llr)).sum())
        if cand > ll:
            r, ll = rr, cand
    return r, ll


def _soft_try(h: np.ndarray, s: dict[str, Any], cfg: PlkgConfig, n0_e: float, p: int
              ) -> tuple[float, int, bool, int, int, float, float, bytes | None]:
    """Chase-II Eve on one estimate: (hard-decision disagreement of her LLRs on the sample, sample size, tag
    passed, reconciled bits, blocks decoded among Bob's, information per bit on the sample, fitted r, her key
    if it passed)."""
    ac = cfg.ac
    keep_b = bits_in(s["rx_pd"].get("keep_b"), "keep_b").astype(bool)
    _, keep_e = receiver_bits(h, s["tx_hello"], ac, keep_b=keep_b)        # validates the masks' sizes
    step = int_field(s["tx_hello"], "step", 1, 64)
    keep_a = bits_in(s["tx_hello"].get("keep_a"), "keep_a", keep_e.size).reshape(keep_e.shape).astype(bool)
    keep = keep_a & keep_b.reshape(keep_e.shape)
    spec = channel_spectrum(h.size, "mobile", cfg.doppler_hz, cfg.probe_rate_hz)
    std = [standardize(z[::step]) for z in (h, wiener_smooth(h, spec, n0_e))]
    cands = [x[keep] for x in std + [_gaussianise(x) for x in std]]
    n_bits = int(keep.sum()) * ac.bits
    idx = sample_positions(np.zeros(n_bits, np.uint8), s["rx_pd"])
    alice_sample = bits_in(s["tx_pd"].get("sample_bits"), "sample_bits", idx.size)
    fits = [(_fit_r(xe, ac.bits, idx, alice_sample), xe) for xe in cands]
    (r, _), xe = max(fits, key=lambda f: f[0][1])
    llr = bit_llrs(xe, r, ac.bits)
    signed = np.where(alice_sample == 1, -llr[idx], llr[idx])             # > 0: her posterior favours Alice's bit
    info = 1.0 - float(np.mean(np.logaddexp(0.0, -signed)) / math.log(2)) if idx.size else 0.0
    e = float(np.mean((llr[idx] < 0) != alice_sample)) if idx.size else 0.5
    rest = np.ones(n_bits, dtype=bool)
    rest[idx] = False
    syn, t, m, data_bits = parities(int(rest.sum()), s["tx_pd"])
    fixed, ok_eve = chase_correct(llr[rest], syn, t, m, p)
    ok_bob = bits_in(s["rx_pd2"].get("block_ok"), "block_ok", ok_eve.size).astype(bool)
    rec = fixed[np.repeat(ok_bob, data_bits)[: fixed.size]]
    key, nonce, tag_a = hashed_key(rec, s["tx_pd2"])
    hit = confirm(key, tag_a, nonce, b"alice")
    return e, idx.size, hit, int(rec.size), int((ok_eve & ok_bob).sum()), info, float(r), key if hit else None


def eve_attempt(session: dict[str, Any], cfg: PlkgConfig | None = None, *, decoder: str = "hard",
                chase_p: int = 6, eve_snr_db: float | None = None) -> EveResult:
    """Eve's best try at one session's key (see the module docstring) with ``decoder`` ("hard": her own
    quantisation and bchlib, trying her estimate and its negation; "chase": soft LLRs and Chase-II over
    her ``chase_p`` least reliable bits per block).  ``eve_snr_db``: her own probing SNR, which the soft
    Eve's smoother uses (default: the declared probing SNR)."""
    if decoder not in DECODERS:
        raise ValueError(f"eve decoder must be one of {DECODERS}, got {decoder!r}")
    cfg = cfg or PlkgConfig(n_probes=int_field(session["rx_hello"].get("probe", {}), "n", 256, 65536))
    length = int_field(session["tx_pd2"], "length", 8, 1 << 24)
    try:
        h = estimate(session["eve"], cfg.n_probes)
        if decoder == "chase":
            n0_e = 10.0 ** (-(cfg.snr_db if eve_snr_db is None else eve_snr_db) / 10.0)
            e, n, hit, n_rec, blocks, info, r, key = _soft_try(h, session, cfg, n0_e, chase_p)
            return EveResult(key_matched=hit, sample_disagreement=e, sample_bits=n, reconciled_bits=n_rec,
                             eve_blocks_ok=blocks, key_bits=length, decoder="chase", sample_information=info,
                             correlation_fit=r, key=key)
        tries = [_try(sign * h, session, cfg.ac) for sign in (1.0, -1.0)]
    except (HandshakeError, WireError) as exc:
        raise ValueError(f"eve: the tapped session does not parse ({exc})") from None
    best = min(tries, key=lambda t: (not t[2], t[0]))
    return EveResult(key_matched=any(t[2] for t in tries), sample_disagreement=best[0], sample_bits=best[1],
                     reconciled_bits=best[3], eve_blocks_ok=best[4], key_bits=length, key=best[5])
