"""Snapshot → site files: the catalog model, pages, rendering, calendars, JSON-LD, feeds,
search, the build state and publishing.

This half knows nothing of HTTP or the API; it reads a snapshot (``catalog_gen.snapshot``)
and writes files.
"""
