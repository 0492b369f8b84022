import pytest

from models import SpecError, parse_spec


@pytest.mark.parametrize(
    ("text", "kind", "canonical"),
    [
        ("tiny", "embedded", "tiny"),
        ("tiny-base", "embedded", "tiny-base"),
        (" tiny ", "embedded", "tiny"),
        ("openclip:ViT-B-32/random", "openclip", "openclip:ViT-B-32/random"),
        ("openclip:ViT-L-14/datacomp_xl_s13b_b90k", "openclip", "openclip:ViT-L-14/datacomp_xl_s13b_b90k"),
        ("openclip:ViT-L-14/openai", "openclip", "openclip:ViT-L-14/openai"),
    ],
)
def test_valid_specs_parse_to_their_canonical_form(text, kind, canonical):
    spec = parse_spec(text)
    assert spec.kind == kind
    assert str(spec) == canonical


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty model spec"),
        ("huge", "unknown model spec 'huge'"),
        ("openclip:ViT-B-32", "expected openclip:ARCH/PRETRAINED"),
        ("openclip:NotAnArch/random", "Available: "),
        ("openclip:ViT-B-32/not-a-tag", "unknown pretrained tag 'not-a-tag'"),
    ],
)
def test_bad_specs_raise_an_error_naming_the_valid_choices(text, message):
    with pytest.raises(SpecError, match=message):
        parse_spec(text)


def test_a_folder_without_metadata_is_not_a_checkpoint(tmp_path):
    with pytest.raises(SpecError, match="not a pcclip checkpoint"):
        parse_spec(str(tmp_path))


def test_a_checkpoint_folder_parses_to_its_resolved_path(tmp_path):
    (tmp_path / "metadata.json").write_text("{}")
    spec = parse_spec(str(tmp_path))
    assert spec.kind == "checkpoint"
    assert spec.path == tmp_path.resolve()
