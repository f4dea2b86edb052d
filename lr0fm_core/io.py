"""The one loader for user images: a path, bytes or a file object in, a safe RGB image out.

Every image the CLI and the app take from a user goes through :func:`load_image`, so a
photo gets the same pixels everywhere (EXIF rotation applied, first frame, alpha on
white, 8-bit RGB) and a broken, hostile or unsupported file becomes an
:class:`ImageLoadError` that names the file, never a Pillow traceback.
"""

from __future__ import annotations

import io
import os
import pathlib
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width x height decoded unless ``max_pixels=`` says otherwise (~150 MB as RGB)."""

MAX_BYTES = 200 * 2**20
"""Most bytes read from a path or file object, or accepted as bytes (200 MiB)."""

FORMAT_EXTENSIONS = {
    "JPEG": ("jpg", "jpeg", "jfif"),
    "PNG": ("png",),
    "WEBP": ("webp",),
    "BMP": ("bmp",),
    "TIFF": ("tif", "tiff"),
    "GIF": ("gif",),
}
"""The Pillow decoders we use (content of any other format is refused) and their extensions."""

SUPPORTED_EXTENSIONS = tuple(ext for exts in FORMAT_EXTENSIONS.values() for ext in exts)
"""File extensions for upload widgets, e.g. ``st.file_uploader(type=SUPPORTED_EXTENSIONS)``."""

_UINT16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
_ALPHA_MODES = ("RGBA", "LA", "PA")


class ImageLoadError(ValueError):
    """A user image could not be loaded safely; the message names the source and the reason."""


def load_image(source, *, max_pixels: int | None = None) -> Image.Image:
    """Load a user image as a fully decoded 8-bit RGB ``PIL.Image.Image``.

    ``source`` is a path (``str``/``os.PathLike``), ``bytes``/``bytearray``/``memoryview``,
    or a binary file object read from its current position (e.g. Streamlit's
    ``UploadedFile``). At most :data:`MAX_BYTES` are read; the declared width x height is
    checked against ``max_pixels`` (default :data:`DEFAULT_MAX_PIXELS`) before any pixel
    is decoded, and Pillow's own ``Image.MAX_IMAGE_PIXELS`` bomb limit also applies.
    The result has EXIF orientation applied, is the first frame of an animation or
    multi-page file, and has transparency flattened onto white. High bit depth greyscale is
    scaled, never clipped: unsigned 16-bit by its type range (v * 255 / 65535), 32-bit 'I'
    and float 'F' by stretching their finite min..max to 0..255. It holds no file handle.

    Raises :class:`ImageLoadError` for anything unreadable, unsupported or too large,
    and ``TypeError`` when ``source`` is none of the accepted types.
    """
    max_pixels = DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels
    if not max_pixels > 0:
        raise ValueError(f"max_pixels must be a positive number of pixels, got {max_pixels!r}.")
    label, data = _read_bytes(source)
    image = _decode_first_frame(data, label, max_pixels)
    return _to_rgb(image)


def _error(label: str, reason: str) -> ImageLoadError:
    return ImageLoadError(f"Cannot load {label}: {reason}")


def _read_bytes(source) -> tuple[str, bytes]:
    """Return a label naming ``source`` for messages and at most ``MAX_BYTES + 1`` of its bytes."""
    if isinstance(source, (str, os.PathLike)):
        path = pathlib.Path(source)
        label = f"image file '{path}'"
        if path.is_dir():
            raise _error(label, "it is a directory, not an image file.")
        if not path.exists():
            raise _error(label, "no such file.")
        if not path.is_file():
            raise _error(label, "it is not a regular file.")
        try:
            with path.open("rb") as file:
                data = file.read(MAX_BYTES + 1)
        except OSError as exc:
            raise _error(label, f"the file could not be read ({exc.strerror or exc}).") from exc
    elif isinstance(source, (bytes, bytearray, memoryview)):
        label, data = "image data (bytes)", bytes(source)
    elif callable(getattr(source, "read", None)):
        name = getattr(source, "name", None)
        label = f"image '{os.path.basename(name)}'" if isinstance(name, str) and name else "uploaded image"
        data = source.read(MAX_BYTES + 1)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"{label} is a text-mode file object; open it in binary mode ('rb').")
    else:
        raise TypeError(f"load_image() takes a path, bytes or a binary file object, not {type(source).__name__}.")
    if len(data) > MAX_BYTES:
        raise _error(label, f"it is larger than {MAX_BYTES / 2**20:g} MiB.")
    if not data:
        raise _error(label, "it is empty (0 bytes).")
    return label, bytes(data)


def _looks_like_svg(data: bytes) -> bool:
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith(b"<") and b"<svg" in head


def _decode_first_frame(data: bytes, label: str, max_pixels: int) -> Image.Image:
    """Check the header's width x height, then decode the first frame and apply its EXIF orientation."""
    if _looks_like_svg(data):
        raise _error(label, "it is an SVG; vector images are not supported, convert it to PNG first.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=tuple(FORMAT_EXTENSIONS)) as image:
                width, height = image.size  # Pillow itself refuses zero sizes while opening
                if width * height > max_pixels:
                    raise _error(label, f"it is {width}x{height} = {width * height:,} pixels, over the limit of "
                                        f"{max_pixels:,} (possible decompression bomb); downscale it first.")
                image.load()
                return ImageOps.exif_transpose(image)  # a new, loaded image that owns its pixels
    except ImageLoadError:
        raise
    except UnidentifiedImageError as exc:
        supported = ", ".join(SUPPORTED_EXTENSIONS)
        reason = f"it is not an image in a supported format ({supported}), or its header is damaged."
        raise _error(label, reason) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        reason = f"it declares more than Pillow's limit of {Image.MAX_IMAGE_PIXELS:,} pixels"
        raise _error(label, f"{reason} (possible decompression bomb); downscale it first.") from exc
    except Exception as exc:
        # Fuzzing truncated and bit-flipped files made Pillow raise OSError, SyntaxError,
        # ValueError, TypeError and OverflowError: on untrusted bytes any of them means "corrupt".
        raise _error(label, f"it is truncated or corrupt ({exc}).") from exc


def _greyscale_to_8bit(image: Image.Image) -> Image.Image:
    """Map high bit depth greyscale to 8-bit 'L' without clipping at 255.

    Unsigned 16-bit ('I;16*', e.g. 16-bit PNG/TIFF) is divided by the type's range, 65535,
    so a 16-bit photo keeps its brightness. 32-bit 'I' and float 'F' have no fixed range
    in practice, so their finite min..max is stretched to 0..255 (a flat image becomes
    black, NaN/inf become 0).
    """
    values = np.asarray(image, dtype=np.float32)
    if image.mode in _UINT16_MODES:
        low, span = 0.0, 65535.0
    else:
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
        span = (high - low) or 1.0
    scaled = np.nan_to_num((values - low) / span * 255.0, nan=0.0, posinf=0.0, neginf=0.0)
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit RGB; transparency (alpha band or ``info['transparency']``) goes onto white."""
    if image.mode in _UINT16_MODES or image.mode in ("I", "F"):
        return _greyscale_to_8bit(image).convert("RGB")
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flattened = Image.new("RGB", image.size, "white")
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        return flattened
    return image.convert("RGB")
