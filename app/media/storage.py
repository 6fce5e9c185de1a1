"""Where uploaded files live, behind a small interface (local folder now, object storage later)."""

from __future__ import annotations

import re
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Protocol

from app.settings import get_settings

KEY_RE = re.compile(r"^[a-f0-9]{32}(?:-t)?\.(?:jpg|png|webp)$")


class Storage(Protocol):
    def save(self, data: bytes, *, suffix: str) -> str: ...

    def open(self, key: str) -> bytes | None: ...

    def delete(self, key: str) -> None: ...


def new_key(suffix: str) -> str:
    return f"{secrets.token_hex(16)}{suffix}"


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        if not KEY_RE.match(key):
            raise ValueError("bad storage key")
        return self.root / key[:2] / key

    def save(self, data: bytes, *, suffix: str) -> str:
        key = new_key(suffix)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return key

    def save_as(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return key

    def open(self, key: str) -> bytes | None:
        try:
            return self._path(key).read_bytes()
        except (ValueError, FileNotFoundError):
            return None

    def delete(self, key: str) -> None:
        try:
            self._path(key).unlink(missing_ok=True)
        except ValueError:
            pass


@lru_cache(maxsize=1)
def storage() -> LocalStorage:
    return LocalStorage(get_settings().media_dir)
