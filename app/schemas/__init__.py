"""Request and response schemas, one module per resource."""

from app.schemas.classify import (
    ClassifyRequest,
    ClassifyResponse,
    ClassifyResult,
    Comparative,
    DifferenceRequest,
    DifferenceResponse,
    DifferenceResult,
    ImagePair,
    LabelScore,
)
from app.schemas.common import ImageInput
from app.schemas.embed import EmbedRequest, EmbedResponse
from app.schemas.rank import RankedImage, RankRequest, RankResponse
from app.schemas.system import HealthResponse, InfoResponse, ReadyResponse

__all__ = [
    "ClassifyRequest",
    "ClassifyResponse",
    "ClassifyResult",
    "Comparative",
    "DifferenceRequest",
    "DifferenceResponse",
    "DifferenceResult",
    "EmbedRequest",
    "EmbedResponse",
    "HealthResponse",
    "ImageInput",
    "ImagePair",
    "InfoResponse",
    "LabelScore",
    "RankRequest",
    "RankResponse",
    "RankedImage",
    "ReadyResponse",
]
