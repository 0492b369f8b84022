"""Text encoding that skips the padding: token ids trimmed to the batch's longest text.

open_clip tokenizers pad every text to the context length (77 for CLIP), so a 10-token caption
costs a 77-token forward. Dropping the padding columns gives the same vectors wherever no kept
position can see a dropped one:

- a causal text transformer (open_clip's `CLIP`, or `CustomTextCLIP` with a `TextTransformer`):
  position p attends to positions ≤ p only, so everything up to the last pooled position (the
  EOT token: argmax of the ids, or the first eos id) is kept and the rest is never looked at;
- a Hugging Face text tower (`HFTextEncoder`, the tiny models' MiniLM): padding is masked out of
  attention and of the mean / CLS pooling, so only columns that are padding in every row go.

Any other tower (bidirectional without a pad mask, last-token pooling, a CoCa class token, max
pooling) is encoded at full length.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from open_clip.hf_model import ClsLastHiddenStatePooler, ClsPooler, HFTextEncoder, MeanPooler
from open_clip.model import CLIP, CustomTextCLIP
from open_clip.transformer import TextTransformer, text_global_pool

if TYPE_CHECKING:
    from models.encoder import ClipModel

_EXACT_HF_POOLERS = (MeanPooler, ClsPooler, ClsLastHiddenStatePooler)
_CAUSAL_POOLS = ("argmax", "eos")


@dataclass(frozen=True)
class CausalTower:
    """The parts of a causal text transformer, which open_clip keeps on `CLIP` itself (its text
    tower flattened into the model) or on a `TextTransformer` (`CustomTextCLIP.text`)."""

    module: CLIP | TextTransformer  # has token_embedding, positional_embedding, transformer, ln_final, text_projection
    pool_type: str
    eos_id: int | None


def encode_text_trimmed(model: ClipModel, tokens: torch.Tensor) -> torch.Tensor:
    """`model.encode_text(tokens)`, computed on the tokens trimmed to the batch's longest text.
    tokens: (N, context_length) long -> (N, D)"""
    trim, forward = trimmed_text(model)
    return forward(trim(tokens))


TokenMap = Callable[[torch.Tensor], torch.Tensor]


def trimmed_text(model: ClipModel) -> tuple[TokenMap, TokenMap]:
    """(trim, forward) with `forward(trim(tokens))` = `model.encode_text(tokens)`: `trim` drops the
    padding columns no kept position can see, `forward` encodes what is left."""
    tower = causal_tower(model)
    if tower is not None:
        return (lambda tokens: tokens[:, : _causal_length(tower, tokens)]), partial(_encode_causal, tower)
    if _has_masked_hf_tower(model):
        pad_id = model.text.config.pad_token_id
        return (lambda tokens: tokens[:, : _unpadded_length(tokens, pad_id)]), model.encode_text
    return (lambda tokens: tokens), model.encode_text


def causal_tower(model: ClipModel) -> CausalTower | None:
    """The model's text tower when it is causal and pools a token trimming keeps; else None."""
    if isinstance(model, CLIP):
        tower = CausalTower(model, model.text_pool_type, getattr(model, "text_eos_id", None))
    elif isinstance(model, CustomTextCLIP) and isinstance(model.text, TextTransformer):
        text = model.text
        if text.cls_emb is not None or text.use_pad_mask:
            return None
        tower = CausalTower(text, text.pool_type, getattr(text, "eos_id", None))
    else:
        return None
    causal = getattr(tower.module, "attn_mask", None) is not None
    known_end = tower.pool_type == "argmax" or tower.eos_id is not None  # "eos" pooling needs the id
    return tower if causal and tower.pool_type in _CAUSAL_POOLS and known_end else None


def _causal_length(tower: CausalTower, tokens: torch.Tensor) -> int:
    """One past the last position any row pools from: the positions that can change the output."""
    if tokens.shape[0] == 0:
        return tokens.shape[1]
    if tower.pool_type == "argmax":
        pooled = tokens.argmax(dim=-1)  # the position text_global_pool takes, per row
    else:
        assert tower.eos_id is not None  # causal_tower keeps an "eos" tower only with its eos id
        pooled = tokens.eq(tower.eos_id).int().argmax(dim=-1)
    return int(pooled.max()) + 1


def _encode_causal(tower: CausalTower, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's causal text forward with the positional embedding and mask cut to the tokens."""
    parts, length = tower.module, tokens.shape[1]
    cast_dtype = parts.transformer.get_cast_dtype()
    x = parts.token_embedding(tokens).to(cast_dtype) + parts.positional_embedding[:length].to(cast_dtype)
    x = parts.transformer(x, attn_mask=parts.attn_mask[:length, :length])
    x = text_global_pool(parts.ln_final(x), tokens, tower.pool_type, eos_token_id=tower.eos_id)
    projection = parts.text_projection
    if projection is None:
        return x
    return projection(x) if isinstance(projection, torch.nn.Linear) else x @ projection


def _has_masked_hf_tower(model: ClipModel) -> bool:
    text = getattr(model, "text", None)
    return (
        isinstance(model, CustomTextCLIP)
        and isinstance(text, HFTextEncoder)
        and isinstance(text.pooler, _EXACT_HF_POOLERS)
        and text.config.pad_token_id is not None
    )


def _unpadded_length(tokens: torch.Tensor, pad_id: int) -> int:
    """One past the last column that is not padding in some row."""
    used = (tokens != pad_id).any(dim=0).nonzero()
    return int(used.max()) + 1 if len(used) else tokens.shape[1]
