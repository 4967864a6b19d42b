"""syncd: legacy IDSE session directories, synced both ways with versioned documents."""

__version__ = "0.1.0"  # setup.cfg reads it from here
