"""The :class:`SemanticCodec` base: ``encode`` -> channel -> ``decode``, fixed-key outputs.

``forward`` is the differentiable end-to-end path used in training; ``encode`` and ``decode``
stand on their own so ciphers, attackers and eavesdroppers can be inserted between them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from semguard.channels.base import Channel, ChannelState, as_snr_tensor

__all__ = ["SemanticCodec", "symbols_from_real", "real_from_symbols", "check_image_batch", "codec_spec"]


def check_image_batch(codec: object, source: Tensor, multiple: int) -> None:
    """The public-boundary check of image codecs: float RGB ``[B, 3, H, W]``, H and W multiples of
    ``multiple`` (the codec's downsampling or block); ``codec`` names the caller in the error."""
    if source.dim() != 4 or source.shape[1] != 3:
        raise ValueError(f"{type(codec).__name__} expects RGB images [batch, 3, H, W], got {tuple(source.shape)}")
    h, w = source.shape[-2:]
    if h % multiple or w % multiple:
        raise ValueError(f"image height and width must be multiples of {multiple}, got {h}x{w}; "
                         "crop or pad the image first")
    if not torch.is_floating_point(source):
        raise ValueError(f"images must be float in [0, 1], got {source.dtype}")


def codec_spec(codec: SemanticCodec, name: str | None = None) -> dict[str, Any]:
    """``{"codec": registry name, "config": its keyword arguments}`` of a built codec, the form in
    which wrappers (switch, spreading) record the codecs they hold.  ``name`` defaults to the
    ``registry_name`` that :func:`semguard.codecs.zoo.load_weights` sets."""
    name = name or getattr(codec, "registry_name", None)
    if name is None:
        raise ValueError(f"name the registry entry that builds this {type(codec).__name__} "
                         "(or load it with semguard.codecs.zoo)")
    return {"codec": name, "config": codec.config}


def symbols_from_real(z: Tensor) -> Tensor:
    """Real features ``[B, 2k, ...]`` -> complex symbols ``[B, n]``, n = k * prod(...).

    Consecutive real values pair into (re, im); :func:`real_from_symbols` inverts it.
    """
    b = z.shape[0]
    flat = z.reshape(b, -1, 2).contiguous().float()
    return torch.view_as_complex(flat)


def real_from_symbols(y: Tensor, shape: tuple[int, ...]) -> Tensor:
    """Complex ``[B, n]`` -> real ``[B, *shape]`` (inverse of :func:`symbols_from_real`)."""
    return torch.view_as_real(y).reshape(y.shape[0], *shape)


class SemanticCodec(nn.Module):
    """Base for learned joint source-channel codecs.

    Subclasses implement :meth:`encode` (source -> unit-power complex ``[B, n]``) and
    :meth:`decode` (equalised ``[B, n]`` + :class:`ChannelState` -> output).  ``output_key``
    names the decoder output in the forward dict: ``"x_hat"`` (reconstruction) or ``"logits"``.
    """

    output_key: str = "x_hat"
    config: dict[str, Any]

    def check_source(self, source: Tensor) -> None:  # overridden with the codec's expectations
        pass

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        raise NotImplementedError

    def decode(self, y: Tensor, state: ChannelState, **kwargs: Any) -> Tensor:
        raise NotImplementedError

    def forward(self, source: Tensor, channel: Channel, snr_db: Tensor | float, *,
                generator: torch.Generator | None = None) -> dict[str, Any]:
        """End to end: ``{output_key, "symbols", "received", "state"}``.

        ``received`` is the equalised channel output the decoder saw.
        """
        self.check_source(source)
        snr = as_snr_tensor(snr_db, source.shape[0], source.device)
        x = self.encode(source, snr)
        y, state = channel(x, snr, generator=generator)
        out = self.decode(y, state, **self.decode_kwargs(source))
        return {self.output_key: out, "symbols": x, "received": y, "state": state}

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        """Side information the decoder needs that is not in the symbols (e.g. image size)."""
        return {}

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        """Complex channel uses per source of ``source_shape`` (without batch)."""
        raise NotImplementedError

    def load_assets(self, paths: dict[str, Any]) -> None:
        """Take the files a zoo entry ships beside its weights (e.g. a tokenizer), by file name."""
        if paths:
            raise ValueError(f"{type(self).__name__} takes no assets, got {sorted(paths)}")
