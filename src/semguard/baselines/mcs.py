"""Adaptive modulation and coding for the LDPC link: the MCS table, block error rates over AWGN
(from the shipped BLER table, or simulated and cached in memory), and the selection rules.

Selection rule (:func:`best_mcs`): the MCS carrying the most payload bits whose *image* error
rate is at most ``target_image_error`` (default 10%) with confidence ``confidence`` (default 95%).
An image is lost when any of its ``C`` codewords fails, so the per-codeword BLER allowed is
``p_max = 1 - (1 - target)^(1/C)`` (~0.1/C, e.g. 3.1e-3 for 34 codewords), and an MCS qualifies
when the one-sided Clopper-Pearson upper bound on its BLER is <= ``p_max``
(:mod:`~semguard.baselines.bler_table`): with no error seen that takes
``ln(1 - confidence) / ln(1 - p_max)`` codewords (~3/p_max at 95%, 966 for 34 codewords).
The counts come from the shipped table (``scripts/make_bler_table.py``) when it has the
codeword length, else from a simulation of that many codewords.  MCSs whose spectral efficiency
``m R`` is not below ``log2(1 + SNR)`` are skipped (no code is reliable above capacity).

The table: the 5G NR rates of TS 38.214 Table 5.1.3.1-1 below QPSK-1/3 (MCS 0-4: QPSK at
120/1024 ... 308/1024, down to 0.234 bit per channel use), then QPSK...256QAM at 1/3 ... 5/6.

On fading channels the transmitter knows only the average SNR and the fading statistics, and a
rule made for AWGN picks rates that deep fades break (its quality then *falls* as the average
SNR rises).  :func:`best_mcs_fading` instead picks the MCS with the highest *expected* quality:
``P(success) * quality + (1 - P(success)) * quality_lost``.  ``P(success)`` is a Monte-Carlo
link abstraction: fading draws of the channel itself, each codeword's effective SNR by mutual
information (``2^mean(log2(1 + |h|^2 SNR)) - 1`` over its symbols, the MIESM mapping of
system-level simulators), and success when every codeword's effective SNR reaches the MCS's
AWGN threshold (:func:`awgn_threshold_db`: the lowest grid SNR at which the MCS qualifies as above).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from fractions import Fraction

import torch

from semguard.baselines.bler_table import (CONFIDENCE, BlerEstimate, BlerTable, allowed_bler, codewords_needed,
                                           shipped_bler_table)
from semguard.baselines.phy import MAX_CW_BITS, MCS, CodewordLayout, codeword_layout, get_phy, post_equalization
from semguard.channels.awgn import AWGN
from semguard.channels.base import Channel

__all__ = ["MCS_TABLE", "LOW_RATE_5G", "BlerEstimate", "estimate_bler", "best_mcs", "clear_bler_cache",
           "awgn_threshold_db", "codeword_bler", "success_probability", "best_mcs_fading",
           "expected_quality_fading", "choose_fading"]

log = logging.getLogger(__name__)

# TS 38.214 Table 5.1.3.1-1, MCS indices 0-4 (QPSK, target code rate x 1024 = 120, 157, 193, 251, 308)
LOW_RATE_5G: tuple[MCS, ...] = tuple(MCS(2, Fraction(r, 1024)) for r in (120, 157, 193, 251, 308))
MCS_TABLE: tuple[MCS, ...] = LOW_RATE_5G + tuple(
    MCS(m, Fraction(r)) for m in (2, 4, 6, 8) for r in ("1/3", "1/2", "2/3", "3/4", "5/6")
)

_CHUNK_MIN, _CHUNK_MAX = 32, 256  # codewords per decoder call: doubling from 32, so failing points stop soon
TableArg = BlerTable | str | None  # a table, "shipped", or None (always simulate)


_BLER_CACHE: dict[tuple, BlerEstimate] = {}
_SUCCESS_CACHE: dict[tuple, float] = {}
_WARNED: set[tuple[float, int]] = set()


def clear_bler_cache() -> None:
    """Forget every cached BLER estimate and fading success probability."""
    _BLER_CACHE.clear()
    _SUCCESS_CACHE.clear()
    _MI_LAST.clear()


def estimate_bler(mcs: MCS, snr_db: float, n_cw: int, *, num_codewords: int = 128,
                  stop_after_errors: int | None = None, seed: int = 0,
                  num_iter: int = 20) -> BlerEstimate:
    """Codeword error rate of ``mcs`` with ``n_cw``-bit codewords over AWGN at Es/N0 ``snr_db``.

    Simulates up to ``num_codewords`` random codewords (in chunks of 32, 64, ... 256; stops early once
    ``stop_after_errors`` errors are seen) through the same encoder/QAM/semguard AWGN/demapper/
    decoder chain as the link.  Deterministic for a given ``seed``; results are cached in memory.
    """
    if num_codewords < 1:
        raise ValueError(f"num_codewords must be >= 1, got {num_codewords}")
    m = mcs.bits_per_symbol
    if n_cw % m:
        raise ValueError(f"n_cw={n_cw} must be a multiple of bits_per_symbol={m}")
    k = math.floor(mcs.code_rate * n_cw)
    key = (mcs, round(float(snr_db), 4), n_cw, num_codewords, stop_after_errors, seed, num_iter)
    if key in _BLER_CACHE:
        return _BLER_CACHE[key]
    phy = get_phy(m, n_cw, k, num_iter)
    channel = AWGN()
    gen = torch.Generator().manual_seed(seed)
    errors = trials = 0
    while trials < num_codewords:
        b = min(max(_CHUNK_MIN, trials), _CHUNK_MAX, num_codewords - trials)
        u = torch.randint(0, 2, (b, 1, k), generator=gen).to(torch.float32)
        x = phy.modulate(u, n_cw // m, generator=gen)
        state = channel.sample_state(b, n_cw // m, snr_db, generator=gen)
        y, no = post_equalization(channel, channel.apply(x, state, generator=gen), state)
        u_hat = phy.demodulate(y, no, 1)
        errors += int((u_hat != u).any(dim=-1).sum())
        trials += b
        if stop_after_errors is not None and errors >= stop_after_errors:
            break
    est = BlerEstimate(errors, trials)
    _BLER_CACHE[key] = est
    log.debug("BLER %s n_cw=%d at %.2f dB: %d/%d", mcs.name, n_cw, snr_db, errors, trials)
    return est


def _table(bler_table: TableArg, num_iter: int) -> BlerTable | None:
    if bler_table == "shipped":
        bler_table = shipped_bler_table()
    elif isinstance(bler_table, str):
        raise ValueError(f"bler_table must be a BlerTable, 'shipped' or None, got {bler_table!r}")
    if bler_table is not None and bler_table.num_iter != num_iter:
        return None  # measured with another decoder
    return bler_table


def codeword_bler(mcs: MCS, snr_db: float, n_cw: int, p_max: float, *, confidence: float = CONFIDENCE,
                  num_codewords: int | None = None, seed: int = 0, num_iter: int = 20,
                  bler_table: TableArg = "shipped") -> BlerEstimate:
    """Error counts of ``mcs`` at ``snr_db`` for the decision "BLER <= ``p_max``": the table's
    (SNR rounded down to its grid) when it has ``(mcs, n_cw)``, else a simulation of
    ``num_codewords`` codewords (None: :func:`codewords_needed` for ``p_max`` at ``confidence``)
    that stops at the first error when the count was sized that way."""
    table = _table(bler_table, num_iter)
    if table is not None:
        est = table.lookup(mcs.name, n_cw, snr_db)
        if est is not None:
            return est
    if num_codewords is None:
        count, stop = codewords_needed(p_max, confidence), 1
    else:
        count, stop = num_codewords, None
        # more errors than this and the bound cannot reach p_max: stop simulating
        while stop is None or (stop <= count and BlerEstimate(stop, count).upper(confidence) <= p_max):
            stop = 1 if stop is None else stop + 1
    return estimate_bler(mcs, snr_db, n_cw, num_codewords=count, stop_after_errors=stop, seed=seed,
                         num_iter=num_iter)


def best_mcs(snr_db: float, n_symbols: int, *, table: tuple[MCS, ...] = MCS_TABLE,
             max_cw_bits: int = MAX_CW_BITS, target_image_error: float = 0.1,
             confidence: float = CONFIDENCE, num_codewords: int | None = None, seed: int = 0,
             num_iter: int = 20, snr_grid_db: float | None = 0.25,
             bler_table: TableArg = "shipped") -> MCS:
    """The MCS with the most payload bits whose image error is <= the target (module docstring).

    ``snr_db`` is the SNR the transmitter believes (the average SNR on fading channels: no
    transmitter CSI).  It is first rounded DOWN to a multiple of ``snr_grid_db`` (None: used
    as is), a conservative quantisation that lets sweeps reuse the cached Monte Carlo.  If no
    MCS qualifies, the most robust one (fewest payload bits) is returned and a warning is
    logged: the link will then most likely fail.
    """
    if not 0 < target_image_error < 1:
        raise ValueError(f"target_image_error must be in (0, 1), got {target_image_error}")
    if snr_grid_db is not None:
        if snr_grid_db <= 0:
            raise ValueError(f"snr_grid_db must be > 0 or None, got {snr_grid_db}")
        snr_db = math.floor(snr_db / snr_grid_db + 1e-9) * snr_grid_db
    layouts = _layouts(table, n_symbols, max_cw_bits)
    layouts.sort(key=lambda lay: (-lay.payload_bits, lay.mcs.bits_per_symbol))
    cap = math.log2(1.0 + 10.0 ** (snr_db / 10.0))
    for lay in layouts:
        if lay.mcs.spectral_efficiency >= cap:
            continue
        p_max = allowed_bler(target_image_error, lay.num_cw)
        est = codeword_bler(lay.mcs, snr_db, lay.n_cw, p_max, confidence=confidence, num_codewords=num_codewords,
                            seed=seed, num_iter=num_iter, bler_table=bler_table)
        if est.upper(confidence) <= p_max:
            log.info("AMC at %.2f dB, n=%d: %s (%d/%d codeword errors, %d codewords/image)",
                     snr_db, n_symbols, lay.mcs.name, est.errors, est.trials, lay.num_cw)
            return lay.mcs
    fallback = layouts[-1].mcs
    if (snr_db, n_symbols) in _WARNED:  # said once per SNR and block length is enough
        return fallback
    _WARNED.add((snr_db, n_symbols))
    log.warning("AMC at %.2f dB, n=%d: no MCS meets image error %.2f; using the most robust, %s",
                snr_db, n_symbols, target_image_error, fallback.name)
    return fallback


def _layouts(table: tuple[MCS, ...], n_symbols: int, max_cw_bits: int) -> list[CodewordLayout]:
    layouts = []
    for mcs in table:
        try:
            layouts.append(codeword_layout(mcs, n_symbols, max_cw_bits))
        except ValueError:
            continue
    if not layouts:
        raise ValueError(f"n_symbols={n_symbols} is too small for any MCS in the table")
    return layouts


def awgn_threshold_db(mcs: MCS, n_cw: int, *, p_max: float = 0.1, confidence: float = CONFIDENCE,
                      grid_db: float = 0.25, num_codewords: int | None = None, seed: int = 0, num_iter: int = 20,
                      max_margin_db: float = 10.0, bler_table: TableArg = "shipped") -> float:
    """The lowest SNR (dB, on a ``grid_db`` grid at or above the Shannon limit of ``m R``) at which
    the Clopper-Pearson upper bound on the BLER of ``n_cw``-bit codewords of ``mcs`` over AWGN is
    <= ``p_max`` (:func:`codeword_bler`: the table's threshold when it has the row); ``inf`` when
    no point within ``max_margin_db`` of the limit qualifies."""
    if grid_db <= 0:
        raise ValueError(f"grid_db must be > 0, got {grid_db}")
    table = _table(bler_table, num_iter)
    if table is not None:
        thr = table.threshold_db(mcs.name, n_cw, p_max, confidence)
        if thr is not None:
            return thr
    limit = 10.0 * math.log10(2.0 ** mcs.spectral_efficiency - 1.0)
    snr = math.ceil(limit / grid_db - 1e-9) * grid_db
    while snr <= limit + max_margin_db:
        est = codeword_bler(mcs, snr, n_cw, p_max, confidence=confidence, num_codewords=num_codewords, seed=seed,
                            num_iter=num_iter, bler_table=None)
        if est.upper(confidence) <= p_max:
            return snr
        snr += grid_db
    return math.inf


_MI_LAST: dict[tuple, torch.Tensor] = {}  # one entry: the fading draws every MCS of a call shares


def _csi_error_var(channel: Channel, n0: float) -> float:
    """Variance of the receiver's channel-estimation error on ``channel`` at noise power ``n0``."""
    if channel.csi_error_var is not None:
        return float(channel.csi_error_var)
    return n0 / channel.pilots if channel.csi == "estimated" else 0.0


def _symbol_mi(channel: Channel, snr_db: float, n_symbols: int, draws: int, seed: int) -> torch.Tensor:
    """``log2(1 + SINR)`` per symbol, ``[draws, n_symbols]`` float64, for ``draws`` fading draws of
    ``channel``; the last result is kept, so the MCSs compared at one SNR share one draw.

    ``SINR = |h|^2 / (N0 + s2)``: an estimation error of variance ``s2`` leaves ``(h - h_est) x``
    (power ``s2`` for unit-power ``x``) in the equalised symbols, so with ``pilots`` least-squares
    pilots (``s2 = N0 / pilots``) a fade costs ``10 log10(1 + 1/pilots)`` dB more than with perfect CSI.
    """
    key = (repr(channel), round(float(snr_db), 4), n_symbols, draws, seed)
    if key not in _MI_LAST:
        state = channel.sample_state(draws, n_symbols, snr_db, generator=torch.Generator().manual_seed(seed))
        n0 = 10.0 ** (-snr_db / 10.0)
        sinr = state.h.abs().to(torch.float64).square() / (n0 + _csi_error_var(channel, n0))
        _MI_LAST.clear()
        _MI_LAST[key] = torch.log2(1.0 + sinr)
    return _MI_LAST[key]


def success_probability(channel: Channel, snr_db: float, layout: CodewordLayout, threshold_db: float, *,
                        draws: int = 256, seed: int = 0) -> float:
    """P(every codeword of ``layout`` decodes) at average ``snr_db``, by MIESM over ``draws`` fading
    draws of ``channel`` (the per-symbol SINR of :func:`_symbol_mi`, which counts the channel's
    CSI error; codewords are contiguous).
    Cached in memory per (channel, SNR, layout, threshold, draws, seed)."""
    if draws < 1:
        raise ValueError(f"draws must be >= 1, got {draws}")
    if not math.isfinite(threshold_db):
        return 0.0
    key = (repr(channel), round(float(snr_db), 4), layout, round(float(threshold_db), 4), draws, seed)
    if key not in _SUCCESS_CACHE:
        per_cw = layout.n_cw // layout.mcs.bits_per_symbol
        mi = _symbol_mi(channel, snr_db, layout.n_symbols, draws, seed)[:, : layout.num_cw * per_cw]
        mi = mi.reshape(draws, layout.num_cw, per_cw).mean(-1)
        ok = (mi >= math.log2(1.0 + 10.0 ** (threshold_db / 10.0))).all(dim=-1)
        _SUCCESS_CACHE[key] = float(ok.double().mean())
    return _SUCCESS_CACHE[key]


def expected_quality_fading(channel: Channel, snr_db: float, n_symbols: int,
                            quality: Callable[[CodewordLayout], float], quality_lost: float, *,
                            table: tuple[MCS, ...] = MCS_TABLE, max_cw_bits: int = MAX_CW_BITS,
                            target_image_error: float = 0.1, confidence: float = CONFIDENCE,
                            num_codewords: int | None = None, seed: int = 0, num_iter: int = 20,
                            draws: int = 256, bler_table: TableArg = "shipped"
                            ) -> list[tuple[CodewordLayout, float, float]]:
    """Each MCS of ``table`` that fits ``n_symbols`` with its success probability at average
    ``snr_db`` on a fading ``channel`` and its expected quality ``p quality(layout) + (1 - p)
    quality_lost`` (``quality(layout)``: what the receiver gets when the block decodes, e.g. the PSNR
    of the image compressed to ``layout.payload_bits``; ``quality_lost``: when a codeword fails).
    Each MCS's threshold is :func:`awgn_threshold_db` at the per-codeword BLER the image-error
    target allows.  Rows ``(layout, p, expected)``, in table order."""
    rows = []
    for lay in _layouts(table, n_symbols, max_cw_bits):
        thr = awgn_threshold_db(lay.mcs, lay.n_cw, p_max=allowed_bler(target_image_error, lay.num_cw),
                                confidence=confidence, num_codewords=num_codewords, seed=seed, num_iter=num_iter,
                                bler_table=bler_table)
        p = success_probability(channel, snr_db, lay, thr, draws=draws, seed=seed)
        value = p * quality(lay) + (1.0 - p) * quality_lost if p > 0.0 else quality_lost
        log.debug("fading AMC at %.2f dB: %s threshold %.1f dB, P(success) %.3f, expected %.3f",
                  snr_db, lay.mcs.name, thr, p, value)
        rows.append((lay, p, value))
    return rows


def best_mcs_fading(channel: Channel, snr_db: float, n_symbols: int, quality: Callable[[CodewordLayout], float],
                    quality_lost: float, *, table: tuple[MCS, ...] = MCS_TABLE, max_cw_bits: int = MAX_CW_BITS,
                    target_image_error: float = 0.1, confidence: float = CONFIDENCE,
                    num_codewords: int | None = None, seed: int = 0, num_iter: int = 20, draws: int = 256,
                    bler_table: TableArg = "shipped") -> MCS:
    """The MCS maximising expected quality at average ``snr_db`` on a fading ``channel``
    (:func:`expected_quality_fading`, same arguments).  MCSs that never succeed are skipped; if
    none ever does, the most robust one is returned."""
    rows = expected_quality_fading(channel, snr_db, n_symbols, quality, quality_lost, table=table,
                                   max_cw_bits=max_cw_bits, target_image_error=target_image_error,
                                   confidence=confidence, num_codewords=num_codewords, seed=seed,
                                   num_iter=num_iter, draws=draws, bler_table=bler_table)
    return choose_fading(rows)[0]


def choose_fading(rows: list[tuple[CodewordLayout, float, float]]) -> tuple[MCS, float]:
    """From :func:`expected_quality_fading`'s rows: the MCS with the best expected quality among
    those that ever succeed (else the most robust, the smallest payload), and that expectation."""
    live = [r for r in rows if r[1] > 0.0]
    lay, _, value = max(live, key=lambda r: r[2]) if live else min(rows, key=lambda r: r[0].payload_bits)
    log.debug("fading AMC: %s (expected quality %.3f)", lay.mcs.name, value)
    return lay.mcs, value
