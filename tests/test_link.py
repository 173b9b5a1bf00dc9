"""The Link: the same draws as the codec's own forward pass, the attacker's and eavesdropper's hooks,
gradients through the whole chain, and the PSR budget written once (channels.functional)."""

from __future__ import annotations

import pytest
import torch

from semguard.channels import AWGN, Rayleigh
from semguard.channels import functional as F
from semguard.keys.ciphers import ScrambleCipher
from semguard.link import LINK_KEYS, Eavesdropper, Link
from semguard.registry import build

KEY = bytes(range(32))


def _tiny(name: str) -> tuple[torch.nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    if name == "task":
        return build("codec", "task", n_symbols=8, width=4).eval(), torch.rand(3, 1, 28, 28)
    return build("codec", "adjscc", cbr=1 / 12, width=8).eval(), torch.rand(3, 3, 32, 32)


@pytest.mark.parametrize("name", ["adjscc", "task"])
@pytest.mark.parametrize("channel", [AWGN(), Rayleigh(csi="estimated", pilots=2)], ids=["awgn", "rayleigh"])
def test_link_draws_like_the_codec_forward(name: str, channel: torch.nn.Module) -> None:
    codec, x = _tiny(name)
    a = codec(x, channel, 7.0, generator=torch.Generator().manual_seed(3))
    b = Link(codec, channel)(x, 7.0, generator=torch.Generator().manual_seed(3))
    assert set(LINK_KEYS) <= set(b)
    assert torch.equal(a[codec.output_key], b["output"]) and torch.equal(a["received"], b["received"])
    assert torch.equal(b["symbols"], b["transmitted"])


def test_interference_adds_exactly_at_the_receiver() -> None:
    codec, x = _tiny("adjscc")
    link = Link(codec, Rayleigh())
    n = codec.n_symbols(tuple(x.shape[1:]))
    delta = F.complex_normal((3, n), generator=torch.Generator().manual_seed(1)) * 0.1
    clean = link(x, 10.0, generator=torch.Generator().manual_seed(5))
    hit = link(x, 10.0, generator=torch.Generator().manual_seed(5), interference=delta)
    torch.testing.assert_close(hit["raw"] - clean["raw"], delta)
    with pytest.raises(ValueError, match="interference must be complex"):
        link(x, 10.0, interference=delta[:, :-1])


def test_gradient_reaches_the_perturbation_through_fading_and_estimated_csi() -> None:
    codec, x = _tiny("adjscc")
    channel = Rayleigh(csi="estimated", pilots=2)
    link = Link(codec, channel)
    n = codec.n_symbols(tuple(x.shape[1:]))
    delta = torch.zeros(3, n, dtype=torch.complex64, requires_grad=True)
    pil = torch.zeros(3, channel.pilot_blocks(n), dtype=torch.complex64, requires_grad=True)
    out = link(x, 10.0, interference=delta, pilot_interference=pil, generator=torch.Generator().manual_seed(0))
    (out["output"] - x).square().mean().backward()
    assert delta.grad is not None and delta.grad.abs().sum() > 0
    assert pil.grad is not None and pil.grad.abs().sum() > 0


def test_pilot_attack_moves_the_estimate_only_with_estimated_csi() -> None:
    codec, x = _tiny("adjscc")
    n = codec.n_symbols(tuple(x.shape[1:]))
    ch = Rayleigh(csi="estimated", coherence=n // 4)
    d = torch.full((3, 4), 0.5 + 0j, dtype=torch.complex64)
    a = Link(codec, ch)(x, 10.0, generator=torch.Generator().manual_seed(2))
    b = Link(codec, ch)(x, 10.0, generator=torch.Generator().manual_seed(2), pilot_interference=d)
    torch.testing.assert_close(b["state"].h_est - a["state"].h_est, torch.full((3, n), 0.5 + 0j))
    with pytest.raises(ValueError, match="csi='estimated'"):
        Link(codec, Rayleigh())(x, 10.0, pilot_interference=d)


def test_cipher_and_eavesdropper() -> None:
    codec, x = _tiny("adjscc")
    link = Link(codec, AWGN(), cipher=ScrambleCipher(), key=KEY,
                eavesdropper=Eavesdropper(AWGN(), key=None))
    out = link(x, 80.0, generator=torch.Generator().manual_seed(0), nonce=b"\x01" * 12)
    torch.testing.assert_close(out["deciphered"], out["symbols"], atol=1e-3, rtol=0)  # Bob at 80 dB
    assert not torch.allclose(out["transmitted"], out["symbols"])
    # no key: Eve holds the scrambled symbols, nowhere near what Bob decodes
    assert (out["eve"]["received"] - out["symbols"]).abs().mean() > 0.5
    keyed = Link(codec, AWGN(), cipher=ScrambleCipher(), key=KEY, eavesdropper=Eavesdropper(AWGN(), key=KEY))
    res = keyed(x, 80.0, nonce=b"\x01" * 12)
    torch.testing.assert_close(res["eve"]["received"], res["deciphered"], atol=1e-3, rtol=0)
    assert KEY.hex() not in repr(link) and str(KEY) not in repr(link.eavesdropper)
    with pytest.raises(ValueError, match="needs a key"):
        Link(codec, AWGN(), cipher=ScrambleCipher())


@pytest.mark.parametrize("psr", [-20.0, -10.0, 0.0, 3.0])
def test_psr_projection_is_exact(psr: float) -> None:
    g = torch.Generator().manual_seed(0)
    h = F.rayleigh_coefficients((4, 1), generator=g).expand(4, 256)
    signal = h * F.normalize_power(F.complex_normal((4, 256), generator=g))
    delta = F.complex_normal((4, 256), generator=g) * torch.tensor([[0.01], [0.1], [1.0], [10.0]])
    on = F.project_psr(delta, signal, psr, exact=True)
    torch.testing.assert_close(F.psr_db(on, signal), torch.full((4,), psr), atol=1e-4, rtol=0)
    inside = F.project_psr(delta, signal, psr)
    assert (F.psr_db(inside, signal) <= psr + 1e-4).all()
    # -10 dB means a tenth of the received signal's power, never the other sign
    torch.testing.assert_close(F.block_power(F.project_psr(delta, signal, -10.0, exact=True)),
                               F.block_power(signal) / 10, rtol=1e-4, atol=0)
    with pytest.raises(ValueError, match="psr_db must be finite"):
        F.project_psr(delta, signal, float("nan"))
