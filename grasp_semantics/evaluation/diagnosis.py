"""Where a part choice goes wrong, from ``evaluate``'s per-scene records: finding the object
the instruction names, or choosing the part on it.

Part accuracy mixes two steps. Per method and split this separates them:

- ``object_accuracy``: the most probable contact lies on the named object;
- ``part_accuracy_on_object``: of those scenes, the part is the one the task needs;
- ``category_default_on_object``: of those scenes, the part is the category's usual one (the
  ``category_default`` baseline's part), whatever the task: a method that reads the task picks
  it only where the task wants it, one that ignores the task picks it always.

``evaluate`` stores these in its results (``diagnosis``); for an earlier run's JSON:

    python -m grasp_semantics.evaluation.diagnosis docs/eval_default.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_METHOD = "category_default"


def diagnose(records: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per method in ``records`` (``evaluate``'s per-scene records of one split), the three
    figures above and the number of scenes on the object (``on_object``)."""
    if not records:
        return {}
    figures: dict[str, dict[str, float]] = {}
    for method in records[0]["methods"]:
        found = [r for r in records if r["methods"][method]["object"] == r["target"]]
        default_known = [r for r in found if DEFAULT_METHOD in r["methods"]]
        figures[method] = {
            "object_accuracy": len(found) / len(records),
            "on_object": float(len(found)),
            "part_accuracy_on_object": _mean(
                [r["methods"][method]["part_correct"] for r in found]
            ),
            "category_default_on_object": _mean(
                [
                    r["methods"][method]["part"] == r["methods"][DEFAULT_METHOD]["part"]
                    for r in default_known
                ]
            ),
        }
    return figures


def _mean(values: list[bool]) -> float:
    return float(np.mean(values)) if values else float("nan")


def format_diagnosis(diagnosis: dict[str, dict[str, dict[str, float]]]) -> str:
    """A markdown table: split, method, the three figures."""
    lines = [
        "| split | method | object found | right part, on the object | category's usual part, "
        "on the object |",
        "| --- | --- | --- | --- | --- |",
    ]
    for split, methods in diagnosis.items():
        for method, f in methods.items():
            lines.append(
                f"| {split} | {method} | {f['object_accuracy']:.3f} | "
                f"{f['part_accuracy_on_object']:.3f} | {f['category_default_on_object']:.3f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="a JSON written by `evaluate --json`")
    args = parser.parse_args(argv)
    results = json.loads(args.results.read_text())
    print(format_diagnosis({s: diagnose(r) for s, r in results["per_scene"].items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
