"""One recipe for a model: a stopped and resumed training run trains as one that was not
stopped (the same learning rate at every step, the same weights), and ``train-recipe`` runs
every stage in order, skips finished ones, resumes an unfinished one, and runs a changed head
stage again while refusing a changed grasp stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from grasp_semantics.training.recipe import load_recipe, prepare_run, run_recipe, stage_configs
from grasp_semantics.training.run_config import init_distributed
from grasp_semantics.training.train_grasp_net import TrainConfig, train

MODEL = {
    "fusion": {"mode": "pixel_aligned"},
    "pointnet": {"colour": True, "num_points": 256},
    "encoder": {"backbone": {"image_size": [64, 96]}},
}
GRASP = {
    "model": "tiny",
    "model_overrides": MODEL,
    "data": {"train_scenes": 4, "val_scenes": 2, "scenes_per_shard": 4, "workers": 1},
    "optim": {"steps": 6, "batch_size": 2, "warmup_steps": 2},
    "log_every": 1,
    "val_every": 100,
    "checkpoint_every": 100,
    "threads": 1,
}


def grasp_config(tmp_path: Path, out: str) -> TrainConfig:
    raw = {**GRASP, "out_dir": str(tmp_path / out)}
    raw["data"] = {**GRASP["data"], "cache_dir": str(tmp_path / "data")}
    path = tmp_path / f"{out}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return TrainConfig.load(path)


def learning_rates(out_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    return {row["step"]: row["lr"] for row in rows if "lr" in row}


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path / "model.safetensors"))


@pytest.mark.slow
def test_a_stopped_and_resumed_run_trains_as_an_uninterrupted_one(tmp_path, capsys) -> None:
    env = init_distributed(1)
    train(grasp_config(tmp_path, "whole"), env, progress=False)
    stopped = grasp_config(tmp_path, "stopped")
    train(stopped, env, progress=False, stop_at=2)
    assert not (tmp_path / "stopped/final").exists()  # stopped, not finished
    stopped.optim.steps = 4  # resumed with another length, as the shipped stage 3 was
    train(stopped, env, progress=False)
    assert "resumed from" in capsys.readouterr().out
    stopped.optim.steps = 6
    train(stopped, env, progress=False)
    whole, resumed = learning_rates(tmp_path / "whole"), learning_rates(tmp_path / "stopped")
    assert sorted(whole) == sorted(resumed) == [1, 2, 3, 4, 5, 6]
    assert resumed == pytest.approx(whole, rel=1e-12)  # the 6-step schedule throughout
    assert whole[6] < whole[4] < whole[2]  # and it does decay
    recorded = yaml.safe_load((tmp_path / "stopped/train_config.yaml").read_text())
    assert recorded["optim"]["schedule_steps"] == 6
    a, b = weights(tmp_path / "whole/final"), weights(tmp_path / "stopped/final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def tiny_recipe(tmp_path: Path) -> dict:
    """Two grasp stages (the second adds the target head) and the grasp scorer, in seconds."""
    grasp = {k: v for k, v in GRASP.items() if k not in ("data",)}
    grasp["optim"] = {**GRASP["optim"], "steps": 3}
    grasp["data"] = {"train_scenes": 4, "val_scenes": 2, "scenes_per_shard": 4, "workers": 1}
    first = tmp_path / "grasp.yaml"
    first.write_text(yaml.safe_dump({**grasp, "data": {**grasp["data"], "cache_dir": "a"}}))
    recipe = {
        "data_dir": str(tmp_path / "data"),
        "stages": [
            {"name": "g1", "kind": "grasp", "config": str(first)},
            {
                "name": "g2",
                "kind": "grasp",
                "config": str(first),
                "init_from": "g1",
                "overrides": {"model_overrides": {"heads": {"target_head": True}}, "seed": 1},
            },
            {
                "name": "scorer",
                "kind": "scorer",
                "config": "train_scorer_tiny.yaml",  # the shipped config, made tiny
                "overrides": {
                    "scorer": {"hidden": [16]},
                    "data": {"train_scenes": 3, "val_scenes": 2, "workers": 1},
                    "optim": {"epochs": 2},
                    "threads": 1,
                },
            },
        ],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return load_recipe(path)


@pytest.mark.slow
def test_the_recipe_runs_every_stage_and_resumes_where_it_stopped(tmp_path, capsys) -> None:
    recipe = tiny_recipe(tmp_path)
    run_recipe(recipe, tmp_path / "whole", progress=False)
    model = tmp_path / "whole/model"
    assert (model / "model.safetensors").is_file()
    assert (model / "grasp_scorer/model.safetensors").is_file()
    assert (model / "train_g1_log.jsonl").is_file() and (model / "train_g2_config.yaml").is_file()
    record = yaml.safe_load((tmp_path / "whole/recipe.yaml").read_text())
    assert yaml.safe_load((model / "recipe.yaml").read_text()) == record  # kept with the model
    assert record["stages"]["g2"]["init_from"] == str(tmp_path / "whole/g1/best")
    assert record["stages"]["scorer"]["model"] == str(model)
    assert record["stages"]["g1"]["data"]["cache_dir"] == str(tmp_path / "data/a")

    out = tmp_path / "stopped"
    run_recipe(recipe, out, stop_after="g2:1", progress=False)  # stopped inside stage g2
    assert (out / "g1/done.json").is_file() and not (out / "g2/done.json").exists()
    assert not (out / "model").exists()
    g1_log = (out / "g1/log.jsonl").read_text()
    capsys.readouterr()
    run_recipe(recipe, out, progress=False)
    said = capsys.readouterr().out
    assert "stage g1: done, skipped" in said and "resumed from" in said
    assert (out / "g1/log.jsonl").read_text() == g1_log  # not trained again
    for part in ("", "grasp_scorer/"):
        a, b = weights(model / part), weights(out / "model" / part)
        assert all(torch.equal(a[k], b[k]) for k in a), part

    run_recipe(recipe, out, progress=False)  # everything done: nothing runs
    assert capsys.readouterr().out.count("done, skipped") == 3
    recipe["stages"][0]["overrides"] = {"optim": {"lr": 0.5}}
    with pytest.raises(ValueError, match="another recipe"):
        run_recipe(recipe, out, progress=False)


def test_a_changed_head_stage_runs_again_and_a_changed_grasp_stage_is_refused(
    tmp_path, capsys
) -> None:
    recipe = tiny_recipe(tmp_path)
    out = tmp_path / "run"
    prepare_run(recipe, out)
    for name in ("g1", "g2", "scorer"):  # as if every stage had finished
        (out / name).mkdir(parents=True, exist_ok=True)
        (out / name / "done.json").write_text("{}")
    (out / "model").mkdir()
    capsys.readouterr()

    prepare_run(recipe, out)  # the same recipe: nothing to run again
    assert "run again" not in capsys.readouterr().out
    assert all((out / name / "done.json").is_file() for name in ("g1", "g2", "scorer"))

    recipe["stages"][2]["overrides"]["optim"]["epochs"] = 3
    prepare_run(recipe, out)
    assert "stage(s) scorer: they run again" in capsys.readouterr().out
    assert not (out / "scorer/done.json").exists()
    assert (out / "g1/done.json").is_file() and (out / "g2/done.json").is_file()
    for record in (out / "recipe.yaml", out / "model/recipe.yaml"):  # rewritten, the model's too
        assert yaml.safe_load(record.read_text())["stages"]["scorer"]["optim"]["epochs"] == 3

    recipe["stages"][1]["overrides"]["seed"] = 2  # a grasp stage's weights would differ
    with pytest.raises(ValueError, match="another recipe"):
        prepare_run(recipe, out)
    assert (out / "g2/done.json").is_file()  # nothing was undone


def test_the_default_recipe_names_every_stage_of_the_shipped_model(tmp_path) -> None:
    recipe = load_recipe("default")
    assert [stage["kind"] for stage in recipe["stages"]] == ["grasp", "scorer", "describe"]
    assert recipe["out_dir"].startswith("outputs/")
    configs = stage_configs(recipe, tmp_path / "run")
    assert configs["grasp"]["init_from"] is None  # random weights, not the shipped ones
    for config in configs.values():  # nothing read from or written into the shipped weights
        assert "weights/default" not in yaml.safe_dump(config)
        assert str(config["data"]["cache_dir"]).startswith(str(tmp_path / "run" / "data"))
    bad = {"stages": [{"name": "a", "kind": "grasp", "config": "x", "init_from": "b"}]}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    with pytest.raises(ValueError, match="earlier stage"):
        load_recipe(tmp_path / "bad.yaml")
