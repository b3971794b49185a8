"""Pack import times come from the lines ComfyUI logs at start; nothing is imported again to time it."""

from __future__ import annotations

import logging

from usage_stats.evidence.import_times import ImportTimes, pack_times

COMFYUI_LINES = [
    "",
    "Import times for custom nodes:",
    "   0.0 seconds: /ComfyUI/custom_nodes/websocket_image_save.py",
    "   0.4 seconds: /ComfyUI/custom_nodes/ComfyUI-Sample-Old-Effects",
    "   1.2 seconds (IMPORT FAILED): /ComfyUI/custom_nodes/Broken Pack",
    "",
]


def test_reads_each_pack_and_its_seconds_from_comfyuis_lines():
    assert pack_times(COMFYUI_LINES + ["  2.0 seconds: not a path", "Starting server"]) == {
        "websocket_image_save": 0.0, "ComfyUI-Sample-Old-Effects": 0.4, "Broken Pack": 1.2,
    }


def test_the_handler_catches_the_block_as_comfyui_logs_it_and_nothing_after():
    times = ImportTimes().attach()
    logger = logging.getLogger()
    try:
        logger.warning("   9.9 seconds: /before/the/block")  # not ComfyUI's import-time block
        logger.warning("\nImport times for custom nodes:")
        for line in COMFYUI_LINES[2:5]:
            logger.warning(line)
        logger.warning("")
        logger.warning("   7.0 seconds: /ComfyUI/custom_nodes/after-the-block")
    finally:
        logger.removeHandler(times)
    assert times.seconds() == {"websocket_image_save": 0.0, "ComfyUI-Sample-Old-Effects": 0.4, "Broken Pack": 1.2}
