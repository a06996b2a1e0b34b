import io
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline

from skmm import ImageEmbedder, ImagePixels
from skmm.image._read import ImageReadError, read_image


@pytest.fixture
def red_png(tmp_path):
    path = tmp_path / "red.png"
    Image.new("RGB", (20, 10), (255, 0, 0)).save(path)
    return path


def _encode(img, fmt="PNG", **kwargs):
    buffer = io.BytesIO()
    img.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def test_every_input_kind_gives_the_same_pixels(red_png):
    img = Image.open(red_png)
    values = [
        str(red_png), red_png, red_png.read_bytes(), img,
        np.asarray(img), np.asarray(img, dtype=np.float32) / 255.0,
    ]
    out = ImagePixels(size=4).fit_transform(pd.Series(values, name="photo", dtype=object))
    assert out.shape == (6, 48) and out.dtype == np.float32
    expected = np.tile([1.0, 0.0, 0.0], 16)
    for row in out:
        np.testing.assert_allclose(row, expected, atol=1 / 255)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "CMYK", "I;16", "LA", "1"])
def test_image_modes_become_rgb(mode):
    if mode == "I;16":
        img = Image.fromarray(np.full((8, 8), 65535, dtype=np.uint16))
        assert img.mode.startswith("I;16")
        rgb = read_image(img)
        assert rgb.mode == "RGB"
        assert np.asarray(rgb).min() == 255  # full-scale 16-bit is white, not clipped
        return
    base = Image.new("RGB", (8, 8), (10, 200, 30))
    img = base.convert(mode)
    rgb = read_image(_encode(img, "TIFF" if mode == "CMYK" else "PNG"))
    assert rgb.mode == "RGB" and rgb.size == (8, 8)


def test_transparent_pixels_are_white():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    assert np.asarray(read_image(img)).min() == 255


def test_exif_rotation_is_applied():
    img = Image.new("RGB", (30, 10), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees when shown
    rgb = read_image(_encode(img, "JPEG", exif=exif.tobytes()))
    assert rgb.size == (10, 30)


def test_gray_and_four_channel_arrays():
    assert read_image(np.zeros((5, 6), dtype=np.uint8)).size == (6, 5)
    assert read_image(np.zeros((5, 6, 4), dtype=np.uint8)).mode == "RGB"
    with pytest.raises(ImageReadError, match=r"\[0, 1\]"):
        read_image(np.full((2, 2), 2.0))
    with pytest.raises(ImageReadError, match="H x W"):
        read_image(np.zeros((2, 2, 2)))
    with pytest.raises(ImageReadError, match="dtype"):
        read_image(np.zeros((2, 2), dtype=np.int64))


@pytest.mark.parametrize("value, cause", [
    ("missing.jpg", "file not found"),
    (b"", "empty bytes"),
    (b"definitely not an image", "not an image file Pillow can identify"),
    (12.5, "cannot read an image from a float"),
    (None, "missing value"),
    (float("nan"), "missing value"),
])
def test_bad_cells_name_column_row_value_and_fix(value, cause):
    X = pd.Series([np.zeros((4, 4), dtype=np.uint8), value], index=[10, 11], name="photo")
    with pytest.raises(ValueError, match=rf"column 'photo', row 11: {cause}.*on_error='zero'"):
        ImagePixels(size=2).fit_transform(X)


def test_zero_byte_and_truncated_files(tmp_path, red_png):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    truncated = tmp_path / "cut.jpg"
    data = _encode(Image.new("RGB", (64, 64), (1, 2, 3)), "JPEG")
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageReadError, match="empty"):
        read_image(empty)
    with pytest.raises(ImageReadError, match="truncated|corrupt"):
        read_image(truncated)


def test_decompression_bomb_is_refused():
    big = _encode(Image.new("L", (200, 200)))
    with pytest.raises(ImageReadError, match="too large"):
        read_image(big, max_pixels=1000)


def test_on_error_zero_keeps_every_row_and_warns(red_png):
    X = [str(red_png), "missing.jpg", None, red_png.read_bytes()]
    trans = ImagePixels(size=2, on_error="zero", missing_indicator=True)
    with pytest.warns(UserWarning, match="2 of 4 rows"):
        out = trans.fit_transform(X)
    assert out.shape == (4, 13)
    np.testing.assert_array_equal(out[:, -1], [0, 1, 1, 0])
    assert np.all(out[1:3, :-1] == 0) and out[0, 0] == 1.0
    assert trans.get_feature_names_out()[-1] == "imagepixels12"


def test_single_column_dataframe_and_2d_array(red_png):
    frame = pd.DataFrame({"photo": [str(red_png)]})
    trans = ImagePixels(size=2).fit(frame)
    assert list(trans.feature_names_in_) == ["photo"]
    assert trans.transform(np.array([[str(red_png)]], dtype=object)).shape == (1, 12)
    with pytest.raises(ValueError, match="single column"):
        trans.transform(pd.DataFrame({"a": [1], "b": [2]}))


def test_sklearn_contract(red_png):
    trans = ImagePixels(size=3, on_error="zero")
    assert clone(trans).get_params() == trans.get_params()
    assert trans.set_params(size=5).size == 5
    with pytest.raises(NotFittedError):
        trans.transform([str(red_png)])
    assert trans.fit([str(red_png)]) is trans
    again = pickle.loads(pickle.dumps(trans))
    np.testing.assert_array_equal(again.transform([red_png]), trans.transform([red_png]))
    with pytest.raises(ValueError, match="on_error"):
        ImagePixels(on_error="skip").fit([str(red_png)])
    with pytest.raises(ValueError, match="size"):
        ImagePixels(size=0).fit([str(red_png)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        trans.set_output(transform="pandas")
        out = trans.transform(pd.Series([str(red_png)], index=[7]))
    assert list(out.index) == [7] and out.shape == (1, 75)


@pytest.mark.parametrize("transformer", [
    ImagePixels(size=4, on_error="zero"),
    ImageEmbedder("simple_cnn", weights=None, image_size=8, on_error="zero"),
])
def test_warnings_print_row_numbers_as_plain_ints(transformer):
    with pytest.warns(UserWarning, match=r"\(first: row 1\)"):
        transformer.fit_transform([np.zeros((4, 4, 3), np.uint8), None])


_HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)


@pytest.mark.parametrize("transformer", [
    ImagePixels(size=4),
    ImageEmbedder("simple_cnn", weights=None, image_size=8),
])
@pytest.mark.parametrize("data, kind", [
    (_HEIC, "HEIC/HEIF.*pillow-heif"), (b"%PDF-1.7\n" + bytes(40), "PDF"),
    (b"\n  <svg xmlns='http://www.w3.org/2000/svg'/>", "SVG"),
])
def test_a_known_unsupported_format_is_called_unsupported_not_corrupt(
    tmp_path, transformer, data, kind
):
    path = tmp_path / "photo.img"
    path.write_bytes(data)
    for value in (str(path), data):
        with pytest.raises(ValueError, match=rf"row 1: unsupported image format \({kind}"):
            transformer.fit_transform([np.zeros((4, 4, 3), np.uint8), value])


@pytest.mark.parametrize("make", [
    lambda: ImagePixels(size=4, on_error="zero"),
    lambda: ImageEmbedder("simple_cnn", weights=None, image_size=8, on_error="zero"),
    lambda: make_pipeline(ImagePixels(size=4, on_error="zero")),
])
def test_warnings_point_at_the_users_line(make):
    with pytest.warns(UserWarning, match="could not be read") as record:
        make().fit_transform([np.zeros((4, 4, 3), np.uint8), None])
    assert record[0].filename == __file__
