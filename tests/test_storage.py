"""The content-addressed file store."""

import hashlib
import os

import pytest

from service.exceptions import NotFound, StorageError
from service.storage import FileStore


def test_same_bytes_are_stored_once(tmp_path):
    store = FileStore(tmp_path)
    digest, created = store.put(b"%PDF-1.4 hello")
    again, created_again = store.put(b"%PDF-1.4 hello")
    assert digest == again == hashlib.sha256(b"%PDF-1.4 hello").hexdigest()
    assert (created, created_again) == (True, False)
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [store.path_of(digest)]
    assert store.get(digest) == b"%PDF-1.4 hello"


def test_address_is_the_sha256_in_two_levels(tmp_path):
    store = FileStore(tmp_path)
    digest, _ = store.put(b"abc")
    assert store.path_of(digest) == tmp_path / digest[:2] / digest[2:4] / digest


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    store = FileStore(tmp_path)

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(StorageError, match="No space left"):
        store.put(b"some bytes")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_unknown_or_malformed_digest_is_not_found(tmp_path):
    store = FileStore(tmp_path)
    with pytest.raises(NotFound):
        store.get("0" * 64)
    with pytest.raises(NotFound):
        store.path_of("../../etc/passwd")


def test_delete_is_idempotent(tmp_path):
    store = FileStore(tmp_path)
    digest, _ = store.put(b"x")
    store.delete(digest)
    store.delete(digest)
    assert not store.exists(digest)


@pytest.mark.parametrize("digest", [
    "..", "../../etc/passwd", "%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/etc/passwd", "..\\..\\windows\\win.ini",
    ("../" * 22)[:64], "/" + "a" * 63, "a" * 63 + "\x00", "\x00" * 64, "A" * 64, "\uff10" * 64, "a" * 65, "", None,
])
def test_path_tricks_name_no_file(tmp_path, digest):
    """Only 64 lowercase hex digits address a file: every other string is "no such file", never a path."""
    store = FileStore(tmp_path / "files")
    (tmp_path / "files").mkdir()
    (tmp_path / "secret.txt").write_bytes(b"not for you")
    for call in (store.get, store.exists, store.delete):
        with pytest.raises(NotFound):
            call(digest)
    assert (tmp_path / "secret.txt").exists()


def test_a_link_planted_in_the_store_is_never_followed_out_of_it(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"not for you")
    store = FileStore(tmp_path / "files")
    linked_file = hashlib.sha256(b"one").hexdigest()
    store.path_of(linked_file).parent.mkdir(parents=True)
    store.path_of(linked_file).symlink_to(outside / "secret.txt")
    linked_folder = hashlib.sha256(b"two").hexdigest()
    (store.root / linked_folder[:2]).symlink_to(outside, target_is_directory=True)
    (outside / linked_folder[2:4]).mkdir()
    (outside / linked_folder[2:4] / linked_folder).write_bytes(b"not for you either")
    for digest in (linked_file, linked_folder):
        with pytest.raises(NotFound):
            store.get(digest)


def test_a_link_to_a_file_inside_the_store_is_not_followed_either(tmp_path):
    store = FileStore(tmp_path)
    real, _ = store.put(b"real bytes")
    alias = hashlib.sha256(b"alias").hexdigest()
    store.path_of(alias).parent.mkdir(parents=True, exist_ok=True)
    store.path_of(alias).symlink_to(store.path_of(real))
    with pytest.raises(NotFound):
        store.get(alias)
    assert store.get(real) == b"real bytes"


def test_an_unreadable_file_is_a_storage_error_not_a_missing_one(tmp_path, monkeypatch):
    store = FileStore(tmp_path)
    digest, _ = store.put(b"locked")

    def denied(path, flags, *args):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(StorageError, match="Permission denied"):
        store.get(digest)
