"""History from past outputs: the prompts ComfyUI wrote into its output images, imported as past uses.

Why a module of its own: on a fresh install the tracker knows nothing, yet every image ComfyUI saved carries
the prompt that made it (SaveImage writes PNG text chunks `prompt` and `workflow`). Reading them turns day
one into months of evidence. The rules: only images older than the tracker's first record are read (what
ran since was counted live); a prompt is identified by a digest of its JSON, marked in the database in
the same transaction that records it, so batches of one prompt and a second import count once; the file
is parsed by hand with hard limits, so a truncated, huge or hostile file costs nothing but itself.
Runs as a cancellable background job (jobs.py); only the writer writes.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import zlib
from typing import Callable

from .jobs import Progress

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 32 * 1024 * 1024
"""A text chunk (or its decompressed text) larger than this is skipped: a real prompt is kilobytes."""
MAX_CHUNKS = 10_000
BATCH = 200
"""Prompts handed to the writer per transaction."""
KEYS = {"prompt"}


def png_text(path: str, wanted: set[str] = KEYS) -> dict[str, str]:
    """The wanted text chunks (tEXt, zTXt, iTXt) of a PNG, read chunk by chunk; {} for anything else.

    Image data is skipped with a seek, never read. A truncated file yields what came before the cut.
    """
    found: dict[str, str] = {}
    try:
        with open(path, "rb") as handle:
            if handle.read(8) != PNG_SIGNATURE:
                return {}
            for _ in range(MAX_CHUNKS):
                header = handle.read(8)
                if len(header) < 8:
                    break
                length, kind = struct.unpack(">I4s", header)
                if kind == b"IEND":
                    break
                if kind in (b"tEXt", b"zTXt", b"iTXt") and length <= MAX_TEXT_BYTES:
                    data = handle.read(length)
                    if len(data) < length:
                        break
                    entry = _text_chunk(kind, data)
                    if entry is not None and entry[0] in wanted:
                        found.setdefault(*entry)
                    handle.seek(4, os.SEEK_CUR)  # CRC
                else:
                    handle.seek(length + 4, os.SEEK_CUR)
                if len(found) == len(wanted):
                    break
    except OSError:
        return found
    return found


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
    [(digest, use)] and returns how many were new. Returns what was read, imported and skipped."""
    files = image_files(output_directory)
    progress.total = len(files)
    counts = {"images": len(files), "with_prompt": 0, "imported": 0, "already_imported": 0, "newer_than_tracking": 0}
    batch: list = []

    def flush() -> None:
        new = record(batch)
        counts["imported"] += new
        counts["already_imported"] += len(batch) - new
        batch.clear()

    for path in files:
        progress.step()
        try:
            modified = os.stat(path).st_mtime
        except OSError:
            continue
        if modified >= before:
            counts["newer_than_tracking"] += 1
            continue
        found = prompt_of(png_text(path).get("prompt", ""))
        if found is None:
            continue
        counts["with_prompt"] += 1
        batch.append((found[1], extract(modified, found[0])))
        if len(batch) >= BATCH:
            flush()
    if batch:
        flush()
    return counts
