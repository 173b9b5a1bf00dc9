"""DeepSC-style transformer semantic codec for text.

After Xie, Qin, Li, Juang, "Deep Learning Enabled Semantic Communication Systems", IEEE TSP 2021:
transformer semantic encoder -> dense channel encoder -> channel -> dense channel decoder ->
transformer semantic decoder.  Changes that made it train on one CPU core (measured, see
``bench/text.py``): pre-norm layers, one token embedding shared by the transmitter input and the
output layer (tied), a WordPiece vocabulary trained on the training split, and a
non-autoregressive receiver (bidirectional transformer over the received token slots, one pass).

Contract (the same ``encode``/``decode`` split as the image codecs):

* source: token ids ``LongTensor[B, T]`` right-padded with ``PAD_ID = 0`` (see
  :meth:`DeepSC.tokenize`); each sentence has ``L_b >= 1`` real tokens, no BOS/EOS.
* ``encode`` -> complex64 ``[B, S*T]`` (``S = symbols_per_token``, 8 by default): token ``t``
  owns symbols ``S*t .. S*t+S-1``; padding slots transmit exactly 0 (no channel use).  Power is
  normalised per sentence over its real slots: ``sum |x|^2 = S * L_b``, so Es = 1 per channel use.
* channel uses per sentence = ``S * L_b`` (:meth:`DeepSC.channel_uses`).  The receiver knows
  ``L_b`` (the block length, like an image's size), passed as ``decode(..., lengths=)``.
* ``decode`` -> logits ``[B, T, V]``; greedy ids by ``argmax`` (:meth:`DeepSC.transmit`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semguard.channels.base import Channel, ChannelState, as_snr_tensor
from semguard.codecs._text_tokenizer import PAD_ID, TextTokenizer
from semguard.codecs.base import SemanticCodec
from semguard.registry import register

__all__ = ["DeepSC", "deepsc", "masked_power_normalize", "shipped_tokenizer", "WEIGHTS_FILE", "TOKENIZER_FILE",
           "ZOO_NAME"]

log = logging.getLogger(__name__)

WEIGHTS_FILE = "deepsc.safetensors"
TOKENIZER_FILE = "deepsc-tokenizer.json"
ZOO_NAME = "deepsc-wordnet"  # the shipped weights and tokenizer (their sha256 are in the zoo)


def shipped_tokenizer() -> TextTokenizer:
    """The shipped WordPiece tokenizer, sha256-checked against the zoo."""
    from semguard.codecs.zoo import asset_path

    return TextTokenizer.from_file(asset_path(ZOO_NAME, TOKENIZER_FILE))


def masked_power_normalize(x: Tensor, mask: Tensor, eps: float = 1e-12) -> Tensor:
    """Complex ``x [B, T, S]``, bool ``mask [B, T]`` -> mean power 1 over the real slots, 0 elsewhere."""
    m = mask.unsqueeze(-1).to(x.real.dtype)
    n = (m.sum(dim=(1, 2)) * x.shape[-1]).clamp_min(1.0)
    power = (x.abs().square() * m).sum(dim=(1, 2)) / n
    return x * m / torch.sqrt(power + eps).view(-1, 1, 1)


def _sinusoid(max_len: int, d: int) -> Tensor:
    pos = torch.arange(max_len).unsqueeze(1)
    div = torch.exp(torch.arange(0, d, 2) * (-math.log(10000.0) / d))
    pe = torch.zeros(max_len, d)
    pe[:, 0::2], pe[:, 1::2] = torch.sin(pos * div), torch.cos(pos * div)
    return pe


def _stack(d: int, heads: int, layers: int, ff: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(d, heads, ff, dropout, batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)


class DeepSC(SemanticCodec):
    """Transformer text JSCC.

    Args:
        vocab_size: ids ``0..vocab_size-1`` (0 = pad).
        d_model, heads, layers, ff: transformer width, heads, layers per side, feed-forward width.
        symbols_per_token: complex channel uses per token (``S``).
        max_tokens: longest sentence in tokens (positional table size).
        dropout: dropout in the transformer layers (training only).
        tokenizer: optional :class:`TextTokenizer` for the sentence-level helpers.
    """

    output_key = "logits"

    def __init__(self, *, vocab_size: int = 8000, d_model: int = 128, heads: int = 8, layers: int = 3,
                 ff: int = 512, symbols_per_token: int = 8, max_tokens: int = 64, dropout: float = 0.1,
                 tokenizer: TextTokenizer | None = None) -> None:
        super().__init__()
        if tokenizer is not None and tokenizer.vocab_size != vocab_size:
            raise ValueError(f"tokenizer has {tokenizer.vocab_size} ids, codec expects {vocab_size}")
        self.config = {"vocab_size": vocab_size, "d_model": d_model, "heads": heads, "layers": layers,
                       "ff": ff, "symbols_per_token": symbols_per_token, "max_tokens": max_tokens,
                       "dropout": dropout}
        self.tokenizer = tokenizer
        self.S = symbols_per_token
        self.max_tokens = max_tokens
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=PAD_ID)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
        self.register_buffer("pos", _sinusoid(max_tokens, d_model), persistent=False)
        self.tx = _stack(d_model, heads, layers, ff, dropout)
        self.ch_enc = nn.Sequential(nn.Linear(d_model, ff), nn.ReLU(), nn.Linear(ff, 2 * self.S))
        self.ch_dec = nn.Sequential(nn.Linear(2 * self.S, ff), nn.ReLU(), nn.Linear(ff, d_model))
        self.rx = _stack(d_model, heads, layers, ff, dropout)
        self.scale = math.sqrt(d_model)

    # -- contract -------------------------------------------------------------------------
    def check_source(self, source: Tensor) -> None:
        if source.dim() != 2 or source.dtype != torch.long:
            raise ValueError(f"DeepSC expects token ids LongTensor[batch, tokens], got {source.dtype} "
                             f"{tuple(source.shape)}; use codec.tokenize(sentences)")
        if source.shape[1] > self.max_tokens:
            raise ValueError(f"{source.shape[1]} tokens exceed max_tokens={self.max_tokens}")
        if source.numel() and (source.min() < 0 or source.max() >= self.config["vocab_size"]):
            raise ValueError(f"token ids must be in [0, {self.config['vocab_size']})")
        if (source != PAD_ID).sum(dim=1).min() < 1:
            raise ValueError("every sentence needs at least one non-pad token")

    def lengths(self, tokens: Tensor) -> Tensor:
        """Real tokens per sentence ``[B]`` (right padding assumed)."""
        return (tokens != PAD_ID).sum(dim=1)

    def channel_uses(self, tokens: Tensor) -> Tensor:
        """Complex channel uses per sentence ``[B]``: ``S * L_b``."""
        return self.S * self.lengths(tokens)

    def n_symbols(self, source_shape: tuple[int, ...]) -> int:
        return self.S * source_shape[-1]

    def _slot_mask(self, lengths: Tensor, T: int) -> Tensor:
        return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)

    def encode(self, source: Tensor, snr_db: Tensor | float) -> Tensor:
        """Token ids ``[B, T]`` -> complex symbols ``[B, S*T]`` (zeros in padding slots)."""
        self.check_source(source)
        B, T = source.shape
        as_snr_tensor(snr_db, B, source.device)  # validated; the encoder is SNR-agnostic
        mask = self._slot_mask(self.lengths(source), T)
        h = self.embed(source) * self.scale + self.pos[:T]
        h = self.tx(h, src_key_padding_mask=~mask)
        z = self.ch_enc(h).view(B, T, self.S, 2).float()
        x = masked_power_normalize(torch.view_as_complex(z.contiguous()), mask)
        return x.reshape(B, T * self.S)

    def decode(self, y: Tensor, state: ChannelState | None = None, *, lengths: Tensor | None = None,
               **_: Any) -> Tensor:
        """Equalised symbols ``[B, S*T]`` -> logits ``[B, T, V]``; slots ``>= lengths[b]`` are ignored."""
        if not torch.is_complex(y) or y.dim() != 2 or y.shape[1] % self.S:
            raise ValueError(f"decode expects complex symbols [batch, {self.S}*tokens], got {y.dtype} "
                             f"{tuple(y.shape)}")
        B, T = y.shape[0], y.shape[1] // self.S
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long, device=y.device)
        mask = self._slot_mask(lengths, T)
        r = torch.view_as_real(y.reshape(B, T, self.S)).reshape(B, T, 2 * self.S)
        h = self.ch_dec(r * mask.unsqueeze(-1)) + self.pos[:T]
        h = self.rx(h, src_key_padding_mask=~mask)
        return h @ self.embed.weight.t()

    def decode_kwargs(self, source: Tensor) -> dict[str, Any]:
        return {"lengths": self.lengths(source)}

    # -- sentence level ---------------------------------------------------------------------
    def tokenize(self, sentences: list[str], *, on_overflow: str = "error") -> Tensor:
        """Sentences -> ids ``[B, T]`` with this codec's tokenizer (see :meth:`TextTokenizer.encode`)."""
        if self.tokenizer is None:
            raise RuntimeError("this DeepSC has no tokenizer; build it with deepsc(pretrained=True) "
                               "or pass tokenizer=")
        return self.tokenizer.encode(sentences, max_tokens=self.max_tokens, on_overflow=on_overflow)

    @torch.no_grad()
    def transmit(self, sentences: list[str], channel: Channel, snr_db: Tensor | float, *,
                 generator: torch.Generator | None = None, on_overflow: str = "error") -> tuple[list[str], Tensor]:
        """Sentences over ``channel`` -> (received sentences, channel uses per sentence ``[B]``)."""
        tokens = self.tokenize(sentences, on_overflow=on_overflow)
        out = self.forward(tokens, channel, snr_db, generator=generator)
        lengths = self.lengths(tokens)
        return self.tokenizer.decode(out["logits"].argmax(-1), lengths), self.channel_uses(tokens)

    # -- weights ----------------------------------------------------------------------------
    @torch.no_grad()
    def grow_from(self, other: DeepSC) -> None:
        """Start from ``other``, a DeepSC of the same configuration but ``symbols_per_token``: every
        weight is copied except the channel encoder's output layer and the channel decoder's input
        layer, which keep the first ``min(S, S_other)`` symbols of each token (the rest start at zero),
        so the semantic transformers start trained (``semguard train deepsc --init deepsc-wordnet
        --symbols-per-token 3``).  ValueError for any other difference."""
        mine = {k: v for k, v in self.config.items() if k != "symbols_per_token"}
        theirs = {k: v for k, v in other.config.items() if k != "symbols_per_token"}
        if mine != theirs or self.S == other.S:
            raise ValueError(f"DeepSC can only change symbols_per_token when started from another: config "
                             f"{other.config} -> {self.config}")
        state = other.state_dict()
        n = 2 * min(self.S, other.S)  # reals of the symbols both have
        enc_w, enc_b = torch.zeros_like(self.ch_enc[2].weight), torch.zeros_like(self.ch_enc[2].bias)
        enc_w[:n], enc_b[:n] = state["ch_enc.2.weight"][:n], state["ch_enc.2.bias"][:n]
        dec_w = torch.zeros_like(self.ch_dec[0].weight)
        dec_w[:, :n] = state["ch_dec.0.weight"][:, :n]
        state |= {"ch_enc.2.weight": enc_w, "ch_enc.2.bias": enc_b, "ch_dec.0.weight": dec_w}
        self.load_state_dict(state)

    def save_pretrained(self, folder: str | Path) -> dict[str, str]:
        """Write fp16 safetensors (config in the metadata) and the tokenizer; return their sha256."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        from semguard.codecs.zoo import tensors_digest

        state = {k: v.detach().to(torch.float16).contiguous() for k, v in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"codec": "deepsc", "config": json.dumps(self.config),
                                                                "tensors_sha256": tensors_digest(state)})
        if self.tokenizer is not None:
            self.tokenizer.save(folder / TOKENIZER_FILE)
        return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest()
                for f in (WEIGHTS_FILE, TOKENIZER_FILE) if (folder / f).is_file()}

    def load_assets(self, paths: dict[str, Any]) -> None:
        """Take the tokenizer file that ships beside the weights (``TOKENIZER_FILE``)."""
        if set(paths) != {TOKENIZER_FILE}:
            raise ValueError(f"DeepSC takes exactly one asset, {TOKENIZER_FILE}, got {sorted(paths)}")
        tok = TextTokenizer.from_file(paths[TOKENIZER_FILE])
        if tok.vocab_size != self.config["vocab_size"]:
            raise ValueError(f"{paths[TOKENIZER_FILE]}: tokenizer has {tok.vocab_size} ids, codec expects "
                             f"{self.config['vocab_size']}")
        self.tokenizer = tok

    @classmethod
    def from_pretrained(cls, folder: str | Path | None = None, *, verify: bool = True) -> DeepSC:
        """Load weights + tokenizer from ``folder`` (``WEIGHTS_FILE`` and ``TOKENIZER_FILE``), or the
        shipped ones (zoo entry ``deepsc-wordnet``, sha256-checked unless ``verify=False``)."""
        from semguard.codecs import zoo

        if folder is None:
            if verify:
                return zoo.pretrained(ZOO_NAME)
            folder = zoo.shipped_path(WEIGHTS_FILE).parent                    # the shipped folder, unchecked
        base = Path(folder)
        for p in (base / WEIGHTS_FILE, base / TOKENIZER_FILE):
            if not p.is_file():
                raise FileNotFoundError(f"DeepSC file missing: {p}")
        model = zoo.load_weights(base / WEIGHTS_FILE, codec="deepsc")
        model.load_assets({TOKENIZER_FILE: base / TOKENIZER_FILE})
        return model


@register("codec", "deepsc")
def deepsc(*, pretrained: bool = False, **kw: Any) -> DeepSC:
    """DeepSC text codec; ``pretrained=True`` loads the shipped WordNet weights and tokenizer."""
    if pretrained:
        if kw:
            raise ValueError(f"pretrained DeepSC takes no architecture arguments, got {sorted(kw)}")
        return DeepSC.from_pretrained()
    return DeepSC(**kw)
