"""Scene description through the grasp encoder's backbone: generation, sharing, isolation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grasp_semantics.data.questions import NO_TEXT, corpus
from grasp_semantics.models.config import get_config
from grasp_semantics.models.grasp_net import GraspNet
from grasp_semantics.models.scene_describer import (
    DescribeConfig,
    SceneDescriber,
    ScoredAnswer,
    base_fingerprint,
    task_prompt,
)
from grasp_semantics.models.tokenizer import SPECIAL_IDS

torch.set_num_threads(1)


def _images(b: int, h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(b, h, w, 3), dtype=np.uint8)


def _perturb(module: torch.nn.Module, seed: int = 0) -> None:
    """Give every describer weight (LoRA up-projections start at zero) a random value."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["debug_qwen3_vl", "debug_qwen2_5_vl"])
@pytest.mark.parametrize("tied", [True, False])
def test_greedy_generation_matches_transformers_generate(name, tied, tmp_path):
    """A local ...ForConditionalGeneration checkpoint answers through the describer exactly as
    transformers' own greedy generate does (its LM head: tied, or loaded from the files)."""
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

    from grasp_semantics.models.semantics_qwen import (
        _TOKEN_KEYS,
        QwenSemanticsEncoder,
        _hf_config,
    )
    from grasp_semantics.models.tokenizer import load_tokenizer

    torch.manual_seed(0)
    cfg = get_config(name).encoder
    hf_cfg = _hf_config(cfg.backbone, {k: SPECIAL_IDS[v] for k, v in _TOKEN_KEYS.items()})
    hf_cfg.tie_word_embeddings = hf_cfg.text_config.tie_word_embeddings = tied
    cls = (
        Qwen3VLForConditionalGeneration if "qwen3" in name else Qwen2_5_VLForConditionalGeneration
    )
    full = cls(hf_cfg).eval()
    full.save_pretrained(tmp_path)
    load_tokenizer(None).save_pretrained(tmp_path)
    cfg.backbone.checkpoint = str(tmp_path)
    encoder = QwenSemanticsEncoder(cfg).eval()
    describer = SceneDescriber(encoder, DescribeConfig(lora_targets=()))
    assert (describer.lm_head is None) == tied
    image = torch.from_numpy(_images(1))
    ours = describer.generate(image, ["Describe this image."], max_new_tokens=8)[0]
    ids = torch.tensor([describer.prompt_ids("Describe this image.")])
    inputs = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "mm_token_type_ids": (ids == SPECIAL_IDS["<|image_pad|>"]).int(),
        **encoder.pixel_inputs(image[:, None]),
    }
    eos = [SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]]
    with torch.no_grad():
        ref = full.generate(**inputs, max_new_tokens=8, do_sample=False, eos_token_id=eos)
    expected = encoder.tokenizer.decode(ref[0, ids.shape[1] :], skip_special_tokens=True)
    assert ours == expected.strip()


@pytest.mark.parametrize("name", ["debug_qwen3_vl", "debug_qwen2_5_vl", "tiny"])
def test_random_init_configs_generate_with_the_grasp_models_own_weights(name):
    model = GraspNet(name).eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    _perturb(describer)
    backbone_ptrs = {p.data_ptr() for p in model.encoder.backbone.parameters()}
    answers = describer.generate(_images(2), ["Describe this image.", "What is on the table?"])
    assert len(answers) == 2 and all(isinstance(a, str) for a in answers)
    # No second copy: the describer holds no backbone tensor, it reads the encoder's.
    assert not any(k.startswith("encoder.") for k in describer.state_dict())
    assert all(p.data_ptr() not in backbone_ptrs for p in describer.parameters())
    embed = model.encoder.backbone.get_input_embeddings().weight
    assert describer.embed.weight.data_ptr() == embed.data_ptr()
    assert {p.data_ptr() for p in model.encoder.backbone.parameters()} == backbone_ptrs


def test_generation_stops_at_end_of_turn_and_at_max_new_tokens():
    model = GraspNet("tiny").eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    vocab = len(describer.out_ids)

    def always(real_id: int):  # a head that always scores one token highest
        index = torch.full((), int((describer.out_ids == real_id).nonzero()))
        return lambda hidden: torch.nn.functional.one_hot(
            index.expand(hidden.shape[:-1]), vocab
        ).float()

    describer.logits = always(model.encoder.tokenizer.encode(" red")[0])
    assert describer.generate(_images(1), ["Describe this image."], max_new_tokens=3) == [
        "red red red"
    ]
    describer.logits = always(SPECIAL_IDS["<|im_end|>"])
    assert describer.generate(_images(1), ["Describe this image."], max_new_tokens=5) == [""]


def test_confidence_is_the_geometric_mean_probability_of_the_answer_tokens():
    model = GraspNet("tiny").eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    vocab = len(describer.out_ids)
    red, end = model.encoder.tokenizer.encode(" red")[0], SPECIAL_IDS["<|im_end|>"]

    def head(*scores: tuple[int, float]):  # logits 0 except for the given (real id, logit)
        row = torch.zeros(vocab)
        for real_id, logit in scores:
            row[int((describer.out_ids == real_id).nonzero())] = logit
        return lambda hidden: row.expand(*hidden.shape[:-1], vocab)

    describer.logits = head((red, 3.0))  # never ends: three tokens at the same probability
    [answer] = describer.generate_scored(_images(1), ["Describe this image."], max_new_tokens=3)
    assert answer.text == "red red red"
    assert answer.confidence == pytest.approx(np.e**3 / (np.e**3 + vocab - 1), rel=1e-5)
    describer.logits = head((end, 1.0), (red, 0.5))  # the end-of-turn token alone is scored
    [answer] = describer.generate_scored(_images(1), ["Describe this image."], max_new_tokens=3)
    assert answer.text == ""
    expected = np.e / (np.e + np.exp(0.5) + vocab - 2)
    assert answer.confidence == pytest.approx(expected, rel=1e-5)


def test_batched_generation_equals_one_at_a_time():
    """Left-padded batches (prompts of different lengths) answer as single samples do."""
    torch.manual_seed(0)
    model = GraspNet("tiny").eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    _perturb(describer, seed=1)
    images = _images(3, seed=2)
    prompts = ["Describe this image.", "How many objects are on the table?", "What is on it?"]
    batched = describer.generate(images, prompts, max_new_tokens=6)
    single = [
        describer.generate(images[i : i + 1], [p], max_new_tokens=6)[0]
        for i, p in enumerate(prompts)
    ]
    assert batched == single
    assert len(set(batched)) > 1  # the perturbed adapters really answer differently
    scored = describer.generate_scored(images, prompts, max_new_tokens=6)
    assert [a.text for a in scored] == batched
    alone = [
        describer.generate_scored(images[i : i + 1], [p], max_new_tokens=6)[0].confidence
        for i, p in enumerate(prompts)
    ]
    np.testing.assert_allclose([a.confidence for a in scored], alone, rtol=1e-4)
    assert all(0.0 < a.confidence <= 1.0 for a in scored)


@pytest.mark.parametrize("name", ["tiny", "debug_qwen2_5_vl"])
def test_shared_image_prefix_loss_equals_the_full_sequence_loss(name):
    """Training runs each image once and continues every question from its cache: the loss
    equals teacher forcing on whole sequences, one image copy per question."""
    torch.manual_seed(0)
    model = GraspNet(name).eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    _perturb(describer, seed=4)
    images = torch.from_numpy(_images(2, seed=5))[:, None]
    prompts = ["Describe this image.", "What colour is the mug?", "How many objects are there?"]
    answers = ["a red mug and a pair of blue scissors", "red", "two"]
    index = [1, 0, 1]
    tok = model.encoder.tokenizer
    seqs, starts = [], []
    for text, answer in zip(prompts, answers, strict=True):
        prompt = describer.prompt_ids(text)
        starts.append(len(prompt))
        seqs.append(prompt + tok.encode(answer) + [SPECIAL_IDS["<|im_end|>"]])
    ids, mask = describer.batch(seqs, left=False)
    targets = torch.full_like(ids, -100)
    for i, (seq, start) in enumerate(zip(seqs, starts, strict=True)):
        targets[i, start - 1 : len(seq) - 1] = describer.head_index(ids[i, start : len(seq)])
    pixels = model.encoder.pixel_inputs(images[index])
    with torch.no_grad(), describer.active():
        inputs = describer.backbone_inputs(pixels["image_grid_thw"], ids, mask)
        hidden = model.encoder.backbone(**{**inputs, **pixels}, use_cache=False).last_hidden_state
        keep = targets >= 0
        reference = torch.nn.functional.cross_entropy(
            describer.logits(hidden[keep]).float(), targets[keep]
        )
        shared = describer.loss(images, prompts, answers, index)
    torch.testing.assert_close(shared, reference, rtol=1e-4, atol=1e-5)
    if name == "tiny":  # a compact head refuses answers it could never produce
        with pytest.raises(ValueError, match="cannot emit"):
            describer.loss(images, ["What is it?"], ["zebra"])


def test_grasp_outputs_identical_with_the_describer_attached():
    """Adapters act only while generating: the grasp path gives bit-identical outputs."""
    torch.manual_seed(0)
    model = GraspNet("tiny").eval()
    batch = {
        "images": torch.from_numpy(_images(2, 128, 160)),
        "instructions": ["hand me the knife", "pour from the red mug"],
        "points": torch.rand(2, model.cfg.pointnet.num_points, 3) * 0.3
        + torch.tensor([0, 0, 0.6]),
    }
    with torch.no_grad():
        before = model(batch)
        describer = SceneDescriber(model.encoder, vocab_texts=corpus())
        _perturb(describer)
        describer.generate(batch["images"], ["Describe this image.", "What is it?"])
        with_describer = model(batch)
    for key in before:
        assert torch.equal(before[key], with_describer[key]), key
    with torch.no_grad():  # ... while the adapters, when on, do change the backbone's states
        plain = model.encoder(batch["images"], batch["instructions"]).hidden
        with describer.active():
            changed = model.encoder(batch["images"], batch["instructions"]).hidden
    assert (plain - changed).abs().max() > 1e-3


def test_save_and_load_round_trip_and_base_check(tmp_path):
    torch.manual_seed(0)
    model = GraspNet("tiny").eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    _perturb(describer, seed=3)
    prompts = ["Describe this image.", "What colour is the mug?"]
    expected = describer.generate(_images(2), prompts)
    describer.save(tmp_path)
    describer.close()
    loaded = SceneDescriber.load(tmp_path, model.encoder)
    assert loaded.generate(_images(2), prompts) == expected
    loaded.close()
    with torch.no_grad():  # another grasp model: the adapters no longer belong to it
        next(model.encoder.backbone.parameters()).add_(1e-3)
    assert base_fingerprint(model.encoder) != loaded.cfg.base_fingerprint
    with pytest.raises(RuntimeError, match="train-describe"):
        SceneDescriber.load(tmp_path, model.encoder)


def test_task_prompts_and_bad_requests():
    assert task_prompt("caption") == "Describe this image."
    assert task_prompt("ocr", "only the bottle") == "Read the text in the image. only the bottle"
    assert task_prompt("vqa", " Is the mug red? ") == "Is the mug red?"
    with pytest.raises(ValueError, match="unknown task 'translate'"):
        task_prompt("translate")
    with pytest.raises(ValueError, match="vqa' needs a prompt"):
        task_prompt("vqa", "  ")


@pytest.mark.slow
def test_sampling_is_reproducible_with_a_generator_and_greedy_is_the_default():
    torch.manual_seed(0)
    model = GraspNet("tiny").eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    _perturb(describer, seed=6)
    images, prompts = _images(2, seed=7), ["Describe this image.", "What is on the table?"]

    def sample(seed: int) -> list[str]:
        gen = torch.Generator().manual_seed(seed)
        return describer.generate(images, prompts, temperature=1.0, generator=gen)

    assert sample(1) == sample(1)
    assert describer.generate(images, prompts) == describer.generate(images, prompts)
    assert {tuple(sample(s)) for s in range(4)} != {tuple(describer.generate(images, prompts))}


def test_describing_at_its_own_resolution_leaves_the_grasp_input_size_alone(tmp_path):
    """A describer may read images at more pixels than the grasp path (printed text needs
    them): its prompt carries that many image tokens, the size survives save / load, the
    encoder's own grasp input stays fixed, and a size off the patch grid is refused."""
    torch.manual_seed(0)
    model = GraspNet("tiny").eval()
    h, w = model.cfg.encoder.backbone.image_size
    describer = SceneDescriber(model.encoder, DescribeConfig(image_size=(2 * h, 2 * w)), corpus())
    image_token = model.encoder.image_token_id
    native = SceneDescriber(model.encoder, vocab_texts=corpus())
    count = lambda d: d.prompt_ids("Read the text in the image.").count(image_token)  # noqa: E731
    assert (
        count(describer)
        == 4 * count(native)
        == 4 * model.encoder.grid_hw[0] * model.encoder.grid_hw[1]
    )
    native.close()
    pixels = model.encoder.pixel_inputs(
        torch.from_numpy(_images(1))[:, None], describer.image_size
    )
    assert pixels["image_grid_thw"].tolist() == [[1, 2 * h // 16, 2 * w // 16]]
    _perturb(describer, seed=4)
    expected = describer.generate(_images(1), ["Read the text in the image."], max_new_tokens=4)
    describer.save(tmp_path)
    describer.close()
    loaded = SceneDescriber.load(tmp_path, model.encoder)
    assert loaded.image_size == (2 * h, 2 * w)
    assert (
        loaded.generate(_images(1), ["Read the text in the image."], max_new_tokens=4) == expected
    )
    loaded.close()
    assert model.encoder.pixel_inputs(torch.from_numpy(_images(1))[:, None])[
        "image_grid_thw"
    ].tolist() == [[1, h // 16, w // 16]]
    with pytest.raises(ValueError, match="multiples of 32"):
        SceneDescriber(model.encoder, DescribeConfig(image_size=(100, 128)), corpus())


@pytest.mark.parametrize("name", ["tiny", "debug_qwen2_5_vl"])
def test_lora_on_the_patch_embedding_is_a_linear_map_of_each_flattened_patch(name):
    """The vision towers embed patches with a convolution whose stride is its kernel; an
    adapter there adds ``s * B(A(patch))`` to each patch's embedding, only while describing."""
    from grasp_semantics.models.lora import HookedLoRA, Switch

    torch.manual_seed(0)
    model = GraspNet(name).eval()
    (proj,) = [
        m for n, m in model.encoder.backbone.named_modules() if n.endswith("patch_embed.proj")
    ]
    switch = Switch()
    lora = HookedLoRA(
        model.encoder.backbone, ["*visual.patch_embed.proj"], 4, 8.0, lambda name: switch.on
    )
    assert (
        list(lora.down) and lora.down[next(iter(lora.down))].in_features == proj.weight[0].numel()
    )
    _perturb(lora, seed=5)
    patches = torch.randn(6, proj.in_channels, *proj.kernel_size)
    plain = proj(patches)
    with switch.enabled():
        adapted = proj(patches)
    key = next(iter(lora.down))
    delta = 2.0 * lora.up[key](lora.down[key](patches.flatten(1)))  # scale = alpha / r = 2
    torch.testing.assert_close(adapted.flatten(1), plain.flatten(1) + delta)
    torch.testing.assert_close(proj(patches), plain)  # switched off: untouched
    lora.remove()


def _reading_describer(model: GraspNet, seed: int = 5) -> SceneDescriber:
    """A describer with a 64 x 96 reading view magnified twice, every weight random."""
    cfg = DescribeConfig(reading_crop=(64, 96), reading_zoom=2, reading_lora_r=8)
    describer = SceneDescriber(model.encoder, cfg, corpus())
    _perturb(describer, seed=seed)
    return describer


def test_questions_about_what_is_written_go_through_the_reading_view():
    model = GraspNet("tiny").eval()
    reader = _reading_describer(model)
    ocr = task_prompt("ocr")
    label = "What does the label on the bottle say?"
    assert reader.request("vqa", label) == (ocr, True)
    assert reader.request("vqa", "Is there any text on the mug?") == (ocr, True)
    assert reader.request("vqa", "What colour is the mug?") == ("What colour is the mug?", False)
    assert reader.request("vqa", "Where is the labelled mug?")[1] is False  # whole words only
    assert reader.request("ocr") == (ocr, True)
    assert reader.request("caption") == (task_prompt("caption"), False)
    with pytest.raises(ValueError, match="needs a prompt"):
        reader.request("vqa", "")
    reader.close()
    plain = SceneDescriber(model.encoder, vocab_texts=corpus())  # no reading view
    assert plain.request("vqa", label) == (label, False)  # asked as it is
    assert plain.request("ocr") == (ocr, True)
    plain.close()


def test_reading_views_crop_around_the_centre_inside_the_image():
    model = GraspNet("tiny").eval()
    describer = _reading_describer(model)
    assert describer.reads and describer.reading_size == (128, 192)
    images = torch.from_numpy(_images(2, h=200, w=300))
    centres = torch.tensor([[100.0, 150.0], [5.0, 290.0]])  # the second one at a corner
    views = describer.reading_views(images, centres)
    assert views.shape == (2, 64, 96, 3)
    assert torch.equal(views[0], images[0, 68:132, 102:198])
    assert torch.equal(views[1], images[1, 0:64, 204:300])  # moved inside the image
    small = torch.from_numpy(_images(1, h=40, w=50))  # smaller than the crop: padded black
    view = describer.reading_views(small, torch.tensor([[20.0, 25.0]]))[0]
    assert torch.equal(view[:40, :50], small[0]) and not view[40:].any() and not view[:, 50:].any()
    describer.close()


def test_locate_moves_the_best_token_centre_by_its_predicted_offset():
    model = GraspNet("tiny").eval()
    describer = _reading_describer(model)
    rows, cols = model.encoder.token_grid(describer.image_size)
    images = torch.from_numpy(_images(2, h=240, w=320))
    with torch.no_grad():
        tokens = describer.visual_tokens(images).float()  # [2, T, D]
        # a (linear) locator whose score is the token's projection on one image's token 7,
        # with fixed offsets
        describer.locator = torch.nn.Linear(tokens.shape[-1], 3)
        describer.locator.weight.zero_()
        describer.locator.weight[0] = tokens[0, 7]
        describer.locator.bias.copy_(torch.tensor([0.0, 0.25, -0.5]))
    scores = describer.locator_scores(images)
    best = scores[..., 0].argmax(dim=1)
    assert int(best[0]) == int((tokens[0] @ tokens[0, 7]).argmax())
    centres = describer.locate(images)
    for i, token in enumerate(best.tolist()):
        row, col = divmod(token, cols)
        expected = [(row + 0.5 + 0.25) * 240 / rows, (col + 0.5 - 0.5) * 320 / cols]
        assert centres[i].tolist() == pytest.approx(expected)
    describer.close()


def test_reading_several_candidates_keeps_the_most_confident_text():
    """With ``reading_candidates`` k, OCR reads a crop at each of the locator's k best tokens
    (best first) and answers the most confident reading that found text."""
    model = GraspNet("tiny").eval()
    describer = _reading_describer(model)
    images = torch.from_numpy(_images(2, h=240, w=320, seed=4))
    prompt = ["Read the text in the image."] * 2
    centres = describer.locate(images, candidates=3)
    assert centres.shape == (2, 3, 2)
    torch.testing.assert_close(centres[:, 0], describer.locate(images))
    assert all(len({tuple(c) for c in image.tolist()}) == 3 for image in centres)
    singles = []  # each candidate's reading alone
    locate = describer.locate
    for k in range(3):
        describer.locate = lambda images, candidates=1, k=k: centres[:, k]
        singles.append(describer.generate_scored(images, prompt, 4, read=True))
    describer.locate = locate
    describer.cfg.reading_candidates = 3
    got = describer.generate_scored(images, prompt, 4, read=True)
    for i, answer in enumerate(got):
        readings = [single[i] for single in singles]
        best = describer._best_reading(readings)
        assert answer.text == best.text
        assert answer.confidence == pytest.approx(best.confidence, rel=1e-4)
    describer.close()


def test_best_reading_prefers_text_found_to_no_text():
    assert DescribeConfig().no_text_answer == NO_TEXT  # what the data says of a label-less image
    describer = _reading_describer(GraspNet("tiny").eval())
    no_text = ScoredAnswer("no text", 0.99)
    readings = [no_text, ScoredAnswer("KIWI 2", 0.7), ScoredAnswer("ACME 3", 0.8)]
    assert describer._best_reading(readings) == readings[2]
    assert describer._best_reading([no_text, ScoredAnswer("no text", 0.5)]) is no_text
    describer.close()


@pytest.mark.slow
def test_ocr_reads_the_reading_view_with_its_own_adapters(tmp_path):
    """read=True answers what the reading view shows (the crop at the located label, read
    with the reading adapters); the other tasks and the grasp path never use them."""
    model = GraspNet("tiny").eval()
    describer = _reading_describer(model)
    images = torch.from_numpy(_images(2, h=240, w=320, seed=3))
    prompt = ["Read the text in the image."] * 2
    read = describer.generate_scored(images, prompt, max_new_tokens=5, read=True)
    image_token = model.encoder.image_token_id
    assert describer.prompt_ids(prompt[0], reading=True).count(image_token) == 4 * 6  # 128 x 192
    scene = describer.generate(images, prompt, max_new_tokens=5)
    grasp_before = model.encoder(images, ["pick up the mug"] * 2).tokens
    with torch.no_grad():  # the reading adapters change the reading answers only
        for p in [*describer.reader.parameters(), *describer.reader_text.parameters()]:
            p.mul_(-3.0)
    assert describer.generate(images, prompt, max_new_tokens=5) == scene
    reread = describer.generate_scored(images, prompt, max_new_tokens=5, read=True)
    assert [a.text for a in reread] != [a.text for a in read]
    with torch.no_grad():  # and the scene adapters the scene answers only
        for p in describer.lora.parameters():
            p.mul_(-3.0)
    assert describer.generate(images, prompt, max_new_tokens=5) != scene
    assert describer.generate_scored(images, prompt, max_new_tokens=5, read=True) == reread
    model.encoder.clear_cache()
    torch.testing.assert_close(
        model.encoder(images, ["pick up the mug"] * 2).tokens, grasp_before, rtol=0, atol=0
    )
    # a describer without a reading view reads the whole image, read=True or not
    plain = SceneDescriber(model.encoder, vocab_texts=corpus())
    _perturb(plain, seed=9)
    with pytest.raises(ValueError, match="no reading view"), plain.active(reading=True):
        pass
    describer.save(tmp_path)
    describer.close()
    assert plain.generate(images, prompt, read=True) == plain.generate(images, prompt)
    plain.close()
    loaded = SceneDescriber.load(tmp_path, model.encoder)
    assert loaded.cfg.reading_crop == (64, 96)
    assert [a.text for a in loaded.generate_scored(images, prompt, 5, read=True)] == [
        a.text for a in reread
    ]
    loaded.close()


def _visuals(seed: int = 0):
    """Two still images of different sizes and a four-frame clip (timestamps 0-1.5 s)."""
    from grasp_semantics.models.visual_prompts import Visual

    rng = np.random.default_rng(seed)
    a = Visual(rng.integers(0, 256, (1, 96, 128, 3), dtype=np.uint8), "a.png")
    b = Visual(rng.integers(0, 256, (1, 150, 100, 3), dtype=np.uint8), "b.png")
    clip = Visual(
        rng.integers(0, 256, (4, 64, 80, 3), dtype=np.uint8),
        "clip.mp4",
        video=True,
        timestamps=(0.0, 0.5, 1.0, 1.5),
    )
    return a, b, clip


@pytest.mark.slow
@pytest.mark.parametrize("name", ["debug_qwen3_vl", "debug_qwen2_5_vl"])
def test_several_images_and_a_clip_in_one_message_generate_as_transformers_does(name, tmp_path):
    """Images at their own sizes and a video clip in one chat turn: the describer's greedy
    answer and confidence equal transformers' ``generate`` on the same inputs, the prompt
    holds each image's tokens in its own slot and, for Qwen3-VL, one timestamp per temporal
    patch."""
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen3VLForConditionalGeneration

    from grasp_semantics.models.semantics_qwen import (
        _TOKEN_KEYS,
        QwenSemanticsEncoder,
        _hf_config,
    )
    from grasp_semantics.models.tokenizer import load_tokenizer
    from grasp_semantics.models.visual_prompts import native_inputs, native_size

    torch.manual_seed(0)
    cfg = get_config(name).encoder
    hf_cfg = _hf_config(cfg.backbone, {k: SPECIAL_IDS[v] for k, v in _TOKEN_KEYS.items()})
    qwen3 = "qwen3" in name
    full = (Qwen3VLForConditionalGeneration if qwen3 else Qwen2_5_VLForConditionalGeneration)(
        hf_cfg
    ).eval()
    with torch.no_grad():  # an answer that is not the input echoed back by the tied head
        full.lm_head.weight.copy_(torch.randn(full.lm_head.weight.shape) * 0.05)
    hf_cfg.tie_word_embeddings = hf_cfg.text_config.tie_word_embeddings = False
    full.config.tie_word_embeddings = full.config.text_config.tie_word_embeddings = False
    full.save_pretrained(tmp_path)
    load_tokenizer(None).save_pretrained(tmp_path)
    cfg.backbone.checkpoint = str(tmp_path)
    encoder = QwenSemanticsEncoder(cfg).eval()
    describer = SceneDescriber(encoder, DescribeConfig(lora_targets=()))
    visuals = _visuals()
    prompt = "What happens in these?"
    ours = describer.generate_visual(visuals, prompt, max_new_tokens=6)
    ids, pixels, seconds = native_inputs(describer.encoder, visuals, prompt, None)
    unit = cfg.backbone.patch_size * cfg.backbone.merge_size
    sizes = [native_size(describer.encoder, *v.frames.shape[1:3], v.video) for v in visuals]
    assert sizes[0] == (96, 128) if unit == 32 else True  # already on the grid: kept
    tokens = [h * w // unit**2 for h, w in sizes]
    text = encoder.tokenizer.decode(ids)
    assert ids.count(encoder.image_token_id) == tokens[0] + tokens[1]
    assert ids.count(SPECIAL_IDS["<|video_pad|>"]) == 2 * tokens[2]  # two temporal patches
    if qwen3:
        assert "<0.2 seconds><|vision_start|>" in text and "<1.2 seconds><|vision_start|>" in text
    else:
        torch.testing.assert_close(seconds, torch.tensor([1.0]))  # 2 frames a patch at 2 fps
    ids_t = torch.tensor([ids])
    inputs = {
        "input_ids": ids_t,
        "attention_mask": torch.ones_like(ids_t),
        "mm_token_type_ids": (ids_t == encoder.image_token_id).int()
        + 2 * (ids_t == SPECIAL_IDS["<|video_pad|>"]).int(),
        **pixels,
    }
    if seconds is not None:
        inputs["second_per_grid_ts"] = seconds
    eos = [SPECIAL_IDS["<|im_end|>"], SPECIAL_IDS["<|endoftext|>"]]
    with torch.no_grad():
        ref = full.generate(
            **inputs,
            max_new_tokens=6,
            do_sample=False,
            eos_token_id=eos,
            output_scores=True,
            return_dict_in_generate=True,
        )
    new = ref.sequences[0, ids_t.shape[1] :]
    expected = encoder.tokenizer.decode(new, skip_special_tokens=True).strip()
    assert ours.text == expected and expected
    probs = [torch.softmax(s[0].float(), -1)[t] for s, t in zip(ref.scores, new, strict=True)]
    assert ours.confidence == pytest.approx(float(torch.stack(probs).log().mean().exp()), rel=1e-3)


def test_the_tiny_head_takes_several_images_as_views_and_refuses_video():
    torch.manual_seed(0)
    model = GraspNet("tiny").eval()
    describer = SceneDescriber(model.encoder, vocab_texts=corpus())
    _perturb(describer, seed=2)
    a, b, clip = _visuals()
    prompt = "Describe this image."
    one = describer.generate_visual([a], prompt, max_new_tokens=5)
    assert one == describer.generate_scored(a.frames, [prompt], max_new_tokens=5)[0]  # the node's
    c = type(b)(255 - b.frames, "c.png")
    with_b = describer.generate_visual([a, b], prompt, max_new_tokens=5)
    with_c = describer.generate_visual([a, c], prompt, max_new_tokens=5)
    assert with_b.confidence != pytest.approx(with_c.confidence)  # the second image is seen
    with pytest.raises(ValueError, match="does not take video"):
        describer.generate_visual([clip], prompt)
    reader = _reading_describer(model)
    with pytest.raises(ValueError, match="one image at a time"):
        reader.generate_visual([a, b], task_prompt("ocr"), read=True)
    reader.close()


def test_video_patches_pair_consecutive_frames_in_the_image_layout():
    from grasp_semantics.models.semantics_qwen import patchify, patchify_frames

    x = torch.randn(1, 3, 64, 96)
    y = torch.randn(1, 3, 64, 96)
    torch.testing.assert_close(patchify_frames(torch.cat([x, x]), 16, 2), patchify(x, 16, 2))
    pair = patchify_frames(torch.cat([x, y]), 16, 2).view(-1, 3, 2, 16, 16)
    torch.testing.assert_close(pair[:, :, 0], patchify(x, 16, 2).view(-1, 3, 2, 16, 16)[:, :, 0])
    torch.testing.assert_close(pair[:, :, 1], patchify(y, 16, 2).view(-1, 3, 2, 16, 16)[:, :, 1])
    with pytest.raises(ValueError, match="even number"):
        patchify_frames(torch.cat([x, y, x]), 16, 2)


@pytest.mark.parametrize("arch", ["qwen3_vl", "qwen2_5_vl"])
def test_several_images_are_prompted_as_the_transformers_processor_prompts_them(arch):
    """Two images of other sizes in one message: the same ids, patch grids and pixel values as
    transformers' Qwen-VL processor gives for the same images (already at the sizes chosen)."""
    from PIL import Image

    from grasp_semantics.models.tokenizer import build_processor
    from grasp_semantics.models.visual_prompts import Visual, native_inputs, native_size

    name = f"debug_{arch}"
    model = GraspNet(name).eval()
    describer = SceneDescriber(model.encoder, DescribeConfig(lora_targets=()))
    a, b, _ = _visuals(seed=3)
    sized = []
    for visual in (a, b):
        h, w = native_size(describer.encoder, *visual.frames.shape[1:3])
        sized.append(np.asarray(Image.fromarray(visual.frames[0]).resize((w, h))))
    prompt = "Which one is brighter?"
    ids, pixels, _ = native_inputs(
        describer.encoder, [Visual(x[None], "x") for x in sized], prompt, None
    )
    bcfg = model.cfg.encoder.backbone
    processor = build_processor(arch, bcfg.patch_size, bcfg.merge_size)
    content = [{"type": "image"}, {"type": "image"}, {"type": "text", "text": prompt}]
    text = processor.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    ref = processor(text=[text], images=[Image.fromarray(x) for x in sized], return_tensors="pt")
    assert ref["input_ids"][0].tolist() == ids
    assert torch.equal(ref["image_grid_thw"], pixels["image_grid_thw"])
    torch.testing.assert_close(ref["pixel_values"], pixels["pixel_values"], rtol=0, atol=1e-5)
    # the originals, resized by the describer, come to the same grids
    _, own, _ = native_inputs(describer.encoder, [a, b], prompt, None)
    assert torch.equal(own["image_grid_thw"], pixels["image_grid_thw"])
