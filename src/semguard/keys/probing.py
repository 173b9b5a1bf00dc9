"""Reciprocal channel probing between Alice and Bob, overheard by Eve, through the channels of
:mod:`semguard.channels` (so the keys use their conventions: ``E|h|^2 = 1``, unit-power probes,
``CN(0, N0)`` noise with ``N0 = snr_db_to_n0(snr_db)`` per channel use).

Each probe ``k`` at time ``t_k = k / probe_rate``: Alice measures the reciprocal channel
``h(t_k)`` and Bob measures ``h(t_k + delay)`` (time-division probing is not simultaneous):
:meth:`Jakes.sample_states <semguard.channels.jakes.Jakes.sample_states>` gives both states of one
realisation, and each end's measurement is :meth:`Channel.apply
<semguard.channels.base.Channel.apply>` of a unit probe symbol at ``snr_db``.  Eve, ``d``
wavelengths from Bob, has her own channel with correlation ``rho = J0(2 pi d / lambda)`` to Bob's
(:meth:`Jakes.eavesdropper_state <semguard.channels.jakes.Jakes.eavesdropper_state>`), at her SNR.

Modes (``ProbeConfig.mode``):

* ``"mobile"``: the ``jakes`` channel with Doppler ``f_d T = doppler_hz / probe_rate_hz``.
* ``"static"``: no motion (``jakes`` with zero Doppler); ``h`` is constant, so the measurements
  differ only by noise and carry no common randomness.
* ``"induced"``: static channel plus induced randomness (Aldaghri & Mahdavifar, "Physical layer
  secret key generation in static environments", IEEE TIFS 2020): Alice sends a random
  unit-modulus ``x_A``, Bob a random ``x_B``; Alice receives ``h x_B + n_A`` and multiplies by
  her ``x_A``, Bob does the converse, so both observe ``h x_A x_B`` + noise.  Eve receives
  ``g_A x_A + n`` and ``g_B x_B + n`` and forms the product (her best passive estimate, up to the
  unknown constant ``h / (g_A g_B)``); ``g_A`` is correlated with ``h`` by ``rho``, ``g_B`` independent.
* ``"ris"``: the ``ris`` channel (:mod:`semguard.channels.ris`): static direct path plus a
  reconfigurable intelligent surface of ``ris_elements`` elements whose phases are redrawn at
  random for every probe (trusted RIS controller); Eve sees the same configurations, her direct
  and cascaded coefficients correlated with Bob's by ``rho``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from semguard.channels.base import Channel, ChannelState
from semguard.channels.jakes import Jakes, spatial_correlation
from semguard.channels.ris import RIS

__all__ = ["ProbeConfig", "ProbeTrace", "simulate_probes", "probe_generator", "MODES"]

MODES = ("mobile", "static", "induced", "ris")


@dataclass(frozen=True)
class ProbeConfig:
    """Channel-probing scenario.

    Attributes:
        n_probes: probes exchanged (one complex measurement per end per probe).
        snr_db: probing SNR ``Es/N0`` in dB at Alice and Bob.
        eve_snr_db: Eve's SNR (None: same as ``snr_db``).
        probe_rate_hz: probes per second.
        doppler_hz: maximum Doppler shift of the mobile channel.
        delay_s: time between Alice's and Bob's measurement of the same probe.
        eve_distance: Eve's distance from Bob in wavelengths.
        mode: one of ``MODES``.
        ris_elements: RIS elements (``mode="ris"``).
        ris_direct_power: share ``p_d`` of the mean channel power on the direct path (``"ris"``).
    """

    n_probes: int = 2048
    snr_db: float = 20.0
    eve_snr_db: float | None = None
    probe_rate_hz: float = 250.0
    doppler_hz: float = 100.0
    delay_s: float = 1e-4
    eve_distance: float = 1.0
    mode: str = "mobile"
    ris_elements: int = 64
    ris_direct_power: float = 0.2

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"ProbeConfig.mode must be one of {MODES}, got {self.mode!r}")
        if self.n_probes < 16:
            raise ValueError(f"ProbeConfig.n_probes must be >= 16, got {self.n_probes}")
        if self.probe_rate_hz <= 0 or self.doppler_hz < 0 or self.delay_s < 0:
            raise ValueError("ProbeConfig: probe_rate_hz must be > 0, doppler_hz and delay_s >= 0")
        if self.eve_distance < 0:
            raise ValueError(f"ProbeConfig.eve_distance must be >= 0 wavelengths, got {self.eve_distance}")
        if self.ris_elements < 1 or not 0.0 <= self.ris_direct_power <= 1.0:
            raise ValueError("ProbeConfig: ris_elements >= 1 and ris_direct_power in [0, 1] expected")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ProbeTrace:
    """Measurements of one probing session, each ``[n_probes]`` complex128.

    ``alice`` and ``bob`` are what each end observes (after the induced-randomness products in
    that mode); ``eve`` is Eve's best passive estimate of the same quantity; ``rho`` is the
    spatial correlation used for Eve.
    """

    alice: np.ndarray
    bob: np.ndarray
    eve: np.ndarray
    rho: float
    config: ProbeConfig


def probe_generator(rng: np.random.Generator | torch.Generator) -> torch.Generator:
    """The torch generator the channels draw a session with: ``rng`` itself, or one seeded from a
    NumPy generator (which advances by one draw)."""
    if isinstance(rng, torch.Generator):
        return rng
    return torch.Generator().manual_seed(int(rng.integers(0, 2 ** 63 - 1)))


def _receive(channel: Channel, x: torch.Tensor, state: ChannelState, g: torch.Generator) -> torch.Tensor:
    return channel.apply(x, state, generator=g)[0]


def _unit_phases(n: int, g: torch.Generator) -> torch.Tensor:
    theta = torch.rand(1, n, generator=g, dtype=torch.float64) * (2.0 * np.pi)
    return torch.polar(torch.ones_like(theta), theta).to(torch.complex64)


def simulate_probes(cfg: ProbeConfig, rng: np.random.Generator | torch.Generator) -> ProbeTrace:
    """Probe the channel of ``cfg`` once (see the module docstring); ``rng`` seeds the channels'
    torch generator (:func:`probe_generator`)."""
    g = probe_generator(rng)
    n = cfg.n_probes
    snr_e = cfg.snr_db if cfg.eve_snr_db is None else cfg.eve_snr_db
    rho = float(spatial_correlation(cfg.eve_distance))
    probe = torch.ones(1, n, dtype=torch.complex64)                       # unit-power probe symbols
    if cfg.mode == "ris":
        ris = RIS(elements=cfg.ris_elements, direct_power=cfg.ris_direct_power)
        s_ab, s_e = ris.sample_with_eavesdropper(1, n, cfg.snr_db, snr_e, rho=rho, generator=g)
        alice, bob, eve = (_receive(ris, probe, s, g) for s in (s_ab, s_ab, s_e))   # simultaneous, reciprocal
        return _trace(alice, bob, eve, rho, cfg)
    fd = cfg.doppler_hz if cfg.mode == "mobile" else 0.0
    ch = Jakes(doppler=fd / cfg.probe_rate_hz)                            # one coefficient per probe
    s_a, s_b = ch.sample_states(1, n, cfg.snr_db, offsets=(0.0, cfg.delay_s * cfg.probe_rate_hz), generator=g)
    s_e = ch.eavesdropper_state(s_b, snr_e, distance=cfg.eve_distance, generator=g)   # Eve's own channel
    if cfg.mode in ("mobile", "static"):
        alice, bob, eve = (_receive(ch, probe, s, g) for s in (s_a, s_b, s_e))
        return _trace(alice, bob, eve, rho, cfg)
    # induced randomness: unit-modulus secrets at both ends, static channel
    x_a, x_b = _unit_phases(n, g), _unit_phases(n, g)
    alice = x_a[0] * _receive(ch, x_b, s_a, g)
    bob = x_b[0] * _receive(ch, x_a, s_b, g)
    s_g = ch.sample_state(1, n, snr_e, generator=g)                      # Bob -> Eve, static, independent
    eve = _receive(ch, x_a, s_e, g) * _receive(ch, x_b, s_g, g)         # Alice -> Eve is s_e
    return _trace(alice, bob, eve, rho, cfg)


def _trace(alice: torch.Tensor, bob: torch.Tensor, eve: torch.Tensor, rho: float, cfg: ProbeConfig) -> ProbeTrace:
    a, b, e = (z.to(torch.complex128).numpy() for z in (alice, bob, eve))
    return ProbeTrace(alice=a, bob=b, eve=e, rho=rho, config=cfg)
