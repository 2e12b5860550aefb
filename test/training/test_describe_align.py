"""train-describe's first phase: token labels from object masks, the visual tokens the language
model receives, and vision adapters that learn to read them without touching the grasp model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grasp_semantics.data.objects import CATEGORIES, COLOUR_NAMES
from grasp_semantics.data.questions import vqa_kind
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.models.scene_describer import DescribeConfig, SceneDescriber
from grasp_semantics.training.train_describe import (
    DescribeAlignConfig,
    align_vision,
    alignment_accuracy,
    token_labels,
    vision_parameters,
)

torch.set_num_threads(1)
VISION_TARGETS = ("*visual.blocks.*", "*visual.patch_embed.proj", "*visual.merger.*")


def test_token_labels_name_the_object_covering_enough_of_each_token():
    mask = np.full((60, 80), -1, dtype=np.int8)  # a 2 x 2 token grid of 30 x 40 pixel cells
    mask[:30, :40] = 0  # token (0, 0): all object 0
    mask[30:, 40:45] = 1  # token (1, 1): object 1 on 1/8 of it ...
    mask[30:33, 45:50] = 0  # ... and object 0 on less
    mask[:30, 40:42] = 1  # token (0, 1): 1/20 of it, under min_fraction
    objects = [("mug", "red"), ("knife", "blue")]
    labels = token_labels(mask, objects, (2, 2), min_fraction=0.1)
    mug, knife = 1 + CATEGORIES.index("mug"), 1 + CATEGORIES.index("knife")
    red, blue = 1 + COLOUR_NAMES.index("red"), 1 + COLOUR_NAMES.index("blue")
    assert labels.tolist() == [[mug, 0, 0, knife], [red, 0, 0, blue]]
    assert not token_labels(np.full((60, 80), -2, np.int8), objects, (2, 2), 0.1).any()
    assert not token_labels(mask, [], (2, 2), 0.1).any()


@pytest.mark.parametrize("name", ["tiny", "debug_qwen2_5_vl", "debug_qwen3_vl"])
def test_visual_tokens_are_row_major_over_the_merged_grid_and_adapted(name):
    """Token r*cols+c is the one a bright square in merged cell (r, c) changes most; with the
    adapters perturbed the tokens differ from the grasp encoder's own image features."""
    torch.manual_seed(0)
    model = GraspNet(name).eval()
    describer = SceneDescriber(model.encoder, DescribeConfig(lora_targets=VISION_TARGETS))
    h, w = describer.image_size
    rows, cols = model.encoder.token_grid((h, w))
    unit = h // rows
    dark = torch.zeros(1, h, w, 3, dtype=torch.uint8)
    with torch.no_grad():
        base = describer.visual_tokens(dark)
        assert base.shape == (1, rows * cols, model.encoder._hidden_size())
        for r, c in [(0, 0), (rows - 1, cols - 1), (rows // 2, 1)]:
            lit = dark.clone()
            lit[:, r * unit : (r + 1) * unit, c * unit : (c + 1) * unit] = 255
            change = (describer.visual_tokens(lit) - base).norm(dim=-1)[0]
            assert int(change.argmax()) == r * cols + c
        pixels = model.encoder.pixel_inputs(dark[:, None], describer.image_size)
        plain = torch.cat(list(model.encoder.backbone.get_image_features(**pixels).pooler_output))
        torch.testing.assert_close(base[0], plain)  # adapters still zero: the same features
        for p in describer.lora.up.parameters():
            p.add_(0.05)
        assert (describer.visual_tokens(dark)[0] - plain).abs().max() > 1e-3
    describer.close()


@pytest.mark.slow
def test_alignment_trains_only_the_vision_adapters_and_learns_colours():
    """On images with a red, a green and a blue square, the read-out of the aligned tokens
    gets the colours right; the grasp weights and the language-model adapters are not
    touched."""
    torch.manual_seed(0)
    model = GraspNet("tiny").eval().requires_grad_(False)
    targets = (*VISION_TARGETS, "*language_model.layers.*.mlp.*_proj")
    describer = SceneDescriber(model.encoder, DescribeConfig(lora_targets=targets))
    h, w = describer.image_size
    grid = model.encoder.token_grid((h, w))
    unit = h // grid[0]
    rng = np.random.default_rng(0)
    palette = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (30, 50, 220)}
    images, labels = [], []
    # Each colour once per image, at random cells: only its pixels tell a square's colour. (With
    # one square per image, a read-out could fit the training images by where the square is
    # and miss held-out colours: it did for two of five seeds.)
    for _ in range(48):
        image = np.full((h, w, 3), 160, dtype=np.uint8)
        mask = np.full((h, w), -1, dtype=np.int8)
        cells = rng.choice(grid[0] * grid[1], len(palette), replace=False)
        for index, (cell, rgb) in enumerate(zip(cells, palette.values(), strict=True)):
            r, c = divmod(int(cell), grid[1])
            image[r * unit : (r + 1) * unit, c * unit : (c + 1) * unit] = rgb
            mask[r * unit : (r + 1) * unit, c * unit : (c + 1) * unit] = index
        images.append(image)
        labels.append(token_labels(mask, [("mug", colour) for colour in palette], grid, 0.5))
    images, labels = torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(labels))
    grasp_before = {k: v.clone() for k, v in model.state_dict().items()}
    vision = {id(p) for p in vision_parameters(describer)}
    text_before = [p.clone() for p in describer.parameters() if id(p) not in vision]
    rows = []
    cfg = DescribeAlignConfig(steps=60, lr=3e-3, images_per_step=12)
    readout = align_vision(describer, images[:36], labels[:36], cfg, rng, rows.append, 10)
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    figures = alignment_accuracy(describer, readout, images[36:], labels[36:])
    assert figures["object_tokens"] == 36
    assert figures["colour"] >= 0.9
    for key, value in model.state_dict().items():
        assert torch.equal(value, grasp_before[key]), key
    after = [p for p in describer.parameters() if id(p) not in vision]
    assert all(torch.equal(a, b) for a, b in zip(after, text_before, strict=True))
    assert any(p.abs().sum() > 0 for p in describer.lora.up.parameters() if id(p) in vision)
    describer.close()


def test_vqa_kinds_follow_the_question_templates():
    assert vqa_kind("What colour is the mug?") == "colour"
    assert vqa_kind("How many objects are on the table?") == "count_all"
    assert vqa_kind("How many mugs are there?") == "count"
    assert vqa_kind("Where is the red mug?") == "position"
    assert vqa_kind("What does the label on the bottle say?") == "label"
    assert vqa_kind("What is the rightmost object?") == "extreme"
    assert vqa_kind("Is the mug empty?") == "other"


@pytest.mark.slow
def test_train_describe_end_to_end_writes_a_head_that_loads(tmp_path):
    """A few steps of both phases on a handful of scenes: the head is saved beside its
    figures (alignment included), loads onto the default model and answers."""
    from grasp_semantics.inference.predictor import GraspPredictor
    from grasp_semantics.training.train_describe import (
        DescribeDataConfig,
        DescribeOptimConfig,
        DescribeTrainConfig,
        train_describe,
    )

    cfg = DescribeTrainConfig(
        out_dir=str(tmp_path / "head"),
        describe={"lora_targets": [*VISION_TARGETS, "*language_model.layers.*.mlp.*_proj"]},
        data=DescribeDataConfig(
            cache_dir=str(tmp_path / "data"), train_scenes=4, eval_scenes=2, workers=1
        ),
        align=DescribeAlignConfig(steps=2, images_per_step=2),
        optim=DescribeOptimConfig(steps=2, warmup_steps=1, images_per_step=2, items_per_image=2),
        log_every=1,
    )
    figures = train_describe(cfg, progress=False)
    assert figures["alignment"]["object_tokens"] > 0
    assert 0.0 <= figures["alignment"]["colour"] <= 1.0
    assert figures["caption"]["items"] + figures["vqa"]["items"] > 0
    log = (tmp_path / "head" / "train_log.jsonl").read_text().splitlines()
    assert sum('"phase": "align"' in line for line in log) == 3  # steps 1, 2 and held-out
    model = GraspPredictor.from_pretrained("default", device="cpu").model
    loaded = SceneDescriber.load(tmp_path / "head", model.encoder)
    image = torch.zeros(1, 96, 128, 3, dtype=torch.uint8)
    assert isinstance(loaded.generate(image, ["Describe this image."], max_new_tokens=3)[0], str)
    loaded.close()
