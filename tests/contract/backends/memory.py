from __future__ import annotations

from pathlib import Path
from typing import Any

import polymodal as pm

NAME = "memory"


def open_store(tmp_path: Path, schema: type, options: dict[str, Any]):
    return pm.open("memory://", schema=schema, **options), None
