"""Files an interrupted build or restore leaves beside the warehouse: found at the next start,
partial copies removed (they were never the warehouse), safety copies reported (they may be the
only copy of the data before a restore, so only a person may delete them)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

_PARTIAL = re.compile(r"^\.(?P<name>.+)\.(?:restoring|building)-(?P<pid>\d+)(?:\.wal)?$")


@dataclass(frozen=True)
class Leftovers:
    removed: list[Path] = field(default_factory=list)        # partial copies of dead processes
    safety_copies: list[Path] = field(default_factory=list)  # <name>.before-restore-<time>

    def notice(self) -> str | None:
        """A Chinese notice for the CLI and the analysts' page, or None when nothing was found."""
        parts = []
        if self.removed:
            parts.append(f"已清理上次中断的恢复或构建留下的 {len(self.removed)} 个临时文件"
                         f"（{'、'.join(p.name for p in self.removed)}），数据仓库本身未受影响。")
        if self.safety_copies:
            size = sum(p.stat().st_size for p in self.safety_copies if p.exists()) / 2**20
            parts.append(f"数据仓库旁保留着 {len(self.safety_copies)} 个恢复备份前的原仓库副本"
                         f"（{'、'.join(p.name for p in self.safety_copies)}，共 {size:,.0f} MB）。"
                         "确认恢复无误、不再需要后可删除，以释放磁盘空间。")
        return "".join(parts) or None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:       # someone else's live process
        return True
    return True


def clean_leftovers(db: Path) -> Leftovers:
    """Remove the partial restore/build copies of `db` whose process is gone; list the
    before-restore safety copies."""
    db = Path(db)
    folder = db.parent
    if not folder.is_dir():
        return Leftovers()
    removed, copies = [], []
    for path in sorted(folder.iterdir()):
        match = _PARTIAL.match(path.name)
        if match and match["name"] == db.name and not _alive(int(match["pid"])):
            try:
                path.unlink()
                removed.append(path)
            except OSError:
                pass                   # no right to remove it: it stays, the warehouse is fine
        elif path.name.startswith(f"{db.name}.before-restore-") and not path.name.endswith(".wal"):
            copies.append(path)
    return Leftovers(removed, copies)
