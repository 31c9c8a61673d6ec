"""Models: an encoder registry plus the age, VCOP and multitrain task models built around encoders."""
from pipeline.models import encoders, small_resnets  # noqa: F401  (importing registers every encoder)
from pipeline.models.tasks import AgeRegressor, MultiTrainModel, VCOPHead, VCOPModel
from pipeline.models.registry import build_encoder, list_encoders, register

__all__ = ["AgeRegressor", "MultiTrainModel", "VCOPHead", "VCOPModel", "build_encoder", "list_encoders", "register"]
