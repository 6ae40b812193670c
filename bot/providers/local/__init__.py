"""Easel's own studio: coloring pages, paint-by-numbers, upscales and filters computed on the bot's machine.

The image work is pure functions of (input bytes, options) -> output files, run in worker processes
(never on the event loop, never in the bot's process); the adapter makes it a studio like any other.
"""
