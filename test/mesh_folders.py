"""A user's mesh folder for tests: procedural mugs and bottles exported, the mug's parts
renamed and reordered, one task worded by the folder and mugs called beakers."""

from __future__ import annotations

from pathlib import Path

import yaml

from grasp_semantics.data.mesh_folder import export_objects
from grasp_semantics.data.objects import CATEGORY_PARTS

# mug parts renamed and reordered: body -> cup_body, handle -> grip, grip first
RENAME = {"handle": "grip", "body": "cup_body"}
PARTS = ["grip", "cup_body"]
MUG = CATEGORY_PARTS["mug"]  # the procedural part order
WORDINGS = ["drink from {obj}", "sip from {obj}", "lift {obj} to drink", "have a sip of {obj}"]


def user_folder(path: Path, drink_part: str) -> Path:
    """Two mugs and two bottles; one task (drink, worded by the folder) that grasps
    ``drink_part`` of a mug, whose parts are renamed and reordered; mugs called beakers."""
    folder = export_objects(path, categories=("mug", "bottle"), instances=2)
    for directory in folder.glob("mug/*"):
        for old, new in RENAME.items():
            (directory / f"{old}.ply").rename(directory / f"{new}.ply")
    index = yaml.safe_load((folder / "objects.yaml").read_text())
    index["categories"]["mug"] = {"parts": PARTS, "nouns": ["beaker"]}
    index["tasks"] = {"drink": {"mug": drink_part}}
    index["wordings"] = {"drink": WORDINGS}
    (folder / "objects.yaml").write_text(yaml.safe_dump(index, sort_keys=False))
    return folder
