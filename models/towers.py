"""Which parameters are "the text transformer" that PC-CLIP finetunes (PAPER.md).

open_clip's own CLIP: the blocks of `model.transformer` (token and positional embeddings,
final layer norm, projection and logit scale stay frozen). A Hugging Face text tower (the
tiny model's MiniLM): its encoder layers (`text.transformer.encoder.layer.*`), with the
word embeddings, pooler and projection frozen.
"""

from __future__ import annotations

import torch

_TEXT_BLOCK_PREFIXES = ("transformer.", "text.transformer.encoder.layer.")


def text_block_names(model: torch.nn.Module) -> list[str]:
    """Names of the parameters PC-CLIP trains, in `model.named_parameters()` order."""
    names = [name for name, _ in model.named_parameters() if name.startswith(_TEXT_BLOCK_PREFIXES)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no text transformer blocks under {_TEXT_BLOCK_PREFIXES}")
    return names


def text_block_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Detached copies of the trainable text-transformer parameters."""
    parameters = dict(model.named_parameters())
    return {name: parameters[name].detach().clone() for name in text_block_names(model)}
