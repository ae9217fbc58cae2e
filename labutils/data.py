"""Datasets: a registry of canonical sources, a verified cache and a local mirror.

Where files come from, in order:

1. the cache directory (``LABUTILS_DATA_DIR``, default ``data/`` at the project root),
   when the file there has the registered checksum;
2. a local mirror (``LABUTILS_DATA_MIRROR``, a folder laid out like the course's mirror),
   copied into the cache and verified;
3. the dataset's canonical URL, downloaded with :mod:`pooch`, which shows a progress bar,
   verifies the hash and writes atomically (a failed or corrupt download leaves no file).

Decoded arrays are cached next to the raw files (``*.npz``) so the second load is fast.
Nothing half-written is ever left in the cache: every write goes to a temporary file that
is renamed into place only after it has been verified.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import shutil
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .augment import cifar_images_to_tensor
from .files import atomic_write

__all__ = [
    "DataError",
    "RemoteFile",
    "DATASETS",
    "cache_dir",
    "mirror_dir",
    "fetch_file",
    "fetch",
    "ImageDataset",
    "load_digits",
    "load_mnist1d",
    "load_cifar10",
    "load_sentiment",
    "load_image_folder",
    "stratified_subset",
    "mnist1d_split",
    "cifar5_source_split",
    "cifar10_simclr_split",
    "rank_within_class",
    "SPLIT_SEED",
    "CIFAR5_SOURCE_CLASSES",
    "prepare_all",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class DataError(RuntimeError):
    """A dataset could not be obtained or read; the message says what to do."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset.

    Parameters
    ----------
    filename : str
        Name in the cache (and in a mirror).
    url : str
        Canonical download address.
    known_hash : str
        ``"sha256:<hex>"`` or ``"md5:<hex>"``.
    """

    filename: str
    url: str
    known_hash: str


@dataclass(frozen=True)
class DatasetInfo:
    """A registry entry: where a dataset comes from and what the mirror may hold instead."""

    name: str
    description: str
    source: str
    canonical: tuple[RemoteFile, ...] = ()
    # Alternatives a local mirror may hold instead of the canonical files, as
    # (relative path in the mirror, known hash) pairs.
    mirror_alternatives: tuple[tuple[str, str], ...] = ()
    offline: bool = False  # shipped inside a package or generated locally
    extra: dict = field(default_factory=dict)


CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
SENTIMENT_FILES = {
    "amazon": ("amazon_cells_labelled.txt", "sha256:47003fc0a0d4840b00e96e715b6189bad09e7443a3da41c4cbe12ffc79f86ae3"),
    "imdb": ("imdb_labelled.txt", "sha256:aef2e49e3da25714d61175e3a6e68eeef74a20a2f914318dc3be9947ea86512d"),
    "yelp": ("yelp_labelled.txt", "sha256:c76468b7b5c6e56a0804d728345c5f84aa2142ddb214420f61cc9cfd4c00d2ea"),
}

DATASETS: dict[str, DatasetInfo] = {
    "digits": DatasetInfo(
        name="digits",
        description="1,797 8x8 handwritten digits, 10 classes (ships with scikit-learn)",
        source="sklearn.datasets.load_digits",
        offline=True,
    ),
    "mnist1d": DatasetInfo(
        name="mnist1d",
        description="MNIST-1D: 40-sample 1-D signals, 10 classes, 4000/1000 split, "
        "generated locally from templates (Greydanus & Kobak, 2024)",
        source="mnist1d.data.make_dataset",
        offline=True,
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        description="CIFAR-10: 60,000 32x32 colour images in 10 classes (Krizhevsky, 2009)",
        source="https://www.cs.toronto.edu/~kriz/cifar.html",
        canonical=(
            RemoteFile(
                "cifar-10-python.tar.gz",
                "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
                "md5:c58f30108f718f92721af3b95e74349a",
            ),
        ),
        mirror_alternatives=(
            ("cifar10-images.tar.gz", "sha256:45b041e867f5a40f79bfde38d3dd1fd511103d50068c1afecf6445e25234d4db"),
        ),
    ),
    "sentiment": DatasetInfo(
        name="sentiment",
        description="UCI Sentiment Labelled Sentences: 3,000 review sentences from "
        "amazon, imdb and yelp (Kotzias et al., 2015; CC BY 4.0)",
        source="https://archive.ics.uci.edu/dataset/331/sentiment+labelled+sentences",
        canonical=(
            RemoteFile(
                "sentiment-labelled-sentences.zip",
                "https://archive.ics.uci.edu/static/public/331/sentiment+labelled+sentences.zip",
                "sha256:afc26626d710899948693e1a61405dce197f57ffa719fa1130d346b4cc095343",
            ),
        ),
        mirror_alternatives=tuple(
            (f"sentiment-labelled-sentences/{filename}", known_hash)
            for filename, known_hash in SENTIMENT_FILES.values()
        ),
    ),
}


# --------------------------------------------------------------------------- locations
def cache_dir() -> Path:
    """Return the dataset cache directory (``LABUTILS_DATA_DIR`` or ``<project>/data``)."""
    path = Path(os.environ.get("LABUTILS_DATA_DIR") or PROJECT_ROOT / "data").expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def mirror_dir() -> Path | None:
    """Return the local mirror from ``LABUTILS_DATA_MIRROR``, or None when unset.

    Raises
    ------
    DataError
        If the variable names a folder that does not exist.
    """
    raw = os.environ.get("LABUTILS_DATA_MIRROR", "").strip()
    if not raw:
        return None
    path = Path(raw).expanduser()
    if not path.is_dir():
        raise DataError(
            f"LABUTILS_DATA_MIRROR={raw!r} is not a folder. Point it at a copy of the "
            "course's data mirror, or unset it to download from the canonical sources."
        )
    return path


def _offline() -> bool:
    return os.environ.get("LABUTILS_OFFLINE", "").strip().lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------- hashing
def file_hash(path: str | Path, algorithm: str = "sha256") -> str:
    """Return the hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _split_hash(known_hash: str) -> tuple[str, str]:
    algorithm, _, value = known_hash.partition(":")
    if not value:
        algorithm, value = "sha256", known_hash
    return algorithm.lower(), value.lower()


def hash_matches(path: str | Path, known_hash: str) -> bool:
    """True when the file at ``path`` has the digest ``known_hash`` (``"alg:hex"``)."""
    algorithm, value = _split_hash(known_hash)
    return file_hash(path, algorithm) == value


def _verified_copy(source: Path, target: Path, known_hash: str) -> Path:
    """Copy ``source`` to ``target`` through a temporary file; verify before renaming."""

    def copy_and_verify(temporary: Path) -> None:
        shutil.copyfile(source, temporary)
        if not hash_matches(temporary, known_hash):
            algorithm, value = _split_hash(known_hash)
            raise DataError(
                f"checksum mismatch for {source}: expected {algorithm} {value}, got "
                f"{file_hash(temporary, algorithm)}. The mirror copy is corrupt or a "
                "different version; replace it with the file from the canonical source."
            )

    return atomic_write(target, copy_and_verify)


def _atomic_save_npz(path: Path, **arrays) -> None:
    def save(temporary: Path) -> None:
        with open(temporary, "wb") as stream:  # a file object: np.savez adds no suffix
            np.savez(stream, **arrays)

    atomic_write(path, save)


# --------------------------------------------------------------------------- fetching
def fetch_file(
    remote: RemoteFile,
    *,
    directory: str | Path | None = None,
    mirror: str | Path | None = None,
    mirror_path: str | None = None,
    progress: bool = True,
) -> Path:
    """Return a verified local copy of ``remote``, from cache, mirror or download.

    Parameters
    ----------
    remote : RemoteFile
        What to fetch.
    directory : path, optional
        The cache folder (default :func:`cache_dir`).
    mirror : path, optional
        A local mirror to look in first (default :func:`mirror_dir`).
    mirror_path : str, optional
        The file's path inside the mirror (default ``remote.filename``).
    progress : bool, default True
        Show a progress bar while downloading.

    Raises
    ------
    DataError
        On a checksum mismatch (no file is left behind), or when the file is in neither
        cache nor mirror and cannot be downloaded.
    """
    directory = Path(directory) if directory is not None else cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / remote.filename
    if target.exists():
        if hash_matches(target, remote.known_hash):
            return target
        target.unlink()  # stale or corrupt: fetch it again
    mirror = Path(mirror) if mirror is not None else mirror_dir()
    if mirror is not None:
        candidate = mirror / (mirror_path or remote.filename)
        if candidate.is_file():
            return _verified_copy(candidate, target, remote.known_hash)
    if _offline():
        raise DataError(_offline_message(remote, directory, mirror, "LABUTILS_OFFLINE is set"))
    return _download(remote, directory, mirror, progress=progress)


def _download(remote: RemoteFile, directory: Path, mirror: Path | None, *, progress: bool) -> Path:
    import pooch
    import requests

    try:
        path = pooch.retrieve(
            url=remote.url,
            known_hash=remote.known_hash,
            fname=remote.filename,
            path=directory,
            progressbar=progress,
        )
    except ValueError as error:  # pooch's hash mismatch; it has already removed the file
        raise DataError(
            f"checksum mismatch downloading {remote.url}: {error}. Nothing was kept in "
            f"{directory}. The server may have changed the file; report it, or download it "
            "by hand, check it, and put it in a mirror folder (LABUTILS_DATA_MIRROR)."
        ) from error
    except (requests.exceptions.RequestException, OSError) as error:
        raise DataError(_offline_message(remote, directory, mirror, repr(error))) from error
    return Path(path)


def _offline_message(remote: RemoteFile, directory: Path, mirror: Path | None, reason: str) -> str:
    where = f"the mirror {mirror}" if mirror is not None else "no mirror (LABUTILS_DATA_MIRROR unset)"
    return (
        f"cannot get {remote.filename}: it is not in the cache {directory}, not in {where}, "
        f"and downloading {remote.url} failed ({reason}).\n"
        "To prepare an offline machine: on a machine with internet run `make data` (or "
        "`python -m labutils.data`), then copy the data/ folder, or point "
        "LABUTILS_DATA_MIRROR at a folder holding the files."
    )


def fetch(name: str, *, progress: bool = True) -> list[Path]:
    """Fetch the raw files of a registered dataset and return their local paths.

    For datasets with mirror alternatives, the mirror's files are used when present.

    Raises
    ------
    ValueError
        For a name not in :data:`DATASETS`.
    DataError
        When the files cannot be obtained.
    """
    info = _info(name)
    if info.offline:
        return []
    mirror = mirror_dir()
    if (
        mirror is not None
        and info.mirror_alternatives
        and all((mirror / relative).is_file() for relative, _ in info.mirror_alternatives)
    ):
        return [
            fetch_file(
                RemoteFile(relative, "", known_hash),
                mirror=mirror,
                mirror_path=relative,
                progress=progress,
            )
            for relative, known_hash in info.mirror_alternatives
        ]
    return [fetch_file(remote, mirror=mirror, progress=progress) for remote in info.canonical]


def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; registered datasets: {sorted(DATASETS)}")
    return DATASETS[name]


# --------------------------------------------------------------------------- containers
@dataclass
class ImageDataset:
    """Images with integer labels.

    Attributes
    ----------
    images : ndarray of uint8, shape (n, height, width, 3)
    labels : ndarray of int64, shape (n,)
        Positions in ``class_names``.
    class_names : list of str
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: list

    def __len__(self) -> int:
        return len(self.labels)

    def __iter__(self):  # allows ``images, labels, class_names = dataset``
        return iter((self.images, self.labels, self.class_names))

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=len(self.class_names))
        return (
            f"ImageDataset(images={self.images.shape} {self.images.dtype}, "
            f"classes={self.class_names}, per_class={counts.tolist()})"
        )


def stratified_subset(
    labels: np.ndarray, *, per_class: int, seed: int, classes: Sequence[int] | None = None
) -> np.ndarray:
    """Pick ``per_class`` indices of each class at random, reproducibly.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
    per_class : int
        How many examples of each class to keep.
    seed : int
        Seed of the generator; the same seed always gives the same indices.
    classes : sequence of int, optional
        Which classes to keep (default: all present).

    Returns
    -------
    ndarray of int64, shape (per_class * n_classes,)
        Sorted indices into ``labels`` (a CPU ``torch.Tensor`` when ``labels`` is a tensor).

    Raises
    ------
    ValueError
        If a class has fewer than ``per_class`` examples.
    """
    as_tensor = isinstance(labels, torch.Tensor)
    labels = labels.cpu().numpy() if as_tensor else np.asarray(labels)
    if not isinstance(per_class, (int, np.integer)) or per_class < 1:
        raise ValueError(f"per_class must be a positive integer, got {per_class!r}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels) if classes is None else classes
    chosen = []
    for label in classes:
        members = np.flatnonzero(labels == label)
        if len(members) < per_class:
            raise ValueError(f"class {label} has {len(members)} examples, fewer than per_class={per_class}")
        chosen.append(rng.choice(members, size=per_class, replace=False))
    indices = np.sort(np.concatenate(chosen)).astype(np.int64)
    return torch.from_numpy(indices) if as_tensor else indices


# --------------------------------------------------------------------------- datasets
def load_digits() -> dict:
    """Load scikit-learn's 8x8 digits (offline).

    Returns
    -------
    dict
        ``X`` float64 (1797, 64) with values 0..16, ``y`` int64 (1797,),
        ``images`` float64 (1797, 8, 8), ``class_names`` list of str.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    return {
        "X": bunch.data,
        "y": bunch.target.astype(np.int64),
        "images": bunch.images,
        "class_names": [str(digit) for digit in range(10)],
    }


def load_mnist1d(*, seed: int = 42, num_samples: int = 5000, train_split: float = 0.8) -> dict:
    """Generate MNIST-1D locally from its templates (never downloaded).

    Parameters
    ----------
    seed : int, default 42
        Seed of the generator; 42 reproduces the published dataset.
    num_samples : int, default 5000
        Total examples; the published split is 4000 train / 1000 test.
    train_split : float, default 0.8

    Returns
    -------
    dict
        ``x`` float32 (n_train, 40), ``y`` int64 (n_train,), ``x_test`` float32
        (n_test, 40), ``y_test`` int64 (n_test,), ``t`` float32 (40,) sample positions.
    """
    if not 0 < train_split < 1:
        raise ValueError(f"train_split must be in (0, 1), got {train_split}")
    if num_samples < 20:
        raise ValueError(f"num_samples must be at least 20, got {num_samples}")
    path = cache_dir() / f"mnist1d-seed{seed}-n{num_samples}-split{train_split}.npz"
    if path.exists():
        with np.load(path) as stored:
            return {key: stored[key] for key in stored.files}
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed = seed
    args.num_samples = num_samples
    args.train_split = train_split
    raw = make_dataset(args)
    data = {
        "x": raw["x"].astype(np.float32),
        "y": raw["y"].astype(np.int64),
        "x_test": raw["x_test"].astype(np.float32),
        "y_test": raw["y_test"].astype(np.int64),
        "t": np.asarray(raw["t"], dtype=np.float32),
    }
    _atomic_save_npz(path, **data)
    return data


def load_cifar10(
    split: str = "train",
    *,
    classes: Sequence[int | str] | None = None,
    per_class: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ImageDataset:
    """Load CIFAR-10 as uint8 arrays, optionally a class subset and a fixed number per class.

    Parameters
    ----------
    split : {"train", "test"}
    classes : sequence of int or str, optional
        Keep only these classes (indices or names). Labels are renumbered to positions in
        this sequence: ``classes=[5, 6]`` gives labels 0 (dog) and 1 (frog).
    per_class : int, optional
        Keep this many images of each class, drawn at random (stratified, reproducible).
    seed : int, default 0
        Seed of the per-class draw.
    progress : bool, default True
        Progress bars for downloading and decoding.

    Returns
    -------
    ImageDataset
        ``images`` uint8 (n, 32, 32, 3), ``labels`` int64 (n,), ``class_names``.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; use 'train' or 'test'")
    images, labels = _cifar10_arrays(split, progress=progress)
    class_names = list(CIFAR10_CLASSES)
    if classes is not None:
        indices = [_class_index(value, class_names) for value in classes]
        if len(set(indices)) != len(indices):
            raise ValueError(f"classes={list(classes)} repeats a class")
        keep = np.isin(labels, indices)
        images, labels = images[keep], labels[keep]
        remap = np.full(len(class_names), -1, dtype=np.int64)
        remap[indices] = np.arange(len(indices))
        labels = remap[labels]
        class_names = [class_names[index] for index in indices]
    if per_class is not None:
        chosen = stratified_subset(labels, per_class=per_class, seed=seed)
        images, labels = images[chosen], labels[chosen]
    return ImageDataset(images=images, labels=labels, class_names=class_names)


def _class_index(value, class_names: list) -> int:
    if isinstance(value, str):
        if value not in class_names:
            raise ValueError(f"unknown class {value!r}; classes are {class_names}")
        return class_names.index(value)
    if not 0 <= int(value) < len(class_names):
        raise ValueError(f"class index {value} out of range 0..{len(class_names) - 1}")
    return int(value)


def _cifar10_arrays(split: str, *, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    decoded = cache_dir() / "cifar10-decoded.npz"
    if not decoded.exists():
        (raw,) = fetch("cifar10", progress=progress)
        if raw.name.endswith("cifar10-images.tar.gz"):
            arrays = _cifar10_from_image_folder(raw, progress=progress)
        else:
            arrays = _cifar10_from_python_tarball(raw)
        _atomic_save_npz(decoded, **arrays)
    with np.load(decoded) as stored:
        return stored[f"{split}_images"], stored[f"{split}_labels"]


def _cifar10_from_python_tarball(path: Path) -> dict:
    """Decode the canonical ``cifar-10-python.tar.gz`` (pickled batches)."""
    batches: dict[str, list] = {"train": [], "test": []}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            name = Path(member.name).name
            if name.startswith("data_batch_"):
                split = "train"
            elif name == "test_batch":
                split = "test"
            else:
                continue
            batch = pickle.load(archive.extractfile(member), encoding="bytes")
            batches[split].append((name, batch))
    arrays = {}
    for split, items in batches.items():
        if not items:
            raise DataError(f"{path} holds no {split} batches; is it the CIFAR-10 python archive?")
        items.sort(key=lambda item: item[0])
        data = np.concatenate([batch[b"data"] for _, batch in items])
        arrays[f"{split}_images"] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
        arrays[f"{split}_labels"] = np.concatenate([np.asarray(batch[b"labels"], dtype=np.int64) for _, batch in items])
    return arrays


def _cifar10_from_image_folder(path: Path, *, progress: bool) -> dict:
    arrays = {}
    for split in ("train", "test"):
        dataset = load_image_folder(path, subfolder=split, class_names=list(CIFAR10_CLASSES), progress=progress)
        arrays[f"{split}_images"] = dataset.images
        arrays[f"{split}_labels"] = dataset.labels
    return arrays


def load_image_folder(
    path: str | Path,
    *,
    subfolder: str | None = None,
    class_names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    progress: bool = True,
) -> ImageDataset:
    """Load a ``root/<class>/<image>`` tree, from a folder or a (.tar, .tar.gz, .zip) archive.

    Parameters
    ----------
    path : path
        A folder, or an archive whose members are laid out the same way.
    subfolder : str, optional
        Read ``root/<subfolder>/<class>/...`` instead (e.g. ``"train"``).
    class_names : sequence of str, optional
        Class order (label i is ``class_names[i]``); default: the sorted folder names.
    size : (height, width), optional
        Resize every image; without it, all images must share one size.
    progress : bool, default True

    Returns
    -------
    ImageDataset
        ``images`` uint8 (n, height, width, 3) in RGB, ``labels`` int64, ``class_names``.
    """
    from PIL import Image
    from tqdm.auto import tqdm

    path = Path(path)
    if not path.exists():
        raise ValueError(f"{path} does not exist")
    entries = list(_image_entries(path))
    prefix = f"{subfolder.strip('/')}/" if subfolder else ""
    items = []
    for relative, opener in entries:
        relative = relative.lstrip("./")
        if not relative.startswith(prefix):
            continue
        parts = relative[len(prefix) :].split("/")
        if len(parts) != 2 or not parts[1].lower().endswith(IMAGE_SUFFIXES):
            continue
        items.append((parts[0], parts[1], opener))
    if not items:
        where = f"{path}/{prefix}" if prefix else str(path)
        raise ValueError(f"no images found as <class>/<image> under {where}")
    found = sorted({label for label, _, _ in items})
    if class_names is None:
        class_names = found
    else:
        class_names = list(class_names)
        unknown = sorted(set(found) - set(class_names))
        if unknown:
            raise ValueError(f"folders {unknown} are not in class_names={class_names}")
    index = {name: position for position, name in enumerate(class_names)}
    items.sort(key=lambda item: (index[item[0]], item[1]))
    images, labels = [], []
    for label, _, opener in tqdm(items, desc=f"decoding {path.name}", disable=not progress, mininterval=1.0):
        with opener() as stream:
            image = Image.open(stream).convert("RGB")
            if size is not None:
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            images.append(np.asarray(image, dtype=np.uint8))
        labels.append(index[label])
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise ValueError(f"images have different sizes {sorted(shapes)[:3]}...; pass size=(h, w)")
    return ImageDataset(
        images=np.stack(images),
        labels=np.asarray(labels, dtype=np.int64),
        class_names=list(class_names),
    )


def _image_entries(path: Path) -> Iterable:
    """Yield (relative posix path, opener) for every file in a folder or archive."""
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file():
                yield file.relative_to(path).as_posix(), (lambda file=file: file.open("rb"))
        return
    name = path.name.lower()
    if name.endswith(".zip"):
        with zipfile.ZipFile(path) as archive:
            members = {member: archive.read(member) for member in archive.namelist() if not member.endswith("/")}
        for member, payload in members.items():
            yield member, (lambda payload=payload: io.BytesIO(payload))
        return
    if name.endswith((".tar", ".tar.gz", ".tgz")):
        with tarfile.open(path) as archive:
            members = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
        for member, payload in members.items():
            yield member, (lambda payload=payload: io.BytesIO(payload))
        return
    raise ValueError(f"{path} is neither a folder nor a .zip/.tar/.tar.gz archive")


def load_sentiment(*, sites: Sequence[str] | None = None, progress: bool = True) -> dict:
    """Load the UCI Sentiment Labelled Sentences.

    Parameters
    ----------
    sites : sequence of {"amazon", "imdb", "yelp"}, optional
        Which sites to keep (default: all three).

    Returns
    -------
    dict
        ``sentences`` list of str, ``labels`` int64 (n,) with 1 = positive,
        ``sites`` ndarray of str (n,).
    """
    sites = list(SENTIMENT_FILES) if sites is None else list(sites)
    unknown = sorted(set(sites) - set(SENTIMENT_FILES))
    if unknown:
        raise ValueError(f"unknown sites {unknown}; use some of {list(SENTIMENT_FILES)}")
    files = _sentiment_files(progress=progress)
    sentences, labels, origin = [], [], []
    for site in sites:
        # split on "\n" only: str.splitlines() would also split on the U+0085 characters
        # that some imdb sentences contain.
        for line in files[site].read_text(encoding="utf-8").split("\n"):
            line = line.rstrip("\r")
            if not line.strip():
                continue
            text, _, label = line.rpartition("\t")
            if label.strip() not in ("0", "1"):
                raise DataError(f"unexpected line in {files[site]}: {line!r}")
            sentences.append(text.strip())
            labels.append(int(label))
            origin.append(site)
    return {
        "sentences": sentences,
        "labels": np.asarray(labels, dtype=np.int64),
        "sites": np.asarray(origin),
    }


def _sentiment_files(*, progress: bool) -> dict[str, Path]:
    folder = cache_dir() / "sentiment-labelled-sentences"
    targets = {site: folder / filename for site, (filename, _) in SENTIMENT_FILES.items()}
    if all(path.exists() and hash_matches(path, SENTIMENT_FILES[site][1]) for site, path in targets.items()):
        return targets
    paths = fetch("sentiment", progress=progress)
    if len(paths) == len(SENTIMENT_FILES):  # the mirror's plain files, copied and verified
        return targets
    (archive,) = paths
    with zipfile.ZipFile(archive) as bundle:
        for site, target in targets.items():
            member = f"sentiment labelled sentences/{target.name}"
            with tempfile.TemporaryDirectory(dir=cache_dir()) as scratch:
                extracted = Path(scratch) / target.name
                extracted.write_bytes(bundle.read(member))
                _verified_copy(extracted, target, SENTIMENT_FILES[site][1])
    return targets


# --------------------------------------------------------------------------- make data
# --------------------------------------------------------------------------- fixed splits
#: Seed of the fixed splits that checkpoints and notebooks share (never a notebook's seed).
SPLIT_SEED = 0
CIFAR5_SOURCE_CLASSES = (0, 1, 2, 3, 4)


def mnist1d_split(*, validation_size: int = 800, seed: int = SPLIT_SEED) -> dict:
    """The fixed MNIST-1D split used by the distillation teacher and notebook 11.

    Parameters
    ----------
    validation_size : int, default 800
        Signals of the published 4000-signal training set held out for validation.
    seed : int, default 0
        Seed of the permutation that picks them.

    Returns
    -------
    dict
        ``x_train`` float32 (3200, 40), ``y_train`` int64 (3200,), ``x_val`` (800, 40),
        ``y_val`` (800,), ``x_test`` (1000, 40), ``y_test`` (1000,) as torch tensors.
    """
    data = load_mnist1d()
    count = len(data["x"])
    if not 0 < validation_size < count:
        raise ValueError(f"validation_size must be in (0, {count}), got {validation_size}")
    order = np.random.default_rng(seed).permutation(count)
    train, val = order[validation_size:], order[:validation_size]
    as_tensor = torch.from_numpy
    return {
        "x_train": as_tensor(data["x"][train]),
        "y_train": as_tensor(data["y"][train]),
        "x_val": as_tensor(data["x"][val]),
        "y_val": as_tensor(data["y"][val]),
        "x_test": as_tensor(data["x_test"]),
        "y_test": as_tensor(data["y_test"]),
    }


def rank_within_class(labels: np.ndarray) -> np.ndarray:
    """Each example's position among the examples of its class, in the order given.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)

    Returns
    -------
    ndarray of int64, shape (n,)
        ``rank[i]`` counts the earlier examples with label ``labels[i]``, so ``rank < k`` keeps
        the first ``k`` of every class (a stratified split of a shuffled order).
    """
    labels = np.asarray(labels)
    rank = np.empty(len(labels), dtype=np.int64)
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        rank[members] = np.arange(len(members))
    return rank


def cifar5_source_split(
    *, train_per_class: int = 2000, validation_per_class: int = 400, seed: int = SPLIT_SEED
) -> dict:
    """The fixed source data of ``cifar5_source``: CIFAR-10 training images of classes 0-4.

    Parameters
    ----------
    train_per_class, validation_per_class : int
        Disjoint training and held-out validation images per class (default 2000 and 400,
        i.e. 10,000 and 2,000 images).
    seed : int, default 0

    Returns
    -------
    dict
        ``x_train`` float32 (n, 3, 32, 32) standardized, ``y_train`` int64 (n,), ``x_val``,
        ``y_val``, ``class_names`` (airplane, automobile, bird, cat, deer).
    """
    total = train_per_class + validation_per_class
    source = load_cifar10("train", classes=CIFAR5_SOURCE_CLASSES, per_class=total, seed=seed, progress=False)
    order = np.random.default_rng(seed).permutation(len(source.labels))
    # the first train_per_class images of each class (in the shuffled order) train, the rest validate
    rank = rank_within_class(source.labels[order])
    train, val = order[rank < train_per_class], order[rank >= train_per_class]
    return {
        "x_train": cifar_images_to_tensor(source.images[train]),
        "y_train": torch.from_numpy(source.labels[train]),
        "x_val": cifar_images_to_tensor(source.images[val]),
        "y_val": torch.from_numpy(source.labels[val]),
        "class_names": source.class_names,
    }


def cifar10_simclr_split(*, validation_size: int = 5000, seed: int = SPLIT_SEED) -> dict:
    """The fixed CIFAR-10 split of the SimCLR encoder: 45k pretraining / 5k validation images.

    Returns
    -------
    dict
        ``x_train`` uint8 tensor (45000, 32, 32, 3), ``y_train`` int64 (45000,), ``x_val``
        (5000, 32, 32, 3), ``y_val`` (5000,). Labels are never used for pretraining.
    """
    data = load_cifar10("train", progress=False)
    order = np.random.default_rng(seed).permutation(len(data.labels))
    train, val = order[validation_size:], order[:validation_size]
    return {
        "x_train": torch.from_numpy(data.images[train]),
        "y_train": torch.from_numpy(data.labels[train]),
        "x_val": torch.from_numpy(data.images[val]),
        "y_val": torch.from_numpy(data.labels[val]),
    }


# --------------------------------------------------------------------------- make data
def prepare_all(*, progress: bool = True) -> None:
    """Download, verify and decode every dataset into the cache (``make data``)."""
    print(f"cache: {cache_dir()}")
    mirror = mirror_dir()
    print(f"mirror: {mirror or 'none (LABUTILS_DATA_MIRROR unset)'}")
    load_digits()
    print("digits: ok (ships with scikit-learn)")
    data = load_mnist1d()
    print(f"mnist1d: ok ({len(data['y'])} train / {len(data['y_test'])} test, generated locally)")
    train = load_cifar10("train", progress=progress)
    test = load_cifar10("test", progress=progress)
    print(f"cifar10: ok ({len(train)} train / {len(test)} test)")
    sentiment = load_sentiment(progress=progress)
    print(f"sentiment: ok ({len(sentiment['labels'])} sentences)")


def main() -> None:
    """``python -m labutils.data``: prepare every dataset; exit with the message on failure."""
    try:
        prepare_all()
    except DataError as error:
        raise SystemExit(f"error: {error}") from None


if __name__ == "__main__":
    main()
