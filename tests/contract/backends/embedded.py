from __future__ import annotations

from pathlib import Path
from typing import Any

import polymodal as pm

NAME = "embedded"


def open_store(tmp_path: Path, schema: type, options: dict[str, Any]):
    path = tmp_path / "store"
    store = pm.open(path, schema=schema, **options)

    def reopen(old):
        old.close()
        return pm.open(path)

    return store, reopen
