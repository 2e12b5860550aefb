"""The object builders: every category yields its parts, and appearance carries no part
identity (colours and shine are drawn per part from one shared palette)."""

import numpy as np
import pytest

from grasp_semantics.data.objects import (
    CATEGORIES,
    CATEGORY_PARTS,
    N_INSTANCES,
    PALETTE,
    SHINE_RANGE,
    make_object,
    part_areas,
)
from grasp_semantics.data.scene import SceneConfig, generate_scene


@pytest.mark.parametrize("category", CATEGORIES)
def test_builder_yields_exactly_its_parts(category):
    n_parts = len(CATEGORY_PARTS[category])
    for index in range(N_INSTANCES):
        m = make_object(category, index).mesh
        assert set(np.unique(m.part).tolist()) == set(range(n_parts)), (category, index)
        assert m.triangles.min() >= 0 and m.triangles.max() < len(m.vertices)
        assert len(m.part) == len(m.colour) == len(m.shine) == len(m.triangles)
        # every part is one colour and one shine, from the palette's range
        for p in range(n_parts):
            assert np.ptp(m.colour[m.part == p], axis=0).max() == 0
            assert SHINE_RANGE[0] <= m.shine[m.part == p][0] <= SHINE_RANGE[1]


def test_colour_name_is_the_largest_parts_colour():
    names = list(PALETTE)
    ref = np.array([PALETTE[n] for n in names])
    for category in CATEGORIES:
        for index in range(4):
            obj = make_object(category, index)
            big = int(np.argmax(part_areas(obj.mesh, len(obj.part_names))))
            colour = obj.mesh.colour[obj.mesh.part == big][0]
            assert names[int(np.argmin(((ref - colour) ** 2).sum(axis=1)))] == obj.colour_name


def test_instances_differ_in_shape():
    for category in CATEGORIES:
        shapes = [make_object(category, i) for i in range(6)]
        sizes = {(round(m.height, 5), *np.round(m.half_extent, 5)) for m in shapes}
        assert len(sizes) == 6, category


def _colour_points(seeds) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """RGB (0..1) of the object points of train-split scenes, their part index and their
    object's instance id."""
    cfg = SceneConfig(max_points=6000)
    rgb, part, inst = [], [], []
    for seed in seeds:
        s = generate_scene(seed, "train", cfg)
        on = s.point_object >= 0
        px = s.pixels[on]
        rgb.append(s.rgb[px[:, 1], px[:, 0]].astype(np.float64) / 255)
        part.append(s.point_part[on].astype(int))
        inst.append(np.array([s.objects[i].instance_id for i in s.point_object[on]]))
    return np.concatenate(rgb), np.concatenate(part), np.concatenate(inst)


def test_point_colour_does_not_tell_the_part():
    """A colour-histogram classifier of the part index, fitted on the object points of some
    scenes, is no better on other instances in other scenes than always naming the most
    frequent part index."""
    rgb_a, part_a, inst_a = _colour_points(range(10))
    bins = 6

    def cell(rgb):
        q = np.clip((rgb * bins).astype(int), 0, bins - 1)
        return (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]

    counts = np.zeros((bins**3, part_a.max() + 1))
    np.add.at(counts, (cell(rgb_a), part_a), 1)
    majority = int(np.argmax(np.bincount(part_a)))
    predict_of_cell = np.where(counts.sum(axis=1) > 0, counts.argmax(axis=1), majority)

    rgb_b, part_b, inst_b = _colour_points(range(1000, 1010))
    unseen = ~np.isin(inst_b, np.unique(inst_a))  # an instance's colours are fixed
    rgb_b, part_b = rgb_b[unseen], part_b[unseen]
    assert len(part_b) > 1000 and len(np.unique(part_b)) >= 2
    accuracy = float(np.mean(predict_of_cell[cell(rgb_b)] == part_b))
    prior = float(np.bincount(part_b).max() / len(part_b))
    assert accuracy <= prior + 0.05, (accuracy, prior)
