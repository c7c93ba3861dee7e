"""Development tools beside the package (never shipped in the wheel): the docs' generated parts."""
