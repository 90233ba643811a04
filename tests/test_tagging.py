"""Image-property tagger: each property against a direct numpy computation or a known image."""

from __future__ import annotations

import numpy as np
import pytest

from datagauge.tagging import GRAY_PROPERTIES, image_properties, property_tags


def prop(images, name):
    scores, names = image_properties(images)
    return scores[:, names.index(name)]


def canvas(h=20, w=20):
    return np.zeros((h, w), dtype=np.float32)


def test_names_and_shapes():
    rng = np.random.default_rng(0)
    gray = rng.random((5, 12, 10))
    s, names = image_properties(gray)
    assert s.shape == (5, len(GRAY_PROPERTIES))
    assert s.dtype == np.float32
    assert names == list(GRAY_PROPERTIES)
    s, names = image_properties(rng.random((5, 12, 10, 3)))
    assert names[-1] == "colourfulness"
    assert s.shape == (5, len(GRAY_PROPERTIES) + 1)


def test_brightness_contrast_sharpness_match_numpy():
    rng = np.random.default_rng(1)
    x = rng.random((6, 9, 11))
    np.testing.assert_allclose(prop(x, "brightness"), x.mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(prop(x, "contrast"), x.std(axis=(1, 2)), rtol=1e-6)
    lap = np.array(
        [
            (
                img[:-2, 1:-1]
                + img[2:, 1:-1]
                + img[1:-1, :-2]
                + img[1:-1, 2:]
                - 4 * img[1:-1, 1:-1]
            ).var()
            for img in x
        ]
    )
    np.testing.assert_allclose(prop(x, "sharpness"), lap, rtol=1e-5)


def test_colour_brightness_uses_luma_and_uint8_equals_float():
    rng = np.random.default_rng(2)
    u8 = rng.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    f = u8 / 255.0
    luma = f @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(prop(f, "brightness"), luma.mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(
        image_properties(u8)[0], image_properties(f)[0], rtol=1e-5, atol=1e-6
    )


def test_ink_area_thickness_aspect_on_rectangles():
    a = canvas()
    a[5:7, 4:16] = 1.0  # 2 x 12 bar: area 24 / 400, aspect 6
    b = canvas()
    b[5:11, 4:16] = 1.0  # 6 x 12 block: thicker
    s, names = image_properties(np.stack([a, b]))
    col = {n: s[:, i] for i, n in enumerate(names)}
    assert col["ink_area"][0] == pytest.approx(24 / 400)
    assert col["ink_area"][1] == pytest.approx(72 / 400)
    assert col["aspect"][0] == pytest.approx(6.0)
    assert col["aspect"][1] == pytest.approx(2.0)
    assert col["stroke_thickness"][1] > col["stroke_thickness"][0]


def test_slant_sign_and_centre_offset():
    back = canvas()
    fwd = canvas()
    for i in range(3, 17):
        back[i, i] = 1.0  # "\": x grows with y
        fwd[i, 19 - i] = 1.0  # "/"
    corner = canvas()
    corner[0:4, 0:4] = 1.0
    centre = canvas()
    centre[8:12, 8:12] = 1.0
    s, names = image_properties(np.stack([back, fwd, corner, centre]))
    slant = s[:, names.index("slant")]
    off = s[:, names.index("center_offset")]
    assert slant[0] == pytest.approx(1.0)
    assert slant[1] == pytest.approx(-1.0)
    assert off[3] == pytest.approx(0.0, abs=1e-6)
    assert off[2] > 0.7


def test_blur_lowers_sharpness():
    rng = np.random.default_rng(3)
    x = rng.random((1, 16, 16))
    blurred = x.copy()
    blurred[:, 1:-1, 1:-1] = (
        sum(x[:, 1 + dy : 15 + dy, 1 + dx : 15 + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)) / 9
    )
    assert prop(blurred, "sharpness")[0] < 0.2 * prop(x, "sharpness")[0]


def test_colourfulness():
    gray = np.repeat(np.random.default_rng(4).random((1, 8, 8, 1)), 3, axis=3)
    red = np.zeros((1, 8, 8, 3))
    red[..., 0] = 1.0
    c = prop(np.concatenate([gray, red]), "colourfulness")
    assert c[0] == pytest.approx(0.0, abs=1e-6)
    assert c[1] == pytest.approx(0.3 * np.hypot(1.0, 0.5), rel=1e-5)


def test_flat_image_is_defined():
    s, _ = image_properties(np.full((2, 5, 5), 0.5))
    assert np.isfinite(s).all()


def test_property_tags_quantiles():
    rng = np.random.default_rng(5)
    s = rng.random((300, 2))
    s[:, 1] = 1.0  # constant: its tags are dropped
    tags, names = property_tags(s, ["a", "b"])
    assert names == ["a=low", "a=high"]
    lo, hi = np.quantile(s[:, 0], [1 / 3, 2 / 3])
    np.testing.assert_array_equal(tags[:, 0], s[:, 0] <= lo)
    np.testing.assert_array_equal(tags[:, 1], s[:, 0] >= hi)
    assert abs(tags[:, 0].mean() - 1 / 3) < 0.01
    tags, names = property_tags(s[:, 1:], ["b"])
    assert tags.shape == (300, 0)
    assert names == []


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("images", "match"),
    [
        (np.zeros((4, 4)), "must be"),
        (np.zeros((2, 5, 5, 4)), r"\(n, H, W, 3\)"),
        (np.zeros((0, 5, 5)), "empty"),
        (np.zeros((2, 2, 5)), "at least 3 x 3"),
        (np.full((2, 5, 5), 3.0), "divide 0..255 data by 255"),
        (np.full((2, 5, 5), np.nan), "NaN"),
    ],
)
def test_bad_images(images, match):
    with pytest.raises(ValueError, match=match):
        image_properties(images)


def test_bad_image_dtype():
    with pytest.raises(TypeError, match="uint8 or floats"):
        image_properties(np.zeros((2, 5, 5), dtype=bool))


def test_bad_property_tags_input():
    s = np.random.default_rng(0).random((10, 2))
    with pytest.raises(ValueError, match="one name per column"):
        property_tags(s, ["a"])
    with pytest.raises(ValueError, match="0 < low <= high < 1"):
        property_tags(s, ["a", "b"], quantiles=(0.7, 0.3))
    with pytest.raises(ValueError, match="two numbers"):
        property_tags(s, ["a", "b"], quantiles=(0.1, 0.2, 0.3))
