"""The shipped default model measured on held-out scenes: a real evaluation that can fail.

The scenes (held-out object instances) are from the final seed range, which no training run or
choice may use (``data/splits.py``), and are not the ones README's table uses (the range's
first seeds), so this checks that the model generalises, not that a table was copied.
"""

from __future__ import annotations

import pytest

from grasp_semantics.data.splits import FINAL_SEED
from grasp_semantics.evaluation.evaluate import evaluate
from grasp_semantics.inference.predictor import DEFAULT_WEIGHTS

pytestmark = pytest.mark.slow  # each test reads one evaluation of the default model

SCENES = 24
# Measured on these 24 scenes (the recipe's model on the 24-category world, planned on two
# parts and ranked by its grasp scorer): part accuracy 0.375 (9 of 24), contact AP 0.371,
# success@1 0.292 (7; 0.250 ranked by the planner's quality), success@5 0.375; geometry-only
# (the instruction withheld) part accuracy 0.375 and contact AP 0.359, random AP 0.015.
# The bounds sit a scene or so below, for numerical differences between machines. The model
# misses the targets of issue 27 (README, "Results"); these bounds hold what it does.
PART_ACCURACY = 0.3
CONTACT_AP = 0.3
SUCCESS_AT_1 = 0.25
SUCCESS_AT_5 = 0.3
# The same 24 scenes with 2.5 % of each cloud's points left out, three times over: part
# accuracy 0.347 on the copies, and the part choice right on some clouds and wrong on others in
# 9 scenes (0.375). The bound: 11 scenes.
RESAMPLED_CHANGED_SCENES = 0.46


@pytest.fixture(scope="module")
def held_out() -> dict:
    assert (DEFAULT_WEIGHTS / "model.safetensors").is_file(), "the default model is not shipped"
    results = evaluate(
        "default",
        ["test_instance"],
        SCENES,
        seed=FINAL_SEED + 100_000,
        device="cpu",
        progress=False,
        resample=3,
    )
    return {
        **results["splits"]["test_instance"],
        "resampling": results["resampling"]["test_instance"],
    }


def test_the_default_model_finds_the_functional_part(held_out) -> None:
    model = held_out["model"]
    assert model["count"] == SCENES
    assert model["part_accuracy"] >= PART_ACCURACY
    assert model["contact_ap"] >= CONTACT_AP


def test_the_part_choice_mostly_survives_another_sample_of_the_cloud(held_out) -> None:
    resampled = held_out["resampling"]
    assert resampled["copies"] == 3
    assert resampled["part_accuracy"] >= PART_ACCURACY
    assert resampled["changed_scenes"] <= RESAMPLED_CHANGED_SCENES


def test_the_instruction_does_not_hurt(held_out) -> None:
    """On 300 scenes of the final range the instruction gains +0.11 part accuracy [0.05, 0.16]
    over withholding it (README); on these 24 it gains none, so only "no worse" is asserted."""
    model, geometry = held_out["model"], held_out["geometry_only"]
    assert model["part_accuracy"] >= geometry["part_accuracy"]
    assert model["contact_ap"] > geometry["contact_ap"]


def test_better_than_random(held_out) -> None:
    model, random = held_out["model"], held_out["random"]
    assert model["contact_ap"] >= random["contact_ap"] + 0.2
    assert model["success_at_1"] >= max(random["success_at_1"], SUCCESS_AT_1)
    assert model["success_at_5"] >= max(random["success_at_5"], SUCCESS_AT_5)


def test_the_grasp_scorer_ranks_at_least_as_well_as_the_planner(held_out) -> None:
    model, planner = held_out["model"], held_out["planner_ranking"]
    assert model["part_accuracy"] == planner["part_accuracy"]  # the same network and planner
    assert model["success_at_1"] >= planner["success_at_1"]
    assert model["top1_collision_free"] >= planner["top1_collision_free"]
