"""A tiny, randomly initialised SDXL built offline from diffusers' and transformers' own classes.

No registry ships SDXL weights (OFFLINE.md). This pipeline has SDXL's exact structure — two
CLIP text encoders (the second with projection, giving the pooled vector), a UNet with
`addition_embed_type="text_time"`, a VAE, an Euler scheduler and the real CLIP BPE tokenizer
(rebuilt from open_clip's bundled vocabulary) — at toy sizes, so every code path runs in
tenths of a second. It draws noise: for tests and benchmarks of the plumbing, never for
judging images. Its first text encoder matches `tiny_text_cfg()`, so a tiny open_clip CLIP
with that text config can take its `text_encoder` slot.
"""

from __future__ import annotations

from typing import Any

import torch

TEXT_WIDTH = 32  # both text encoders; the UNet's cross-attention sees 2 × 32
TIME_EMBED_DIM = 8  # per time id; SDXL has 6 time ids


def tiny_text_cfg() -> dict[str, Any]:
    """open_clip `text_cfg` of a text tower that fits the tiny SDXL's `text_encoder` slot."""
    return {"context_length": 77, "vocab_size": 49408, "width": TEXT_WIDTH, "heads": 4, "layers": 2}


def clip_tokenizer():
    """The real CLIP BPE tokenizer (SDXL's), rebuilt offline from open_clip's bundled vocabulary."""
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import CLIPTokenizer

    bpe = SimpleTokenizer()
    specials = {"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}
    vocab = {specials.get(token, token): index for token, index in bpe.encoder.items()}
    merges = [pair for pair, _ in sorted(bpe.bpe_ranks.items(), key=lambda item: item[1])]
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)


def build_tiny_sdxl(seed: int = 0):
    """A `StableDiffusionXLPipeline` with random weights (CPU, float32)."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    text: dict[str, Any] = {
        "vocab_size": 49408, "hidden_size": TEXT_WIDTH, "intermediate_size": 4 * TEXT_WIDTH,
        "num_hidden_layers": 2, "num_attention_heads": 4, "max_position_embeddings": 77,
        "projection_dim": TEXT_WIDTH, "bos_token_id": 49406, "eos_token_id": 2, "pad_token_id": 1,
    }
    text_encoder = CLIPTextModel(CLIPTextConfig(**text, hidden_act="quick_gelu"))
    text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(**text, hidden_act="gelu"))
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        transformer_layers_per_block=(1, 1),
        use_linear_projection=True,
        cross_attention_dim=2 * TEXT_WIDTH,  # [text_encoder | text_encoder_2] hidden states
        addition_embed_type="text_time",
        addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + TEXT_WIDTH,  # time ids + pooled
        norm_num_groups=32,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=32,
        norm_num_groups=32,
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", timestep_spacing="leading", steps_offset=1
    )
    tokenizer = clip_tokenizer()
    return StableDiffusionXLPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=scheduler,
        add_watermarker=False,
    )
