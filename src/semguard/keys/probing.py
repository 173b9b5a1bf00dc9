"""Reciprocal channel probing between Alice and Bob, overheard by Eve.

Each probe ``k`` at time ``t_k = k / probe_rate``: Alice measures the reciprocal channel
``h(t_k)`` and Bob measures ``h(t_k + delay)`` (time-division probing is not simultaneous), each
with independent ``CN(0, N0)`` noise at ``snr_db``.  Eve, ``d`` wavelengths from Bob, measures a
channel with correlation ``rho = J0(2 pi d / lambda)`` to Bob's.

Modes (``ProbeConfig.mode``):

* ``"mobile"``: Jakes fading with Doppler ``doppler_hz``.
* ``"static"``: no motion; ``h`` is constant, so the measurements differ only by noise and carry
  no common randomness.
* ``"induced"``: static channel plus induced randomness (Aldaghri & Mahdavifar, "Physical layer
  secret key generation in static environments", IEEE TIFS 2020): Alice sends a random
  unit-modulus ``x_A``, Bob a random ``x_B``; Alice receives ``h x_B + n_A`` and multiplies by
  her ``x_A``, Bob does the converse, so both observe ``h x_A x_B`` + noise.  Eve receives
  ``g_A x_A + n`` and ``g_B x_B + n`` and forms the product (her best passive estimate, up to the
  unknown constant ``h / (g_A g_B)``).
* ``"ris"``: static direct path plus a reconfigurable intelligent surface of ``ris_elements``
  elements whose phases are redrawn at random for every probe (trusted RIS controller):
  ``h_k = sqrt(p_d) h_d + sqrt((1 - p_d)/N) sum_i c_i exp(j theta_ik)``.  Eve's cascaded
  coefficients are correlated with Bob's by ``rho``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from semguard.channels.functional import snr_db_to_n0
from semguard.channels.jakes import complex_gaussian, correlated_process, jakes_process, spatial_correlation

__all__ = ["ProbeConfig", "ProbeTrace", "simulate_probes", "MODES"]

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


def _ris_channels(cfg: ProbeConfig, rho: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n, t = cfg.ris_elements, cfg.n_probes
    h_d = complex_gaussian((), rng)
    h_de = correlated_process(np.asarray(h_d), np.asarray(complex_gaussian((), rng)), rho)
    c = complex_gaussian((n,), rng)
    c_e = correlated_process(c, complex_gaussian((n,), rng), rho)
    phases = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, size=(t, n)))   # one configuration per probe
    scale = np.sqrt((1.0 - cfg.ris_direct_power) / n)
    pd = np.sqrt(cfg.ris_direct_power)
    return pd * h_d + scale * phases @ c, pd * h_de + scale * phases @ c_e


def simulate_probes(cfg: ProbeConfig, rng: np.random.Generator) -> ProbeTrace:
    """Draw one probing session for ``cfg`` using ``rng`` (see the module docstring)."""
    n0 = float(snr_db_to_n0(cfg.snr_db))
    n0_e = float(snr_db_to_n0(cfg.snr_db if cfg.eve_snr_db is None else cfg.eve_snr_db))
    rho = float(spatial_correlation(cfg.eve_distance))
    shape = (cfg.n_probes,)

    def noise(var: float) -> np.ndarray:
        return complex_gaussian(shape, rng, var)

    if cfg.mode == "ris":
        h, h_e = _ris_channels(cfg, rho, rng)
        return ProbeTrace(alice=h + noise(n0), bob=h + noise(n0), eve=h_e + noise(n0_e), rho=rho, config=cfg)

    fd = cfg.doppler_hz if cfg.mode == "mobile" else 0.0
    # Alice's and Bob's measurement times sample one realisation; Eve's mixes in an independent one
    both = jakes_process(cfg.n_probes, 1.0 / cfg.probe_rate_hz, fd, rng, offsets_s=(0.0, cfg.delay_s),
                         n_processes=2)
    h_a, h_b = both[0, 0], both[0, 1]
    h_e = correlated_process(h_b, both[1, 1], rho)
    if cfg.mode in ("mobile", "static"):
        return ProbeTrace(alice=h_a + noise(n0), bob=h_b + noise(n0), eve=h_e + noise(n0_e), rho=rho, config=cfg)

    # induced randomness: unit-modulus secrets at both ends, static channel
    x_a = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, size=shape))
    x_b = np.exp(1j * rng.uniform(0.0, 2.0 * np.pi, size=shape))
    alice = x_a * (h_a * x_b + noise(n0))
    bob = x_b * (h_b * x_a + noise(n0))
    g_b = complex_gaussian((), rng)                                      # Bob -> Eve, static
    eve = (h_e * x_a + noise(n0_e)) * (g_b * x_b + noise(n0_e))          # Alice->Eve is h_e
    return ProbeTrace(alice=alice, bob=bob, eve=eve, rho=rho, config=cfg)
