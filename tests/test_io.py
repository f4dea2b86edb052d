"""Tests for lr0fm_core.io.load_image: odd but valid images, broken or hostile ones, source types.

Every file is generated here in tmp_path with PIL/numpy; expected pixels come from how the
image was built (colours painted, EXIF rule, alpha blending formula), not from the loader.
"""

import io
import os
import pathlib
import resource
import struct
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from lr0fm_core import io as image_io
from lr0fm_core.io import DEFAULT_MAX_PIXELS, SUPPORTED_EXTENSIONS, ImageLoadError, load_image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)
PHOTOS = pathlib.Path("/work/shared/data/labeled_photos")


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int32)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny 8x8 1-bit PNG whose IHDR is patched to claim width x height (CRC recomputed)."""
    data = bytearray(encode(Image.new("1", (8, 8)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


class NamedReader:
    """A minimal binary file-like object: only .read and .name, like many upload wrappers."""

    def __init__(self, data: bytes, name: str):
        self._buffer, self.name = io.BytesIO(data), name

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)


class UploadedFileLike(io.BytesIO):
    """Shape of Streamlit's UploadedFile: a BytesIO subclass with a .name."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name


# ---------------------------------------------------------------- valid but odd images


def test_exif_orientation_6_rotates_size_and_moves_corner():
    # Stored 60 wide x 40 high, top-left 20x20 block red, rest blue. EXIF orientation 6 means
    # "rotate 90 degrees clockwise to display": stored top-left ends at displayed top-right.
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[...] = BLUE
    stored[:20, :20] = RED
    exif = Image.new("RGB", (1, 1)).getexif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(stored), "JPEG", quality=95, exif=exif)

    image = load_image(data)

    assert image.mode == "RGB" and image.size == (40, 60)
    rgb = pixels(image)
    assert np.abs(rgb[5, 35] - RED).max() < 30  # top-right corner (row 5, column 35)
    assert np.abs(rgb[5, 5] - BLUE).max() < 30  # top-left is blue now
    assert np.abs(rgb[55, 35] - BLUE).max() < 30


@pytest.mark.parametrize("fmt, params", [
    ("GIF", {}),
    ("PNG", {}),  # APNG
    ("WEBP", {"lossless": True}),
    ("TIFF", {}),  # multi-page
])
def test_animation_or_multi_page_gives_first_frame(fmt, params):
    frames = [Image.new("RGB", (16, 12), RED), Image.new("RGB", (16, 12), GREEN)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, **params)
    with Image.open(io.BytesIO(data)) as check:
        assert getattr(check, "n_frames", 1) == 2, "fixture must really hold two frames"

    image = load_image(data)

    assert image.mode == "RGB" and image.size == (16, 12)
    assert np.all(pixels(image) == RED)


def test_rgba_transparent_pixels_are_flattened_onto_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[...] = (0, 0, 255, 255)  # opaque blue
    rgba[0, 0] = (255, 0, 0, 0)  # fully transparent red
    rgba[0, 1] = (255, 0, 0, 128)  # half transparent red
    image = load_image(encode(Image.fromarray(rgba), "PNG"))

    rgb = pixels(image)
    assert image.mode == "RGB"
    assert tuple(rgb[0, 0]) == WHITE
    alpha = 128 / 255  # over white: alpha * colour + (1 - alpha) * 255
    expected_half = [alpha * c + (1 - alpha) * 255 for c in RED]
    assert np.abs(rgb[0, 1] - expected_half).max() <= 1
    assert tuple(rgb[3, 3]) == BLUE


def test_la_transparent_black_becomes_white_and_opaque_black_stays():
    la = np.zeros((2, 2, 2), np.uint8)
    la[0, 0] = (0, 0)
    la[0, 1] = (0, 255)
    la[1, :] = (200, 255)
    image = load_image(encode(Image.fromarray(la, "LA"), "PNG"))
    rgb = pixels(image)
    assert tuple(rgb[0, 0]) == WHITE
    assert tuple(rgb[0, 1]) == (0, 0, 0)
    assert tuple(rgb[1, 0]) == (200, 200, 200)


def test_palette_png_with_transparent_index_is_white():
    palette_image = Image.new("P", (4, 4), 1)
    palette_image.putpalette(list(RED) + list(BLUE))
    palette_image.putpixel((0, 0), 0)  # index 0 (red) is declared transparent below
    image = load_image(encode(palette_image, "PNG", transparency=0))
    rgb = pixels(image)
    assert tuple(rgb[0, 0]) == WHITE
    assert tuple(rgb[2, 2]) == BLUE


def test_16bit_png_gradient_scaled_by_type_range_not_clipped():
    values = np.tile(np.linspace(0, 65535, 256).round().astype(np.uint16), (4, 1))
    data = encode(Image.fromarray(values), "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "I;16"

    rgb = pixels(load_image(data))

    assert np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2])
    row = rgb[0, :, 0]
    assert np.all(np.diff(row) >= 0), "ordering must be preserved"
    assert row.min() == 0 and row.max() == 255
    assert len(np.unique(row)) > 200, "a clip at 255 would collapse the gradient"
    assert np.abs(row - values[0] / 65535 * 255).max() <= 1


def test_16bit_big_endian_tiff_scaled_by_type_range_so_a_dark_image_stays_dark():
    values = np.array([[1000, 8000, 16384, 20000]], dtype=">u2")  # uses only the low third of 0..65535
    data = encode(Image.fromarray(values), "TIFF")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "I;16B"
    row = pixels(load_image(data))[0, :, 0]
    assert np.abs(row - values[0] / 65535 * 255).max() <= 1


@pytest.mark.parametrize("dtype, mode", [(np.float32, "F"), (np.int32, "I")])
def test_float_and_int32_tiff_stretch_actual_range_to_0_255(dtype, mode):
    values = np.tile(np.linspace(-3.5, 1000.25, 64).astype(dtype), (3, 1))
    data = encode(Image.fromarray(values), "TIFF")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == mode

    row = pixels(load_image(data))[1, :, 0]

    low, high = float(values.min()), float(values.max())
    assert np.abs(row - (values[1] - low) / (high - low) * 255).max() <= 1
    assert row.min() == 0 and row.max() == 255 and np.all(np.diff(row) >= 0)


def test_cmyk_jpeg_converted_to_rgb():
    data = encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG", quality=95)  # no cyan, full M+Y = red
    image = load_image(data)
    assert image.mode == "RGB"
    assert np.abs(pixels(image) - RED).max() < 10


def test_lab_tiff_converted_to_rgb():
    data = encode(Image.new("LAB", (4, 4), (255, 128, 128)), "TIFF")  # L* = 100, a* = b* = 0: white
    assert np.abs(pixels(load_image(data)) - WHITE).max() <= 2


def test_one_bit_image_becomes_black_and_white_rgb():
    checker = (np.indices((8, 8)).sum(axis=0) % 2).astype(bool)
    image = load_image(encode(Image.fromarray(checker), "PNG"))
    expected = np.where(checker[..., None], 255, 0)
    assert image.mode == "RGB" and np.array_equal(pixels(image), np.broadcast_to(expected, (8, 8, 3)))


@pytest.mark.parametrize("fmt, params", [("WEBP", {"lossless": True}), ("BMP", {}), ("TIFF", {}), ("PNG", {})])
def test_lossless_formats_round_trip_exactly(fmt, params):
    rgb = np.random.default_rng(0).integers(0, 256, (9, 13, 3), dtype=np.uint8)
    image = load_image(encode(Image.fromarray(rgb), fmt, **params))
    assert image.mode == "RGB" and np.array_equal(np.asarray(image), rgb)


def test_greyscale_png_becomes_three_equal_channels():
    grey = np.arange(60, dtype=np.uint8).reshape(6, 10)
    rgb = pixels(load_image(encode(Image.fromarray(grey), "PNG")))
    assert all(np.array_equal(rgb[..., c], grey) for c in range(3))


# ---------------------------------------------------------------- source types


@pytest.fixture
def red_png() -> bytes:
    image = Image.new("RGB", (5, 3), RED)
    image.putpixel((4, 2), BLUE)
    return encode(image, "PNG")


@pytest.mark.parametrize("make_source", [
    pytest.param(lambda path, data: str(path), id="str"),
    pytest.param(lambda path, data: path, id="Path"),
    pytest.param(lambda path, data: data, id="bytes"),
    pytest.param(lambda path, data: bytearray(data), id="bytearray"),
    pytest.param(lambda path, data: memoryview(data), id="memoryview"),
    pytest.param(lambda path, data: io.BytesIO(data), id="BytesIO"),
    pytest.param(lambda path, data: UploadedFileLike(data, "photo.png"), id="UploadedFile-like"),
    pytest.param(lambda path, data: NamedReader(data, "photo.png"), id="read+name"),
])
def test_every_source_type_gives_the_same_pixels(tmp_path, red_png, make_source):
    path = tmp_path / "photo.png"
    path.write_bytes(red_png)
    image = load_image(make_source(path, red_png))
    assert isinstance(image, Image.Image) and image.mode == "RGB" and image.size == (5, 3)
    assert image.getpixel((0, 0)) == RED and image.getpixel((4, 2)) == BLUE


def test_open_binary_file_object_is_read_and_image_outlives_it(tmp_path, red_png):
    path = tmp_path / "photo.png"
    path.write_bytes(red_png)
    with path.open("rb") as file:
        image = load_image(file)
    assert image.getpixel((4, 2)) == BLUE  # pixels are loaded, nothing refers to the closed file


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to count open file descriptors")
def test_loading_a_path_leaves_no_file_handle_open(tmp_path, red_png):
    path = tmp_path / "photo.png"
    path.write_bytes(red_png)
    before = len(os.listdir("/proc/self/fd"))
    images = [load_image(path) for _ in range(20)]
    assert len(os.listdir("/proc/self/fd")) == before
    assert all(image.getpixel((0, 0)) == RED for image in images)


@pytest.mark.parametrize("source", [42, None, 3.5, ["photo.png"], Image.new("RGB", (2, 2))])
def test_wrong_source_type_raises_type_error_naming_the_type(source):
    with pytest.raises(TypeError, match="path, bytes or a binary file object") as info:
        load_image(source)
    assert type(source).__name__ in str(info.value)


def test_text_mode_file_object_is_rejected_with_binary_hint():
    with pytest.raises(TypeError, match="binary mode"):
        load_image(io.StringIO("not bytes"))


@pytest.mark.parametrize("max_pixels", [0, -5])
def test_non_positive_max_pixels_is_rejected(red_png, max_pixels):
    with pytest.raises(ValueError, match="max_pixels"):
        load_image(red_png, max_pixels=max_pixels)


# ---------------------------------------------------------------- broken, unsupported or hostile input


def assert_load_error(source, *fragments, **kwargs):
    with pytest.raises(ImageLoadError) as info:
        load_image(source, **kwargs)
    message = str(info.value)
    assert isinstance(info.value, ValueError)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    assert "Traceback" not in message
    return message


def test_empty_inputs(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    assert_load_error(b"", "empty")
    assert_load_error(empty, "empty", "empty.png")
    assert_load_error(UploadedFileLike(b"", "upload.jpg"), "empty", "upload.jpg")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_file_cut_in_half_is_reported_as_truncated(tmp_path, fmt):
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), fmt)
    path = tmp_path / f"half.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    assert_load_error(path, "truncated or corrupt", f"half.{fmt.lower()}")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


@pytest.mark.parametrize("name, content", [
    ("random.jpg", np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes()),
    ("notes.txt", b"This is a shopping list, not a picture.\n" * 20),
    ("archive.png", None),  # a zip with an image extension
    ("icon.ico", None),  # a real image in a format we do not accept
])
def test_non_images_are_rejected_with_supported_formats_listed(tmp_path, name, content):
    path = tmp_path / name
    if name == "archive.png":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("inner.txt", "hello")
    elif name == "icon.ico":
        Image.new("RGB", (16, 16), RED).save(path, "ICO")
    else:
        path.write_bytes(content)
    assert_load_error(path, "not an image in a supported format", name, "png")


def test_svg_is_rejected_as_vector_image():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    message = assert_load_error(NamedReader(svg, "logo.svg"), "logo.svg", "vector")
    assert "PNG" in message


def test_directory_and_missing_path(tmp_path):
    assert_load_error(tmp_path, "is a directory", str(tmp_path))
    assert_load_error(str(tmp_path / "nope.jpg"), "no such file", "nope.jpg")


@pytest.mark.parametrize("width, height", [(0, 8), (8, 0)])
def test_zero_size_image_is_rejected(width, height):
    assert_load_error(png_declaring(width, height), "header is damaged")


def test_small_file_declaring_huge_size_is_rejected_fast_without_allocating():
    bomb = png_declaring(20000, 20000)  # 400 megapixels = 1.2 GB as RGB, in a 70-byte file
    assert len(bomb) < 200
    rss_before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    assert_load_error(bomb, "decompression bomb")
    assert_load_error(bomb, "decompression bomb", max_pixels=10**10)  # Pillow's own hard limit still holds
    assert_load_error(png_declaring(10000, 10000), "decompression bomb", max_pixels=10**9)  # Pillow's warning level
    assert_load_error(png_declaring(8000, 8000), "8000x8000", "64,000,000", f"{DEFAULT_MAX_PIXELS:,}")
    assert time.perf_counter() - start < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kib < 100 * 1024


def test_max_pixels_caps_a_valid_image_before_decoding():
    data = encode(Image.new("L", (1200, 1000), 7), "PNG")  # valid, compresses to a few KB
    assert load_image(data).size == (1200, 1000)
    assert_load_error(data, "1200x1000", "1,200,000", "1,000,000", max_pixels=1_000_000)
    assert load_image(data, max_pixels=1_200_000).getpixel((0, 0)) == (7, 7, 7)


def test_byte_cap_is_enforced_without_reading_everything(monkeypatch):
    class EndlessZeros:
        name = "stream.bin"

        def read(self, size=-1):
            assert size >= 0, "an unbounded read of an endless stream would never return"
            return bytes(size)

    monkeypatch.setattr(image_io, "MAX_BYTES", 2**20)
    assert_load_error(EndlessZeros(), "larger than 1 MiB", "stream.bin")
    assert_load_error(bytes(2**20 + 1), "larger than 1 MiB")


# ---------------------------------------------------------------- the project's real photos


REAL_PHOTOS = sorted(p for p in PHOTOS.glob("*/*") if p.suffix.lstrip(".").lower() in SUPPORTED_EXTENSIONS)


@pytest.mark.skipif(not REAL_PHOTOS, reason=f"no photos under {PHOTOS}")
@pytest.mark.parametrize("path", REAL_PHOTOS, ids=lambda p: p.name)
def test_real_photos_load_as_rgb_with_pil_reported_size(path):
    with Image.open(path) as raw:
        width, height = raw.size
        rotated = raw.getexif().get(0x0112) in (5, 6, 7, 8)
        plain = raw.mode in ("RGB", "L", "P") and "transparency" not in raw.info and not raw.getexif().get(0x0112)
        reference = np.asarray(raw.convert("RGB"))

    image = load_image(path)

    assert image.mode == "RGB"
    assert image.size == ((height, width) if rotated else (width, height))
    if plain:  # nothing to rotate or flatten: exactly what PIL decodes
        assert np.array_equal(np.asarray(image), reference)
