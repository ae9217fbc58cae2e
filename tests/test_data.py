"""The data layer: registry, cache, mirror, verified downloads and loaders."""

from __future__ import annotations

import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labutils import data
from labutils.data import DataError, RemoteFile


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()


def make_cifar_python_tarball(path: Path, *, per_batch: int = 4, seed: int = 0) -> dict:
    """Write a tiny archive in the canonical CIFAR-10 python format; return its arrays."""
    rng = np.random.default_rng(seed)
    arrays = {"train_images": [], "train_labels": [], "test_images": [], "test_labels": []}
    with tarfile.open(path, "w:gz") as archive:
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
        for name in names:
            flat = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
            labels = rng.integers(0, 10, size=per_batch).tolist()
            payload = pickle.dumps({b"data": flat, b"labels": labels})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
            split = "test" if name == "test_batch" else "train"
            arrays[f"{split}_images"].append(flat.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            arrays[f"{split}_labels"].append(np.asarray(labels))
    return {key: np.concatenate(value) for key, value in arrays.items()}


def use_remote(monkeypatch, name: str, remote: RemoteFile, mirror_alternatives=()):
    info = data.DATASETS[name]
    replaced = data.DatasetInfo(
        name=info.name,
        description=info.description,
        source=info.source,
        canonical=(remote,),
        mirror_alternatives=tuple(mirror_alternatives),
    )
    monkeypatch.setitem(data.DATASETS, name, replaced)


# --------------------------------------------------------------------------- registry
def test_unknown_dataset_names_the_registered_ones():
    with pytest.raises(ValueError, match="unknown dataset 'cifar100'.*cifar10"):
        data.fetch("cifar100")


def test_cache_dir_follows_environment(isolated_data):
    assert data.cache_dir() == isolated_data
    assert isolated_data.is_dir()


def test_mirror_that_does_not_exist_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="is not a folder"):
        data.mirror_dir()


# --------------------------------------------------------------------------- downloads
def test_download_from_local_server_and_decode(local_server, monkeypatch, isolated_data):
    root, url, _ = local_server
    expected = make_cifar_python_tarball(root / "cifar-10-python.tar.gz")
    remote = RemoteFile(
        "cifar-10-python.tar.gz", f"{url}/cifar-10-python.tar.gz", sha256(root / "cifar-10-python.tar.gz")
    )
    use_remote(monkeypatch, "cifar10", remote)
    train = data.load_cifar10("train", progress=False)
    test = data.load_cifar10("test", progress=False)
    np.testing.assert_array_equal(train.images, expected["train_images"])
    np.testing.assert_array_equal(train.labels, expected["train_labels"])
    np.testing.assert_array_equal(test.images, expected["test_images"])
    assert train.images.shape == (20, 32, 32, 3) and train.images.dtype == np.uint8
    assert (isolated_data / "cifar10-decoded.npz").exists()
    # The second load comes from the decoded cache: the server is no longer needed.
    (root / "cifar-10-python.tar.gz").unlink()
    np.testing.assert_array_equal(data.load_cifar10("train").images, expected["train_images"])


def test_checksum_mismatch_raises_and_leaves_no_file(local_server, isolated_data):
    root, url, _ = local_server
    (root / "file.bin").write_bytes(b"these are not the bytes you are looking for")
    remote = RemoteFile("file.bin", f"{url}/file.bin", "sha256:" + "0" * 64)
    with pytest.raises(DataError, match="checksum mismatch"):
        data.fetch_file(remote, progress=False)
    assert list(isolated_data.iterdir()) == []


def test_interrupted_download_leaves_no_partial_file(local_server, isolated_data):
    root, url, server = local_server
    (root / "file.bin").write_bytes(bytes(range(256)) * 4096)
    server.truncate = True
    remote = RemoteFile("file.bin", f"{url}/file.bin", sha256(root / "file.bin"))
    with pytest.raises(DataError):
        data.fetch_file(remote, progress=False)
    assert list(isolated_data.iterdir()) == []


def test_offline_without_cache_or_mirror_gives_clear_error(monkeypatch, isolated_data):
    monkeypatch.setenv("LABUTILS_OFFLINE", "1")
    with pytest.raises(DataError) as error:
        data.fetch("cifar10")
    message = str(error.value)
    assert "cifar-10-python.tar.gz" in message and "make data" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert list(isolated_data.iterdir()) == []


def test_unreachable_server_gives_clear_error(isolated_data):
    remote = RemoteFile("file.bin", "http://127.0.0.1:9/file.bin", "sha256:" + "0" * 64)
    with pytest.raises(DataError, match="LABUTILS_DATA_MIRROR"):
        data.fetch_file(remote, progress=False)
    assert list(isolated_data.iterdir()) == []


def test_corrupt_cached_file_is_fetched_again(local_server, isolated_data):
    root, url, _ = local_server
    (root / "file.bin").write_bytes(b"good bytes")
    remote = RemoteFile("file.bin", f"{url}/file.bin", sha256(root / "file.bin"))
    isolated_data.mkdir(parents=True, exist_ok=True)
    (isolated_data / "file.bin").write_bytes(b"corrupt")
    path = data.fetch_file(remote, progress=False)
    assert path.read_bytes() == b"good bytes"


# --------------------------------------------------------------------------- mirror
def test_mirror_is_used_before_download_and_verified(tmp_path, monkeypatch, isolated_data):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "file.bin").write_bytes(b"mirrored")
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(mirror))
    monkeypatch.setenv("LABUTILS_OFFLINE", "1")  # proves no download is attempted
    remote = RemoteFile("file.bin", "http://127.0.0.1:9/file.bin", sha256(mirror / "file.bin"))
    assert data.fetch_file(remote).read_bytes() == b"mirrored"


def test_corrupt_mirror_file_raises_and_leaves_no_file(tmp_path, monkeypatch, isolated_data):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "file.bin").write_bytes(b"tampered")
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(mirror))
    remote = RemoteFile("file.bin", "http://127.0.0.1:9/file.bin", "sha256:" + "1" * 64)
    with pytest.raises(DataError, match="checksum mismatch"):
        data.fetch_file(remote)
    assert list(isolated_data.iterdir()) == []


def test_sentiment_from_the_course_mirror(shared_mirror, monkeypatch):
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(shared_mirror))
    monkeypatch.setenv("LABUTILS_OFFLINE", "1")
    sentiment = data.load_sentiment(progress=False)
    assert len(sentiment["sentences"]) == 3000
    assert sentiment["labels"].sum() == 1500
    for site in ("amazon", "imdb", "yelp"):
        assert (sentiment["sites"] == site).sum() == 1000
    assert all("\t" not in sentence for sentence in sentiment["sentences"])
    only_yelp = data.load_sentiment(sites=["yelp"])
    assert set(only_yelp["sites"]) == {"yelp"}
    with pytest.raises(ValueError, match="unknown sites"):
        data.load_sentiment(sites=["twitter"])


def test_sentiment_from_canonical_zip(shared_mirror, local_server, monkeypatch, isolated_data):
    """The canonical archive's layout: files under 'sentiment labelled sentences/'."""
    root, url, _ = local_server
    archive = root / "sentiment.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        for filename, _ in data.SENTIMENT_FILES.values():
            source = shared_mirror / "sentiment-labelled-sentences" / filename
            bundle.write(source, f"sentiment labelled sentences/{filename}")
    use_remote(
        monkeypatch,
        "sentiment",
        RemoteFile("sentiment-labelled-sentences.zip", f"{url}/sentiment.zip", sha256(archive)),
    )
    sentiment = data.load_sentiment(progress=False)
    assert len(sentiment["sentences"]) == 3000


def test_cifar10_from_the_course_mirror_subset(shared_mirror, monkeypatch):
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(shared_mirror))
    monkeypatch.setenv("LABUTILS_OFFLINE", "1")
    subset = data.load_cifar10("test", classes=["dog", "frog"], per_class=7, seed=3, progress=False)
    assert subset.images.shape == (14, 32, 32, 3)
    assert subset.class_names == ["dog", "frog"]
    assert np.bincount(subset.labels).tolist() == [7, 7]


# --------------------------------------------------------------------------- subsets
def test_stratified_subset_is_stratified_and_reproducible():
    labels = np.repeat(np.arange(5), 40)
    first = data.stratified_subset(labels, per_class=7, seed=11)
    again = data.stratified_subset(labels, per_class=7, seed=11)
    other = data.stratified_subset(labels, per_class=7, seed=12)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.bincount(labels[first]).tolist() == [7] * 5
    with pytest.raises(ValueError, match="fewer than per_class"):
        data.stratified_subset(labels, per_class=41, seed=0)
    with pytest.raises(ValueError, match="positive integer"):
        data.stratified_subset(labels, per_class=0, seed=0)


def test_class_subset_relabels_in_the_given_order(local_server, monkeypatch):
    root, url, _ = local_server
    expected = make_cifar_python_tarball(root / "c.tar.gz", per_batch=40)
    use_remote(
        monkeypatch, "cifar10", RemoteFile("cifar-10-python.tar.gz", f"{url}/c.tar.gz", sha256(root / "c.tar.gz"))
    )
    subset = data.load_cifar10("train", classes=[7, 2], progress=False)
    original = expected["train_labels"]
    assert len(subset) == int(np.isin(original, [7, 2]).sum())
    assert subset.class_names == ["horse", "bird"]
    np.testing.assert_array_equal(subset.labels, np.where(original[np.isin(original, [7, 2])] == 7, 0, 1))
    with pytest.raises(ValueError, match="unknown class"):
        data.load_cifar10("train", classes=["unicorn"])
    with pytest.raises(ValueError, match="split="):
        data.load_cifar10("validation")


# --------------------------------------------------------------------------- image folders
def _write_image_tree(root: Path, *, count: int = 3) -> None:
    rng = np.random.default_rng(0)
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for index in range(count):
            pixels = rng.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")


def test_load_image_folder_from_folder_and_tarball(tmp_path):
    tree = tmp_path / "pets"
    _write_image_tree(tree)
    from_folder = data.load_image_folder(tree, progress=False)
    assert from_folder.images.shape == (6, 6, 5, 3)
    assert from_folder.class_names == ["cats", "dogs"]
    assert from_folder.labels.tolist() == [0, 0, 0, 1, 1, 1]
    tarball = tmp_path / "pets.tar.gz"
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(tree, arcname="train")
    from_tar = data.load_image_folder(tarball, subfolder="train", progress=False)
    np.testing.assert_array_equal(from_tar.images, from_folder.images)
    resized = data.load_image_folder(tree, size=(4, 4), progress=False)
    assert resized.images.shape == (6, 4, 4, 3)


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        data.load_image_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images found"):
        data.load_image_folder(tmp_path / "empty")
    _write_image_tree(tmp_path / "tree")
    with pytest.raises(ValueError, match="not in class_names"):
        data.load_image_folder(tmp_path / "tree", class_names=["cats"])


# --------------------------------------------------------------------------- offline datasets
def test_digits_and_mnist1d_work_offline(monkeypatch):
    monkeypatch.setenv("LABUTILS_OFFLINE", "1")
    digits = data.load_digits()
    assert digits["X"].shape == (1797, 64) and digits["images"].shape == (1797, 8, 8)
    small = data.load_mnist1d(num_samples=200, seed=1)
    assert small["x"].shape == (160, 40) and small["x_test"].shape == (40, 40)
    assert small["x"].dtype == np.float32 and small["y"].dtype == np.int64
    again = data.load_mnist1d(num_samples=200, seed=1)  # from the cache
    np.testing.assert_array_equal(small["x"], again["x"])
    with pytest.raises(ValueError, match="train_split"):
        data.load_mnist1d(train_split=1.5)


# --------------------------------------------------------------------------- make data
def test_prepare_all_fetches_and_decodes_everything(shared_mirror, local_server, monkeypatch, isolated_data, capsys):
    root, url, _ = local_server
    make_cifar_python_tarball(root / "cifar-10-python.tar.gz")
    use_remote(
        monkeypatch,
        "cifar10",
        RemoteFile("cifar-10-python.tar.gz", f"{url}/cifar-10-python.tar.gz", sha256(root / "cifar-10-python.tar.gz")),
    )
    monkeypatch.setenv("LABUTILS_DATA_MIRROR", str(shared_mirror))  # for the sentences
    monkeypatch.setattr(data, "load_mnist1d", lambda: {"y": np.zeros(4), "y_test": np.zeros(1)})
    data.prepare_all(progress=False)
    out = capsys.readouterr().out
    for name in ("digits: ok", "mnist1d: ok", "cifar10: ok (20 train / 4 test)", "sentiment: ok (3000"):
        assert name in out
    assert (isolated_data / "cifar10-decoded.npz").exists()


def test_make_data_offline_exits_with_the_message(monkeypatch):
    monkeypatch.setenv("LABUTILS_OFFLINE", "1")
    monkeypatch.setattr(data, "load_mnist1d", lambda: {"y": np.zeros(4), "y_test": np.zeros(1)})
    with pytest.raises(SystemExit) as exit_info:
        data.main()
    message = str(exit_info.value.code)
    assert message.startswith("error: cannot get") and "make data" in message
