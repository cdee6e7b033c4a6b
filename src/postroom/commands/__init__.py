"""Command families, one module each; every module registers its commands in :mod:`.registry`."""
