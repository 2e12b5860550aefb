"""``grasp-semantics train-recipe``: every training stage of a model, in order, with one command.

    grasp-semantics train-recipe --recipe default          # config/recipe_default.yaml
    grasp-semantics train-recipe --recipe my_recipe.yaml --out-dir outputs/recipe/mine

A recipe (YAML) lists stages, each a ``name``, a ``kind`` (``grasp``: ``train``; ``scorer``:
``train-scorer``; ``describe``: ``train-describe``), the run ``config`` it starts from (a file
or a shipped config's name) and ``overrides`` merged into it. A grasp stage starts from random
weights or, with ``init_from: <stage>``, from an earlier grasp stage's best weights; the
recipe's own setting replaces the config's ``init_from``, so no stage starts from weights
outside the run. After the last grasp stage its best weights are copied to ``<out>/model``,
and the scorer and describe stages train their heads into it (``grasp_scorer/``,
``describe/``): ``<out>/model`` is then a complete checkpoint for ``--model``. The scenes each
stage trains on are generated under the recipe's ``data_dir`` (default ``<out>/data``), one
folder per config's ``data.cache_dir`` name (stages naming the same folder share it).

Everything goes under ``--out-dir`` (default: the recipe's ``out_dir``, ``outputs/recipe/...``),
never into the shipped weights unless that folder is given. Each grasp stage trains in
``<out>/<stage>``. ``<out>/recipe.yaml`` records every stage's full run config as run (paths
resolved, overrides applied), written before the first stage; running another recipe into the
same folder is refused, except that a recipe whose changes begin at a head stage (scorer,
describe) runs that stage and the ones after it again on the finished grasp weights, and its
record is rewritten.

Resuming: run the same command again. A finished stage (``<out>/<stage>/done.json``) is
skipped; an unfinished grasp stage resumes from its last checkpoint with its learning-rate
schedule unchanged (``train``); the scorer and describe stages keep no checkpoint and start
again. ``--stop-after STAGE[:STEP]`` stops after a stage (or after that step of a grasp stage).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from grasp_semantics.share import config_file
from grasp_semantics.training.run_config import merge_overrides

KINDS = ("grasp", "scorer", "describe")
RECORD = "recipe.yaml"
DONE = "done.json"
RUN_CONFIG = "run_config.yaml"
MODEL_DIR = "model"
HEAD_DIRS = {"scorer": "grasp_scorer", "describe": "describe"}


def load_recipe(name: str | Path) -> dict[str, Any]:
    """A recipe from a file, or the shipped ``config/recipe_<name>.yaml`` for a bare name;
    a ValueError for stages it cannot run."""
    path = Path(name)
    if not path.is_file() and path.suffix != ".yaml":
        path = Path(f"config/recipe_{name}.yaml")
    path = config_file(path)
    recipe = yaml.safe_load(path.read_text()) or {}
    stages = recipe.get("stages") or []
    names = [stage.get("name") for stage in stages]
    if not stages or len(set(names)) != len(names) or None in names:
        raise ValueError(f"{path}: needs stages, each with a distinct name")
    grasp = [s["name"] for s in stages if s.get("kind") == "grasp"]
    for i, stage in enumerate(stages):
        if stage.get("kind") not in KINDS:
            raise ValueError(f"{path}: stage {stage['name']!r} has kind {stage.get('kind')!r}, "
                             f"not one of {KINDS}")  # fmt: skip
        start = stage.get("init_from")
        if start is not None and start not in [s["name"] for s in stages[:i]]:
            raise ValueError(f"{path}: stage {stage['name']!r} starts from {start!r}, which is "
                             "not an earlier stage")  # fmt: skip
        if stage["kind"] != "grasp" and (not grasp or names.index(grasp[-1]) > i):
            raise ValueError(f"{path}: head stage {stage['name']!r} must follow the grasp stages")
    return recipe


def stage_configs(recipe: dict[str, Any], out_dir: Path) -> dict[str, dict[str, Any]]:
    """Each stage's run config as it will run: its config file, the overrides, and the paths
    this recipe sets (out_dir, init_from, model, and the data cache: the config's folder name
    under the recipe's ``data_dir``, default ``<out_dir>/data``)."""
    data_dir = Path(recipe.get("data_dir") or out_dir / "data")
    configs = {}
    for stage in recipe["stages"]:
        raw = yaml.safe_load(config_file(stage["config"]).read_text()) or {}
        raw = merge_overrides(raw, stage.get("overrides") or {})
        data = raw.setdefault("data", {})
        data["cache_dir"] = str(data_dir / Path(data.get("cache_dir") or stage["name"]).name)
        if stage["kind"] == "grasp":
            raw["out_dir"] = str(out_dir / stage["name"])
            start = stage.get("init_from")
            raw["init_from"] = str(out_dir / start / "best") if start else None
        else:
            raw["model"] = str(out_dir / MODEL_DIR)
            raw["out_dir"] = str(out_dir / MODEL_DIR / HEAD_DIRS[stage["kind"]])
        configs[stage["name"]] = raw
    return configs


def _run_config(kind: str, raw: dict[str, Any], path: Path) -> Any:
    """The run-config dataclass of a stage of ``kind`` (checked by its own loader), ``raw``
    first written to ``path``; a ValueError naming ``path`` for a key it does not know."""
    from grasp_semantics.training.train_describe import DescribeTrainConfig
    from grasp_semantics.training.train_grasp_net import TrainConfig
    from grasp_semantics.training.train_scorer import ScorerTrainConfig

    loader = {"grasp": TrainConfig, "scorer": ScorerTrainConfig, "describe": DescribeTrainConfig}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        return loader[kind].load(path)
    except TypeError as error:  # a section's dataclass given a key it does not have
        raise ValueError(f"{path}: {error}") from error


def _assemble_model(out_dir: Path, grasp_stage: str, grasp_stages: list[str]) -> None:
    """``<out>/model``: the best weights of ``grasp_stage`` (the last), with every grasp
    stage's run config and log and the recipe's record beside them (as the shipped model keeps
    them)."""
    model = out_dir / MODEL_DIR
    model.mkdir(parents=True, exist_ok=True)
    shutil.copy2(out_dir / RECORD, model / RECORD)
    for file in (out_dir / grasp_stage / "best").iterdir():
        shutil.copy2(file, model / file.name)
    for stage in grasp_stages:
        shutil.copy2(out_dir / stage / "train_config.yaml", model / f"train_{stage}_config.yaml")
        shutil.copy2(out_dir / stage / "log.jsonl", model / f"train_{stage}_log.jsonl")


def prepare_run(
    recipe: dict[str, Any], out_dir: Path, stop_after: str | None = None
) -> dict[str, dict[str, Any]]:
    """Each stage's run config (:func:`stage_configs`), recorded in ``<out_dir>/recipe.yaml``
    (or checked against the record there); a ValueError for a run that cannot go on."""
    stop_stage, _, stop_step = (stop_after or "").partition(":")
    kinds = {s["name"]: s["kind"] for s in recipe["stages"]}
    if stop_stage and stop_stage not in kinds:
        raise ValueError(f"--stop-after {stop_after!r}: no stage {stop_stage!r} in {list(kinds)}")
    if stop_step and (kinds[stop_stage] != "grasp" or not stop_step.isdigit()):
        raise ValueError(f"--stop-after {stop_after!r}: a step only of a grasp stage, a number")
    configs = stage_configs(recipe, out_dir)
    record = {"recipe": recipe, "stages": configs}
    record_file = out_dir / RECORD
    rerun: list[str] = []
    if record_file.is_file():
        rerun = _head_stages_changed(yaml.safe_load(record_file.read_text()), record, out_dir)
    for stage in recipe["stages"]:  # each config checked now, not hours later
        _run_config(stage["kind"], configs[stage["name"]], out_dir / stage["name"] / RUN_CONFIG)
    for name in rerun:
        (out_dir / name / DONE).unlink(missing_ok=True)
    if rerun:
        print(f"the recipe changed stage(s) {', '.join(rerun)}: they run again")
    if rerun or not record_file.is_file():
        record_file.write_text(yaml.safe_dump(record, sort_keys=False))
    if rerun and (out_dir / MODEL_DIR).is_dir():  # the finished model keeps the record too
        shutil.copy2(record_file, out_dir / MODEL_DIR / RECORD)
    return configs


def _head_stages_changed(old: dict[str, Any], new: dict[str, Any], out_dir: Path) -> list[str]:
    """The stages to run again when ``new`` (a record) differs from the run's ``old`` one: the
    first changed stage and every one after it, allowed only when they are all head stages
    (scorer, describe), which keep no checkpoint and train on the finished grasp weights. A
    ValueError for any other change (a grasp stage's weights would no longer be the record's)."""
    if old == new:
        return []
    refused = ValueError(
        f"{out_dir} holds a run of another recipe (or other settings in a grasp stage: "
        f"{out_dir / RECORD}); give another --out-dir"
    )
    old_stages, new_stages = old["recipe"]["stages"], new["recipe"]["stages"]
    if {k: v for k, v in old["recipe"].items() if k != "stages"} != {
        k: v for k, v in new["recipe"].items() if k != "stages"
    }:
        raise refused
    names = [s["name"] for s in new_stages]
    first = next(
        (
            i
            for i, (a, b) in enumerate(zip(old_stages, new_stages, strict=False))
            if a != b or old["stages"][a["name"]] != new["stages"][b["name"]]
        ),
        min(len(old_stages), len(new_stages)),
    )
    if any(s["kind"] == "grasp" for s in new_stages[first:] + old_stages[first:]):
        raise refused
    return names[first:]


def run_recipe(
    recipe: dict[str, Any],
    out_dir: Path,
    stop_after: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) ``recipe``'s stages into ``out_dir``; returns each finished stage's
    figures. ``stop_after``: ``STAGE`` or ``STAGE:STEP`` (a grasp stage's step)."""
    configs = prepare_run(recipe, out_dir, stop_after)
    stop_stage, _, stop_step = (stop_after or "").partition(":")
    grasp_stages = [s["name"] for s in recipe["stages"] if s["kind"] == "grasp"]
    last_grasp = grasp_stages[-1]
    figures: dict[str, Any] = {}
    for stage in recipe["stages"]:
        name, kind = stage["name"], stage["kind"]
        done = out_dir / name / DONE
        if done.is_file():
            figures[name] = json.loads(done.read_text())["figures"]
            print(f"stage {name}: done, skipped")
        else:
            print(f"stage {name} ({kind}, {stage['config']}) ...", flush=True)
            cfg = _run_config(kind, configs[name], out_dir / name / RUN_CONFIG)
            started = time.perf_counter()
            stop_at = int(stop_step) if name == stop_stage and stop_step else None
            result = _run_stage(kind, cfg, stop_at, progress)
            if stop_at is not None and stop_at < cfg.optim.steps:
                print(f"stage {name}: stopped after step {stop_at}; run again to resume")
                break
            if name == last_grasp:
                _assemble_model(out_dir, name, grasp_stages)
            figures[name] = result
            done.write_text(json.dumps({
                "figures": result, "config": asdict(cfg),
                "seconds": round(time.perf_counter() - started, 1),
            }, indent=1, default=str) + "\n")  # fmt: skip
        if name == stop_stage:
            print(f"stopped after stage {name}; run again to go on")
            break
    return figures


def _run_stage(kind: str, cfg: Any, stop_at: int | None, progress: bool) -> dict[str, Any]:
    """Train one stage; its figures (JSON-ready)."""
    if kind == "grasp":
        import torch.distributed as dist

        from grasp_semantics.training.run_config import init_distributed
        from grasp_semantics.training.train_grasp_net import train

        env = init_distributed(cfg.threads)
        try:
            return train(cfg, env, progress=progress, stop_at=stop_at)
        finally:
            if dist.is_initialized():
                dist.destroy_process_group()
    if kind == "scorer":
        from grasp_semantics.training.train_scorer import train_scorer

        return train_scorer(cfg, progress=progress)
    from grasp_semantics.training.train_describe import train_describe, without_examples

    return without_examples(train_describe(cfg, progress=progress))


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument(
        "--recipe", default="default", help="a recipe YAML, or NAME for config/recipe_NAME.yaml"
    )
    parser.add_argument("--out-dir", type=Path, help="override the recipe's out_dir")
    parser.add_argument(
        "--stop-after", help="STAGE or STAGE:STEP: stop there (run again to resume)"
    )


def run(args: argparse.Namespace, command: str) -> int:
    try:  # a recipe, a stage's config or an output folder that cannot be run
        recipe = load_recipe(args.recipe)
        out_dir = args.out_dir or Path(recipe.get("out_dir") or "outputs/recipe")
        prepare_run(recipe, out_dir, args.stop_after)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    figures = run_recipe(recipe, out_dir, args.stop_after)
    print(json.dumps(figures, indent=1, default=str))
    if (out_dir / recipe["stages"][-1]["name"] / DONE).is_file():
        print(f"model written to {out_dir / MODEL_DIR}")
    return 0
