"""Everything xdist-specific, called from the plugin's xdist hooks (optional hooks: they run only under xdist)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any


class Share:
    """Gives the workers one folder, for this run only, where a batch one worker computed is read by the others."""

    def __init__(self) -> None:
        self.folder: Path | None = None
        self.crashed = False

    def configure_node(self, node: Any) -> None:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="lmbehave-share-"))
        node.workerinput["lmbehave_share"] = str(self.folder)

    def node_down(self, node: Any, error: Any) -> None:
        # A crashed worker never reports which snapshots its tests used; its replacement's report would let syrupy
        # take them for unused and delete them (whole files). So an update deletes nothing after a crash.
        if error is None or self.crashed:
            return
        self.crashed = True
        config = node.config
        if getattr(config.option, "disable_unused_snapshots", False) is False:
            config.option.disable_unused_snapshots = True
            if config.getoption("update_snapshots", False):
                sys.stderr.write(
                    f"\npytest-lmbehave: worker {node.gateway.id} crashed, so no snapshot is deleted as unused in "
                    "this run; run the update again to clean up\n"
                )

    def end(self) -> None:
        if self.folder is not None:  # our own scratch folder: results live on in reports and snapshots
            shutil.rmtree(self.folder, ignore_errors=True)


def worker_figures(node: Any) -> dict[str, Any] | None:
    """A worker's process figures (model-ready time, peak memory), handed over as it finished."""
    figures = getattr(node, "workeroutput", {}).get("lmbehave_process")
    return figures if figures else None
