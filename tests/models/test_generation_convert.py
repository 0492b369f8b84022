"""open_clip text tower → transformers CLIPTextModel: same numbers, layer by layer."""

from __future__ import annotations

import open_clip
import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from models.generation.convert import can_convert, convert_state_dict, for_module, text_config, to_transformers

TINY_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}
TINY_VISION = {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16}


def tiny_openclip(*, quick_gelu: bool, seed: int = 0, **text) -> open_clip.CLIP:
    """An open_clip CLIP with a tiny text tower of CLIP architecture, random weights (biases too)."""
    torch.manual_seed(seed)
    model = open_clip.CLIP(
        embed_dim=24, vision_cfg=TINY_VISION, text_cfg={**TINY_TEXT, **text}, quick_gelu=quick_gelu
    ).eval()
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("bias") or "ln_" in name:  # not the init's zeros/ones: every mapping shows
                parameter.add_(torch.randn_like(parameter) * 0.1)
    return model


def tokens(model: open_clip.CLIP) -> torch.Tensor:
    """Real BPE token ids of texts of different lengths, zero-padded like open_clip's tokenizer."""
    tokenizer = open_clip.SimpleTokenizer(context_length=model.positional_embedding.shape[0])
    return tokenizer(["a forest", "a snowy forest at dawn, photographed from above", ""])  # (3, 77)


def reference_hidden_states(model: open_clip.CLIP, ids: torch.Tensor) -> list[torch.Tensor]:
    """open_clip's own forward, with the output of every residual block captured by hooks."""
    outputs: list[torch.Tensor] = []
    hooks = [
        block.register_forward_hook(lambda _m, _i, out: outputs.append(out)) for block in model.transformer.resblocks
    ]
    try:
        with torch.no_grad():
            embeddings = model.token_embedding(ids) + model.positional_embedding  # (B, L, W)
            model.encode_text(ids)
    finally:
        for hook in hooks:
            hook.remove()
    if outputs[0].shape[0] != ids.shape[0]:  # sequence-first transformer
        outputs = [out.transpose(0, 1) for out in outputs]
    return [embeddings, *outputs]


@pytest.mark.parametrize("quick_gelu", [True, False], ids=["quick_gelu(openai)", "gelu"])
def test_converted_tower_computes_the_same_hidden_states_pooled_and_projection(quick_gelu):
    model = tiny_openclip(quick_gelu=quick_gelu)
    ids = tokens(model)
    converted = to_transformers(model, with_projection=True)
    assert converted.config.hidden_act == ("quick_gelu" if quick_gelu else "gelu")

    with torch.no_grad():
        out = converted(ids, output_hidden_states=True)
        expected_pooled = model.encode_text(ids)  # (3, E): EOS token after ln_final, projected
    expected = reference_hidden_states(model, ids)

    assert len(out.hidden_states) == len(expected) == 3  # embeddings + 2 layers
    for layer, (ours, theirs) in enumerate(zip(out.hidden_states, expected, strict=True)):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0, msg=f"hidden state {layer}")
    torch.testing.assert_close(out.last_hidden_state, model.ln_final(expected[-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.text_embeds, expected_pooled, atol=1e-5, rtol=0)


def test_plain_clip_text_model_loads_the_same_weights_without_projection():
    model = tiny_openclip(quick_gelu=True, seed=1)
    ids = tokens(model)
    config = CLIPTextConfig(**text_config(model))
    plain = CLIPTextModel(config).eval()
    plain.load_state_dict(for_module(plain, convert_state_dict(model)), strict=True)  # every name maps, none left over
    with torch.no_grad():
        pooled = plain(ids).pooler_output  # (3, W): EOS token after ln_final
        x = model.ln_final(reference_hidden_states(model, ids)[-1])
    torch.testing.assert_close(pooled, x[torch.arange(3), ids.argmax(-1)], atol=1e-5, rtol=0)


def test_causal_mask_means_a_token_ignores_what_follows():
    converted = to_transformers(tiny_openclip(quick_gelu=True))
    ids = tokens(tiny_openclip(quick_gelu=True))
    changed = ids.clone()
    changed[:, 5:] = 320  # rewrite everything from position 5 on
    with torch.no_grad():
        before = converted(ids).last_hidden_state
        after = converted(changed).last_hidden_state
    torch.testing.assert_close(before[:, :5], after[:, :5], atol=1e-6, rtol=0)


def test_the_tiny_models_hf_text_tower_cannot_take_the_slot(encoder):
    ok, reason = can_convert(encoder)
    assert not ok
    assert "MiniLM" in reason and "openclip:ViT-L-14/openai" in reason


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ({"no_causal_mask": True}, "not causal"),
        ({"pool_type": "last"}, "pools with 'last'"),
        ({"ls_init_value": 0.1}, "layer scale"),
    ],
)
def test_incompatible_text_towers_are_refused_with_the_reason(text, phrase):
    model = tiny_openclip(quick_gelu=True, **text)
    ok, reason = can_convert(model)
    assert not ok and phrase in reason
    with pytest.raises(ValueError, match=phrase):
        convert_state_dict(model)
