"""A content-addressed file store: every file lives at the SHA-256 of its bytes.

The same bytes posted twice are stored once. A file is written to a temporary
name in its final folder, flushed to disk and renamed into place, so a crash
leaves either the whole file or nothing under its address.
"""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path

from service.exceptions import NotFound, StorageError


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FileStore:
    """Files under *root*, at ``root/ab/cd/abcd…`` (the hex SHA-256)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_of(self, digest: str) -> Path:
        """Where *digest* lives; anything but 64 lowercase hex digits is no file (so never a path)."""
        if not isinstance(digest, str) or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise NotFound(f"No stored file {digest!r}.")
        return self.root / digest[:2] / digest[2:4] / digest

    def exists(self, digest: str) -> bool:
        return self.path_of(digest).is_file()

    def put(self, data: bytes) -> tuple[str, bool]:
        """Store *data*; return its digest and whether this call created the file."""
        digest = sha256_of(data)
        path = self.path_of(digest)
        if path.is_file():
            return digest, False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
            try:
                with os.fdopen(fd, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"Could not store the file: {exc.strerror or exc}.") from exc
        return digest, True

    def get(self, digest: str) -> bytes:
        """The file's bytes. A link planted in the store is never followed out of it."""
        path = self.path_of(digest)
        if not path.resolve().is_relative_to(self.root.resolve()):
            raise NotFound(f"No stored file {digest}.")
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"No stored file {digest}.") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # the file itself is a link
                raise NotFound(f"No stored file {digest}.") from None
            raise StorageError(f"Could not read the file: {exc.strerror or exc}.") from exc
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def delete(self, digest: str) -> None:
        self.path_of(digest).unlink(missing_ok=True)
