"""saliency(): every method, completeness of integrated gradients and DeepLift, overlays, errors."""

from __future__ import annotations

import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")
nn = torch.nn

import datagauge  # noqa: E402
from datagauge import SALIENCY_METHODS  # noqa: E402

H = W = 6


class TinyCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 6, 3, padding=1, stride=2)  # 6x6 -> 3x3
        self.act2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc1 = nn.Linear(24, 8)
        self.act3 = nn.ReLU()
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        x = self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))
        return self.fc2(self.act3(self.fc1(torch.flatten(x, 1))))


def tiny(seed: int = 0) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN()


def images(n=3, seed=0):
    return np.random.default_rng(seed).random((n, H, W)).astype(np.float32)


def scores(model, x, target):
    with torch.no_grad():
        out = model(torch.from_numpy(np.asarray(x, np.float32)[:, None]))
    return out[torch.arange(len(x)), torch.as_tensor(target)].numpy()


FAST = {"n_steps": 16, "internal_batch_size": None, "n_samples": 3}
LAYER_ARGS = {"layer": "conv2", "neuron_index": (1, 1, 1)}


@pytest.mark.parametrize("method", SALIENCY_METHODS)
def test_every_method_gives_finite_maps_of_the_image_shape(method):
    model = tiny()
    x = images(3)
    maps = datagauge.saliency(model, x, method=method, **FAST, **LAYER_ARGS)
    assert maps.shape == (3, H, W)
    assert maps.dtype == np.float32
    assert np.isfinite(maps).all()
    assert np.abs(maps).sum() > 0
    if method == "layer_grad_cam":
        assert (maps >= 0).all()


@pytest.mark.parametrize("baseline", [None, 0.25])
def test_integrated_gradients_completeness(baseline):
    model = tiny(1)
    x = images(4, seed=3)
    target = np.array([0, 1, 2, 0])
    maps = datagauge.saliency(
        model, x, target=target, baseline=baseline, n_steps=200, internal_batch_size=None
    )
    ref = np.full_like(x, 0.0 if baseline is None else baseline)
    expected = scores(model, x, target) - scores(model, ref, target)
    np.testing.assert_allclose(maps.reshape(4, -1).sum(axis=1), expected, rtol=1e-2, atol=1e-4)


def test_deep_lift_sums_to_the_difference_from_baseline():
    model = tiny(2)
    x = images(3, seed=4)
    maps = datagauge.saliency(model, x, method="deep_lift", target=1)
    expected = scores(model, x, [1, 1, 1]) - scores(model, np.zeros_like(x), [1, 1, 1])
    np.testing.assert_allclose(maps.reshape(3, -1).sum(axis=1), expected, rtol=1e-4, atol=1e-5)


def test_target_defaults_to_the_predicted_class():
    model = tiny()
    x = images(4)
    with torch.no_grad():
        pred = model(torch.from_numpy(x[:, None])).argmax(1).numpy()
    a = datagauge.saliency(model, x, **FAST)
    b = datagauge.saliency(model, x, target=pred, **FAST)
    np.testing.assert_array_equal(a, b)
    other = datagauge.saliency(model, x, target=(pred + 1) % 3, **FAST)
    assert not np.allclose(a, other)


def test_channels_last_and_tensor_inputs_agree():
    model = tiny()
    x = images(2)
    a = datagauge.saliency(model, x, method="deep_lift")
    b = datagauge.saliency(model, x[..., None], method="deep_lift")
    c = datagauge.saliency(model, torch.from_numpy(x[:, None]), method="deep_lift")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    read_only = x.copy()
    read_only.flags.writeable = False
    np.testing.assert_array_equal(a, datagauge.saliency(model, read_only, method="deep_lift"))


def test_random_methods_are_seeded_and_leave_global_rng_alone():
    model = tiny()
    x = images(2)
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()  # noqa: NPY002
    a = datagauge.saliency(model, x, method="gradient_shap", stdevs=0.1, seed=3)
    b = datagauge.saliency(model, x, method="gradient_shap", stdevs=0.1, seed=3)
    c = datagauge.saliency(model, x, method="gradient_shap", stdevs=0.1, seed=4)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_model_state_restored_even_after_an_error():
    model = tiny()
    model.train()
    datagauge.saliency(model, images(2), method="deep_lift")
    assert all(m.training for m in model.modules())
    with pytest.raises(ValueError, match="target values"):
        datagauge.saliency(model, images(2), target=7)
    assert all(m.training for m in model.modules())


# --------------------------------------------------------------------------- overlays


def test_save_saliency_writes_one_png_per_image(tmp_path):
    from PIL import Image

    x = images(3)
    maps = datagauge.saliency(tiny(), x, method="deep_lift")
    paths = datagauge.save_saliency(x, maps, tmp_path / "maps")
    assert [p.name for p in paths] == [f"saliency_{i:04d}.png" for i in range(3)]
    for p in paths:
        with Image.open(p) as im:
            assert im.mode == "RGB"
            assert im.height >= 128
            pixels = np.asarray(im)
        left = pixels[:, : im.height]  # the image, grey
        assert np.array_equal(left[..., 0], left[..., 1])
        right = pixels[:, -im.height :]  # the overlay, coloured where the map is large
        assert (right[..., 0] != right[..., 2]).any()


def test_save_saliency_bad_maps(tmp_path):
    x = images(2)
    with pytest.raises(ValueError, match=r"maps must have shape \(n, H, W\)"):
        datagauge.save_saliency(x, np.zeros((2, 3, 3)), tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        datagauge.save_saliency(x, np.full((2, H, W), np.nan), tmp_path)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("method", ["layer_conductance", "neuron_conductance", "layer_grad_cam"])
def test_layer_methods_need_a_layer(method):
    with pytest.raises(ValueError, match=f"method '{method}' needs layer="):
        datagauge.saliency(tiny(), images(1), method=method, neuron_index=0)


def test_neuron_conductance_needs_neuron_index():
    with pytest.raises(ValueError, match="needs neuron_index="):
        datagauge.saliency(tiny(), images(1), method="neuron_conductance", layer="conv2")


def test_unknown_method_and_layer():
    with pytest.raises(ValueError, match="method must be one of"):
        datagauge.saliency(tiny(), images(1), method="lime")
    with pytest.raises(ValueError, match=r"'conv9' is not a module.*'conv1'"):
        datagauge.saliency(tiny(), images(1), method="layer_grad_cam", layer="conv9")


def test_layer_without_a_feature_map():
    with pytest.raises(ValueError, match="not a feature map"):
        datagauge.saliency(tiny(), images(1), method="layer_grad_cam", layer="fc1")


def test_bad_baselines_and_targets():
    with pytest.raises(ValueError, match="same size as the images"):
        datagauge.saliency(tiny(), images(2), baseline=np.zeros((5, 5)), **FAST)
    with pytest.raises(ValueError, match="at least 2 baseline images"):
        datagauge.saliency(tiny(), images(2), method="deep_lift_shap", baseline=0.0)
    with pytest.raises(ValueError, match="one baseline image or one per image"):
        datagauge.saliency(tiny(), images(2), baseline=np.zeros((3, H, W)), **FAST)
    with pytest.raises(TypeError, match="dtype"):
        datagauge.saliency(tiny(), images(2), baseline=np.full((H, W), "a"), **FAST)
    with pytest.raises(ValueError, match="one int or one per image"):
        datagauge.saliency(tiny(), images(2), target=[0, 1, 2], **FAST)
    with pytest.raises(TypeError, match="class index"):
        datagauge.saliency(tiny(), images(2), target=0.5, **FAST)


def test_model_that_is_not_a_classifier():
    class Flat(nn.Module):
        def forward(self, x):
            return x

    with pytest.raises(ValueError, match=r"\(n_images, n_classes\)"):
        datagauge.saliency(Flat(), images(1))


def test_missing_captum_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(ImportError, match="pip install captum"):
        datagauge.saliency(tiny(), images(1))


def test_missing_torch_names_the_package_and_extra(monkeypatch):
    from datagauge.embeddings._deps import require_torch

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch==2\.13\.0.*datagauge\[torch\]"):
        require_torch()
