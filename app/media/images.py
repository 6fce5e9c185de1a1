"""Image uploads: type checked by content, re-encoded with Pillow (which drops EXIF/GPS and
anything hidden after the pixels), a thumbnail, random stored names."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from app.errors import FormError
from app.media.storage import new_key, storage

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_PIXELS = 40_000_000
MAX_SIDE = 2000
THUMB_SIDE = 480
Image.MAX_IMAGE_PIXELS = MAX_PIXELS


@dataclass(frozen=True)
class StoredImage:
    key: str
    thumb_key: str
    width: int
    height: int


def _human(size: int) -> str:
    return f"{size / (1024 * 1024):.0f} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def check_and_reencode(data: bytes, *, filename: str, max_bytes: int, field: str = "images") -> tuple[bytes, bytes, int, int]:
    """Return (full JPEG, thumbnail JPEG, width, height) or raise FormError with a clear message."""
    name = filename or "the file"
    if len(data) > max_bytes:
        raise FormError({field: f"{name} is {_human(len(data))}; images can be at most {_human(max_bytes)}."})
    if not data:
        raise FormError({field: f"{name} is empty."})
    try:
        with Image.open(io.BytesIO(data)) as probe:
            kind = probe.format
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise FormError({field: f"{name} is {width}×{height} pixels; upload a smaller image."})
            probe.verify()
        if kind not in ALLOWED_FORMATS:
            raise FormError({field: f"{name} is a {kind} file; upload a JPEG, PNG, WebP or GIF image."})
        with Image.open(io.BytesIO(data)) as image:
            image.seek(0)
            image = ImageOps.exif_transpose(image)
            if image.mode in ("RGBA", "LA", "P"):
                image = image.convert("RGBA")
                background = Image.new("RGB", image.size, (255, 255, 255))
                background.paste(image, mask=image.split()[-1])
                image = background
            else:
                image = image.convert("RGB")
            image.thumbnail((MAX_SIDE, MAX_SIDE))
            full = io.BytesIO()
            image.save(full, "JPEG", quality=85, optimize=True, progressive=True)
            width, height = image.size
            thumb_image = image.copy()
            thumb_image.thumbnail((THUMB_SIDE, THUMB_SIDE))
            thumb = io.BytesIO()
            thumb_image.save(thumb, "JPEG", quality=80, optimize=True)
    except FormError:
        raise
    except Image.DecompressionBombError:
        raise FormError({field: f"{name} has too many pixels; upload a smaller image."}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise FormError({field: f"{name} is not an image we can read; upload a JPEG, PNG, WebP or GIF."}) from None
    return full.getvalue(), thumb.getvalue(), width, height


def store_image(data: bytes, *, filename: str, max_bytes: int, field: str = "images") -> StoredImage:
    full, thumb, width, height = check_and_reencode(data, filename=filename, max_bytes=max_bytes, field=field)
    key = new_key(".jpg")
    thumb_key = key.replace(".jpg", "-t.jpg")
    store = storage()
    store.save_as(key, full)
    store.save_as(thumb_key, thumb)
    return StoredImage(key, thumb_key, width, height)
