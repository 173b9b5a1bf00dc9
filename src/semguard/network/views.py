"""Each agent's own view of the same object: a shift, an occlusion and sensor noise (pure function)."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["agent_views"]


def agent_views(images: Tensor, n_agents: int, *, generator: torch.Generator, max_shift: int = 1,
                occlusion: int = 10, p_occlude: float = 0.5, noise: tuple[float, float] = (0.02, 0.1),
                agent_seed: int = 0) -> Tensor:
    """``images [B, C, H, W]`` in [0, 1] -> views ``[N, B, C, H, W]`` in [0, 1].

    Agent ``i`` keeps one viewpoint (a shift of up to ``max_shift`` pixels and a sensor-noise
    standard deviation in ``noise``, drawn from ``agent_seed``); per image it sees an
    ``occlusion x occlusion`` patch blanked with probability ``p_occlude`` and fresh noise from
    ``generator``.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W], got {tuple(images.shape)}")
    if n_agents < 1:
        raise ValueError(f"agents must be >= 1, got {n_agents}")
    b, c, h, w = images.shape
    g_agent = torch.Generator().manual_seed(agent_seed)
    shifts = torch.randint(-max_shift, max_shift + 1, (n_agents, 2), generator=g_agent)
    sigmas = noise[0] + (noise[1] - noise[0]) * torch.rand(n_agents, generator=g_agent)
    out = []
    for i in range(n_agents):
        v = torch.roll(images, shifts=(int(shifts[i, 0]), int(shifts[i, 1])), dims=(2, 3))
        if occlusion > 0:
            ys = torch.randint(0, h - occlusion + 1, (b,), generator=generator)
            xs = torch.randint(0, w - occlusion + 1, (b,), generator=generator)
            hit = torch.rand(b, generator=generator) < p_occlude
            rr = torch.arange(h).view(1, h, 1)
            cc = torch.arange(w).view(1, 1, w)
            box = ((rr >= ys.view(b, 1, 1)) & (rr < ys.view(b, 1, 1) + occlusion)
                   & (cc >= xs.view(b, 1, 1)) & (cc < xs.view(b, 1, 1) + occlusion) & hit.view(b, 1, 1))
            v = v.masked_fill(box.unsqueeze(1), 0.0)
        v = v + sigmas[i] * torch.randn(v.shape, generator=generator)
        out.append(v.clamp(0, 1))
    return torch.stack(out)
