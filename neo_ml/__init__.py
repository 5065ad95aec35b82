"""Neo Alexandria ML workbench: the NCF recommender and, later, the taxonomy classifier.

The public face::

    from neo_ml import NCFService
    service = NCFService(db="sqlite:///data/neo_alexandria.db", model_path="models/ncf_benchmark_v1.pt")
    service.recommend("42", top_k=10)
"""

from neo_ml.errors import (
    CheckpointError,
    ColdStartError,
    DataFormatError,
    DataUnavailableError,
    NCFModelNotFoundError,
    NeoMLError,
)
from neo_ml.ncf.service import InvalidRequestError, NCFService

__all__ = [
    "CheckpointError",
    "ColdStartError",
    "DataFormatError",
    "DataUnavailableError",
    "InvalidRequestError",
    "NCFModelNotFoundError",
    "NCFService",
    "NeoMLError",
]
