import open_clip
import pytest
import torch
from open_clip.transform import image_transform
from PIL import Image, ImageDraw

from models import Encoder, create_model
from models.encoder import resolve_device, resolve_precision
from models.generation.tiny import tiny_text_cfg
from models.geometry import normalize


def drawn(color: str, size: tuple[int, int] = (64, 64)) -> Image.Image:
    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).ellipse((10, 10, size[0] - 10, size[1] - 10), fill=color)
    return image


IMAGES = [drawn("red"), drawn("blue", (80, 50)), drawn("green"), Image.new("RGBA", (30, 30), (0, 0, 0, 0))]
TEXTS = ["a red circle", "a blue square", "three small green triangles on the left", ""]


def test_embeddings_are_unit_norm_float32(encoder):
    for vectors in (encoder.encode_images(IMAGES), encoder.encode_texts(TEXTS)):
        assert vectors.dtype == torch.float32
        assert vectors.shape[1] == encoder.embed_dim
        torch.testing.assert_close(vectors.norm(dim=1), torch.ones(len(vectors)))


def test_batching_gives_the_same_vectors_as_one_by_one(encoder):
    batched = encoder.encode_images(IMAGES, batch_size=3)
    single = torch.cat([encoder.encode_images([image]) for image in IMAGES])
    torch.testing.assert_close(batched, single, atol=1e-5, rtol=0)
    batched_texts = encoder.encode_texts(TEXTS, batch_size=3)
    single_texts = torch.cat([encoder.encode_texts([text]) for text in TEXTS])
    torch.testing.assert_close(batched_texts, single_texts, atol=1e-5, rtol=0)


def test_transparency_is_composited_on_white(encoder):
    transparent = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    white = Image.new("RGB", (32, 32), "white")
    torch.testing.assert_close(encoder.encode_images([transparent]), encoder.encode_images([white]))


def test_empty_inputs_give_empty_matrices(encoder):
    assert encoder.encode_images([]).shape == (0, encoder.embed_dim)
    assert encoder.encode_texts([]).shape == (0, encoder.embed_dim)


def test_text_tower_is_the_minilm_sentence_encoder(encoder):
    # LiT-style: tiny-base's text side is MiniLM mean pooling, which knows paraphrases
    a, b, c = encoder.encode_texts(["a photo of a dog", "a picture of a puppy", "a bowl of soup"])
    assert a @ b > a @ c + 0.2


def test_info_names_spec_fingerprint_and_device(encoder):
    info = encoder.info()
    assert info["spec"] == "tiny-base"
    assert len(info["fingerprint"]) == 64
    assert info["device"] == "cpu" and info["dtype"] == "float32"


def test_fingerprint_is_stable_across_loads(encoder):
    assert create_model("tiny-base", device="cpu").fingerprint == encoder.fingerprint


def test_tiny_is_the_pc_clip_finetune_of_tiny_base(encoder):
    tiny = create_model("tiny", device="cpu")
    assert tiny.spec == "tiny" and tiny.base == "tiny-base"
    assert tiny.fingerprint != encoder.fingerprint
    # the finetune touched the text tower only: same image embeddings, different text ones
    torch.testing.assert_close(tiny.encode_images(IMAGES), encoder.encode_images(IMAGES), atol=0, rtol=0)
    assert not torch.allclose(tiny.encode_texts(TEXTS[:2]), encoder.encode_texts(TEXTS[:2]), atol=1e-3)


def test_random_openclip_models_are_reproducible():
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    first = create_model("openclip:ViT-S-32/random", device="cpu")
    assert torch.equal(torch.rand(3), expected)  # built under its own seed; the caller's stream is untouched
    second = create_model("openclip:ViT-S-32/random", device="cpu")
    image = [drawn("red")]
    torch.testing.assert_close(first.encode_images(image), second.encode_images(image))
    assert first.fingerprint == second.fingerprint
    assert "random" in " ".join(first.notes)


@pytest.mark.parametrize(
    ("device", "precision", "expected"), [("cpu", "auto", torch.float32), ("cpu", "bf16", torch.bfloat16)]
)
def test_precision_is_resolved_in_one_place(device, precision, expected):
    assert resolve_precision(resolve_device(device), precision) == expected


def test_asking_for_cuda_without_a_gpu_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(ValueError, match="no CUDA GPU"):
        resolve_device("cuda")


def test_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision(torch.device("cpu"), "fp8")


def test_a_checkpoint_shares_its_base_image_identity_only_while_it_leaves_the_image_tower_alone(tmp_path):
    from models import save_checkpoint

    base, tiny = create_model("tiny-base", device="cpu"), create_model("tiny", device="cpu")
    assert tiny.fingerprint != base.fingerprint and tiny.image_identity == base.image_identity
    name, parameter = next((n, p) for n, p in base.model.named_parameters() if n.startswith("visual."))
    save_checkpoint(tmp_path / "ckpt", {name: parameter.detach() + 1}, base="tiny-base",
                    base_fingerprint=base.fingerprint, training={})
    changed = create_model(str(tmp_path / "ckpt"), device="cpu")
    assert changed.image_identity == changed.fingerprint != base.image_identity


TRIM_SPECS = ["tiny", "tiny-base", "openclip:ViT-B-32/random"]
SHORT_TEXTS = ["dog", "a red circle on a white square", "", "three small green triangles on the left"]
LONG_TEXT = " ".join(["a very long caption about many things"] * 20)  # past 77 tokens: truncated


@pytest.fixture(scope="module", params=TRIM_SPECS)
def text_encoder(request):
    return create_model(request.param, device="cpu")


def full_length_vectors(encoder, texts):
    """What encode_texts gave before trimming: the model's own forward on the padded tokens."""
    with torch.inference_mode():
        return normalize(encoder.model.encode_text(encoder.tokenize(texts)).float())


def token_lengths_seen(encoder, texts, **options) -> list[int]:
    """Sequence lengths that reached the text tower's token embedding while encoding `texts`."""
    model = encoder.model
    embedding = model.text.transformer.embeddings.word_embeddings if hasattr(model, "text") else model.token_embedding
    seen: list[int] = []
    handle = embedding.register_forward_pre_hook(lambda module, args: seen.append(args[0].shape[1]))
    try:
        encoder.encode_texts(texts, **options)
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("batch_size", [256, 2, 1])
def test_trimmed_text_batches_give_the_full_length_vectors(text_encoder, batch_size):
    texts = [*SHORT_TEXTS, LONG_TEXT]
    assert text_encoder.tokenize([LONG_TEXT]).ne(0).all()  # fills the whole context: the truncated case
    trimmed = text_encoder.encode_texts(texts, batch_size=batch_size)
    torch.testing.assert_close(trimmed, full_length_vectors(text_encoder, texts), atol=1e-5, rtol=0)


def test_the_text_tower_sees_only_the_longest_text_of_the_batch(text_encoder):
    tokens = text_encoder.tokenize(SHORT_TEXTS)
    longest = int(tokens.ne(0).sum(dim=1).max())
    assert longest < tokens.shape[1]
    assert token_lengths_seen(text_encoder, SHORT_TEXTS) == [longest]
    assert token_lengths_seen(text_encoder, ["dog", LONG_TEXT], batch_size=1) == [3, tokens.shape[1]]


def small_vit_encoder(image_size: int, patch_size: int, width: int) -> Encoder:
    vision = {"image_size": image_size, "layers": 1, "width": width, "patch_size": patch_size, "head_width": 16}
    model = open_clip.CLIP(embed_dim=24, vision_cfg=vision, text_cfg=tiny_text_cfg()).eval()
    return Encoder(
        model=model, preprocess=image_transform(image_size, is_train=False), tokenizer=open_clip.SimpleTokenizer(),
        spec="test-vit", fingerprint="v" * 64, device=torch.device("cpu"), dtype=torch.float32,
    )  # fmt: skip


@pytest.mark.parametrize(("image_size", "patch_size", "width"), [(64, 16, 32), (64, 8, 48)])
def test_a_vits_largest_activation_is_its_mlp_hidden_layer(image_size, patch_size, width):
    tokens = (image_size // patch_size) ** 2 + 1  # the patches and the class token
    encoder = small_vit_encoder(image_size, patch_size, width)
    assert encoder.image_activation_bytes() == tokens * 4 * width * 4  # MLP ratio 4, float32


def test_the_largest_activation_of_the_shipped_convolutional_tower(encoder):
    assert encoder.image_activation_bytes() == 16 * 32 * 32 * 4  # its stem: 16 channels at half the 64-pixel side
