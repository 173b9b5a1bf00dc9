"""A differentiable sentence-embedding objective for text codecs: what Bob's decoder would say, read
by the sentence encoder the evaluation scores with (all-MiniLM-L6-v2).

The decoder's soft token distribution ``softmax(z / tau) [B, T, V]`` is mapped to MiniLM input
embeddings through a fixed ``[V, 384]`` table (a codec token that is itself a MiniLM word piece takes
that piece's embedding; one MiniLM splits takes the mean of its pieces' embeddings), framed by
MiniLM's ``[CLS]`` and ``[SEP]`` and mean-pooled as the sentence-transformers model pools.  The loss
is the cosine of that soft sentence embedding with the sent sentence's (the same path on its one-hot
tokens): the attacker minimises it (untargeted) or maximises it to a target sentence's.

It is a surrogate: Bob's receiver takes ``argmax`` tokens, and the evaluation embeds the decoded
string, whose word pieces can differ from the codec's.  The measured similarity is always the real
model's on the decoded text (:class:`semguard.metrics.text.SentenceSimilarity`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor, nn

from semguard.codecs._text_tokenizer import PAD_ID

__all__ = ["SoftSentenceEmbedder", "embedding_loss", "similarity_score"]


class SoftSentenceEmbedder(nn.Module):
    """MiniLM sentence embedding of a soft token distribution over a codec's vocabulary.

    Args:
        vocab: the codec's token -> id map (``codec.tokenizer.vocab()``).
        similarity: a :class:`~semguard.metrics.text.SentenceSimilarity` (its model is reused, frozen);
            None: built here (offline).
        tau: softmax temperature on the decoder's logits.
    """

    def __init__(self, vocab: Mapping[str, int], *, similarity: object | None = None, tau: float = 1.0) -> None:
        super().__init__()
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if similarity is None:
            from semguard.metrics.text import SentenceSimilarity
            similarity = SentenceSimilarity()
        st = similarity.model  # type: ignore[attr-defined]
        self.bert = st[0].auto_model.eval()
        for p in self.bert.parameters():
            p.requires_grad_(False)
        tk = st.tokenizer
        self.tau = float(tau)
        emb = self.bert.get_input_embeddings().weight.detach()
        piece = tk.get_vocab()
        table = torch.zeros(max(vocab.values()) + 1, emb.shape[1])
        for word, i in vocab.items():
            if word in piece:
                table[i] = emb[piece[word]]
                continue
            ids = tk.convert_tokens_to_ids(tk.tokenize(word.removeprefix("##"))) or [tk.unk_token_id]
            table[i] = emb[ids].mean(0)
        table[PAD_ID] = emb[tk.pad_token_id]
        self.register_buffer("table", table, persistent=False)
        self.register_buffer("cls", emb[tk.cls_token_id].clone(), persistent=False)
        self.register_buffer("sep", emb[tk.sep_token_id].clone(), persistent=False)

    def forward(self, probs: Tensor, mask: Tensor) -> Tensor:
        """Token distributions ``[B, T, V]`` (real slots where ``mask [B, T]``) -> unit embeddings ``[B, 384]``."""
        if probs.dim() != 3 or probs.shape[2] != self.table.shape[0]:
            raise ValueError(f"probs must be [B, T, {self.table.shape[0]}], got {tuple(probs.shape)}")
        B = probs.shape[0]
        x = probs @ self.table                                             # [B, T, d]
        lengths = mask.sum(1)
        seq = torch.cat([self.cls.expand(B, 1, -1), x, torch.zeros_like(x[:, :1])], 1)
        seq = seq.clone()
        seq[torch.arange(B), lengths + 1] = self.sep                       # [SEP] right after the last token
        att = torch.arange(seq.shape[1], device=probs.device)[None] <= (lengths + 1)[:, None]
        h = self.bert(inputs_embeds=seq, attention_mask=att.long()).last_hidden_state
        a = att.unsqueeze(-1).to(h.dtype)
        return nn.functional.normalize((h * a).sum(1) / a.sum(1), dim=-1)

    def tokens(self, ids: Tensor) -> Tensor:
        """The embedding of token ids ``[B, T]`` (one-hot distributions), ``[B, 384]``."""
        one = nn.functional.one_hot(ids, self.table.shape[0]).to(self.table.dtype)
        return self.forward(one, ids != PAD_ID)

    def logits(self, logits: Tensor, mask: Tensor) -> Tensor:
        """The embedding of the decoder's ``softmax(logits / tau)``, ``[B, 384]``."""
        return self.forward((logits / self.tau).softmax(-1), mask)


def embedding_loss(embedder: SoftSentenceEmbedder, logits: Tensor, source: Tensor,
                   target: Tensor | None = None) -> Tensor:
    """Per-sample loss ``[B]`` to maximise: ``-cos`` to the sent sentence (untargeted) or ``cos`` to
    ``target`` (token ids of the source's shape)."""
    with torch.no_grad():
        ref = embedder.tokens(source if target is None else target)
    cos = (embedder.logits(logits, source != PAD_ID) * ref).sum(-1)
    return cos if target is not None else -cos


def similarity_score(decode: Callable[[Tensor, Tensor], list[str]], similarity: object) -> Callable[[Tensor, Tensor], Tensor]:
    """A black-box score for the discrete attacks: ``-cos`` of the sentence embeddings of Bob's sentence
    (the ``argmax`` tokens) and the sent one, per trial; each distinct sentence is embedded once.

    Args:
        decode: ``decode(ids [N, T], lengths [N]) -> sentences`` (``codec.tokenizer.decode``).
        similarity: a :class:`~semguard.metrics.text.SentenceSimilarity` (anything with
            ``embed(sentences) -> unit embeddings [N, d]``).
    """
    if not callable(getattr(similarity, "embed", None)):
        raise TypeError(f"similarity must have embed(sentences) -> [N, d], got {type(similarity).__name__}")

    def score(logits: Tensor, sent: Tensor) -> Tensor:
        lengths = (sent != PAD_ID).sum(1)
        hyp, ref = decode(logits.argmax(-1), lengths), decode(sent, lengths)
        uniq = sorted(set(hyp) | set(ref))
        at = {u: i for i, u in enumerate(uniq)}
        e = similarity.embed(uniq)  # type: ignore[attr-defined]
        h, r = e[[at[x] for x in hyp]], e[[at[x] for x in ref]]
        return -(h * r).sum(-1).float()

    score.name = "minilm-similarity"  # type: ignore[attr-defined]
    return score
