"""Schemas of /classify and /classify/difference."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from app.schemas.common import ImageInput, RequestModel, ResponseModel, Text
from app.schemas.examples import BLUE, GREEN, RED
from app.schemas.limits import MAX_CHARS, MAX_ITEMS

DEFAULT_TEMPLATE = "This is a photo of a {}"
Template = Annotated[str, MAX_CHARS]  # the prompts it makes are checked by the service (template × label)


class Comparative(RequestModel):
    """Prior knowledge about two confusable labels, written "first …, while second …"."""

    first: Text = Field(description="A label of the request (the pair's first class).")
    second: Text = Field(description="A label of the request; this class's prototype moves.")
    text: Text = Field(description="How the first differs from the second, in words.")


Comparatives = Annotated[list[Comparative], MAX_ITEMS]


class ClassifyRequest(RequestModel):
    images: Annotated[list[ImageInput], MAX_ITEMS] = Field(min_length=1, description="Images to classify.")
    labels: Annotated[list[Text], MAX_ITEMS] = Field(
        min_length=1, description="Candidate labels (distinct).", json_schema_extra={"uniqueItems": True}
    )
    template: Template = Field(
        DEFAULT_TEMPLATE,
        description='Prompt for each label; "{}" is replaced by the label. The template and each prompt it '
        "makes are at most PCCLIP_MAX_TEXT_CHARS characters.",
    )
    comparatives: Comparatives = Field(
        default_factory=list,
        description="Comparative prompting (PC-CLIP paper): each moves the prototype of its "
        "`second` label by the difference text.",
    )
    alpha: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Weight kept on the original prototype of a moved label (1 = no change).",
    )
    top_k: int | None = Field(None, ge=1, description="Labels returned per image, best first; default all.")


CLASSIFY_EXAMPLES = {
    "zero-shot": {
        "summary": "Zero-shot over colour names",
        "value": {"images": [RED, BLUE], "labels": ["red", "blue", "green"], "top_k": 2},
    },
    "comparative": {
        "summary": "With comparative prompting",
        "value": {
            "images": [RED],
            "labels": ["red square", "orange square"],
            "template": "a picture of a {}",
            "comparatives": [
                {
                    "first": "red square",
                    "second": "orange square",
                    "text": "the red square is deeper red, while the orange square is lighter",
                }
            ],
            "alpha": 0.8,
        },
    },
}


class LabelScore(ResponseModel):
    label: str
    score: float = Field(description="Cosine similarity of the image and the label prototype.")


class ClassifyResult(ResponseModel):
    labels: list[LabelScore] = Field(description="Labels, best first.")


class ClassifyResponse(ResponseModel):
    results: list[ClassifyResult] = Field(description="One result per image, in request order.")


class ImagePair(RequestModel):
    first: ImageInput
    second: ImageInput


class DifferenceRequest(RequestModel):
    pairs: Annotated[list[ImagePair], MAX_ITEMS] = Field(min_length=1, description="Image pairs to compare.")
    texts: Annotated[list[Text], MAX_ITEMS] = Field(
        min_length=1, description='Candidate difference texts ("the first … than the second").'
    )


DIFFERENCE_EXAMPLES = {
    "colours": {
        "summary": "Which colour change reads best",
        "value": {
            "pairs": [{"first": RED, "second": BLUE}, {"first": GREEN, "second": RED}],
            "texts": [
                "the first image is red while the second is blue",
                "the first image is green while the second is red",
            ],
        },
    }
}


class DifferenceResult(ResponseModel):
    scores: list[float] | None = Field(
        description="Per text: cosine of the text embedding with normalize(first − second); "
        "null when the pair cannot be scored (see `reason`)."
    )
    best: str | None = Field(description="The text with the largest |score|; null when `scores` is.")
    reversed: bool | None = Field(
        description="The best text's score is negative: the pair reads better swapped; null when `scores` is."
    )
    reason: str | None = Field(
        None,
        description="Why `scores` is null: the pair's two images have the same embedding (identical images?), "
        "so their difference has no direction to score. Null for a scored pair.",
    )


class DifferenceResponse(ResponseModel):
    results: list[DifferenceResult] = Field(description="One result per pair, in request order.")
