"""Content-addressed storage of normalised radiographs under MEDAL_HOME/images."""

from __future__ import annotations

from pathlib import Path

from webapp.files import write_atomic


class ImageStore:
    """Files are named by the sha256 of the uploaded bytes; a re-upload finds the same file.

    Only the decoded pixels are kept (as 8-bit PNG): DICOM headers, which carry patient
    identifiers, never reach the disk.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def relative_path(self, sha256: str) -> str:
        return f"{sha256[:2]}/{sha256}.png"

    def path(self, relative: str) -> Path:
        resolved = (self.root / relative).resolve()
        if self.root.resolve() not in resolved.parents:
            raise ValueError("Image path escapes the store.")
        return resolved

    def exists(self, sha256: str) -> bool:
        return self.path(self.relative_path(sha256)).exists()

    def remove(self, sha256: str) -> None:
        """Undo a `put` whose row was never stored (all or nothing per upload)."""
        self.path(self.relative_path(sha256)).unlink(missing_ok=True)

    def put(self, sha256: str, png: bytes) -> str:
        relative = self.relative_path(sha256)
        target = self.path(relative)
        if target.exists():
            return relative
        write_atomic(target, png)  # a crash never leaves half an image under the real name
        return relative
