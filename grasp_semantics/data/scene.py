"""Scene generation: a table, 1-5 objects, an RGB-D camera, labels, an instruction and
ground-truth grasps, all deterministic from ``(seed, split)``.

World frame: table top is z=0, z up. Every array a ``Scene`` exposes is in the CAMERA OPTICAL
frame (x right, y down, z forward), the frame of the cloud an RGB-D camera publishes.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from grasp_semantics.data import references
from grasp_semantics.data.catalogue import Catalogue
from grasp_semantics.data.grasps import GraspCheck, GraspWorld, check_grasps, sample_grasps
from grasp_semantics.data.mesh import Mesh, box, pose, rot_z, transform_points
from grasp_semantics.data.objects import ObjectModel
from grasp_semantics.data.render import (
    CameraConfig,
    SensorNoise,
    backproject,
    cast_image,
    look_at,
    make_raycaster,
    sample_intrinsics,
    sensor_depth,
    shade,
)
from grasp_semantics.data.splits import split_pools
from grasp_semantics.models.config import GripperConfig

TABLE_ID = -1  # object index of the table in labels
BACKGROUND_ID = -2  # object index of the floor (pixel masks only; cropped from the cloud)


@dataclass(frozen=True)
class SceneConfig:
    """Knobs of the generator (defaults are the data set's)."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    noise: SensorNoise = field(default_factory=SensorNoise)
    gripper: GripperConfig = field(default_factory=GripperConfig)
    min_objects: int = 1
    max_objects: int = 5
    # with this probability a scene of two or more objects holds one more of the target's
    # category (a same-category distractor); the other extras are of any category
    distractor_prob: float = 0.55
    place_radius: float = 0.25  # m, object centres within this of the table centre
    gap: float = 0.03  # m, minimum free space between object footprints
    camera_distance: tuple[float, float] = (0.55, 0.9)  # m
    camera_elevation_deg: tuple[float, float] = (40.0, 80.0)
    workspace_radius: float = 0.35  # m, the cloud keeps the table top within this of its centre
    max_points: int | None = 40000  # uniform random subsample of the cropped cloud (None: all)
    n_grasps: int = 32
    min_grasps: int = 3
    min_target_pixels: int = 300
    min_part_pixels: int = 100  # visible pixels of the functional part


@dataclass
class ObjectInfo:
    category: str
    instance_id: str
    colour: str
    part_names: list[str]
    pose: list[list[float]]  # object->world 4x4


@dataclass
class Scene:
    """One labelled RGB-D scene; arrays in the camera optical frame. N points, G grasps."""

    seed: int
    split: str
    rgb: np.ndarray  # [H,W,3] uint8
    depth: np.ndarray  # [H,W] float32, m, 0 = no return (noise and dropout included)
    intrinsics: np.ndarray  # [3,3] float32
    world_to_camera: np.ndarray  # [4,4] float32
    points: np.ndarray  # [N,3] float32 camera frame, back-projected from ``depth``
    pixels: np.ndarray  # [N,2] int32 (u=column, v=row) of each point
    point_object: np.ndarray  # [N] int16 object index, -1 table
    point_part: np.ndarray  # [N] int16 part index within its object, -1 table
    point_contact: np.ndarray  # [N] uint8, 1 on the target's functional part
    mask_object: np.ndarray  # [H,W] int16 object index per pixel (-1 table, -2 background)
    mask_part: np.ndarray  # [H,W] int16 part index per pixel (-1 none)
    instruction: str
    task: str
    paraphrase_id: str  # "<task>/<template index>"
    reference: str  # the phrase naming the target in the instruction ("the red mug")
    target: int  # object index of the target
    functional_part: int  # part index (within the target) the task grasps
    objects: list[ObjectInfo]
    grasps: np.ndarray  # [G,4,4] float32 gripper poses (gripper.py convention), best first
    grasp_widths: np.ndarray  # [G] float32, m
    grasp_contacts: np.ndarray  # [G,2,3] float32 finger contacts
    grasp_scores: np.ndarray  # [G] float32 friction-cone margin in 0..1
    mesh_vertices: np.ndarray  # [V,3] float32 object meshes in the camera frame
    mesh_triangles: np.ndarray  # [T,3] int32
    mesh_object: np.ndarray  # [T] int16 object index per triangle
    mesh_part: np.ndarray  # [T] int16 part index per triangle
    table_plane: np.ndarray  # [4] float32 (n, d), n . x + d = 0 on the table top, n up
    _world: GraspWorld | None = field(default=None, repr=False, compare=False)

    def grasp_world(self) -> GraspWorld:
        """The geometry grasps are checked against (see ``grasps.check_grasps``)."""
        if self._world is None:
            self._world = GraspWorld(
                self.mesh_vertices.astype(np.float64),
                self.mesh_triangles,
                self.mesh_object,
                self.mesh_part,
                self.table_plane.astype(np.float64),
            )
        return self._world

    def check_grasps(self, poses: np.ndarray, widths: np.ndarray, mu: float = 0.5) -> GraspCheck:
        """Score grasps ``poses`` [G,4,4] / ``widths`` [G] (camera frame) for this scene's task:
        fingers close on the target's functional part, antipodal within ``mu``, width within
        the gripper, no collision (``GraspCheck.success`` [G], best-ranked first)."""
        return check_grasps(
            self.grasp_world(), poses, widths, self.target, self.functional_part, mu=mu
        )

    def to_dict(self) -> dict:
        """Flat dict of numpy arrays and scalars (``objects`` as a JSON string)."""
        out = {}
        for k, v in self.__dict__.items():
            if k == "_world":
                continue
            out[k] = json.dumps([asdict(o) for o in v]) if k == "objects" else v
        return out

    @staticmethod
    def from_dict(d: dict) -> Scene:
        kw = {}
        for k in Scene.__dataclass_fields__:
            if k == "_world":
                continue
            v = d[k]
            if isinstance(v, np.ndarray) and v.ndim == 0:
                v = v.item()
            if k == "objects":
                v = [ObjectInfo(**o) for o in json.loads(v)]
            kw[k] = v
        return Scene(**kw)


def _footprint(obj: ObjectModel, t: np.ndarray, gap: float) -> np.ndarray:
    """Corners ``[4,2]`` of the object's world footprint grown by gap/2."""
    hx, hy = obj.half_extent + gap / 2
    c = np.array([[-hx, -hy, 0], [hx, -hy, 0], [hx, hy, 0], [-hx, hy, 0]])
    return transform_points(t, c)[:, :2]


def _overlap(a: np.ndarray, b: np.ndarray) -> bool:
    """Separating-axis test for two convex quads ``[4,2]``."""
    for poly in (a, b):
        for i in range(4):
            e = poly[(i + 1) % 4] - poly[i]
            axis = np.array([-e[1], e[0]])
            pa, pb = a @ axis, b @ axis
            if pa.max() < pb.min() or pb.max() < pa.min():
                return False
    return True


def _place(models: list[ObjectModel], rng, cfg: SceneConfig) -> list[np.ndarray]:
    """Object->world poses; objects that cannot be placed are dropped (the first never is)."""
    poses: list[np.ndarray] = []
    feet: list[np.ndarray] = []
    for i, m in enumerate(models):
        for _ in range(30 if i else 1):
            r = cfg.place_radius * np.sqrt(rng.random()) * (1 if i else 0.5)
            a = rng.uniform(0, 2 * np.pi)
            t = pose(rot_z(rng.uniform(0, 2 * np.pi)), (r * np.cos(a), r * np.sin(a), 0))
            f = _footprint(m, t, cfg.gap)
            if not any(_overlap(f, g) for g in feet):
                poses.append(t)
                feet.append(f)
                break
        else:
            poses.append(None)
    return poses


def _table_and_floor(rng) -> Mesh:
    m = Mesh.empty()
    tones = [(0.72, 0.55, 0.38), (0.8, 0.78, 0.74), (0.55, 0.4, 0.28), (0.62, 0.64, 0.66)]
    tone = np.asarray(tones[rng.integers(len(tones))]) * rng.uniform(0.9, 1.1)
    m.add(box((1.2, 0.9, 0.03)), 0, np.clip(tone, 0, 1), 0.05, pose(None, (0, 0, -0.015)))
    m.add(box((6, 6, 0.01)), 1, (0.3, 0.3, 0.33), 0.0, pose(None, (0, 0, -0.755)))
    return m


def _choose_target(pools, rng):
    cats = sorted({c for _, c in pools.pairs})
    cat = cats[rng.integers(len(cats))]
    tasks = [t for t, c in pools.pairs if c == cat]
    task = tasks[rng.integers(len(tasks))]
    return task, cat


def generate_scene(
    seed: int,
    split: str = "train",
    config: SceneConfig | None = None,
    catalogue: Catalogue | None = None,
) -> Scene:
    """The scene of ``seed`` in ``split`` (same seed and split -> identical arrays), its objects
    from ``catalogue`` (default: the procedural world; ``catalogue.catalogue(folder)``)."""
    cfg = config or SceneConfig()
    pools = split_pools(split) if catalogue is None else split_pools(split, catalogue)
    rng = np.random.default_rng([seed, zlib.crc32(split.encode())])
    for _ in range(50):
        scene = _attempt(seed, split, pools, rng, cfg)
        if scene is not None:
            return scene
    raise RuntimeError(f"could not generate a valid scene for seed {seed} in split {split}")


def _choose_objects(pools, rng, cfg: SceneConfig):
    """The task, the target's category, and the objects placed on the table (models, their
    poses on the table, the target's index: in random order, so it need not be object 0)."""
    task, cat = _choose_target(pools, rng)
    make_object = pools.catalogue.make_object
    inst = pools.instances[cat]
    models = [make_object(cat, inst[rng.integers(len(inst))])]
    n_extra = rng.integers(cfg.min_objects, cfg.max_objects + 1) - 1
    cats = tuple(pools.instances)  # the split's categories, in CATEGORIES order
    twin = n_extra > 0 and rng.random() < cfg.distractor_prob
    for j in range(n_extra):
        c = cat if twin and j == 0 else cats[rng.integers(len(cats))]
        ids = pools.instances[c]
        models.append(make_object(c, ids[rng.integers(len(ids))]))
    placed = _place(models, rng, cfg)
    models = [m for m, p in zip(models, placed, strict=True) if p is not None]
    placed = [p for p in placed if p is not None]
    order = rng.permutation(len(models))
    models = [models[i] for i in order]
    placed = [placed[i] for i in order]
    target = int(np.nonzero(order == 0)[0][0])
    return task, cat, models, placed, target


def _camera(rng, cfg: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """A camera looking at the table's centre: world-to-camera [4, 4] and intrinsics K."""
    dist = rng.uniform(*cfg.camera_distance)
    elev = np.deg2rad(rng.uniform(*cfg.camera_elevation_deg))
    azim = rng.uniform(0, 2 * np.pi)
    look = np.array([*rng.uniform(-0.05, 0.05, 2), 0.03])
    eye = look + dist * np.array(
        [np.cos(elev) * np.cos(azim), np.cos(elev) * np.sin(azim), np.sin(elev)]
    )
    t_wc = look_at(eye, look, roll=rng.normal(0, 0.03))
    return t_wc, sample_intrinsics(rng, cfg.camera)


@dataclass
class _Geometry:
    """Objects, table and floor in the camera frame, with each triangle's labels."""

    objs: Mesh  # the objects' triangles first
    owner: np.ndarray  # [T_obj] object index of each object triangle
    everything: Mesh  # objects, then table and floor
    tri_object: np.ndarray  # [T] object index (TABLE_ID, BACKGROUND_ID) of every triangle
    tri_part: np.ndarray  # [T] part index (-1 off the objects)
    table_plane: np.ndarray  # [4] (normal, offset) of the table top

    def labels(self, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Object and part index of each ray's triangle ``tri`` (-1: no hit)."""
        obj = np.where(tri >= 0, self.tri_object[np.maximum(tri, 0)], BACKGROUND_ID)
        part = np.where(tri >= 0, self.tri_part[np.maximum(tri, 0)], -1)
        return obj, part


def _geometry(models, placed, t_wc: np.ndarray, rng) -> _Geometry:
    obj_meshes = [m.mesh.transformed(t_wc @ p) for m, p in zip(models, placed, strict=True)]
    objs, owner = Mesh.concat(obj_meshes)
    env = _table_and_floor(rng).transformed(t_wc)
    everything, _ = Mesh.concat([objs, env])
    tri_object = np.concatenate([owner, np.where(env.part == 0, TABLE_ID, BACKGROUND_ID)])
    tri_part = np.concatenate([objs.part, np.full(len(env.part), -1, np.int16)])
    up = t_wc[:3, :3] @ np.array([0, 0, 1.0])
    table_plane = np.r_[up, -up @ t_wc[:3, 3]]
    return _Geometry(objs, owner, everything, tri_object, tri_part, table_plane)


def _target_in_view(
    rc, geo: _Geometry, k: np.ndarray, target: int, fp: int, cfg: SceneConfig
) -> bool:
    """Whether the target and its functional part cover enough pixels, told cheaply by a
    quarter-resolution cast."""
    k_low = k.copy()
    k_low[:2] /= 4
    k_low[:2, 2] -= 3 / 8  # pixel centres of a 4x downsampled image
    tri = cast_image(rc, k_low, cfg.camera.width // 4, cfg.camera.height // 4).triangle
    obj, part = geo.labels(tri)
    on = obj == target
    return (
        on.sum() * 4**2 >= cfg.min_target_pixels
        and (on & (part == fp)).sum() * 4**2 >= cfg.min_part_pixels
    )


def _refer(
    models, placed, t_wc: np.ndarray, k: np.ndarray, target: int, task: str, pools, rng
) -> tuple[str, str] | None:
    """How the instruction names the target among the others, and its paraphrase; None when
    the target cannot be told apart."""
    centres = np.array(
        [
            transform_points(t_wc, p[:3, 3] + [0, 0, m.height / 2])
            for m, p in zip(models, placed, strict=True)
        ]
    )
    u = k[0, 0] * centres[:, 0] / centres[:, 2] + k[0, 2]
    ref = references.refer(
        [m.category for m in models],
        [m.colour_name for m in models],
        u,
        np.linalg.norm(centres, axis=1),
        target,
        rng,
        sizes=np.array([max(m.height, 2 * m.half_extent.max()) for m in models]),
        heights=np.array([m.height for m in models]),
        centres=centres,
        nouns=pools.catalogue.nouns,
    )
    if ref is None:
        return None
    paras = pools.paraphrases[task]
    return ref, paras[rng.integers(len(paras))]


def _render(
    rc,
    geo: _Geometry,
    t_wc: np.ndarray,
    k: np.ndarray,
    target: int,
    fp: int,
    rng,
    cfg: SceneConfig,
):
    """The camera's full-resolution cast, object and part masks, and the shaded image (one
    light, wood grain on the table); None when the target or its part is too small."""
    light = np.array([*rng.normal(0, 0.4, 2), 1.0])
    light = t_wc[:3, :3] @ (light / np.linalg.norm(light))
    t_cw = np.linalg.inv(t_wc)
    grain = rng.uniform(60, 140)
    n_obj_tris = len(geo.objs.triangles)

    def texture(pts, tri):
        gain = np.ones(len(tri), np.float32)
        on = tri >= n_obj_tris  # table and floor: wood grain in world x, y
        p = pts[on]
        wx = p @ t_cw[0, :3].astype(np.float32) + np.float32(t_cw[0, 3])
        wy = p @ t_cw[1, :3].astype(np.float32) + np.float32(t_cw[1, 3])
        gain[on] = 1 + 0.035 * np.sin(np.float32(grain) * wx + 3 * np.sin(7 * wy))
        return gain

    img = cast_image(rc, k, cfg.camera.width, cfg.camera.height)
    mask_object, mask_part = (m.astype(np.int16) for m in geo.labels(img.triangle))
    target_px = mask_object == target
    if (
        target_px.sum() < cfg.min_target_pixels
        or (target_px & (mask_part == fp)).sum() < cfg.min_part_pixels
    ):
        return None
    everything = geo.everything
    rgb = shade(rc, img, k, everything.colour, everything.shine, light, rng, cfg.noise, texture)
    return img, mask_object, mask_part, rgb


def _sensor_cloud(
    img, k: np.ndarray, t_wc: np.ndarray, mask_object: np.ndarray, rng, cfg: SceneConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sensor's depth image and the cloud of the table top: points [P, 3] in the camera
    frame and their pixels [P, 2] (uniformly thinned to ``max_points``)."""
    depth = sensor_depth(img.depth, img.normal, k, rng, cfg.noise)
    points, pixels = backproject(depth, k, mask_object >= TABLE_ID)
    wp = transform_points(np.linalg.inv(t_wc), points.astype(np.float64))
    inside = (np.hypot(wp[:, 0], wp[:, 1]) <= cfg.workspace_radius) & (wp[:, 2] > -0.02)
    points, pixels = points[inside], pixels[inside]
    if cfg.max_points is not None and len(points) > cfg.max_points:
        idx = np.sort(rng.choice(len(points), cfg.max_points, replace=False))
        points, pixels = points[idx], pixels[idx]  # points == pixels_to_points(depth, pixels, k)
    return depth, points, pixels


def _attempt(seed, split, pools, rng, cfg: SceneConfig) -> Scene | None:
    """One try at the scene: None when a draw fails (target out of view or not nameable, too
    few grasps); the caller draws again from where ``rng`` stands."""
    task, cat, models, placed, target = _choose_objects(pools, rng, cfg)
    t_wc, k = _camera(rng, cfg)
    geo = _geometry(models, placed, t_wc, rng)
    rc = make_raycaster(geo.everything.vertices, geo.everything.triangles)
    fp = pools.catalogue.task_part(task, cat)
    if not _target_in_view(rc, geo, k, target, fp, cfg):
        return None
    named = _refer(models, placed, t_wc, k, target, task, pools, rng)
    if named is None:
        return None
    ref, para = named
    objs, owner = geo.objs, geo.owner
    world = GraspWorld(objs.vertices, objs.triangles, owner, objs.part, geo.table_plane)
    gs = sample_grasps(world, target, fp, rng, cfg.gripper, n_grasps=cfg.n_grasps)
    if len(gs.widths) < cfg.min_grasps:
        return None
    rendered = _render(rc, geo, t_wc, k, target, fp, rng, cfg)
    if rendered is None:
        return None
    img, mask_object, mask_part, rgb = rendered
    depth, points, pixels = _sensor_cloud(img, k, t_wc, mask_object, rng, cfg)
    p_obj = mask_object[pixels[:, 1], pixels[:, 0]]
    p_part = mask_part[pixels[:, 1], pixels[:, 0]]
    contact = ((p_obj == target) & (p_part == fp)).astype(np.uint8)

    infos = [
        ObjectInfo(
            category=m.category,
            instance_id=m.instance_id,
            colour=m.colour_name,
            part_names=list(m.part_names),
            pose=np.round(p, 6).tolist(),
        )
        for m, p in zip(models, placed, strict=True)
    ]
    return Scene(
        seed=int(seed),
        split=split,
        rgb=rgb,
        depth=depth,
        intrinsics=k,
        world_to_camera=t_wc.astype(np.float32),
        points=points,
        pixels=pixels,
        point_object=p_obj.astype(np.int16),
        point_part=p_part.astype(np.int16),
        point_contact=contact,
        mask_object=mask_object,
        mask_part=mask_part,
        instruction=pools.catalogue.instruction(para, ref),
        task=task,
        paraphrase_id=para,
        reference=ref,
        target=target,
        functional_part=fp,
        objects=infos,
        grasps=gs.poses.astype(np.float32),
        grasp_widths=gs.widths.astype(np.float32),
        grasp_contacts=gs.contacts.astype(np.float32),
        grasp_scores=gs.scores.astype(np.float32),
        mesh_vertices=objs.vertices.astype(np.float32),
        mesh_triangles=objs.triangles.astype(np.int32),
        mesh_object=owner.astype(np.int16),
        mesh_part=objs.part.astype(np.int16),
        table_plane=geo.table_plane.astype(np.float32),
    )
