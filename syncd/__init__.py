"""syncd: legacy IDSE session directories, synced both ways with versioned documents."""
from importlib.metadata import version

__version__ = version("syncd")
