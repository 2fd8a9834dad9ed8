"""The input fingerprint publish compares with the build's: size, mtime and the whole file's
SHA-256, read in chunks."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from customer_segmentation import fingerprint
from customer_segmentation.fingerprint import FileChangedError, file_fingerprint, file_stat


def test_fingerprint_is_size_mtime_and_sha256_of_every_byte(tmp_path: Path, monkeypatch):
    path = tmp_path / "lines.csv"
    data = os.urandom(10_000)
    path.write_bytes(data)
    # Chunks smaller than the file, one of them partial: every byte is hashed once.
    monkeypatch.setattr(fingerprint, "CHUNK_BYTES", 4096)
    st = os.stat(path)
    assert file_fingerprint(path) == (10_000, st.st_mtime_ns, hashlib.sha256(data).hexdigest())
    assert file_stat(path) == (10_000, st.st_mtime_ns)


def test_a_file_written_while_it_is_hashed_is_refused(tmp_path: Path, monkeypatch):
    path = tmp_path / "lines.csv"
    path.write_bytes(b"a" * 100)
    real_fstat = os.fstat
    calls = []

    def fstat_then_grow(fd):
        calls.append(fd)
        if len(calls) == 2:
            with path.open("ab") as handle:
                handle.write(b"more")
        return real_fstat(fd)

    monkeypatch.setattr(fingerprint.os, "fstat", fstat_then_grow)
    with pytest.raises(FileChangedError, match="changed while it was read"):
        file_fingerprint(path)
