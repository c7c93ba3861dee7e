"""catalog-gen: a static-site generator for Frontcore course catalogs."""

__version__ = "0.1.0"
