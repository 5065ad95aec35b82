"""Neo Alexandria ML workbench: the NCF recommender and the taxonomy classifier.

The public face::

    from neo_ml import NCFService
    service = NCFService(db="sqlite:///data/neo_alexandria.db", model_path="models/ncf_benchmark_v1.pt")
    service.recommend("42", top_k=10)
"""

from neo_ml.classification.service import ClassificationResult, MLClassificationService
from neo_ml.errors import (
    CheckpointError,
    CheckpointIntegrityError,
    ClassifierNotFoundError,
    ColdStartError,
    DatabaseError,
    DataFormatError,
    DataUnavailableError,
    InvalidRequestError,
    NCFModelNotFoundError,
    NeoMLError,
)
from neo_ml.ncf.service import NCFService

__all__ = [
    "CheckpointError",
    "CheckpointIntegrityError",
    "ClassificationResult",
    "ClassifierNotFoundError",
    "MLClassificationService",
    "ColdStartError",
    "DatabaseError",
    "DataFormatError",
    "DataUnavailableError",
    "InvalidRequestError",
    "NCFModelNotFoundError",
    "NCFService",
    "NeoMLError",
]
