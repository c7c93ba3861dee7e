"""Frontcore → snapshots: the polite transport, the client, sync, the snapshot store, the lock.

This half knows nothing of pages or rendering; it meets the site half only at the snapshot
(``catalog_gen.snapshot``).
"""
