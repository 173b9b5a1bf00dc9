"""Commit-reveal for one round of the agents' messages: no agent sees another's block before it commits.

A rushing Byzantine agent waits for the honest agents' messages of the round and replies with the worst
block against them.  Under commit-reveal every agent first sends a commitment
``SHA-256(DOMAIN || nonce || message)`` over the reliable control link (32 bytes; a fresh nonce hides the
message), the node closes the commit phase by broadcasting the digest of every commitment it holds
(32 bytes), and only then does each agent reveal: its block over its own (analog) channel and its
opening ``(message, nonce)`` over the control link.  The node drops a reveal whose opening does not open
its commitment (:func:`open_round`), and one whose received block is not the opened block within the
channel's noise (:func:`air_pvalues`: the zero-forced residual against the opened block, a Gamma(n, 1)
statistic for a block of ``n`` complex symbols).  A failed opening is proof of misbehaviour (an honest
agent always opens its own commitment); a failed air check is statistical.  Binding: SHA-256's collision
resistance; hiding: the nonce of :data:`NONCE_BYTES` random bytes.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "DIGEST_BYTES",
    "DOMAIN",
    "NONCE_BYTES",
    "Opening",
    "RoundCost",
    "air_pvalues",
    "air_threshold",
    "block_bytes",
    "bytes_block",
    "close_digest",
    "commit",
    "fresh_nonce",
    "open_round",
    "round_cost",
    "unseen_change",
    "verify",
]

DIGEST_BYTES = 32
NONCE_BYTES = 32
MIN_NONCE_BYTES = 16
DOMAIN = b"semguard/commit-reveal/v1"


def block_bytes(x: Tensor) -> bytes:
    """The exact bytes of a transmitted block: complex64, C order, little-endian (8 bytes per symbol)."""
    if not torch.is_complex(x):
        raise ValueError(f"a block to commit must be complex symbols, got {x.dtype}")
    return x.detach().to(torch.complex64).cpu().contiguous().numpy().astype("<c8").tobytes()


def bytes_block(message: bytes, shape: Sequence[int]) -> Tensor:
    """Inverse of :func:`block_bytes`: ``message`` -> complex64 tensor of ``shape``."""
    want = 8 * int(np.prod(shape))
    if len(message) != want:
        raise ValueError(f"an opened block of shape {tuple(shape)} has {want} bytes, got {len(message)}")
    return torch.from_numpy(np.frombuffer(message, dtype="<c8").astype(np.complex64).reshape(tuple(shape)).copy())


def fresh_nonce(size: int = NONCE_BYTES) -> bytes:
    """``size`` bytes from the operating system's CSPRNG."""
    if size < MIN_NONCE_BYTES:
        raise ValueError(f"a nonce needs at least {MIN_NONCE_BYTES} bytes to hide the message, got {size}")
    return os.urandom(size)


def _check_nonce(nonce: bytes) -> None:
    if not isinstance(nonce, bytes | bytearray) or len(nonce) < MIN_NONCE_BYTES:
        size = len(nonce) if isinstance(nonce, bytes | bytearray) else type(nonce).__name__
        raise ValueError(f"a nonce must be at least {MIN_NONCE_BYTES} bytes, got {size}")


def commit(message: bytes, nonce: bytes) -> bytes:
    """The 32-byte commitment ``SHA-256(DOMAIN || nonce || message)``."""
    _check_nonce(nonce)
    if not isinstance(message, bytes | bytearray):
        raise ValueError(f"a message to commit must be bytes, got {type(message).__name__}")
    return hashlib.sha256(DOMAIN + bytes(nonce) + bytes(message)).digest()


def verify(commitment: bytes, message: bytes, nonce: bytes) -> bool:
    """Whether ``(message, nonce)`` opens ``commitment`` (constant-time comparison)."""
    if len(commitment) != DIGEST_BYTES:
        raise ValueError(f"a commitment is {DIGEST_BYTES} bytes, got {len(commitment)}")
    return hmac.compare_digest(commit(message, nonce), bytes(commitment))


@dataclass(frozen=True)
class Opening:
    """What an agent reveals over the control link: its message bytes and the nonce it committed with."""

    message: bytes
    nonce: bytes


def close_digest(commitments: Sequence[bytes | None]) -> bytes:
    """The node's 32-byte broadcast closing the commit phase: SHA-256 over the commitments in agent order
    (a missing one as 32 zero bytes), so every agent can check the set is fixed before it reveals."""
    h = hashlib.sha256(DOMAIN + b"/close")
    for c in commitments:
        if c is not None and len(c) != DIGEST_BYTES:
            raise ValueError(f"a commitment is {DIGEST_BYTES} bytes, got {len(c)}")
        h.update(bytes(DIGEST_BYTES) if c is None else bytes(c))
    return h.digest()


def open_round(commitments: Sequence[bytes | None], openings: Sequence[Opening | None]) -> Tensor:
    """Bool ``[N]``: which agents' openings open their commitments (no commitment, no opening, or a
    malformed nonce: ``False``)."""
    if len(commitments) != len(openings):
        raise ValueError(f"{len(commitments)} commitments but {len(openings)} openings")
    ok = []
    for c, o in zip(commitments, openings):
        good = False
        if c is not None and o is not None and len(c) == DIGEST_BYTES and len(o.nonce) >= MIN_NONCE_BYTES:
            good = verify(c, o.message, o.nonce)
        ok.append(good)
    return torch.tensor(ok, dtype=torch.bool)


def air_pvalues(y_zf: Tensor, noise_var: Tensor, opened: Tensor) -> Tensor:
    """P-value per block ``[B]`` that the received block is the opened one.

    ``y_zf [B, n]`` the zero-forced received symbols (``x + w / h``), ``noise_var [B, n]`` their noise
    power ``N0 / |h|^2``, ``opened [B, n]`` the opened block.  Under the hypothesis ``x = opened`` each
    ``|y_zf - opened|^2 / noise_var`` is Exp(1), so their sum is Gamma(n, 1): the p-value is its upper tail.
    A block in a deep fade has a large ``noise_var`` and a small statistic whatever was sent.
    """
    if y_zf.shape != opened.shape or noise_var.shape != y_zf.shape:
        raise ValueError(
            f"received {tuple(y_zf.shape)}, noise {tuple(noise_var.shape)} and opened "
            f"{tuple(opened.shape)} blocks differ in shape"
        )
    stat = ((y_zf - opened).abs().square() / noise_var.clamp_min(1e-12)).sum(-1).double()
    n = torch.full_like(stat, float(y_zf.shape[-1]))
    return torch.special.gammaincc(n, stat)


def air_threshold(symbols: int, alpha: float) -> float:
    """The Gamma(``symbols``, 1) statistic of :func:`air_pvalues` over which a block fails at level ``alpha``."""
    from scipy.stats import gamma

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    return float(gamma.isf(alpha, symbols))


def unseen_change(change: Tensor, h: Tensor, n0: Tensor, threshold: float, *, margin: float = 3.0) -> Tensor:
    """Bool ``[B]``: the blocks where an attacker that knows its own channel ``h [B, n]`` and noise power
    ``n0 [B, 1]`` expects a change ``change [B, n]`` (sent minus opened) to pass the air check.

    The statistic is then noncentral: mean ``n + lam``, variance ``n + 2 lam`` with
    ``lam = sum |change|^2 |h|^2 / n0``; the change is kept where the mean plus ``margin`` standard
    deviations stays under ``threshold`` (:func:`air_threshold`).  Deep fades (small ``|h|``) are where.
    """
    n = change.shape[-1]
    lam = (change.abs().square() * h.abs().square() / n0).sum(-1)
    return n + lam + margin * (n + 2 * lam).sqrt() < threshold


@dataclass(frozen=True)
class RoundCost:
    """Control-link bytes and round trips of one round for ``agents`` agents."""

    up_bytes: int  # every agent's commitment and opening, summed
    broadcast_bytes: int  # the node's close digest (one broadcast)
    round_trips: int  # commit -> close -> reveal: 2 (the plain protocol: 1, the reveal alone)
    extra_round_trips: int
    message_bytes: int  # one agent's opened block


def round_cost(agents: int, batch: int, symbols: int, *, nonce_bytes: int = NONCE_BYTES) -> RoundCost:
    """Hand-countable cost: per agent ``32`` (commitment) + ``nonce_bytes`` + ``8 * batch * symbols``
    (its complex64 block) up; one 32-byte broadcast; one round trip more than the plain protocol."""
    if agents < 1 or batch < 1 or symbols < 1:
        raise ValueError(f"agents, batch and symbols must be >= 1, got {agents}, {batch}, {symbols}")
    if nonce_bytes < MIN_NONCE_BYTES:
        raise ValueError(f"a nonce needs at least {MIN_NONCE_BYTES} bytes, got {nonce_bytes}")
    msg = 8 * batch * symbols
    return RoundCost(
        up_bytes=agents * (DIGEST_BYTES + nonce_bytes + msg),
        broadcast_bytes=DIGEST_BYTES,
        round_trips=2,
        extra_round_trips=1,
        message_bytes=msg,
    )
