"""Trimming to the batch's longest text on open_clip text towers the shipped specs do not cover:
a causal `TextTransformer` in a `CustomTextCLIP` (EVA, PE-Core) is trimmed; a bidirectional one
(SigLIP) is not, since every position there sees the padding."""

import open_clip
import pytest
import torch
from open_clip.model import CustomTextCLIP

from models.trimmed_text import causal_tower, encode_text_trimmed

TEXTS = ["dog", "a red circle on a white square", ""]
SMALL_VISION = {"image_size": 32, "layers": 1, "width": 64, "patch_size": 16}


def custom_text_clip(**text_cfg) -> CustomTextCLIP:
    torch.manual_seed(0)
    text = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2, **text_cfg}
    return CustomTextCLIP(embed_dim=16, vision_cfg=SMALL_VISION, text_cfg=text).eval()


def encode_seeing_lengths(model: CustomTextCLIP, tokens: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    seen: list[int] = []
    handle = model.text.token_embedding.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    try:
        with torch.inference_mode():
            return encode_text_trimmed(model, tokens), seen
    finally:
        handle.remove()


@pytest.mark.parametrize(
    ("text_cfg", "trimmed"),
    [({}, True), ({"pool_type": "eos", "eos_id": 49407}, True), ({"no_causal_mask": True, "pool_type": "last"}, False)],
)
def test_custom_text_towers_are_trimmed_only_when_that_is_exact(text_cfg, trimmed):
    model = custom_text_clip(**text_cfg)
    tokens = open_clip.get_tokenizer("ViT-B-32")(TEXTS)
    vectors, seen = encode_seeing_lengths(model, tokens)
    with torch.inference_mode():
        torch.testing.assert_close(vectors, model.encode_text(tokens), atol=1e-5, rtol=0)
    assert (causal_tower(model) is not None) is trimmed
    assert seen == [int(tokens.ne(0).sum(dim=1).max()) if trimmed else tokens.shape[1]]
