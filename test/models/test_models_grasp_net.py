"""Whole network: config round trip, checkpoints, criterion targets, optimisation."""

import numpy as np
import pytest
import torch

from grasp_semantics.grasping.gripper import grasp_poses
from grasp_semantics.models.config import FLAVOURS, GraspNetConfig, get_config
from grasp_semantics.models.criterion import GraspCriterion, assign_grasp_targets
from grasp_semantics.models.grasp_net import GraspNet

K = torch.tensor([[300.0, 0, 80], [0, 300, 60], [0, 0, 1]])


def small_config(fusion="global"):
    cfg = get_config("tiny")
    cfg.pointnet.num_points = 256
    cfg.fusion.mode = fusion
    return cfg


def make_batch(b=2, n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    points = torch.rand(b, n, 3, generator=g) * 0.2 + torch.tensor([-0.1, -0.1, 0.5])
    grasps, widths, contacts = [], [], []
    for i in range(b):
        idx = rng.choice(n, 8, replace=False)
        c0 = points[i, idx].double().numpy()
        w = rng.uniform(0.02, 0.06, 8)
        poses = grasp_poses(c0, rng.normal(size=(8, 3)), rng.normal(size=(8, 3)), w)
        c1 = c0 + w[:, None] * poses[:, :3, 0]
        grasps.append(torch.tensor(poses, dtype=torch.float32))
        widths.append(torch.tensor(w, dtype=torch.float32))
        contacts.append(torch.tensor(np.stack([c0, c1], 1), dtype=torch.float32))
    return {
        "images": torch.randint(0, 256, (b, 120, 160, 3), dtype=torch.uint8, generator=g),
        "instructions": ["hand me the knife", "pour from the red mug"][:b] * (b // 2 or 1),
        "points": points,
        "intrinsics": K.expand(b, 3, 3),
        "contact": (points[..., 0] < -0.05).float(),
        "grasps": grasps,
        "grasp_widths": widths,
        "grasp_contacts": contacts,
    }


@pytest.mark.parametrize("name", sorted(FLAVOURS))
def test_config_yaml_round_trip(name, tmp_path):
    cfg = get_config(name)
    cfg.save(tmp_path / "config.yaml")
    assert GraspNetConfig.load(tmp_path / "config.yaml") == cfg
    assert GraspNetConfig.from_dict(cfg.to_dict()) == cfg


def test_unknown_config_key_is_rejected():
    with pytest.raises(ValueError, match="unknown keys"):
        GraspNetConfig.from_dict({"encoder": {"bogus": 1}})


@pytest.mark.parametrize(("fusion", "tuning"), [("global", "full"), ("pixel_aligned", "lora")])
def test_save_load_round_trip_gives_identical_outputs(fusion, tuning, tmp_path):
    torch.manual_seed(0)
    cfg = small_config(fusion)
    cfg.encoder.backbone.tuning = tuning
    model = GraspNet(cfg)
    if tuning == "lora":  # LoRA B starts at zero: perturb so the adapters matter
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.data.normal_(0, 0.02)
    model.eval()
    batch = make_batch()
    with torch.no_grad():
        before = model(batch)
    model.save_pretrained(tmp_path / "ckpt")
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()
    loaded = GraspNet.from_pretrained(tmp_path / "ckpt").eval()
    assert loaded.cfg == model.cfg
    with torch.no_grad():
        after = loaded(batch)
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)


def test_grasp_targets_follow_the_finger_contacts():
    c0, c1 = np.array([[0.0, 0, 0.5]]), np.array([[0.04, 0, 0.5]])
    pose = grasp_poses(c0, np.array([[0, 0, 1.0]]), np.array([[1.0, 0, 0]]), np.array([0.04]))
    points = torch.tensor([[[0.0, 0, 0.5], [0.04, 0, 0.5], [0.3, 0.3, 0.3]]])
    tg = assign_grasp_targets(
        points,
        [torch.tensor(pose, dtype=torch.float32)],
        [torch.tensor([0.04])],
        [torch.tensor(np.stack([c0, c1], 1), dtype=torch.float32)],
        radius=0.01,
    )
    assert tg["positive"].tolist() == [[True, True, False]]
    torch.testing.assert_close(tg["closing"][0, 0], torch.tensor([1.0, 0, 0]))
    torch.testing.assert_close(tg["closing"][0, 1], torch.tensor([-1.0, 0, 0]))  # other finger
    torch.testing.assert_close(tg["approach"][0, 1], torch.tensor([0.0, 0, 1]))
    torch.testing.assert_close(tg["width"][0, :2], torch.tensor([0.04, 0.04]))


def test_grasp_targets_take_the_hypothesis_the_prediction_is_closest_to():
    """Two GT grasps share a finger contact and differ in approach (top-down vs sideways):
    each prediction is matched to the one it is near, not to their mean."""
    c0, c1 = np.array([[0.0, 0, 0.5]] * 2), np.array([[0.04, 0, 0.5]] * 2)
    approaches = np.array([[0, 0, 1.0], [0, 1.0, 0]])
    pose = grasp_poses(c0, approaches, np.array([[1.0, 0, 0]] * 2), np.array([0.04] * 2))
    points = torch.tensor([[[0.0, 0, 0.5], [0.001, 0, 0.5]]])
    predicted = {
        "approach": torch.tensor([[[0.0, 0.2, 0.98], [0.0, 0.98, 0.2]]]),
        "closing": torch.tensor([[[1.0, 0, 0], [1.0, 0, 0]]]),
        "width": torch.tensor([[0.04, 0.04]]),
    }
    tg = assign_grasp_targets(
        points,
        [torch.tensor(pose, dtype=torch.float32)],
        [torch.tensor([0.04, 0.04])],
        [torch.tensor(np.stack([c0, c1], 1), dtype=torch.float32)],
        radius=0.01,
        predicted=predicted,
    )
    torch.testing.assert_close(tg["approach"][0, 0], torch.tensor([0.0, 0, 1]))
    torch.testing.assert_close(tg["approach"][0, 1], torch.tensor([0.0, 1, 0]))
    assert tg["positive"].all()


@pytest.mark.slow
def test_a_few_steps_on_one_batch_reduce_the_loss():
    torch.manual_seed(0)
    cfg = small_config("pixel_aligned")
    model = GraspNet(cfg).train()
    criterion = GraspCriterion(cfg.loss, cfg.heads)
    batch = make_batch()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    losses = []
    for _ in range(5):
        loss, terms = criterion(model(batch), batch)
        assert set(terms) >= {"contact", "score", "approach", "closing", "width", "loss"}
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_weighted_bce_contact_loss():
    cfg = small_config()
    cfg.loss.contact_loss = "weighted_bce"
    criterion = GraspCriterion(cfg.loss, cfg.heads)
    batch = make_batch()
    logits = torch.zeros(2, 256, requires_grad=True)
    out = {
        "contact_logits": logits,
        "grasp_logits": torch.zeros(2, 256),
        "approach": torch.tensor([0.0, 0, 1]).expand(2, 256, 3),
        "closing": torch.tensor([1.0, 0, 0]).expand(2, 256, 3),
        "width": torch.full((2, 256), 0.04),
    }
    loss, terms = criterion(out, batch)
    loss.backward()
    assert torch.isfinite(loss) and terms["contact"] > 0
    # positives are rarer, so their (negative) gradient outweighs a negative's
    pos = batch["contact"] > 0
    assert logits.grad[pos].abs().mean() > logits.grad[~pos].abs().mean()


@pytest.mark.slow
def test_checkpoint_backed_lora_model_saves_only_what_it_trained(tmp_path):
    from safetensors import safe_open
    from transformers import Qwen3VLForConditionalGeneration

    from grasp_semantics.models.semantics_qwen import _TOKEN_KEYS, _hf_config
    from grasp_semantics.models.tokenizer import SPECIAL_IDS, load_tokenizer

    torch.manual_seed(0)
    cfg = get_config("debug_qwen3_vl")
    cfg.pointnet.num_points = 256
    ids = {k: SPECIAL_IDS[v] for k, v in _TOKEN_KEYS.items()}
    Qwen3VLForConditionalGeneration(_hf_config(cfg.encoder.backbone, ids)).save_pretrained(
        tmp_path / "backbone"
    )
    load_tokenizer(None).save_pretrained(tmp_path / "backbone")
    cfg.encoder.backbone.checkpoint = str(tmp_path / "backbone")
    cfg.encoder.backbone.tuning = "lora"
    model = GraspNet(cfg)
    for name, p in model.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.02)
    model.eval()
    batch = make_batch()
    with torch.no_grad():
        before = model(batch)
    model.save_pretrained(tmp_path / "ckpt")
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        backbone_keys = [k for k in f.keys() if k.startswith("encoder.backbone.")]  # noqa: SIM118
    assert backbone_keys and all("lora_" in k for k in backbone_keys)
    loaded = GraspNet.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        after = loaded(batch)
    for key, value in before.items():
        torch.testing.assert_close(after[key], value, rtol=0, atol=0)
