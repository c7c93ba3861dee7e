"""Everything that speaks Frontcore: transport, client, emulator and sample data.

Nothing in this package knows about snapshots, pages or rendering.
"""
