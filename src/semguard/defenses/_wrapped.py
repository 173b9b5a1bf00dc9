"""The shape every receiver-side defence shares: it wraps a codec and keeps its transmitter.

A subclass sets ``self.codec`` and changes only what the receiver does with the received block;
the source check, the symbol count, the decoder's side information and the encoder are the
wrapped codec's own, so an attacker (and the ``Link``) sees the same transmitter."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from semguard.codecs.base import SemanticCodec

__all__ = ["ReceiverWrapper"]


class ReceiverWrapper(SemanticCodec):
    codec: SemanticCodec

    @property
    def max_tokens(self) -> int | None:
        """The wrapped text codec's sentence length bound (None for other codecs): an attack picks the
        semantic objective for a defended text codec as for the codec itself."""
        return getattr(self.codec, "max_tokens", None)

    def check_source(self, source: Tensor) -> None:
        self.codec.check_source(source)

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        return self.codec.n_symbols(source_shape)

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        return self.codec.decode_kwargs(source)

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        return self.codec.encode(source, snr_db)
