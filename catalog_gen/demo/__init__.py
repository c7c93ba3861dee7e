"""The Frontcore emulator and the generated sample catalog: for the tests and for --demo.

Nothing else in catalog-gen imports this package except the CLI, and only for --demo.
"""
