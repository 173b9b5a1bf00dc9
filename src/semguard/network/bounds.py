"""What ``f`` Byzantine agents can do to a fusion rule whatever they send (pure functions).

The honest-range argument for the coordinate-wise median: with ``h = n - f`` honest values per
coordinate, sorted ``s_1 <= ... <= s_h``, the median of all ``n`` values lies between the value it
takes with every Byzantine value under the honest ones and the value with every one over them,
and any value in between is reached.  For even ``n`` (the mean of the ``n/2``-th and
``n/2 + 1``-th order statistics, 1-indexed) that is ``[(s_{n/2-f} + s_{n/2+1-f}) / 2,
(s_{n/2} + s_{n/2+1}) / 2]``; for odd ``n`` ``[s_{(n+1)/2-f}, s_{(n+1)/2}]``.  Values outside the
honest range buy nothing more, so the bound holds for any attacker, in range or not.  The
attacker sets each coordinate independently, which an agent can: raising class ``c`` and lowering
every other class is one confident vector.  The fused decision is then wrong whenever some wrong
class's upper end reaches the largest lower end of the others.

The plurality vote over the agents' own decisions is wrong whenever the honest votes for the
label do not exceed those for some other class by more than ``f``.  Both are per-object bounds for
rules that do not know which agents are Byzantine; the honest-only fusion (the oracle that drops
them) is the ceiling for any rule.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["median_range", "median_worst_case_correct", "vote_worst_case_correct"]


def median_range(honest: Tensor, f: int) -> tuple[Tensor, Tensor]:
    """``honest [..., h, d]`` -> (lowest, highest) ``[..., d]`` the coordinate-wise median of the
    ``h`` honest and ``f`` arbitrary values can take.  Needs ``f < (h + f) / 2``."""
    h = honest.shape[-2]
    n = h + f
    if f < 0 or 2 * f >= n:
        raise ValueError(f"the median's range needs 0 <= f < n/2, got f={f} of n={n}")
    s = honest.sort(dim=-2).values
    if n % 2:
        m = (n + 1) // 2                                   # 1-indexed rank of the median
        return s[..., m - f - 1, :], s[..., m - 1, :]
    m = n // 2
    return 0.5 * (s[..., m - f - 1, :] + s[..., m - f, :]), 0.5 * (s[..., m - 1, :] + s[..., m, :])


def median_worst_case_correct(honest: Tensor, label: Tensor, f: int) -> Tensor:
    """Bool ``[B]``: the median's decision over ``honest [B, h, C]`` and ``f`` arbitrary agents is
    ``label [B]`` whatever they send (no wrong class's upper end reaches the largest lower end of
    the other classes; a tie counts for the attacker)."""
    lo, hi = median_range(honest, f)                       # [B, C]
    C = lo.shape[-1]
    eye = torch.eye(C, dtype=torch.bool, device=lo.device)
    # for each class c: the largest lower end over the classes k != c
    others = lo.unsqueeze(-2).masked_fill(eye, -float("inf")).max(-1).values     # [B, C]
    wins = hi >= others                                    # class c can be made the decision
    wrong = torch.ones_like(wins).scatter(-1, label.view(-1, 1), False)
    return ~(wins & wrong).any(-1)


def vote_worst_case_correct(honest_decisions: Tensor, label: Tensor, f: int, classes: int) -> Tensor:
    """Bool ``[B]``: the plurality vote of ``honest_decisions [B, h]`` and ``f`` arbitrary votes is
    ``label`` whatever they vote (honest votes for the label exceed every other class's by more
    than ``f``; a tie counts for the attacker)."""
    votes = torch.zeros(honest_decisions.shape[0], classes, dtype=torch.long, device=honest_decisions.device)
    votes.scatter_add_(-1, honest_decisions, torch.ones_like(honest_decisions))
    own = votes.gather(-1, label.view(-1, 1)).squeeze(-1)
    rival = votes.scatter(-1, label.view(-1, 1), -1).max(-1).values
    return own > rival + f
