"""An explicit energy model, labelled as an estimate everywhere it is reported.

``energy = compute + transmit``:

* compute: the FLOPs of the encoder (and decoder), counted by ``torch.utils.flop_counter``
  (matrix multiplications and convolutions; element-wise work is not counted), times the energy
  per FLOP of a named device class;
* transmit: ``n_symbols x P_tx / R_s`` (channel uses times transmit power times symbol time).

The device classes' joules per FLOP are ratios of a datasheet power to a datasheet peak rate
(TDP / peak FP32 or FP16 throughput), so they are optimistic by the device's utilisation.  They
place a codec's compute against its radio energy within an order of magnitude; they are no
measurement of any device.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch.utils.flop_counter import FlopCounterMode

__all__ = ["DEVICE_CLASSES", "EnergyModel", "count_flops"]

#: joules per FLOP by device class (TDP / peak throughput, order of magnitude)
DEVICE_CLASSES: dict[str, float] = {
    "server-cpu": 100e-12,   # ~250 W for ~2.5 TFLOP/s FP32 (a many-core server CPU)
    "server-gpu": 20e-12,    # ~400 W for ~20 TFLOP/s FP32 (a data-centre GPU without tensor cores)
    "mobile-soc": 5e-12,     # ~5 W for ~1 TFLOP/s FP32 (a phone SoC's GPU)
    "edge-npu": 0.5e-12,     # ~2 W for ~4 TOP/s (a low-power inference accelerator)
}


@dataclass(frozen=True)
class EnergyModel:
    """Compute energy per FLOP of ``device_class`` plus transmit energy at ``tx_power_w`` over
    symbols of ``1 / symbol_rate_hz`` seconds."""

    device_class: str = "mobile-soc"
    tx_power_w: float = 0.2
    symbol_rate_hz: float = 1e6

    def __post_init__(self) -> None:
        if self.device_class not in DEVICE_CLASSES:
            raise ValueError(f"device_class must be one of {', '.join(DEVICE_CLASSES)}, got {self.device_class!r}")
        if self.tx_power_w <= 0 or self.symbol_rate_hz <= 0:
            raise ValueError("tx_power_w and symbol_rate_hz must be positive")

    def compute_j(self, flops: float) -> float:
        return float(flops) * DEVICE_CLASSES[self.device_class]

    def transmit_j(self, n_symbols: int) -> float:
        return float(n_symbols) * self.tx_power_w / self.symbol_rate_hz


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs that ``fn()`` runs, as ``torch.utils.flop_counter`` counts them."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())
