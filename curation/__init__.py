"""Domain layer of Distill Studio: the workspace and every data operation.

Nothing in this package imports Textual; the studio and the CLI are thin shells over it.
"""

from curation.errors import UserError, WorkspaceLockedError
from curation.workspace import Workspace

__all__ = ["UserError", "Workspace", "WorkspaceLockedError"]
