"""Any codec with DFT-spread precoding (:mod:`semguard.channels.precoding`) around its symbols.

The wrapper spreads the inner codec's unit-power symbols before the channel and despreads the
equalised ones after it, handing the inner decoder the despread channel state (one flat gain per
chunk).  It has no weights of its own: ``Precoded.around(pretrained("analog-cbr1_6"))`` spreads a
shipped codec, and ``build("codec", "spread", inner={"codec": ..., "config": ...})`` a fresh one.

What it buys is diversity over fast fading, for an analog decoder whose per-symbol estimate is
worst in deep fades.  Over AWGN or block fading (one fade per block) a decoder sees no change:
the noise stays white and the channel flat.  Pilot-estimated CSI is refined blind only where
the despread state is flat over the block (:func:`semguard.channels.csi.refine_csi`): over block
fading it still is; over fast fading the chunks are decoded with the pilots' estimate as it is.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from semguard.channels.base import ChannelState
from semguard.channels.precoding import despread, despread_state, spread, spread_chunk
from semguard.codecs.base import SemanticCodec, codec_spec
from semguard.registry import build, register

__all__ = ["Precoded", "precoded"]


class Precoded(SemanticCodec):
    """``inner`` with its symbols DFT-spread in chunks of up to ``max_chunk``.

    Args:
        inner: ``{"codec": registry name, "config": its keyword arguments}``.
        max_chunk: the largest DFT size; the chunk is the largest divisor of the block length up
            to it (:func:`semguard.channels.precoding.spread_chunk`).
    """

    def __init__(self, *, inner: dict[str, Any], max_chunk: int = 64) -> None:
        super().__init__()
        if not isinstance(inner, dict) or set(inner) != {"codec", "config"}:
            raise ValueError(f"inner must be {{'codec': name, 'config': {{...}}}}, got {inner!r}")
        if inner["codec"] == "spread":
            raise ValueError("spreading twice is spreading once with a larger chunk: give max_chunk instead")
        self.inner: SemanticCodec = build("codec", inner["codec"], **inner["config"])
        spread_chunk(64, max_chunk)  # validates max_chunk
        self.max_chunk = int(max_chunk)
        self.output_key = self.inner.output_key
        self.config = {"inner": inner, "max_chunk": self.max_chunk}

    @classmethod
    def around(cls, codec: SemanticCodec, name: str | None = None, *, max_chunk: int = 64) -> Precoded:
        """Spread an existing codec (weights shared, not copied).  ``name`` is its registry name;
        codecs from :func:`~semguard.codecs.zoo.load_weights` or ``pretrained`` know theirs."""
        spec = codec_spec(codec, name)
        name = spec["codec"]
        try:
            wrapper = cls(inner=spec, max_chunk=max_chunk)
        except TypeError as e:  # the config has keywords codec `name` does not take
            raise ValueError(f"{type(codec).__name__} is not what codec {name!r} builds ({e})") from e
        if type(wrapper.inner) is not type(codec):
            raise ValueError(f"{type(codec).__name__} is not what codec {name!r} builds "
                             f"({type(wrapper.inner).__name__})")
        wrapper.inner = codec
        return wrapper

    def check_source(self, source: Tensor) -> None:
        self.inner.check_source(source)
        spread_chunk(self.n_symbols(tuple(source.shape[1:])), self.max_chunk)

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        return self.inner.n_symbols(source_shape)

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        x = self.inner.encode(source, snr_db)
        return spread(x, spread_chunk(x.shape[1], self.max_chunk))

    def decode(self, y: Tensor, state: ChannelState, **kwargs: Any) -> Tensor:
        if y.dim() != 2:
            raise ValueError(f"decode expects complex symbols [batch, n], got {tuple(y.shape)}")
        c = spread_chunk(y.shape[1], self.max_chunk)
        return self.inner.decode(despread(y, c), despread_state(state, c), **kwargs)

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        return self.inner.decode_kwargs(source)


@register("codec", "spread")
def precoded(*, inner: dict[str, Any], max_chunk: int = 64) -> Precoded:
    """Another codec with DFT-spread precoding of its symbols (see :class:`Precoded`)."""
    return Precoded(inner=inner, max_chunk=max_chunk)
