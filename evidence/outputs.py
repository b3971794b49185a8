"""History from past outputs: the prompts ComfyUI wrote into its output images, imported as past uses.

Why a module of its own: on a fresh install the tracker knows nothing, yet every image ComfyUI saved carries
the prompt that made it (SaveImage writes PNG text chunks `prompt` and `workflow`). Reading them turns day
one into months of evidence. The rules: only images older than the tracker's first record are read (what
ran since was counted live); a prompt is identified by a digest of its JSON, marked in the database in
the same transaction that records it, so batches of one prompt and a second import count once; the file
is parsed by hand with hard limits, so a truncated, huge or hostile file costs nothing but itself, and only
regular files are opened (files.py), so a FIFO or a socket named `*.png` is reported, never waited on.
Runs as a cancellable background job (jobs.py); only the writer writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from typing import Callable

from ..support.files import EMPTY, SkippedFile, open_regular, regular_stat
from ..support.jobs import Progress

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 32 * 1024 * 1024
"""A text chunk (or its decompressed text) larger than this is skipped: a real prompt is kilobytes."""
MAX_CHUNKS = 10_000
READ_BYTES = 1 << 20
"""Text is read in pieces this large, so a cancel is heard within one piece even in a huge chunk."""
BATCH = 200
"""Prompts handed to the writer per transaction."""
KEYS = {"prompt"}


def png_text(path: str, wanted: set[str] = KEYS, check: Callable[[], None] = lambda: None) -> dict[str, str]:
    """The wanted text chunks (tEXt, zTXt, iTXt) of a PNG, read chunk by chunk; {} for anything else.

    Image data is skipped with a seek, never read; text is read in pieces of READ_BYTES with `check()`
    (which raises to cancel) between them. A truncated file yields what came before the cut. A file that is
    not a regular file raises SkippedFile: it is never opened in a way that could wait.
    """
    found: dict[str, str] = {}
    try:
        with open_regular(path) as handle:
            if handle.read(8) != PNG_SIGNATURE:
                return {}
            for _ in range(MAX_CHUNKS):
                check()
                header = handle.read(8)
                if len(header) < 8:
                    break
                length, kind = struct.unpack(">I4s", header)
                if kind == b"IEND":
                    break
                if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= MAX_TEXT_BYTES:
                    data = _read(handle, length, check)
                    if data is None:
                        break
                    entry = _text_chunk(kind, data)
                    if entry is not None and entry[0] in wanted:
                        found.setdefault(*entry)
                    handle.seek(4, os.SEEK_CUR)  # CRC
                else:
                    handle.seek(length + 4, os.SEEK_CUR)
                if len(found) == len(wanted):
                    break
    except SkippedFile:
        raise
    except OSError:
        return found
    return found


def _read(handle, length: int, check: Callable[[], None]) -> bytes | None:
    """Exactly `length` bytes, in pieces with `check()` between them; None if the file ends first."""
    pieces, missing = [], length
    while missing:
        piece = handle.read(min(missing, READ_BYTES))
        if not piece:
            return None
        pieces.append(piece)
        missing -= len(piece)
        check()
    return b"".join(pieces)


def _text_chunk(kind: bytes, data: bytes) -> tuple[str, str] | None:
    keyword, separator, rest = data.partition(b"\0")
    if not separator:
        return None
    try:
        if kind == b"tEXt":
            return keyword.decode("latin-1"), rest.decode("latin-1")
        if kind == b"zTXt":
            return keyword.decode("latin-1"), _inflate(rest[1:]).decode("latin-1")
        compressed, _method, rest = rest[0], rest[1], rest[2:]
        _language, _, rest = rest.partition(b"\0")
        _translated, _, text = rest.partition(b"\0")
        return keyword.decode("latin-1"), (_inflate(text) if compressed else text).decode("utf-8")
    except (IndexError, ValueError, zlib.error):
        return None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    text = inflater.decompress(data, MAX_TEXT_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError("text chunk too large")
    return text


def prompt_of(text: str) -> tuple[dict, str] | None:
    """The prompt (API format: {id: {class_type, inputs}}) and its digest, or None if the text is not one."""
    try:
        prompt = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(prompt, dict) or not any(_is_node(n) for n in prompt.values()):
        return None
    try:
        canonical = json.dumps(prompt, sort_keys=True, separators=(",", ":"))
    except (ValueError, RecursionError):
        return None
    return prompt, hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _is_node(node) -> bool:
    return isinstance(node, dict) and isinstance(node.get("class_type"), str)


def image_files(directory: str) -> list[str]:
    files = []
    for root, subdirs, names in os.walk(directory):
        subdirs.sort()
        files.extend(os.path.join(root, n) for n in sorted(names) if n.lower().endswith(".png"))
    return files


def import_history(
    output_directory: str,
    before: int,
    extract: Callable[[float, dict], object],
    record: Callable[[list], int],
    progress: Progress,
) -> dict:
    """Read every PNG under `output_directory` modified before `before` (Unix seconds); `record(batch)` stores
    [(digest, use)] and returns how many were new. Returns what was read, imported and skipped.

    Files that are not regular files, and empty ones, are skipped and reported in the job's status. The
    prompts read so far are recorded even when the import is cancelled or fails part way.
    """
    files = image_files(output_directory)
    progress.total = len(files)
    counts = {"images": len(files), "with_prompt": 0, "imported": 0, "already_imported": 0, "newer_than_tracking": 0}
    batch: list = []

    def flush() -> None:
        taken = batch[:]
        batch.clear()
        new = record(taken)
        counts["imported"] += new
        counts["already_imported"] += len(taken) - new

    try:
        for path in files:
            progress.step()
            found = _past_prompt(path, before, counts, progress)
            if found is not None:
                counts["with_prompt"] += 1
                batch.append((found[2], extract(found[0], found[1])))
                if len(batch) >= BATCH:
                    flush()
    finally:
        if batch:
            flush()
    return counts


def _past_prompt(path: str, before: int, counts: dict, progress: Progress) -> tuple[float, dict, str] | None:
    """(modified, prompt, digest) of one image from before tracking began, or None (counted or reported why)."""
    try:
        info = regular_stat(path)
        if info.st_size == 0:
            raise SkippedFile(path, EMPTY)
        if info.st_mtime >= before:
            counts["newer_than_tracking"] += 1
            return None
        found = prompt_of(png_text(path, check=progress.check).get("prompt", ""))
    except SkippedFile as skipped:
        progress.skip(path, skipped.reason)
        return None
    except OSError:
        return None
    return None if found is None else (info.st_mtime, *found)
