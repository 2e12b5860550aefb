"""Answers through the describer's backbone, decoded and learned: decoding token by token with
a KV cache, greedy or sampled at a temperature, each answer ending at its first end-of-turn
token, with its confidence (the geometric mean of the probabilities the head gave its tokens,
softmax at temperature 1 whatever ``temperature`` sampled them, so that a caller can tell a
reading from a guess); and the teacher-forced loss of given answers that trains the head."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from grasp_semantics.models.describe_config import ScoredAnswer
from grasp_semantics.models.semantics_qwen import as_image_batch
from grasp_semantics.models.tokenizer import SPECIAL_IDS

if TYPE_CHECKING:
    from grasp_semantics.models.scene_describer import SceneDescriber


def decode_answers(
    describer: SceneDescriber,
    inputs: dict[str, torch.Tensor],
    limit: int,
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
) -> list[ScoredAnswer]:
    """At most ``limit`` tokens after the prompt ``inputs`` (the backbone's inputs for
    left-padded prompts [B, L], visual tokens included), while the describer is active."""
    from transformers import DynamicCache

    backbone, stop_ids = describer.encoder.backbone, describer.stop_ids
    mask = inputs["attention_mask"]
    b, device = mask.shape[0], mask.device
    stops = torch.tensor(stop_ids, device=device)
    out_tokens = torch.zeros((b, 0), dtype=torch.long, device=device)
    done = torch.zeros(b, dtype=torch.bool, device=device)
    log_prob = torch.zeros(b, device=device)  # summed over each answer's tokens
    counted = torch.zeros(b, device=device)
    next_pos = inputs["position_ids"].amax(dim=(0, 2)) + 1  # [B] first answer position
    cache = DynamicCache()
    out = backbone(**inputs, past_key_values=cache, use_cache=True, return_dict=True)
    for step in range(limit):
        scores = describer.logits(out.last_hidden_state[:, -1])  # [B, V_out]
        if temperature > 0:
            probs = torch.softmax(scores.float() / temperature, dim=-1)
            index = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        else:
            index = scores.argmax(dim=-1)
        chosen = torch.log_softmax(scores.float(), dim=-1).gather(1, index[:, None])[:, 0]
        log_prob += torch.where(done, 0.0, chosen)
        counted += (~done).float()
        token = describer.token_ids(index)
        token = torch.where(done, torch.full_like(token, stop_ids[0]), token)
        out_tokens = torch.cat([out_tokens, token[:, None]], dim=1)
        done |= torch.isin(token, stops)
        if bool(done.all()) or step == limit - 1:
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        position = (next_pos + step).view(1, b, 1).expand(3, b, 1)
        out = backbone(
            input_ids=describer.input_rows(token[:, None]),
            attention_mask=mask,
            position_ids=position,
            past_key_values=cache,
            use_cache=True,
            return_dict=True,
        )
    confidence = torch.exp(log_prob / counted.clamp(min=1)).tolist()
    answers = []
    for row, p in zip(out_tokens.tolist(), confidence, strict=True):
        cut = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
        text = describer.encoder.tokenizer.decode(row[:cut], skip_special_tokens=True)
        answers.append(ScoredAnswer(text.strip(), float(p)))
    return answers


def answer_loss(
    describer: SceneDescriber,
    images: Any,
    prompts: Sequence[str],
    answers: Sequence[str],
    image_index: Sequence[int] | None = None,
    reading: bool = False,
) -> torch.Tensor:
    """Mean cross-entropy of the answer tokens (and the end-of-turn token) given images and
    prompts (teacher forcing).

    ``image_index[i]`` is the image (of uint8 ``images`` [N, (V,) H, W, 3]) of sequence ``i``
    (default: the i-th); ``reading``: the images are reading views (crops). The image part of
    the prompt comes first and is the same for every question, so it runs once per image; each
    question continues from its cache.
    """
    from transformers import DynamicCache

    images = as_image_batch(images)
    index = list(range(len(prompts))) if image_index is None else list(image_index)
    tok = describer.encoder.tokenizer
    views = images.shape[1]
    vision_end = SPECIAL_IDS["<|vision_end|>"]
    suffixes, starts, prefix = [], [], None
    for text, answer in zip(prompts, answers, strict=True):
        full = describer.prompt_ids(text, views, reading)
        cut = len(full) - full[::-1].index(vision_end)  # just after the last image
        if prefix is None:
            prefix = full[:cut]
        answer_ids = [*tok.encode(answer, add_special_tokens=False), describer.stop_ids[0]]
        unknown = [t for t in answer_ids if int(describer.head_index(torch.tensor(t))) < 0]
        if unknown:
            raise ValueError(f"answer {answer!r} has tokens the head cannot emit: {unknown}")
        starts.append(len(full) - cut)
        suffixes.append(full[cut:] + answer_ids)
    pre_ids, pre_mask = describer.batch([prefix] * len(images), left=False)
    ids, mask = describer.batch(suffixes, left=False)
    targets = torch.full_like(ids, -100)
    for i, (seq, start) in enumerate(zip(suffixes, starts, strict=True)):
        targets[i, start - 1 : len(seq) - 1] = describer.head_index(ids[i, start : len(seq)])
    pixels = describer.encoder.pixel_inputs(images, describer.view_size(reading))
    model = describer.encoder.backbone
    with describer.active(reading):
        cache = DynamicCache()
        inputs = describer.backbone_inputs(pixels["image_grid_thw"], pre_ids, pre_mask)
        model(**{**inputs, **pixels}, past_key_values=cache, use_cache=True, return_dict=True)
        cache.batch_select_indices(torch.tensor(index, device=ids.device))
        first = inputs["position_ids"].amax() + 1  # the prefix is the same for every image
        positions = (first + torch.arange(ids.shape[1], device=ids.device)).expand(
            3, len(index), -1
        )
        out = model(
            input_ids=describer.input_rows(ids),
            attention_mask=torch.cat([pre_mask[:1].expand(len(index), -1), mask], dim=1),
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            return_dict=True,
        )
    keep = targets >= 0
    return F.cross_entropy(describer.logits(out.last_hidden_state[keep]).float(), targets[keep])
