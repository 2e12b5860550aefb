"""Training: example shards, resume, and two gloo processes that stay in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from grasp_semantics.data.shards import ExampleShards
from grasp_semantics.data.splits import split_pools
from grasp_semantics.data.wordings import instruction
from grasp_semantics.models.criterion import GraspCriterion
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.training.examples import prepare_examples, reworded
from grasp_semantics.training.run_config import lr_factor
from grasp_semantics.training.train_grasp_net import TrainConfig, init_weights, to_batch

ROOT = Path(__file__).resolve().parents[2]
SMALL = {
    "model": "tiny",
    "model_overrides": {
        "fusion": {"mode": "pixel_aligned"},
        "pointnet": {"colour": True, "num_points": 256},
        "encoder": {"backbone": {"image_size": [64, 96]}},
    },
    "data": {"train_scenes": 4, "val_scenes": 2, "scenes_per_shard": 4, "workers": 1},
    "optim": {"steps": 3, "batch_size": 2, "warmup_steps": 1},
    "log_every": 1,
    "val_every": 3,
    "checkpoint_every": 1,
}


def write_config(tmp_path: Path, **changes) -> Path:
    config = {**SMALL, **changes}
    config["data"] = {**SMALL["data"], "cache_dir": str(tmp_path / "data")}
    config["out_dir"] = str(tmp_path / "out")
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def log_rows(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "out/log.jsonl").read_text().splitlines()]


def run_cli(args: list[str], nproc: int = 1) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    command = [sys.executable, *(launcher if nproc > 1 else []), "-m", "grasp_semantics.cli"]
    return subprocess.run(
        [*command, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_examples_are_fps_ordered_samples_with_labels(tmp_path) -> None:
    cfg = TrainConfig.load(write_config(tmp_path)).model_config()
    prepare_examples(tmp_path / "ex", "train", 3, 5, cfg, per_shard=2, progress=False)
    examples = list(ExampleShards(tmp_path / "ex").iterate(seed=None))
    assert [int(e["seed"]) for e in examples] == [5, 6, 7]
    first = examples[0]
    assert first["image"].shape == (64, 96, 3) and first["points"].shape == (256, 3)
    assert first["contact"].shape == (256,) and first["contact"].any()
    assert len(first["grasps"]) == int(first["grasp_count"]) > 0
    # the instruction is the task's paraphrase naming the target by the stored reference ...
    assert first["reference"].lower() in first["instruction"].lower()
    assert any(
        instruction(p, first["reference"]) == first["instruction"]
        for p in split_pools("train").paraphrases[first["task"]]
    )
    # ... and every contact lies on the target object, which has more points than its part
    assert (first["on_target"][first["contact"] == 1] == 1).all()
    assert first["on_target"].sum() > first["contact"].sum()
    # prepare again: nothing to do, the shards stay as they were
    before = sorted(p.stat().st_mtime_ns for p in (tmp_path / "ex").glob("shard-*.npz"))
    prepare_examples(tmp_path / "ex", "train", 3, 5, cfg, per_shard=2, progress=False)
    assert before == sorted(p.stat().st_mtime_ns for p in (tmp_path / "ex").glob("shard-*.npz"))


@pytest.mark.slow
def test_reworded_instructions_keep_task_and_target_and_the_split(tmp_path) -> None:
    cfg = TrainConfig.load(write_config(tmp_path)).model_config()
    prepare_examples(tmp_path / "ex", "train", 1, 5, cfg, per_shard=1, progress=False)
    (example,) = ExampleShards(tmp_path / "ex").iterate(seed=None)
    rng = np.random.default_rng(0)
    pool = split_pools("train").paraphrases[example["task"]]
    held_out = set(split_pools("test_paraphrase").paraphrases[example["task"]])
    said = {reworded(example, "train", rng)["instruction"] for _ in range(200)}
    assert said == {instruction(p, example["reference"]) for p in pool}
    assert not said & {instruction(p, example["reference"]) for p in held_out}
    again = reworded(example, "train", rng)
    assert all(again[k] is example[k] for k in ("points", "contact", "on_target", "grasps"))


@pytest.mark.slow
def test_target_head_trains_from_a_model_without_one(tmp_path) -> None:
    config = TrainConfig.load(write_config(tmp_path))
    plain = config.model_config()
    prepare_examples(tmp_path / "ex", "train", 2, 5, plain, per_shard=2, progress=False)
    GraspNet(plain).save_pretrained(tmp_path / "plain")
    with_head = replace(plain, heads=replace(plain.heads, target_head=True))
    model = GraspNet(with_head)
    init_weights(model, str(tmp_path / "plain"), log=False)
    source = GraspNet.from_pretrained(tmp_path / "plain").state_dict()
    assert all(model.state_dict()[k].equal(v) for k, v in source.items())
    batch = to_batch(list(ExampleShards(tmp_path / "ex").iterate(seed=None)), torch.device("cpu"))
    criterion = GraspCriterion(with_head.loss, with_head.heads)
    loss, terms = criterion(model(batch), batch)
    assert terms["target"] > 0
    loss.backward()
    assert model.heads.target[-1].weight.grad.abs().sum() > 0
    del batch["on_target"]
    with pytest.raises(ValueError, match="on_target"):
        criterion(model(batch), batch)
    model.eval()  # an auxiliary task: inference does not compute it
    assert "target_logits" not in model(batch)
    model.save_pretrained(tmp_path / "with_head")  # the other way round is refused
    with pytest.raises(RuntimeError, match="not this model"):
        init_weights(GraspNet(plain), str(tmp_path / "with_head"), log=False)


def test_warmup_then_cosine_learning_rate() -> None:
    optim = TrainConfig().optim
    assert lr_factor(0, optim) == pytest.approx(1 / optim.warmup_steps)
    assert lr_factor(optim.warmup_steps, optim) == pytest.approx(1.0)
    assert lr_factor(optim.steps, optim) == pytest.approx(0.05)


@pytest.mark.slow
def test_train_then_resume_from_the_checkpoint(tmp_path) -> None:
    config = write_config(tmp_path)
    result = run_cli(["train", "--config", str(config)])
    assert result.returncode == 0, result.stderr[-3000:]
    rows = log_rows(tmp_path)
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
    assert any("val" in r for r in rows)
    assert (tmp_path / "out/final/model.safetensors").is_file()
    result = run_cli(["train", "--config", str(config), "--steps", "5"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from" in result.stdout and "at step 3" in result.stdout
    assert [r["step"] for r in log_rows(tmp_path) if "loss" in r][-2:] == [4, 5]


@pytest.mark.slow
def test_two_gloo_processes_stay_in_sync(tmp_path) -> None:
    config = write_config(tmp_path)
    result = run_cli(["train", "--config", str(config)], nproc=2)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = log_rows(tmp_path)
    (sync,) = [r["replica_checksums"] for r in rows if "replica_checksums" in r]
    assert len(sync) == 2 and np.isfinite(sync).all()
    assert sync[0] == sync[1]
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3]
