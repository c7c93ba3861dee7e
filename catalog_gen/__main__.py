"""Allow ``python -m catalog_gen``."""

from catalog_gen.cli import main

main()
