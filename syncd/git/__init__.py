"""The Git side: the mirror a pass records into, the importer of a repository's history."""

PENDING = "mirror_pending"  # journal meta: [[path, version], ...] not yet in the mirror (GitPython not needed to ask)
