"""A learned detector of perturbed inputs for image and task codecs, at the transmitter: a small CNN on
the input image together with the codec's encoder output for it (the latents the link would send),
trained on clean reference inputs against inputs perturbed by input PGD on the undefended link
(Metzen et al., "On Detecting Adversarial Perturbations", ICLR 2017, on the codec's own features).

The alarm threshold is set on clean held-out scores for a false-alarm rate
(:meth:`InputDetector.calibrate`).  On an alarm the transmitter flags the block and the receiver
withholds its decision (an abstention, counted as caught), so the harm that gets through is "wrong and
not alarmed".  :class:`DetectorAwareInputPGD` is the adaptive attack: input PGD on the task loss minus a
penalty on the detector's score above its threshold, differentiated through the detector (which is
fully differentiable: no BPDA needed).  Detectors of this kind are known to fall to such an attack
(Carlini and Wagner, "Adversarial Examples Are Not Easily Detected", AISec 2017); the bench measures it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from semguard.attacks.base import AttackContext
from semguard.attacks.budget import project_input
from semguard.codecs.base import SemanticCodec
from semguard.defenses._adaptive import DetectorPenaltyPGD
from semguard.registry import register

__all__ = ["InputDetector", "DetectorAwareInputPGD"]


class _Net(nn.Module):
    def __init__(self, channels: int, n_real: int, width: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(2 * width * 16 + n_real, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        return self.head(torch.cat([self.conv(x), z], 1)).squeeze(1)


@register("defense", "input-detector")
class InputDetector:
    """Scores inputs (higher: more likely perturbed) from the image and the codec's latents.

    Args:
        codec: the image or task codec whose inputs are screened.
        snr_db: the SNR the encoder is asked for (SNR-adaptive encoders).
        width: the CNN's width.
        seed: weight initialisation and batch order.
    """

    def __init__(self, codec: SemanticCodec, *, snr_db: float = 10.0, width: int = 16, seed: int = 0) -> None:
        if not isinstance(codec, SemanticCodec):
            raise TypeError(f"codec must be a SemanticCodec, got {type(codec).__name__}")
        if getattr(codec, "in_channels", None) is None and codec.output_key != "x_hat":
            raise ValueError(f"codec: the input detector screens image inputs; {type(codec).__name__} takes none")
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        self.codec, self.snr_db, self.width, self.seed = codec, float(snr_db), int(width), int(seed)
        self.net: _Net | None = None
        self.threshold: float | None = None

    def _latents(self, x: Tensor) -> Tensor:
        return torch.view_as_real(self.codec.encode(x, self.snr_db)).flatten(1)

    def score(self, x: Tensor) -> Tensor:
        """The detector's logit per input ``[B]`` (differentiable in ``x``)."""
        if self.net is None:
            raise RuntimeError("input-detector: fit() it on clean and perturbed inputs before scoring")
        self.codec.check_source(x)
        return self.net(x, self._latents(x))

    def fit(self, clean: Tensor, perturbed: Tensor, *, steps: int = 300, batch: int = 128,
            lr: float = 2e-3) -> "InputDetector":
        """Train on ``clean`` inputs (label 0) against ``perturbed`` ones (label 1), both ``[N, C, H, W]``."""
        if clean.shape[1:] != perturbed.shape[1:] or clean.shape[0] < 2 or perturbed.shape[0] < 2:
            raise ValueError(f"clean {tuple(clean.shape)} and perturbed {tuple(perturbed.shape)}: need >= 2 "
                             "inputs of one shape each")
        if steps < 1 or batch < 2:
            raise ValueError(f"steps must be >= 1 and batch >= 2, got {steps}, {batch}")
        self.codec.check_source(clean)
        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        with torch.no_grad():
            self.codec.eval()
            zc, zp = self._latents(clean), self._latents(perturbed)
        net = _Net(clean.shape[1], zc.shape[1], self.width)
        x = torch.cat([clean, perturbed])
        z = torch.cat([zc, zp])
        y = torch.cat([torch.zeros(clean.shape[0]), torch.ones(perturbed.shape[0])])
        opt = torch.optim.Adam(net.parameters(), lr=lr)
        for _ in range(steps):
            idx = torch.randint(0, x.shape[0], (batch,), generator=g)
            loss = nn.functional.binary_cross_entropy_with_logits(net(x[idx], z[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        for p in net.parameters():
            p.requires_grad_(False)
        self.net = net
        return self

    def calibrate(self, clean_scores: Tensor, false_alarm: float = 0.05) -> float:
        """Set the alarm threshold at the ``1 - false_alarm`` quantile of clean held-out scores."""
        if not 0.0 < false_alarm < 1.0:
            raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm}")
        self.threshold = float(np.quantile(clean_scores.detach().double().numpy(), 1.0 - false_alarm))
        return self.threshold

    def alarm(self, x: Tensor) -> Tensor:
        if self.threshold is None:
            raise RuntimeError("input-detector: calibrate() a threshold before raising alarms")
        return self.score(x) > self.threshold


class DetectorAwareInputPGD(DetectorPenaltyPGD):
    """Joint attack on the input detector and the codec: input PGD on the task loss minus ``weight``
    times the detector's score above its threshold (minus ``margin``).

    Args:
        detector: a fitted, calibrated :class:`InputDetector` (white-box).
        weight: penalty per unit of score above the threshold.
        margin: aim this far under the threshold (score units).
        **kw: the :class:`PGD` arguments (``surface="input"``).
    """

    name = "detector-aware-input-pgd"

    def __init__(self, *, detector: InputDetector, weight: float = 10.0, margin: float = 0.5, **kw: Any) -> None:
        kw.setdefault("surface", "input")
        if kw["surface"] != "input":
            raise ValueError("surface: the detector-aware input attack perturbs the input")
        super().__init__(detector=detector, weight=weight, margin=margin, **kw)

    def send(self, ctx: AttackContext, delta: Tensor, generator: torch.Generator, *, g: Tensor | None = None,
             measure: bool = False, noise: torch.Generator | None = None) -> tuple[dict[str, Any], Tensor | None]:
        out, m = super().send(ctx, delta, generator, g=g, measure=measure, noise=noise)
        out = dict(out)
        out["perturbed_source"] = ctx.source + project_input(delta, ctx.source, self.budget, self.norm)
        return out, m

    def detector_score(self, ctx: AttackContext, out: dict[str, Any]) -> Tensor:
        return self.detector.score(out["perturbed_source"])
