"""What the emulator does to the IQ blocks it relays: a registered channel and, on top of it, a
registered blind attack radiated at the receiver within a PSR budget.

For a block ``x`` (``[n]`` complex64) with channel state ``(h, w)``::

    y = h x + g delta + w,   P(g delta) = 10^(psr_db / 10) P(h x)   (per block, exactly)

then the one-tap equaliser with the channel's CSI, as :meth:`Channel.forward` does.  ``delta`` is the
attack's own :meth:`~semguard.attacks.base.Attack.perturb` on the ``channel`` surface (Gaussian
jamming: ``CN(0, 1)`` from the attacker's generator; universal: the block learned offline, loaded
from a safetensors file with ``delta`` as ``[n, 2]`` float32 re/im), ``g`` its own Rayleigh channel
when the link fades (the attack's ``attacker_fading``), the projection the attack base uses
(``channels.functional.project_psr``, ``exact``).  Only attacks that need no model of the codec
(``knowledge == "none"``) can run here: the relay sees symbols, never sources.  The PSR actually
spent is measured per block at the receiver's input (``psr_db(g delta, h x)``) and averaged in the
emulator's counters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["IqPath", "BLIND_ATTACKS", "load_delta", "save_delta"]

#: attacks of the ``attack`` registry that the relay can radiate (no model, no source)
BLIND_ATTACKS = ("gaussian", "universal")


def save_delta(path: str | Path, delta: Any) -> None:
    """Write a universal block (complex ``[n]`` tensor or array) for ``--attack-file``."""
    import torch
    from safetensors.torch import save_file
    d = torch.as_tensor(np.asarray(delta, dtype=np.complex64))
    save_file({"delta": torch.view_as_real(d).contiguous()}, str(path))


def load_delta(path: str | Path) -> Any:
    import torch
    from safetensors.torch import load_file
    try:
        t = load_file(str(path))["delta"]
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"--attack-file: {path} is not a safetensors file with a 'delta' tensor ({exc})") from None
    if t.dim() != 2 or t.shape[1] != 2 or not torch.isfinite(t).all():
        raise ValueError(f"--attack-file: delta must be finite float [n, 2] (re, im), got {tuple(t.shape)}")
    return torch.view_as_complex(t.float().contiguous())


class _IqLink:
    """The part of a Link an attack's ``perturb`` asks for: the block length and the channel."""

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def n_symbols(self, shape: tuple[int, ...]) -> int:
        return int(shape[-1])


class IqPath:
    def __init__(self, channel: str, snr_db: float, seed: int, *, attack: str | None = None,
                 psr_db: float | None = None, attack_file: str | None = None) -> None:
        import torch

        from semguard.attacks.base import attacker_generator
        from semguard.registry import build, get
        self.torch = torch
        self.channel = build("channel", channel)
        self.snr_db = float(snr_db)
        self.gen = torch.Generator().manual_seed(seed)
        self.attack = None
        self.psr_measured: list[float] = []
        if attack is not None:
            if attack not in BLIND_ATTACKS or getattr(get("attack", attack), "knowledge", None) != "none":
                raise ValueError(f"--attack: the emulator radiates blind attacks only ({', '.join(BLIND_ATTACKS)}), "
                                 f"got {attack!r}")
            if psr_db is None or not np.isfinite(psr_db):
                raise ValueError("--psr-db: an attack needs a finite PSR budget in dB")
            kw: dict[str, Any] = {"surface": "channel", "psr_db": float(psr_db), "seed": seed}
            if attack == "universal":
                if attack_file is None:
                    raise ValueError("--attack-file: the universal attack needs its learned block (safetensors)")
                kw["delta"] = load_delta(attack_file)
            self.attack = build("attack", attack, **kw)
            self.attack_rng = attacker_generator(seed)

    def _delta(self, x: Any, state: Any) -> Any:
        from semguard.attacks.base import AttackContext
        from semguard.channels import functional as F
        torch = self.torch
        ctx = AttackContext(_IqLink(self.channel), x.real, torch.tensor([self.snr_db]), "", None, None,
                            self.gen.get_state(), self.attack_rng)
        d = self.attack.perturb(ctx)
        d = d.expand_as(x) if d.dim() == 1 else d
        g = self.attack.draw_g(ctx)
        if g is not None:
            d = g * d
        signal = state.h * x
        d = F.project_psr(d, signal, self.attack.budget, exact=self.attack.exact)
        self.psr_measured.append(float(F.psr_db(d, signal)[0]))
        return d

    def __call__(self, iq: np.ndarray) -> np.ndarray:
        """The equalised block the receiver gets for transmitted ``iq [n]``."""
        torch = self.torch
        x = torch.from_numpy(np.ascontiguousarray(iq, dtype=np.complex64)).reshape(1, -1)
        with torch.no_grad():
            state = self.channel.sample_state(1, x.shape[1], self.snr_db, generator=self.gen)
            d = self._delta(x, state) if self.attack is not None else None
            y = self.channel.equalize(self.channel.apply(x, state, generator=self.gen, interference=d), state)
        return y.numpy().reshape(-1).astype(np.complex64)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": type(self.channel).__name__, "snr_db": self.snr_db}
        if self.attack is not None:
            out.update(attack=self.attack.name, psr_db=self.attack.budget)
        return out
