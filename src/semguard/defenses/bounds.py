"""Bound propagation through ReLU networks over an l2 (or linf) ball: interval bounds (IBP, Gowal et al.
2018) and CROWN's backward linear relaxation (Zhang, Weng, Chen, Hsieh, Daniel, "Efficient Neural Network
Robustness Certification with General Activation Functions", NeurIPS 2018), plus alpha-CROWN's optimised
lower slopes (Xu et al., ICLR 2021).

A network is first made an :class:`AffineReLUNet`: every affine layer (``Linear``, ``Conv1d`` / ``Conv2d``,
``BatchNorm`` in eval mode, ``Flatten``, ``Identity``, ``Dropout`` in eval mode) becomes an explicit dense
map on the flattened input, consecutive affine maps are composed, and ``ReLU`` is the only non-linearity
(:func:`affine_relu_net`).  Any other layer is refused by name.

Both methods bound ``C f(x)`` for a specification matrix ``C`` (e.g. :func:`margin_spec`: the logit margins
``f_y - f_j``) over ``{x : ||x - x0|| <= eps}``.  The last affine map is folded into ``C`` first, which
is what makes a margin bound tighter than the difference of two logit bounds.  A linear function
``a.x + c`` over the ball lies in ``a.x0 + c -+ eps ||a||_*`` (``||.||_*`` the dual norm: l2 for l2, l1
for linf), exactly; so the first layer's interval is ``W x0 + b -+ eps ||W_row||_2`` and CROWN
concretises its final linear bound the same way.  Everything runs in float64.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor, nn

__all__ = ["AffineReLUNet", "affine_relu_net", "ibp_bounds", "crown_bounds", "alpha_crown_bounds", "bounds",
           "margin_spec", "pgd_lowest", "NORMS", "METHODS"]

NORMS = ("l2", "linf")
METHODS = ("ibp", "crown", "alpha-crown")
_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.Flatten, nn.Identity, nn.Dropout)


@dataclass(frozen=True)
class AffineReLUNet:
    """``f(x) = W_L relu(... relu(W_1 x + b_1) ...) + b_L`` on flattened inputs (float64).

    Attributes:
        weights: ``[W_1 (d_1 x d_0), ..., W_L]``; biases: ``[b_1 (d_1), ..., b_L]``.
    """

    weights: tuple[Tensor, ...]
    biases: tuple[Tensor, ...]

    @property
    def in_features(self) -> int:
        return int(self.weights[0].shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weights[-1].shape[0])

    def __call__(self, x: Tensor) -> Tensor:
        """Evaluate on ``x [B, d_0]`` (float64 out)."""
        h = x.to(torch.float64)
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w.T + b
            if i < len(self.weights) - 1:
                h = h.clamp_min(0.0)
        return h


def _dense(layer: nn.Module, shape: tuple[int, ...]) -> tuple[Tensor, Tensor, tuple[int, ...]]:
    """The affine ``layer`` on inputs of ``shape`` as ``(W, b, out_shape)``: ``b = layer(0)``, the columns of
    ``W`` are ``layer(e_i) - b`` (exact for an affine map)."""
    d = 1
    for s in shape:
        d *= s
    layer = copy.deepcopy(layer).double()  # the caller's module keeps its dtype
    with torch.no_grad():
        zero = layer(torch.zeros(1, *shape, dtype=torch.float64))
        basis = layer(torch.eye(d, dtype=torch.float64).reshape(d, *shape))
    b = zero.reshape(-1)
    w = (basis.reshape(d, -1) - b).T.contiguous()
    return w, b, tuple(zero.shape[1:])


def affine_relu_net(model: nn.Module, input_shape: tuple[int, ...]) -> AffineReLUNet:
    """Flatten ``model`` (an ``nn.Sequential``, possibly nested, in eval mode) on inputs ``input_shape``
    (without the batch) into an :class:`AffineReLUNet`.

    Raises ValueError naming the first layer that is neither affine nor a ReLU, a BatchNorm or Dropout
    in training mode, or a net that starts or ends with a ReLU."""
    for m in model.modules():
        if list(m.children()) and not isinstance(m, nn.Sequential):  # its forward may do anything
            raise ValueError(f"bound propagation reads nn.Sequential nets; {type(m).__name__} blocks it")
    layers = [m for m in model.modules() if not list(m.children())]  # the leaves, in order
    ws: list[Tensor] = []
    bs: list[Tensor] = []
    w_acc: Tensor | None = None
    b_acc: Tensor | None = None
    shape = tuple(int(s) for s in input_shape)
    for m in layers:
        if isinstance(m, nn.ReLU):
            if w_acc is None or b_acc is None:
                raise ValueError("bound propagation: the net must start with an affine layer, not a ReLU")
            ws.append(w_acc)
            bs.append(b_acc)
            w_acc = b_acc = None
            continue
        if not isinstance(m, _AFFINE):
            raise ValueError(f"bound propagation supports Linear / Conv / BatchNorm (eval) / Flatten and ReLU; "
                             f"{type(m).__name__} blocks it")
        if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d | nn.Dropout) and m.training:
            raise ValueError(f"bound propagation: {type(m).__name__} must be in eval mode (call model.eval())")
        w, b, shape = _dense(m, shape)
        if w_acc is None or b_acc is None:
            w_acc, b_acc = w, b
        else:
            w_acc, b_acc = w @ w_acc, w @ b_acc + b
    if w_acc is None or b_acc is None:
        raise ValueError("bound propagation: the net must end with an affine layer (the logits), not a ReLU")
    ws.append(w_acc)
    bs.append(b_acc)
    return AffineReLUNet(tuple(ws), tuple(bs))


def margin_spec(labels: Tensor, num_classes: int) -> Tensor:
    """``C [B, K - 1, K]`` whose rows are ``e_y - e_j`` for every ``j != y``: ``C f`` are the margins of
    the label ``y`` over each other class; the decision is certified iff every lower bound is > 0."""
    labels = torch.as_tensor(labels).reshape(-1).long()
    if num_classes < 2 or bool(((labels < 0) | (labels >= num_classes)).any()):
        raise ValueError(f"labels must be in [0, {num_classes}) with num_classes >= 2, got {labels.tolist()}")
    eye = torch.eye(num_classes, dtype=torch.float64)
    rows = [eye[y].unsqueeze(0) - eye[[j for j in range(num_classes) if j != int(y)]] for y in labels]
    return torch.stack(rows)


def _check(net: AffineReLUNet, x0: Tensor, eps: Tensor | float, spec: Tensor | None,
           norm: str) -> tuple[Tensor, Tensor, Tensor]:
    if not isinstance(net, AffineReLUNet):
        raise TypeError(f"net must be an AffineReLUNet (see affine_relu_net), got {type(net).__name__}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    if x0.dim() != 2 or x0.shape[1] != net.in_features:
        raise ValueError(f"x0 must be [batch, {net.in_features}], got {tuple(x0.shape)}")
    x = x0.detach().to(torch.float64)
    e = torch.as_tensor(eps, dtype=torch.float64).reshape(-1)
    if e.numel() not in (1, x.shape[0]) or not bool(torch.isfinite(e).all()) or bool((e < 0).any()):
        raise ValueError(f"eps must be a finite radius >= 0, scalar or [{x.shape[0]}], got {e.tolist()}")
    e = e.expand(x.shape[0]).clone()
    k = net.out_features
    c = torch.eye(k, dtype=torch.float64).expand(x.shape[0], k, k) if spec is None else spec.to(torch.float64)
    if c.dim() == 2:
        c = c.expand(x.shape[0], *c.shape)
    if c.dim() != 3 or c.shape[0] != x.shape[0] or c.shape[2] != k:
        raise ValueError(f"spec must be [rows, {k}] or [{x.shape[0]}, rows, {k}], got {tuple(spec.shape)}")
    return x, e, c


def _dual(a: Tensor, norm: str) -> Tensor:
    """The dual norm of each row of ``a [..., d]``."""
    return torch.linalg.vector_norm(a, ord=2 if norm == "l2" else 1, dim=-1)


def _concretize(a: Tensor, c: Tensor, x: Tensor, e: Tensor, norm: str) -> tuple[Tensor, Tensor]:
    """The range of ``a x + c`` (``a [B, R, d]``, ``c [B, R]``) over the ball: exact for a linear function."""
    mid = torch.einsum("brd,bd->br", a, x) + c
    rad = e.unsqueeze(1) * _dual(a, norm)
    return mid - rad, mid + rad


def ibp_bounds(net: AffineReLUNet, x0: Tensor, eps: Tensor | float, spec: Tensor | None = None, *,
               norm: str = "l2") -> tuple[Tensor, Tensor]:
    """Interval bounds ``(lower, upper) [B, R]`` on ``spec f(x)`` over ``||x - x0|| <= eps``.

    Args:
        net: the network (:func:`affine_relu_net`).
        x0: centres ``[B, d]``; eps: radius, scalar or ``[B]`` (>= 0).
        spec: ``[R, K]`` or ``[B, R, K]`` (None: the identity, bounds on the outputs themselves).
        norm: ``l2`` or ``linf`` ball."""
    x, e, c = _check(net, x0, eps, spec, norm)
    n = len(net.weights)
    if n == 1:
        return _concretize(torch.einsum("brk,kd->brd", c, net.weights[0]), c @ net.biases[0], x, e, norm)
    w1 = net.weights[0].expand(x.shape[0], *net.weights[0].shape)
    lo, hi = _concretize(w1, net.biases[0].expand(x.shape[0], -1), x, e, norm)
    for i in range(1, n):
        lo, hi = lo.clamp_min(0.0), hi.clamp_min(0.0)
        mid, rad = (hi + lo) / 2, (hi - lo) / 2
        if i < n - 1:
            w, b = net.weights[i], net.biases[i]
            m, r = mid @ w.T + b, rad @ w.abs().T
        else:  # the spec folded into the last affine map
            w = torch.einsum("brk,kd->brd", c, net.weights[i])
            m = torch.einsum("brd,bd->br", w, mid) + c @ net.biases[i]
            r = torch.einsum("brd,bd->br", w.abs(), rad)
        lo, hi = m - r, m + r
    return lo, hi


def _relu_relaxation(lo: Tensor, hi: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """CROWN's linear bounds of ``relu(z)`` for ``z`` in ``[lo, hi]``: ``slope_low z <= relu(z) <=
    slope_up (z - lo)`` on unstable neurons (``slope_up = hi / (hi - lo)``, ``slope_low`` 1 where
    ``hi > -lo`` else 0, the adaptive choice), identity where ``lo >= 0``, zero where ``hi <= 0``.
    Returns ``(slope_low, slope_up, intercept_up)``."""
    active = lo >= 0
    unstable = (lo < 0) & (hi > 0)
    den = torch.where(unstable, hi - lo, torch.ones_like(lo))
    s_up = torch.where(unstable, hi / den, active.to(lo.dtype))
    t_up = torch.where(unstable, -s_up * lo, torch.zeros_like(lo))
    s_low = torch.where(unstable, (hi > -lo).to(lo.dtype), active.to(lo.dtype))
    return s_low, s_up, t_up


def _backward(net: AffineReLUNet, upto: int, c: Tensor, pre: list[tuple[Tensor, Tensor]], x: Tensor,
              e: Tensor, norm: str, alphas: list[Tensor] | None = None) -> Tensor:
    """CROWN's lower bound ``[B, R]`` of ``c z_upto`` (``z_upto`` the pre-activation after affine map
    ``upto``, 0-based) from the pre-activation bounds ``pre`` of the ReLUs before it; ``alphas[i]``
    ``[B, R, d_i]`` in [0, 1], where given, are the lower slopes of ReLU ``i``'s unstable neurons."""
    lam = torch.einsum("brk,kd->brd", c, net.weights[upto])
    const = c @ net.biases[upto]
    for i in range(upto - 1, -1, -1):
        s_low, s_up, t_up = _relu_relaxation(*pre[i])
        pos, neg = lam.clamp_min(0.0), lam.clamp_max(0.0)
        const = const + torch.einsum("brd,bd->br", neg, t_up)
        low = s_low.unsqueeze(1)
        if alphas is not None:
            lo, hi = pre[i]
            low = torch.where(((lo < 0) & (hi > 0)).unsqueeze(1), alphas[i], low)
        lam = pos * low + neg * s_up.unsqueeze(1)
        const = const + lam @ net.biases[i]
        lam = lam @ net.weights[i]
    return _concretize(lam, const, x, e, norm)[0]


def crown_bounds(net: AffineReLUNet, x0: Tensor, eps: Tensor | float, spec: Tensor | None = None, *,
                 norm: str = "l2") -> tuple[Tensor, Tensor]:
    """CROWN bounds ``(lower, upper) [B, R]`` on ``spec f(x)`` over ``||x - x0|| <= eps`` (arguments as
    :func:`ibp_bounds`).  Every ReLU layer's pre-activation bounds come from CROWN itself, layer by layer
    (no interval bounds mixed in), with the adaptive lower slope."""
    x, e, c = _check(net, x0, eps, spec, norm)
    pre: list[tuple[Tensor, Tensor]] = []
    for i in range(len(net.weights) - 1):
        eye = torch.eye(net.weights[i].shape[0], dtype=torch.float64).expand(x.shape[0], -1, -1)
        pre.append((_backward(net, i, eye, pre, x, e, norm), -_backward(net, i, -eye, pre, x, e, norm)))
    last = len(net.weights) - 1
    return _backward(net, last, c, pre, x, e, norm), -_backward(net, last, -c, pre, x, e, norm)


def _optimized(net: AffineReLUNet, upto: int, c: Tensor, pre: list[tuple[Tensor, Tensor]], x: Tensor,
               e: Tensor, norm: str, steps: int, lr: float) -> Tensor:
    """The lower bound of ``c z_upto`` with the unstable neurons' lower slopes optimised by projected Adam
    from CROWN's adaptive start; every slope in [0, 1] gives a sound bound, so the best iterate is kept."""
    best = _backward(net, upto, c, pre, x, e, norm)
    if upto == 0 or steps == 0:
        return best
    alphas = [_relu_relaxation(*pre[i])[0].unsqueeze(1).expand(-1, c.shape[1], -1).clone().requires_grad_(True)
              for i in range(upto)]
    opt = torch.optim.Adam(alphas, lr=lr)
    for _ in range(steps):
        low = _backward(net, upto, c, pre, x, e, norm, alphas)
        best = torch.maximum(best, low.detach())
        opt.zero_grad()
        (-low.sum()).backward()
        opt.step()
        with torch.no_grad():
            for a in alphas:
                a.clamp_(0.0, 1.0)
    with torch.no_grad():
        return torch.maximum(best, _backward(net, upto, c, pre, x, e, norm, alphas))


def alpha_crown_bounds(net: AffineReLUNet, x0: Tensor, eps: Tensor | float, spec: Tensor | None = None, *,
                       norm: str = "l2", steps: int = 20, lr: float = 0.1,
                       intermediate: bool = True) -> tuple[Tensor, Tensor]:
    """alpha-CROWN (Xu, Zhang, Wang, Wang, Jana, Lin, Hsieh, "Fast and Complete", ICLR 2021): CROWN with
    the lower slope of every unstable ReLU a free parameter in [0, 1] per bounded row, optimised by
    ``steps`` of projected Adam (``lr``) to tighten each bound; ``intermediate`` optimises the hidden
    layers' pre-activation bounds too (else they are CROWN's).  Never looser than :func:`crown_bounds`
    (it starts from CROWN's slopes and keeps the best iterate).  Arguments otherwise as
    :func:`ibp_bounds`."""
    if steps < 0 or not lr > 0:
        raise ValueError(f"steps must be >= 0 and lr > 0, got {steps}, {lr}")
    x, e, c = _check(net, x0, eps, spec, norm)
    pre: list[tuple[Tensor, Tensor]] = []
    with torch.enable_grad():
        for i in range(len(net.weights) - 1):
            eye = torch.eye(net.weights[i].shape[0], dtype=torch.float64).expand(x.shape[0], -1, -1)
            k = steps if intermediate else 0
            lo = _optimized(net, i, eye, pre, x, e, norm, k, lr)
            hi = -_optimized(net, i, -eye, pre, x, e, norm, k, lr)
            pre.append((lo, hi))
        last = len(net.weights) - 1
        return (_optimized(net, last, c, pre, x, e, norm, steps, lr),
                -_optimized(net, last, -c, pre, x, e, norm, steps, lr))


def bounds(method: str, net: AffineReLUNet, x0: Tensor, eps: Tensor | float, spec: Tensor | None = None, *,
           norm: str = "l2") -> tuple[Tensor, Tensor]:
    """:func:`ibp_bounds`, :func:`crown_bounds` or :func:`alpha_crown_bounds` (its defaults) by name
    (``method`` in :data:`METHODS`)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    fn = {"ibp": ibp_bounds, "crown": crown_bounds, "alpha-crown": alpha_crown_bounds}[method]
    return fn(net, x0, eps, spec, norm=norm)


def _project(delta: Tensor, e: Tensor, norm: str) -> Tensor:
    if norm == "linf":
        return torch.maximum(torch.minimum(delta, e.unsqueeze(1)), -e.unsqueeze(1))
    scale = (e / torch.linalg.vector_norm(delta, dim=1).clamp_min(1e-300)).clamp(max=1.0)
    return delta * scale.unsqueeze(1)


def pgd_lowest(net: AffineReLUNet, x0: Tensor, eps: Tensor | float, spec: Tensor | None = None, *,
               norm: str = "l2", steps: int = 50, restarts: int = 4,
               generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """The lowest value of each row of ``spec f(x)`` that PGD finds in the ball: an upper bound on the
    true minimum, so a sound lower bound never exceeds it.  Each row is attacked on its own (signed
    gradient steps for linf, normalised ones for l2, step ``2.5 eps / steps``, random starts, the best
    iterate kept).  Returns ``(lowest [B, R], argmin points [B, R, d])``."""
    x, e, c = _check(net, x0, eps, spec, norm)
    if steps < 1 or restarts < 1:
        raise ValueError(f"steps and restarts must be >= 1, got {steps}, {restarts}")
    b, r, d = x.shape[0], c.shape[1], x.shape[1]
    xs = x.unsqueeze(1).expand(b, r, d).reshape(b * r, d)
    es = e.unsqueeze(1).expand(b, r).reshape(b * r)
    rows = c.reshape(b * r, -1)
    best = torch.full((b * r,), torch.inf, dtype=torch.float64)
    arg = xs.clone()
    step = 2.5 * es / steps
    for _ in range(restarts):
        delta = _project(torch.randn(xs.shape, generator=generator, dtype=torch.float64) * es.unsqueeze(1), es, norm)
        for _ in range(steps + 1):
            delta.requires_grad_(True)
            val = (net(xs + delta) * rows).sum(1)
            with torch.no_grad():
                better = val < best
                best = torch.where(better, val, best)
                arg = torch.where(better.unsqueeze(1), xs + delta, arg)
            (g,) = torch.autograd.grad(val.sum(), delta)
            with torch.no_grad():
                if norm == "linf":
                    move = g.sign()
                else:
                    move = g / torch.linalg.vector_norm(g, dim=1, keepdim=True).clamp_min(1e-300)
                delta = _project(delta - step.unsqueeze(1) * move, es, norm)
    return best.reshape(b, r), arg.reshape(b, r, d)
