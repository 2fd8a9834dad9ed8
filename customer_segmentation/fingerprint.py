"""What an input file was when the build read it: size, modification time and content hash.

The build records these per input file (`staging.stg_input_files`); publishing takes them
again and refuses a build whose inputs changed since, because `marts.fct_order_lines` is a
view that reads the files where they lie.
"""

from __future__ import annotations

import hashlib
import os

#: Read size for hashing: large enough that a multi-GB file costs few system calls.
CHUNK_BYTES = 16 * 1024 * 1024


class FileChangedError(OSError):
    """The file changed while it was being hashed."""


def file_stat(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(size in bytes, st_mtime_ns): what changes when a file is written, checked first."""
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


def file_fingerprint(path: str | os.PathLike[str]) -> tuple[int, int, str]:
    """(size in bytes, st_mtime_ns, sha256 hex of the whole file's bytes).

    The size and time are those of the open file before and after the read; a file written
    meanwhile raises `FileChangedError` rather than pairing one version's hash with
    another's size.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        before = os.fstat(handle.fileno())
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
        after = os.fstat(handle.fileno())
    stat = (before.st_size, before.st_mtime_ns)
    if stat != (after.st_size, after.st_mtime_ns):
        raise FileChangedError(f"{path} changed while it was read")
    return before.st_size, before.st_mtime_ns, digest.hexdigest()
