"""embed(): shapes, layer capture against a manual forward, determinism, state restored, out=."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import datagauge  # noqa: E402
from datagauge import EmbeddingResult  # noqa: E402
from datagauge.embeddings import SmallCNN, train_classifier  # noqa: E402


class TinyCNN(nn.Module):
    """Conv - ReLU - pool - Linear(12) - ReLU - Linear(3), with a dropout to expose eval mode."""

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.drop = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16, 12)
        self.act2 = nn.ReLU()
        self.fc2 = nn.Linear(12, 3)

    def forward(self, x):
        x = self.pool(self.act(self.conv(x)))
        return self.fc2(self.act2(self.fc1(self.drop(torch.flatten(x, 1)))))


def tiny(seed: int = 0, in_channels: int = 1) -> TinyCNN:
    torch.manual_seed(seed)
    return TinyCNN(in_channels)


def images(n=10, h=6, w=6, seed=0):
    return np.random.default_rng(seed).random((n, h, w)).astype(np.float32)


def manual(model, x_nchw, upto):
    """Forward by hand, in eval mode, up to the named stage."""
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(x_nchw)
        conv = model.pool(model.act(model.conv(x)))
        if upto == "pool":
            return conv.reshape(len(x), -1).numpy()
        h1 = model.act2(model.fc1(torch.flatten(conv, 1)))
        if upto == "act2":
            return h1.numpy()
        return model.fc2(h1).numpy()


# --------------------------------------------------------------------------- oracle


@pytest.mark.parametrize("layer", ["pool", "act2", None])
def test_layer_capture_equals_manual_forward(layer):
    model = tiny()
    x = images(10)
    got = datagauge.embed(x, model, layer=layer, batch_size=3, progress=False, device="cpu")
    want = manual(model, x[:, None], layer or "out")
    assert got.dtype == np.float32
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_layouts_give_the_same_embeddings():
    model = tiny(in_channels=3)
    nchw = np.random.default_rng(1).random((5, 3, 6, 6)).astype(np.float32)
    a = datagauge.embed(nchw, model, layer="fc1", progress=False)
    b = datagauge.embed(nchw.transpose(0, 2, 3, 1).copy(), model, layer="fc1", progress=False)
    c = datagauge.embed(torch.from_numpy(nchw), model, layer="fc1", progress=False)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert a.shape == (5, 12)


def test_dataset_of_tuples_gives_labels_and_metadata():
    model = tiny()
    x = images(7)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return 7

        def __getitem__(self, i):
            one_hot = torch.zeros(3)
            one_hot[i % 3] = 1
            return torch.from_numpy(x[i]), one_hot, {"id": i}

    res = datagauge.embed(
        DS(), model, layer="act2", batch_size=4, progress=False, return_labels=True
    )
    assert isinstance(res, EmbeddingResult)
    np.testing.assert_allclose(
        res.embeddings, manual(model, x[:, None], "act2"), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_array_equal(res.labels, np.arange(7) % 3)
    assert res.labels.dtype == np.int64
    assert res.metadata == tuple({"id": i} for i in range(7))
    assert not res.embeddings.flags.writeable
    assert res.to_dataframe().shape == (7, 13)

    seq = [(x[i], f"class{i % 2}") for i in range(7)]
    res2 = datagauge.embed(seq, model, layer="act2", progress=False, return_labels=True)
    np.testing.assert_allclose(res2.embeddings, res.embeddings, rtol=1e-5, atol=1e-6)
    assert res2.labels.tolist() == [f"class{i % 2}" for i in range(7)]
    assert res2.metadata is None

    bare = datagauge.embed(list(x), model, progress=False, return_labels=True)
    assert bare.labels is None
    assert bare.metadata is None


def test_transform_is_applied_per_image():
    model = tiny()
    x = images(4)
    got = datagauge.embed(x, model, transform=lambda im: im * 2.0, progress=False)
    np.testing.assert_allclose(got, manual(model, (2 * x)[:, None], "out"), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- properties


def test_deterministic_and_batch_size_invariant():
    model = tiny()
    x = images(11)
    a = datagauge.embed(x, model, layer="fc1", batch_size=11, progress=False)
    b = datagauge.embed(x, model, layer="fc1", batch_size=2, progress=False)
    c = datagauge.embed(x, model, layer="fc1", batch_size=2, progress=False)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(b, c)


def test_out_memmap_is_filled_in_place(tmp_path):
    model = tiny()
    x = images(9)
    path = tmp_path / "emb.npy"
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(9, 16))
    got = datagauge.embed(x, model, layer="pool", batch_size=4, progress=False, out=out)
    assert got is out
    out.flush()
    np.testing.assert_allclose(
        np.load(path), manual(model, x[:, None], "pool"), rtol=1e-5, atol=1e-6
    )
    np.save(tmp_path / "images.npy", x)
    mapped = np.load(tmp_path / "images.npy", mmap_mode="r")
    again = datagauge.embed(mapped, model, layer="pool", batch_size=4, progress=False)
    np.testing.assert_array_equal(again, np.load(path))


def test_state_hook_and_mode_restored_after_success_and_error():
    model = tiny()
    model.train()
    model.fc2.eval()  # a mixed state must come back exactly
    before = [m.training for m in model.modules()]
    datagauge.embed(images(3), model, layer="fc1", progress=False)
    assert [m.training for m in model.modules()] == before
    assert not model.fc1._forward_hooks

    def boom(_im):
        raise RuntimeError("transform failed")

    with pytest.raises(RuntimeError, match="transform failed"):
        datagauge.embed(images(3), model, layer="fc1", transform=boom, progress=False)
    assert [m.training for m in model.modules()] == before
    assert not model.fc1._forward_hooks

    class Exploding(nn.Module):
        def forward(self, x):
            raise RuntimeError("forward failed")

    model.fc1 = Exploding()
    with pytest.raises(RuntimeError, match="forward failed"):
        datagauge.embed(images(3), model, progress=False)
    assert [m.training for m in model.modules()][: len(before)] == before


def test_eval_mode_inside_and_no_grad():
    model = tiny()
    model.train()
    seen = []
    model.fc1.register_forward_hook(
        lambda m, i, o: seen.append((m.training, torch.is_inference_mode_enabled()))
    )
    datagauge.embed(images(2), model, progress=False)
    assert seen == [(False, True)]


def test_progress_callback_and_bar(capsys):
    calls = []
    datagauge.embed(images(5), tiny(), batch_size=2, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(2, 5), (4, 5), (5, 5)]
    datagauge.embed(images(5), tiny(), batch_size=2, progress=True)
    assert "5/5" in capsys.readouterr().err


def test_uint8_images_are_not_rescaled():
    model = tiny()
    x8 = (images(3) * 255).astype(np.uint8)
    a = datagauge.embed(x8, model, progress=False)
    np.testing.assert_allclose(a, manual(model, x8[:, None].astype(np.float32), "out"), rtol=1e-5)


# --------------------------------------------------------------------------- small models


def test_small_cnn_seeded_init_and_training_are_deterministic():
    x = images(32, 8, 8)
    y = np.arange(32) % 3
    state = torch.random.get_rng_state()
    a = train_classifier(
        SmallCNN(n_classes=3, random_state=1),
        x,
        y,
        epochs=2,
        batch_size=16,
        random_state=5,
        device="cpu",
    )
    b = train_classifier(
        SmallCNN(n_classes=3, random_state=1),
        x,
        y,
        epochs=2,
        batch_size=16,
        random_state=5,
        device="cpu",
    )
    c = train_classifier(
        SmallCNN(n_classes=3, random_state=1),
        x,
        y,
        epochs=2,
        batch_size=16,
        random_state=6,
        device="cpu",
    )
    assert torch.equal(torch.random.get_rng_state(), state), "global RNG was changed"
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert not a.training
    emb = datagauge.embed(x, a, layer=a.embedding_layer, progress=False)
    assert emb.shape == (32, 64)


def test_small_cnn_learns_digits():
    from datagauge.datasets import load_digits

    d = load_digits()
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(d.images))
    train, test = idx[:800], idx[1000:1400]
    model = train_classifier(
        SmallCNN(random_state=0, width=8, embedding_dim=32),
        d.images[train],
        d.labels[train],
        epochs=3,
        batch_size=64,
        lr=2e-2,
        random_state=0,
        device="cpu",
    )
    pred = datagauge.embed(d.images[test], model, progress=False).argmax(axis=1)
    assert (pred == d.labels[test]).mean() > 0.85


def test_small_cnn_takes_28x28():
    model = SmallCNN(random_state=0)
    assert datagauge.embed(images(2, 28, 28), model, layer="hidden", progress=False).shape == (
        2,
        64,
    )


# --------------------------------------------------------------------------- bad input


def test_unknown_layer_lists_valid_names():
    with pytest.raises(ValueError, match=r"'nope' is not a module.*'conv', 'act', 'pool'"):
        datagauge.embed(images(2), tiny(), layer="nope", progress=False)


def test_output_that_cannot_be_flattened():
    class TupleOut(nn.Module):
        def forward(self, x):
            return x, x

    with pytest.raises(TypeError, match="cannot be flattened"):
        datagauge.embed(images(2), TupleOut(), progress=False)

    class Summed(nn.Module):
        def forward(self, x):
            return x.sum()

    with pytest.raises(ValueError, match="cannot be flattened into one row per image"):
        datagauge.embed(images(2), Summed(), progress=False)


def test_layer_that_never_runs():
    model = tiny()
    model.unused = nn.Linear(2, 2)
    with pytest.raises(ValueError, match="did not run"):
        datagauge.embed(images(2), model, layer="unused", progress=False)


def test_bad_out():
    x = images(4)
    with pytest.raises(ValueError, match=r"shape \(4, d\)"):
        datagauge.embed(x, tiny(), out=np.empty((3, 3), np.float32), progress=False)
    with pytest.raises(TypeError, match="float32"):
        datagauge.embed(x, tiny(), out=np.empty((4, 3), np.float64), progress=False)
    with pytest.raises(ValueError, match=r"allocate out with shape \(4, 3\)"):
        datagauge.embed(x, tiny(), out=np.empty((4, 5), np.float32), progress=False)


def test_bad_data_and_model():
    with pytest.raises(TypeError, match=r"nn\.Module"):
        datagauge.embed(images(2), lambda x: x, progress=False)
    with pytest.raises(ValueError, match="3-D"):
        datagauge.embed(np.zeros((2, 3)), tiny(), progress=False)
    with pytest.raises(ValueError, match="NaN"):
        datagauge.embed(np.full((2, 6, 6), np.nan, np.float32), tiny(), progress=False)
    with pytest.raises(ValueError, match="different shapes"):
        datagauge.embed([images(1)[0], images(1, 7, 7)[0]], tiny(), progress=False)
    with pytest.raises(ValueError, match="empty"):
        datagauge.embed([], tiny(), progress=False)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        datagauge.embed(images(2), tiny(), batch_size=0, progress=False)
    with pytest.raises(ValueError, match="not a torch device"):
        datagauge.embed(images(2), tiny(), device="gpu-please", progress=False)


def test_train_classifier_bad_labels():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\]"):
        train_classifier(tiny(), images(4), [0, 1, 2, 3], epochs=1, device="cpu")
    with pytest.raises(TypeError, match="integer class indices"):
        train_classifier(tiny(), images(2), ["a", "b"], epochs=1, device="cpu")
