"""Atomic JSON output shared by the reference tools: a reader never sees half a file."""
import json
import os
from pathlib import Path


def write_json_atomic(path: str, obj, indent: int = 1) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.part"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=indent)
        f.write("\n")
    os.replace(tmp, path)
