"""Eve runs the key agreement herself: from her tap (the whole public discussion of each PLKG session)
and her own observation of Alice's probe block (a channel correlated with Bob's at her distance,
:mod:`semguard.runtime.probe_channel`), she does what Bob does (:mod:`semguard.runtime.plkg_steps`):
quantise her estimate with Alice's decorrelation step and both published guard-band masks, drop the
disclosed sample, BCH-correct her bits with Alice's parities, keep the blocks Bob reported decoded,
Toeplitz-hash with Alice's seed, and test the result against Alice's public confirmation tag.  She
tries her estimate and its negation (at 0.5 wavelengths ``J0(pi) < 0``: her channel is anti-correlated).

What she learns is measured from the tap alone: her bit disagreement with Alice on the disclosed sample
(Alice's bits there are public), and whether her key passes Alice's tag.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from semguard.keys.amplify import confirm
from semguard.runtime.frames import FrameError, FrameType, decode_frame
from semguard.runtime.handshake import HandshakeError
from semguard.runtime.plkg_steps import PlkgConfig, correct_blocks, estimate, hashed_key, receiver_bits, \
    sample_positions
from semguard.runtime.relay import EVE_PROBE
from semguard.runtime.wire import WireError, bits_in, int_field

__all__ = ["EveResult", "eve_attempt", "sessions_from_messages", "sessions_from_tap"]

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

    @property
    def bsc_bits(self) -> float:
        """``reconciled_bits * (1 - H2(e))``: what a channel with her disagreement ``e`` carries about Alice's bits."""
        e = min(max(self.sample_disagreement, 1e-12), 1 - 1e-12)
        return self.reconciled_bits * (1.0 + e * math.log2(e) + (1 - e) * math.log2(1 - e))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "bsc_bits": self.bsc_bits}


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


def _try(h: np.ndarray, s: dict[str, Any], ac: Any) -> tuple[float, int, bool, int, int]:
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
    return e, idx.size, confirm(key, tag_a, nonce, b"alice"), int(rec.size), int((ok_eve & ok_bob).sum())


def eve_attempt(session: dict[str, Any], cfg: PlkgConfig | None = None) -> EveResult:
    """Eve's best try at one session's key (see the module docstring)."""
    cfg = cfg or PlkgConfig(n_probes=int_field(session["rx_hello"].get("probe", {}), "n", 256, 65536))
    try:
        h = estimate(session["eve"], cfg.n_probes)
        tries = [_try(sign * h, session, cfg.ac) for sign in (1.0, -1.0)]
    except (HandshakeError, WireError) as exc:
        raise ValueError(f"eve: the tapped session does not parse ({exc})") from None
    best = min(tries, key=lambda t: (not t[2], t[0]))
    length = int_field(session["tx_pd2"], "length", 8, 1 << 24)
    return EveResult(key_matched=any(t[2] for t in tries), sample_disagreement=best[0], sample_bits=best[1],
                     reconciled_bits=best[3], eve_blocks_ok=best[4], key_bits=length)
