"""`train` with `data.objects`: examples, rewordings and the vocabulary come from a mesh
folder."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from mesh_folders import user_folder

from grasp_semantics.data.catalogue import catalogue
from grasp_semantics.data.shards import ExampleShards
from grasp_semantics.data.splits import split_pools
from grasp_semantics.training.examples import instruction_corpus, reworded
from grasp_semantics.training.train_grasp_net import TrainConfig, train


@pytest.mark.slow
def test_train_draws_its_examples_and_wordings_from_a_meshuser_folder(tmp_path) -> None:
    folder = user_folder(tmp_path / "objects", drink_part="grip")
    config = {
        "model": "tiny",
        "model_overrides": {
            "pointnet": {"num_points": 256},
            "encoder": {"backbone": {"image_size": [64, 96]}},
        },
        "data": {
            "cache_dir": str(tmp_path / "data"),
            "train_scenes": 2,
            "val_scenes": 1,
            "scenes_per_shard": 2,
            "workers": 1,
            "reword_prob": 1.0,
            "objects": str(folder),
        },
        "optim": {"steps": 2, "batch_size": 2, "warmup_steps": 1},
        "out_dir": str(tmp_path / "out"),
        "val_every": 2,
        "checkpoint_every": 2,
    }
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(config))
    train(TrainConfig.load(path), progress=False)
    objects = catalogue(folder)
    examples = list(ExampleShards(tmp_path / "data/train").iterate(seed=None))
    pool = split_pools("train", objects).paraphrases["drink"]
    for example in examples:  # the folder's task, noun and training wordings
        assert example["task"] == "drink" and "beaker" in example["reference"]
        said = {objects.instruction(p, example["reference"]) for p in pool}
        assert example["instruction"] in said
        rng = np.random.default_rng(0)
        assert {reworded(example, "train", rng, objects)["instruction"] for _ in range(50)} == said
    corpus = " ".join(instruction_corpus(objects))
    assert "beaker" in corpus and "Have a sip of the" in corpus
    assert (tmp_path / "out/final").is_dir()
