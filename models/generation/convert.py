"""open_clip text tower (CLIP architecture) → transformers `CLIPTextModel` weights.

SDXL's `text_encoder` is a transformers `CLIPTextModel` (OpenAI CLIP ViT-L/14's text tower).
A PC-CLIP finetuned from `openclip:ViT-L-14/openai` has exactly that architecture, under
open_clip's parameter names. The mapping, per residual block i:

    transformer.resblocks.i.attn.in_proj_{weight,bias}  (3W, W) fused q|k|v
        → text_model.encoder.layers.i.self_attn.{q,k,v}_proj.{weight,bias}   (W, W) each
    transformer.resblocks.i.attn.out_proj               → ….self_attn.out_proj
    transformer.resblocks.i.ln_1 / ln_2                 → ….layer_norm1 / layer_norm2
    transformer.resblocks.i.mlp.c_fc / c_proj           → ….mlp.fc1 / fc2

and once: token_embedding → text_model.embeddings.token_embedding, positional_embedding →
text_model.embeddings.position_embedding, ln_final → text_model.final_layer_norm,
text_projection (W, E), used as x @ P → text_projection.weight (E, W) = Pᵀ (only for
`CLIPTextModelWithProjection`).

Semantics that must agree, and are checked by `can_convert`:
- activation: open_clip's `QuickGELU` (OpenAI weights) → "quick_gelu", `nn.GELU` → "gelu",
  `nn.GELU(approximate="tanh")` → "gelu_pytorch_tanh";
- attention mask: open_clip's CLIP text tower is causal (an additive −inf upper triangle, no
  padding mask) and transformers' `CLIPTextModel` always applies the same causal mask; a tower
  built with `no_causal_mask` cannot be converted;
- pooling: open_clip pools the token with the largest id (`pool_type="argmax"`, the EOS of the
  CLIP BPE). transformers does the same when `eos_token_id == 2` (its legacy argmax branch),
  so the converted config sets `eos_token_id=2` — exact for any tokenizer;
- plain pre-norm blocks: no layer scale, no q/k norm, no extra norms, LayerNorm everywhere
  with one epsilon.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import nn

if TYPE_CHECKING:
    from open_clip.transformer import ResidualAttentionBlock

    from models.encoder import ClipModel

_ACTIVATIONS = {"QuickGELU": "quick_gelu"}
_ARGMAX_EOS_ID = 2  # transformers' CLIP pools by argmax(input_ids) for exactly this id


def can_convert(model: Any) -> tuple[bool, str]:
    """Whether `model` (an `Encoder` or its open_clip model) converts to `CLIPTextModel`, and why not.

    The reason is a sentence for `/info` and reports; empty when the model converts.
    """
    model = getattr(model, "model", model)  # Encoder → its open_clip CLIP
    name = type(model).__name__
    if hasattr(model, "text") and not hasattr(model, "transformer"):
        return False, (
            f"its text tower is a {type(model.text).__name__} (e.g. the tiny models' MiniLM), "
            "not an open_clip CLIP text transformer; only CLIP-architecture text towers "
            "(e.g. openclip:ViT-L-14/openai and its PC-CLIP checkpoints) convert"
        )
    for part in ("transformer", "token_embedding", "positional_embedding", "ln_final"):
        if not hasattr(model, part):
            return False, f"{name} has no `{part}`: not an open_clip CLIP text tower"
    if getattr(model, "attn_mask", None) is None:
        return False, "its text tower is not causal (no_causal_mask); transformers' CLIPTextModel always is"
    pool = getattr(model, "text_pool_type", "argmax")
    if pool != "argmax":
        return False, f"its text tower pools with {pool!r}; only 'argmax' (CLIP's EOS pooling) converts"
    projection = getattr(model, "text_projection", None)
    if isinstance(projection, nn.Linear) and projection.bias is not None:
        return False, "its text projection has a bias; CLIPTextModelWithProjection's has none"
    if not isinstance(model.ln_final, nn.LayerNorm):
        return False, f"its final norm is {type(model.ln_final).__name__}, not LayerNorm"
    eps = model.ln_final.eps
    for index, block in enumerate(model.transformer.resblocks):
        problem = _block_problem(block, eps)
        if problem:
            return False, f"text block {index}: {problem}"
    return True, ""


def _block_problem(block: ResidualAttentionBlock, eps: float) -> str:
    if not isinstance(getattr(block, "attn", None), nn.MultiheadAttention):
        return "attention is not a plain nn.MultiheadAttention (custom attention block)"
    if block.attn.in_proj_weight is None or block.attn.in_proj_bias is None:
        return "attention has no fused biased q/k/v projection"
    for extra in ("ln_1_kv", "ln_attn"):
        if isinstance(getattr(block, extra, None), nn.LayerNorm):
            return f"has an extra norm `{extra}`"
    for scale in ("ls_1", "ls_2"):
        if not isinstance(getattr(block, scale, nn.Identity()), nn.Identity):
            return "uses layer scale"
    for norm in (block.ln_1, block.ln_2):
        if not isinstance(norm, nn.LayerNorm) or norm.eps != eps:
            return "norms are not LayerNorms with the final norm's epsilon"
    mlp = block.mlp
    if set(dict(mlp.named_children())) != {"c_fc", "gelu", "c_proj"}:
        return f"MLP has parts {sorted(dict(mlp.named_children()))}, expected c_fc, gelu, c_proj"
    if activation_name(mlp.gelu) is None:
        return f"activation {type(mlp.gelu).__name__} has no transformers equivalent"
    return ""


def activation_name(module: nn.Module) -> str | None:
    """transformers' name (ACT2FN) of an open_clip MLP activation, or None."""
    if isinstance(module, nn.GELU):
        return "gelu_pytorch_tanh" if module.approximate == "tanh" else "gelu"
    return _ACTIVATIONS.get(type(module).__name__)


def text_config(model: ClipModel) -> dict[str, Any]:
    """`CLIPTextConfig` keyword arguments describing `model`'s text tower."""
    blocks = model.transformer.resblocks
    first = blocks[0]
    width = model.token_embedding.embedding_dim
    projection = _projection_matrix(model)  # (W, E) or None
    return {
        "vocab_size": model.token_embedding.num_embeddings,
        "hidden_size": width,
        "intermediate_size": first.mlp.c_fc.out_features,
        "num_hidden_layers": len(blocks),
        "num_attention_heads": first.attn.num_heads,
        "max_position_embeddings": model.positional_embedding.shape[0],
        "hidden_act": activation_name(first.mlp.gelu),
        "layer_norm_eps": model.ln_final.eps,
        "projection_dim": int(projection.shape[1]) if projection is not None else width,
        "bos_token_id": model.token_embedding.num_embeddings - 2,
        "eos_token_id": _ARGMAX_EOS_ID,
        "pad_token_id": 1,
    }


def convert_state_dict(model: ClipModel, *, with_projection: bool = False) -> dict[str, torch.Tensor]:
    """open_clip text-tower parameters under the checkpoint names of SDXL's `text_encoder`
    (`text_model.…`; copies). `for_module` adapts them to a module in memory."""
    ok, reason = can_convert(model)
    if not ok:
        raise ValueError(f"cannot convert {type(model).__name__}: {reason}")
    prefix = "text_model."
    out: dict[str, torch.Tensor] = {
        f"{prefix}embeddings.token_embedding.weight": model.token_embedding.weight,
        f"{prefix}embeddings.position_embedding.weight": model.positional_embedding,
        f"{prefix}final_layer_norm.weight": model.ln_final.weight,
        f"{prefix}final_layer_norm.bias": model.ln_final.bias,
    }
    for i, block in enumerate(model.transformer.resblocks):
        layer = f"{prefix}encoder.layers.{i}."
        q_w, k_w, v_w = block.attn.in_proj_weight.chunk(3, dim=0)  # (W, W) each
        q_b, k_b, v_b = block.attn.in_proj_bias.chunk(3, dim=0)  # (W,) each
        for name, weight, bias in (("q_proj", q_w, q_b), ("k_proj", k_w, k_b), ("v_proj", v_w, v_b)):
            out[f"{layer}self_attn.{name}.weight"] = weight
            out[f"{layer}self_attn.{name}.bias"] = bias
        pairs = {
            "self_attn.out_proj": block.attn.out_proj,
            "layer_norm1": block.ln_1,
            "layer_norm2": block.ln_2,
            "mlp.fc1": block.mlp.c_fc,
            "mlp.fc2": block.mlp.c_proj,
        }
        for target, source in pairs.items():
            out[f"{layer}{target}.weight"] = source.weight
            out[f"{layer}{target}.bias"] = source.bias
    if with_projection:
        projection = _projection_matrix(model)
        if projection is None:
            raise ValueError("the text tower has no projection; convert without it (CLIPTextModel)")
        out["text_projection.weight"] = projection.T  # x @ P  ==  Linear with weight Pᵀ
    return {name: tensor.detach().clone().contiguous() for name, tensor in out.items()}


def to_transformers(model: Any, *, with_projection: bool = False) -> nn.Module:
    """A transformers `CLIPTextModel` (or `…WithProjection`) computing `model`'s text tower, in eval mode.

    `model` is an `Encoder` or its open_clip CLIP. The result is float32 on CPU; move it where
    it is used.
    """
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    model = getattr(model, "model", model)
    converted = convert_state_dict(model, with_projection=with_projection)
    state = {name: tensor.float().cpu() for name, tensor in converted.items()}
    config = CLIPTextConfig(**text_config(model))
    module = (CLIPTextModelWithProjection if with_projection else CLIPTextModel)(config)
    module.load_state_dict(for_module(module, state), strict=True)
    return module.eval()


def for_module(module: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Checkpoint names (`text_model.…`, as in SDXL's `text_encoder/model.safetensors`) → the
    names of `module` in memory (transformers 5's `CLIPTextModel` has no `text_model.` level)."""
    if any(name.startswith("text_model.") for name in module.state_dict()):
        return state
    return {name.removeprefix("text_model."): tensor for name, tensor in state.items()}


def _projection_matrix(model: ClipModel) -> torch.Tensor | None:
    """The text projection as a (W, E) matrix used as x @ P, or None."""
    projection = getattr(model, "text_projection", None)
    if isinstance(projection, nn.Linear):
        return projection.weight.T
    if isinstance(projection, torch.Tensor) and projection.ndim == 2:
        return projection
    return None
