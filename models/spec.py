"""Model specs: the one string that names a model in flags, settings, `/info` and reports.

Forms (see DESIGN.md):
  tiny                         the embedded default PC-CLIP model (package data)
  tiny-base                    the embedded base model before PC-CLIP finetuning
  openclip:ARCH/PRETRAINED     an open_clip architecture with a pretrained tag
  openclip:ARCH/random         that architecture, randomly initialised (benchmarks only)
  PATH                         a checkpoint folder written by `pcclip finetune`
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EMBEDDED = ("tiny", "tiny-base")
OPENCLIP_PREFIX = "openclip:"
RANDOM_TAG = "random"
VALID_FORMS = (
    "tiny, tiny-base, openclip:ARCH/PRETRAINED (e.g. openclip:ViT-L-14/datacomp_xl_s13b_b90k), "
    "openclip:ARCH/random, or a path to a checkpoint folder written by `pcclip finetune`"
)


class SpecError(ValueError):
    """A model spec that names no model this installation can build."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec. `kind` is one of "embedded", "openclip", "checkpoint"."""

    kind: str
    name: str = ""  # embedded: "tiny" | "tiny-base"
    arch: str = ""  # openclip: e.g. "ViT-B-32"
    pretrained: str = ""  # openclip: tag, or "random"
    path: Path | None = None  # checkpoint folder

    def __str__(self) -> str:
        if self.kind == "embedded":
            return self.name
        if self.kind == "openclip":
            return f"{OPENCLIP_PREFIX}{self.arch}/{self.pretrained}"
        return str(self.path)


def parse_spec(text: str) -> ModelSpec:
    """Parse a model spec string; raise `SpecError` naming the valid forms."""
    spec = text.strip()
    if not spec:
        raise SpecError(f"empty model spec; expected one of: {VALID_FORMS}")
    if spec in EMBEDDED:
        return ModelSpec(kind="embedded", name=spec)
    if spec.startswith(OPENCLIP_PREFIX):
        return _parse_openclip(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        if not (path / "metadata.json").is_file():
            raise SpecError(f"{path} is a folder but not a pcclip checkpoint (no metadata.json)")
        return ModelSpec(kind="checkpoint", path=path.resolve())
    raise SpecError(f"unknown model spec {text!r}; expected one of: {VALID_FORMS}")


def _parse_openclip(spec: str) -> ModelSpec:
    import open_clip

    body = spec[len(OPENCLIP_PREFIX):]
    arch, sep, pretrained = body.partition("/")
    if not sep or not arch or not pretrained:
        raise SpecError(f"{spec!r}: expected openclip:ARCH/PRETRAINED, e.g. openclip:ViT-B-32/random")
    archs = open_clip.list_models()
    if arch not in archs:
        raise SpecError(f"{spec!r}: unknown open_clip architecture {arch!r}. Available: {', '.join(archs)}")
    if pretrained != RANDOM_TAG:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        if pretrained not in tags:
            choices = ", ".join([RANDOM_TAG, *tags])
            raise SpecError(f"{spec!r}: unknown pretrained tag {pretrained!r} for {arch}. Available: {choices}")
    return ModelSpec(kind="openclip", arch=arch, pretrained=pretrained)
