"""Reading an untrusted zip within size bounds, for checkpoints and the programs inside them.

A zip's directory declares each member's size, and a small file can declare (and deflate to)
gigabytes: a 1 MB file of deflated zeros unpacks to 1 GB. ``read_members`` therefore checks the
directory before it decompresses a byte: the compression method, each member's declared size
against its own limit and all of them against one budget, and the ratio of each member's declared
to its compressed size. It then decompresses in chunks; zipfile stops at the declared size, and a
member that ends short of it is refused, so memory stays within what the checks allowed.
"""

from __future__ import annotations

import zipfile
from typing import Mapping

from wmbench.checkpoint.errors import CheckpointError, corrupted

CHUNK_BYTES = 1 << 20  # decompressed at a time


def read_members(
    archive: zipfile.ZipFile, limits: Mapping[str, int], *, budget: int, max_ratio: float, where: str
) -> dict[str, bytes]:
    """Every member of ``archive``, each at most ``limits[name]`` bytes unpacked (``budget`` for a
    name not in ``limits``), all together at most ``budget``, each at most ``max_ratio`` times its
    compressed size. ``where`` opens the messages of the :class:`CheckpointError` it raises."""

    def refuse(problem: str) -> CheckpointError:
        return CheckpointError(
            f"{where} {problem}; it was refused before anything was decompressed. A file written by wmbench.export "
            f"stays within these limits: export the model again"
        )

    infos = archive.infolist()
    for info in infos:
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise refuse(f"compresses {info.filename} with zip method {info.compress_type}; only stored and deflated members are read")
        limit = limits.get(info.filename, budget)
        if info.file_size > limit:
            raise refuse(f"declares {info.filename} as {_size(info.file_size)} unpacked, more than the {_size(limit)} allowed")
        if info.file_size > max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise refuse(f"declares {info.filename} as {ratio:.0f} times its compressed size, more than the {max_ratio:g} allowed")
    total = sum(info.file_size for info in infos)
    if total > budget:
        raise refuse(f"declares {_size(total)} of members unpacked, more than the {_size(budget)} allowed")

    members = {}
    for info in infos:
        with archive.open(info) as member:
            data = b"".join(iter(lambda: member.read(CHUNK_BYTES), b""))
        if len(data) != info.file_size:
            raise corrupted(where, f"{info.filename} unpacks to {len(data)} bytes, not the {info.file_size} it declares")
        members[info.filename] = data
    return members


def _size(count: int) -> str:
    return f"{count / (1 << 20):.1f} MiB" if count >= 1 << 20 else f"{count} bytes"
