"""Training the describe head's reading view (OCR), a part of ``train-describe``.

Reading a label takes two things the scene view lacks: finding it, and pixels enough to tell
its glyphs apart (at the describe input size a digit is a fraction of one patch). So OCR goes
through a *reading view* (``DescribeConfig.reading_crop``): a locator on the scene tokens
points at the label, and a full-resolution crop there, magnified, is read by vision adapters
and language-model adapters of its own. Three pieces train it:

- the **locator** (a small MLP over the scene's visual tokens: which token holds the label's
  centre, and its offset within the token) is fitted last, on the scene tokens as training
  left them (:func:`locator_loss`, :func:`fit_locator`): trained beside the alignment phase,
  its loss would pull the vision adapters away from categories and colours;
- the **glyph phase** teaches the reading adapters which label word or digit each token of a
  magnified crop shows, with a linear read-out that is then dropped, on stickers printed into
  random windows of the training images at random sizes (:func:`train_glyphs`);
- the question-answering phase then asks for the label on reading views
  (:func:`reading_batch`): crops around the training scenes' own labels (moved by up to
  ``jitter`` of a token, as the locator misses), crops with a printed sticker of any (word,
  digit) pair, and crops without text ("no text"). The stickers print every pair because
  a head that sees only the training scenes' pairs learns which digits follow which word and
  writes a training pair's digit on held-out labels (docs/scene_questions.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from grasp_semantics.data.questions import (
    LABEL_DIGITS,
    LABEL_WORDS,
    NO_TEXT,
    Sticker,
    sticker_crop,
)
from grasp_semantics.models.scene_describer import SceneDescriber


@dataclass
class DescribeReadConfig:
    """The reading view's training (``glyph_steps`` 0 and ``ocr_views_per_step`` 0: none)."""

    glyph_steps: int = 0
    glyph_lr: float = 3e-4
    crops_per_step: int = 8
    font_sizes: tuple[int, int] = (11, 28)  # the printer's range on the training scenes
    ocr_views_per_step: int = 0  # OCR items on reading views in each question-answering step
    jitter: float = 0.3  # of a scene token: how far off the label's centre training crops are
    locator_steps: int = 1000  # the locator's fit on the final scene tokens (full batch)
    locator_lr: float = 1e-2


# ---------------------------------------------------------------------------- the locator
def box_centres(boxes: np.ndarray) -> np.ndarray:
    """(row, col) centres [N, 2] of boxes [N, 4] (top, left, bottom, right)."""
    return (boxes[:, :2] + boxes[:, 2:]) / 2.0


def label_in_view(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Whether each sticker box [N, 4] lies whole in its reading window [N, 4]."""
    return (boxes[:, :2] >= windows[:, :2]).all(1) & (boxes[:, 2:] <= windows[:, 2:]).all(1)


def locator_targets(
    boxes: np.ndarray, image_shape: tuple[int, int], grid: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """For sticker boxes [N, 4] (top, left, bottom, right in pixels of images of
    ``image_shape``; negative: no label), the scene token [N] holding each box's centre (-1:
    none) and the centre's (row, col) offset [N, 2] from that token's centre, in tokens."""
    rows, cols = grid
    h, w = image_shape
    cell = box_centres(boxes) / np.array([h, w]) * np.array([rows, cols])  # in tokens
    index = np.clip(np.floor(cell), 0, np.array([rows - 1, cols - 1])).astype(np.int64)
    token = np.where(boxes[:, 0] >= 0, index[:, 0] * cols + index[:, 1], -1)
    offset = cell - index - 0.5
    return torch.from_numpy(token), torch.from_numpy(offset).float()


def locator_loss(scores: torch.Tensor, token: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the label's token among each image's tokens plus the L1 error of its
    offset, over the images that carry a label (``scores`` [B, T, 3] from
    ``SceneDescriber.locator_scores``; targets from :func:`locator_targets`)."""
    labelled = token >= 0
    if not bool(labelled.any()):
        return scores.sum() * 0.0
    scores, token, offset = scores[labelled], token[labelled], offset[labelled]
    picked = scores[torch.arange(len(token)), token, 1:]  # [N, 2]
    return F.cross_entropy(scores[..., 0], token) + F.l1_loss(picked, offset)


@torch.no_grad()
def located_fraction(describer: SceneDescriber, images: np.ndarray, boxes: np.ndarray) -> float:
    """Fraction of the labelled ones among full-size uint8 ``images`` [N, H, W, 3] whose whole
    sticker (``boxes`` [N, 4]) lies in the reading view the describer crops."""
    labelled = np.nonzero(boxes[:, 0] >= 0)[0]
    if not len(labelled):
        return float("nan")
    hits = 0
    for start in range(0, len(labelled), 16):
        chunk = labelled[start : start + 16]
        centres = describer.locate(torch.from_numpy(images[chunk]))
        windows = describer.reading_windows(centres, images.shape[1:3]).numpy()
        hits += int(label_in_view(windows, boxes[chunk]).sum())
    return hits / len(labelled)


def fit_locator(
    describer: SceneDescriber,
    images: torch.Tensor,
    token: torch.Tensor,
    offset: torch.Tensor,
    cfg: DescribeReadConfig,
) -> None:
    """Fit the locator alone (full batch) on the scene tokens of the labelled ones among
    model-size ``images`` [N, H, W, 3], the adapters as they ended training. (Stickers pasted
    anywhere on unlabelled scenes, as extra examples, made it worse on held-out scenes.)"""
    keep = torch.nonzero(token >= 0).squeeze(1)
    with torch.no_grad():
        tokens = torch.cat(
            [
                describer.visual_tokens(images[keep[s : s + 32]]).float()
                for s in range(0, len(keep), 32)
            ]
        )
    optimizer = torch.optim.Adam(describer.locator.parameters(), lr=cfg.locator_lr)
    for _ in range(cfg.locator_steps):
        loss = locator_loss(describer.locator(tokens), token[keep], offset[keep])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


# ---------------------------------------------------------------------------- glyphs
def glyph_classes(text: str) -> tuple[int, int]:
    """(word class 1..8, digit class 1..9) of a label text."""
    word, digit = text.split(" ")
    return 1 + LABEL_WORDS.index(word), 1 + LABEL_DIGITS.index(digit)


def glyph_labels(
    sticker: Sticker, text: str, crop: tuple[int, int], grid: tuple[int, int]
) -> np.ndarray:
    """Word and digit class [2, rows*cols] of each token of a reading view (``grid`` over a
    ``crop`` (H, W)) holding at least a quarter of that glyph's box; 0 elsewhere."""
    rows, cols = grid
    h, w = crop
    labels = np.zeros((2, rows * cols), dtype=np.int64)
    row_edges = np.arange(rows + 1) * h / rows
    col_edges = np.arange(cols + 1) * w / cols
    for k, (glyph, cls) in enumerate(zip(sticker.glyphs, glyph_classes(text), strict=True)):
        top, left, bottom, right = glyph
        dy = np.clip(np.minimum(row_edges[1:], bottom) - np.maximum(row_edges[:-1], top), 0, None)
        dx = np.clip(np.minimum(col_edges[1:], right) - np.maximum(col_edges[:-1], left), 0, None)
        share = (dy[:, None] * dx[None, :]).ravel() / max((bottom - top) * (right - left), 1)
        labels[k, share >= 0.25] = cls
    return labels


def glyph_batch(
    describer: SceneDescriber,
    images: np.ndarray,
    texts: tuple[str, ...],
    n: int,
    font_sizes: tuple[int, int],
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """``n`` reading-view crops [n, h, w, 3] of random full-size ``images`` (unlabelled ones:
    one sticker per crop) with a sticker of one of ``texts`` printed in, their glyph labels
    [n, 2, T] and texts."""
    crop = tuple(describer.cfg.reading_crop)
    grid = describer.encoder.token_grid(describer.reading_size)
    crops, labels, printed = [], [], []
    while len(crops) < n:
        text = texts[rng.integers(len(texts))]
        made = sticker_crop(images[rng.integers(len(images))], text, crop, font_sizes, rng)
        if made is None:
            continue
        crops.append(made[0])
        labels.append(glyph_labels(made[1], text, crop, grid))
        printed.append(text)
    return torch.from_numpy(np.stack(crops)), torch.from_numpy(np.stack(labels)), printed


def _glyph_loss(
    describer: SceneDescriber, readout: torch.nn.Linear, crops: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the word and digit over the tokens showing them, and the scores."""
    scores = readout(describer.visual_tokens(crops, reading=True).float())
    words, digits = scores[..., : len(LABEL_WORDS) + 1], scores[..., len(LABEL_WORDS) + 1 :]
    loss = scores.sum() * 0.0
    for part, truth in ((words, labels[:, 0]), (digits, labels[:, 1])):
        shown = truth > 0
        if bool(shown.any()):
            loss = loss + F.cross_entropy(part[shown], truth[shown])
    return loss, scores


@torch.no_grad()
def glyph_accuracy(
    describer: SceneDescriber, readout: torch.nn.Linear, crops: torch.Tensor, labels: torch.Tensor
) -> dict[str, float]:
    """Read-out accuracy of the word and of the digit over the tokens showing them."""
    _, scores = _glyph_loss(describer, readout, crops, labels)
    words, digits = scores[..., : len(LABEL_WORDS) + 1], scores[..., len(LABEL_WORDS) + 1 :]
    out = {}
    for name, part, truth in (("word", words, labels[:, 0]), ("digit", digits, labels[:, 1])):
        shown = truth > 0
        out[name] = round(float((part.argmax(-1) == truth)[shown].float().mean()), 4)
    return out


def train_glyphs(
    describer: SceneDescriber,
    images: np.ndarray,
    texts: tuple[str, ...],
    held_out: tuple[torch.Tensor, torch.Tensor],
    cfg: DescribeReadConfig,
    rng: np.random.Generator,
    log: Callable[[dict[str, Any]], None],
    log_every: int,
) -> dict[str, float]:
    """The glyph phase: the reading adapters (and a read-out, dropped after) learn the word
    and digit each token of crops from full-size ``images`` [N, H, W, 3] shows; returns the
    read-out's accuracy on ``held_out`` (crops, labels) with other texts."""
    readout = torch.nn.Linear(
        describer.encoder._hidden_size(), len(LABEL_WORDS) + len(LABEL_DIGITS) + 2
    )
    params = [*describer.reader.parameters(), *readout.parameters()]
    optimizer = torch.optim.AdamW(params, lr=cfg.glyph_lr, weight_decay=0.0)
    started = time.perf_counter()
    for step in range(1, cfg.glyph_steps + 1):
        crops, labels, _ = glyph_batch(
            describer, images, texts, cfg.crops_per_step, cfg.font_sizes, rng
        )
        loss, _ = _glyph_loss(describer, readout, crops, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % log_every == 0 or step == 1:
            row = {
                "phase": "glyphs",
                "step": step,
                "loss": round(float(loss.detach()), 4),
                "sec": round(time.perf_counter() - started, 1),
            }
            if step % (10 * log_every) == 0 or step == cfg.glyph_steps:
                row["held_out"] = glyph_accuracy(describer, readout, *held_out)
            log(row)
    return glyph_accuracy(describer, readout, *held_out)


# ---------------------------------------------------------------------------- OCR items
def reading_batch(
    describer: SceneDescriber,
    images: np.ndarray,
    boxes: np.ndarray,
    labels: list[str],
    texts: tuple[str, ...],
    n: int,
    cfg: DescribeReadConfig,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, list[str]]:
    """``n`` OCR training items on reading views of full-size ``images`` [N, H, W, 3] (whose
    labels read ``labels``, "" for none, printed in ``boxes`` [N, 4]), in turn: a crop around a
    scene's own label, off its centre by up to ``cfg.jitter`` of a scene token; a random
    window of an unlabelled scene with a sticker of one of ``texts`` printed in; a random window
    of an unlabelled scene; another sticker (the kinds the scenes allow). Returns the crops
    [n, h, w, 3] and the answers."""
    crop = tuple(describer.cfg.reading_crop)
    h, w = images.shape[1:3]
    rows, cols = describer.encoder.token_grid(describer.image_size)
    labelled = np.nonzero(boxes[:, 0] >= 0)[0]
    unlabelled = np.nonzero(boxes[:, 0] < 0)[0]
    pools = ((0, labelled), (1, unlabelled), (2, unlabelled), (1, unlabelled))
    kinds = [k for k, pool in pools if len(pool)]
    crops, answers = [], []
    while len(crops) < n:
        kind = kinds[len(crops) % len(kinds)]
        if kind == 0:
            i = labelled[rng.integers(len(labelled))]
            shift = rng.uniform(-cfg.jitter, cfg.jitter, 2) * np.array([h / rows, w / cols])
            centre = torch.from_numpy(box_centres(boxes[i : i + 1]) + shift)
            view = describer.reading_views(torch.from_numpy(images[i : i + 1]), centre)[0]
            crops.append(view.numpy())
            answers.append(labels[i])
        elif kind == 1:
            text = texts[rng.integers(len(texts))]
            image = images[unlabelled[rng.integers(len(unlabelled))]]
            made = sticker_crop(image, text, crop, cfg.font_sizes, rng)
            if made is not None:
                crops.append(made[0])
                answers.append(text)
        else:
            image = images[unlabelled[rng.integers(len(unlabelled))]]
            top, left = rng.integers(0, h - crop[0] + 1), rng.integers(0, w - crop[1] + 1)
            crops.append(image[top : top + crop[0], left : left + crop[1]])
            answers.append(NO_TEXT)
    return torch.from_numpy(np.stack(crops)), answers
