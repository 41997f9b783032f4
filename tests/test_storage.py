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
