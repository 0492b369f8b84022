"""The PC-CLIP model core, shared by training and serving (imports neither)."""

from models import geometry
from models.checkpoint import Checkpoint, CheckpointError, apply_checkpoint, load_checkpoint, save_checkpoint
from models.encoder import Encoder
from models.factory import create_model
from models.spec import ModelSpec, SpecError, parse_spec

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Encoder",
    "ModelSpec",
    "SpecError",
    "apply_checkpoint",
    "create_model",
    "geometry",
    "load_checkpoint",
    "parse_spec",
    "save_checkpoint",
]
