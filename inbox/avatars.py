"""Agent avatars as visitors get them: a square PNG of ``AVATAR_SIZE`` pixels, with no metadata.

The uploaded image is turned upright (its EXIF orientation applied), cropped to its centre square,
scaled down and written anew, so nothing of the original file (camera, place, time) reaches a visitor.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

AVATAR_SIZE = 256
MAX_PIXELS = 40_000_000  # decoded size we agree to open: a 1 MB file may unpack to gigabytes


class NotAnImage(ValueError):
    """The bytes do not decode as an image we can use (the message says why)."""


def resized_avatar(data: bytes) -> bytes:
    """The avatar PNG of an uploaded PNG, JPEG, GIF or WebP (its first frame); CPU-bound."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as opened:
                width, height = opened.size
                if width * height > MAX_PIXELS:
                    raise NotAnImage(f"the image is {width}x{height} pixels; at most {MAX_PIXELS} in all")
                opened.seek(0)
                upright = ImageOps.exif_transpose(opened)
                image = upright.convert("RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombWarning) as exc:
        raise NotAnImage("the file is not an image that can be read") from exc
    square = ImageOps.fit(image, (AVATAR_SIZE, AVATAR_SIZE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    square.save(out, format="PNG", optimize=True)  # a new file: no EXIF, no text chunks
    return out.getvalue()
