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
    a = datagauge.saliency(model, x, method="gradient_shap", stdevs=0.1, random_state=3)
    b = datagauge.saliency(model, x, method="gradient_shap", stdevs=0.1, random_state=3)
    c = datagauge.saliency(model, x, method="gradient_shap", stdevs=0.1, random_state=4)
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


# --------------------------------------------------------------------------- agreement with captum
# Each method against a direct captum call with the arguments saliency() documents (baselines,
# targets, steps, layer, noise and seeds), and its post-processing redone here: sum over the
# channels, bilinear upsampling of layer maps to the image size. Same float32 model and inputs
# on both sides (saliency() converts images to float32), so the maps agree to rounding.

SIDE = 16
RGB_TARGETS = np.array([0, 2, 1])
STEPS, SAMPLES, NOISE = 8, 4, 0.1
RGB_ARGS = {"n_steps": STEPS, "n_samples": SAMPLES, "stdevs": NOISE, "internal_batch_size": None}
SEED = 7
NEURON = (2, 3, 5)  # (channel, y, x) in conv2's 8x8 output
# DeepLift's note on every call (saliency() silences it for its own call, not for ours).
CAPTUM_NOTE = pytest.mark.filterwarnings(
    "ignore:Setting forward, backward hooks and attributes on non-linear:UserWarning"
)


class RGBCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 5, 3, padding=1, stride=2)  # 16x16 -> 8x8
        self.act2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(20, 3)

    def forward(self, x):
        x = self.pool(self.act2(self.conv2(self.act1(self.conv1(x)))))
        return self.fc(torch.flatten(x, 1))


def rgb_model(seed: int = 5) -> RGBCNN:
    torch.manual_seed(seed)
    return RGBCNN().eval()


def rgb_images(n=3, seed=11):
    return np.random.default_rng(seed).normal(0.5, 0.3, (n, 3, SIDE, SIDE)).astype(np.float32)


def zeros_baseline(x):
    return torch.zeros((1, *x.shape[1:]))


def shap_baselines(x):
    """saliency()'s default for the SHAP methods: a black and a per-channel mean-grey image."""
    mean = x.mean(dim=(0, 2, 3), keepdim=True).expand(1, *x.shape[1:])
    return torch.cat([zeros_baseline(x), mean])


def _integrated_gradients(attr, model, x, t):
    return attr.IntegratedGradients(model).attribute(
        x, baselines=zeros_baseline(x), target=t, n_steps=STEPS, internal_batch_size=None
    )


def _gradient_shap(attr, model, x, t):
    return attr.GradientShap(model).attribute(
        x, baselines=shap_baselines(x), target=t, n_samples=SAMPLES, stdevs=NOISE
    )


def _deep_lift(attr, model, x, t):
    return attr.DeepLift(model).attribute(x, baselines=zeros_baseline(x), target=t)


def _deep_lift_shap(attr, model, x, t):
    return attr.DeepLiftShap(model).attribute(x, baselines=shap_baselines(x), target=t)


def _layer_conductance(attr, model, x, t):
    return attr.LayerConductance(model, model.conv2).attribute(
        x, baselines=zeros_baseline(x), target=t, n_steps=STEPS, internal_batch_size=None
    )


def _neuron_conductance(attr, model, x, t):
    return attr.NeuronConductance(model, model.conv2).attribute(
        x,
        neuron_selector=NEURON,
        baselines=zeros_baseline(x),
        target=t,
        n_steps=STEPS,
        internal_batch_size=None,
    )


def _noise_tunnel(attr, model, x, t):
    return attr.NoiseTunnel(attr.IntegratedGradients(model)).attribute(
        x,
        nt_type="smoothgrad",
        nt_samples=SAMPLES,
        stdevs=NOISE,
        baselines=zeros_baseline(x),
        target=t,
        n_steps=STEPS,
        internal_batch_size=None,
    )


def _layer_grad_cam(attr, model, x, t):
    return attr.LayerGradCam(model, model.conv2).attribute(x, target=t, relu_attributions=True)


CAPTUM_CALLS = {
    "integrated_gradients": _integrated_gradients,
    "gradient_shap": _gradient_shap,
    "deep_lift": _deep_lift,
    "deep_lift_shap": _deep_lift_shap,
    "layer_conductance": _layer_conductance,
    "neuron_conductance": _neuron_conductance,
    "noise_tunnel": _noise_tunnel,
    "layer_grad_cam": _layer_grad_cam,
}


def captum_maps(method, model, x, target, seed=SEED):
    """captum's raw attributions for ``method``, reduced to (n, H, W) as saliency() documents."""
    import captum.attr

    inputs = torch.from_numpy(x).requires_grad_(True)
    t = torch.as_tensor(target, dtype=torch.int64)
    numpy_state = np.random.get_state()  # noqa: NPY002 - captum draws from numpy too
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            np.random.seed(seed)  # noqa: NPY002
            raw = CAPTUM_CALLS[method](captum.attr, model, inputs, t).detach()
    finally:
        np.random.set_state(numpy_state)  # noqa: NPY002
    summed = raw.sum(dim=1, keepdim=True)
    if summed.shape[-2:] != x.shape[-2:]:
        summed = nn.functional.interpolate(
            summed, size=x.shape[-2:], mode="bilinear", align_corners=False
        )
    return summed[:, 0].numpy()


def test_every_method_has_a_captum_reference():
    assert set(CAPTUM_CALLS) == set(SALIENCY_METHODS)


@CAPTUM_NOTE
@pytest.mark.parametrize("method", SALIENCY_METHODS)
def test_maps_equal_a_direct_captum_call(method):
    model = rgb_model()
    x = rgb_images()
    maps = datagauge.saliency(
        model,
        x,
        method=method,
        target=RGB_TARGETS,
        layer="conv2",
        neuron_index=NEURON,
        random_state=SEED,
        **RGB_ARGS,
    )
    expected = captum_maps(method, model, x, RGB_TARGETS)
    assert maps.shape == expected.shape == (3, SIDE, SIDE)
    scale = float(np.abs(expected).max())
    assert scale > 0
    np.testing.assert_allclose(maps, expected, rtol=1e-6, atol=1e-6 * scale)
    if method in ("gradient_shap", "noise_tunnel"):  # the seed decides the noise drawn
        other = captum_maps(method, model, x, RGB_TARGETS, seed=SEED + 1)
        assert not np.allclose(maps, other, rtol=1e-3, atol=1e-3 * scale)


def test_generator_random_state_is_reproducible():
    model = rgb_model()
    x = rgb_images(2)

    def run(seed):
        rng = np.random.default_rng(seed)
        return datagauge.saliency(model, x, method="gradient_shap", random_state=rng, **RGB_ARGS)

    a = run(SEED)
    np.testing.assert_array_equal(a, run(SEED))
    assert not np.allclose(a, run(SEED + 1))


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
    # files already there are never replaced unasked, and nothing is written then
    paths[1].write_bytes(b"edited")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        datagauge.save_saliency(x, maps, tmp_path / "maps")
    assert paths[1].read_bytes() == b"edited"
    datagauge.save_saliency(x, maps, tmp_path / "maps", overwrite=True)
    assert paths[1].read_bytes() != b"edited"
    with pytest.raises(TypeError, match="True or False"):
        datagauge.save_saliency(x, maps, tmp_path / "maps", overwrite="yes")


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


class _TinyNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 2, 3, padding=1)
        self.fc = torch.nn.Linear(2 * 8 * 8, 3)

    def forward(self, x):
        return self.fc(torch.flatten(torch.relu(self.conv(x)), 1))


@pytest.mark.parametrize(
    ("method", "n"),
    [("integrated_gradients", 2), ("noise_tunnel", 1), ("layer_conductance", 1)],
)
def test_default_internal_batch_size_raises_no_captum_warning(method, n):
    # captum counts internal_batch_size in examples (images x steps); warnings are errors here.
    torch.manual_seed(0)
    x = np.random.default_rng(0).random((n, 8, 8)).astype(np.float32)
    datagauge.saliency(_TinyNet(), x, method=method, layer="conv", n_steps=4)


def test_random_state_beyond_numpy_seeds_is_a_clear_error():
    torch.manual_seed(0)
    x = np.random.default_rng(0).random((1, 8, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=r"random_state must be from 0 to 2\*\*32 - 1"):
        datagauge.saliency(_TinyNet(), x, method="gradient_shap", random_state=2**32)
