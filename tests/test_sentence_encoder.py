"""The packaged all-MiniLM-L6-v2, loaded offline from the installed wheel."""

import numpy as np
import pytest

from neo_ml.sentence_encoder import EncoderNotFoundError, embed, load_encoder


@pytest.fixture(scope="module")
def encoder():
    return load_encoder()


def test_embeddings_have_one_row_per_text_in_input_order(encoder):
    texts = ["the rocket reached orbit", "a doctor treats the patient", "the shuttle launch to orbit",
             "short"]
    vectors = embed(texts, *encoder, max_length=32, batch_size=2)
    assert vectors.shape == (4, 384) and np.isfinite(vectors).all()
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    assert similarity[0, 2] > similarity[0, 1]  # space texts are closer to each other than to medicine
    # batching and sorting by length do not change a text's vector
    alone = embed(texts[2:3], *encoder, max_length=32)
    assert np.allclose(alone[0], vectors[2], atol=1e-4)


def test_unknown_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(EncoderNotFoundError, match="cannot load encoder"):
        load_encoder(tmp_path / "no_model_here")
