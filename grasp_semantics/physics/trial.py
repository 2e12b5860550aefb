"""One grasp tried in MuJoCo: a scene's objects on its table, a floating parallel-jaw gripper.

The scene is rebuilt in the world frame of the generator (table top at z=0, z up) from its own
objects: each object's convex pieces (``shapes.object_pieces``) as mesh geoms of one free body,
with the density of its part's material (``MATERIALS``) and its colour; only the target is
free to move, the others are fixed obstacles (``TrialConfig.fixed_others``). The gripper has the
package's geometry (``gripper.GripperConfig``: two finger boxes and a palm, TCP between the
fingertips, +z approach, +x closing): a hand body welded to a mocap target (gravity
compensated), two fingers on slide joints driven by position actuators with a force limit.

A trial (``run_trial``): the hand waits, open to ``gripper.opening(width)``, at a pre-grasp
offset back along the approach axis while the objects settle; it approaches along +z to the
grasp pose, closes, lifts 0.15 m, holds 1 s and shakes. It succeeds when

- nothing was hit on the way in (no contact of hand or finger with the table or an object
  pushing harder than ``collision_force``),
- both fingers touch the target after closing, and both touch the part the task needs,
- after the shake the target has risen with the hand (its centre of mass at least
  ``lift - lift_tolerance`` above where it rested) and both fingers still touch it.

A failure is put down to the first of these that fails: ``collision``, ``missed`` (a finger
closed on something other than the target, or on nothing), ``wrong_part``, ``slipped`` (on the
right part but not held through lift, hold and shake); ``unstable`` if the simulation diverged.
Contact settings (elliptic friction cone, impratio 10, condim 4 for torsional friction; finger
actuators kp 2000, kv 20, 40 N) are chosen so that a mug held by its handle does not twist
under its own weight, as it does with pyramidal cones and impratio 1.

Deterministic: MuJoCo is, for the same model and inputs; the only random input is the optional
execution noise of the grasp pose (``TrialConfig.position_noise``, ``rotation_noise``), drawn
from the trial's ``seed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import mujoco
import numpy as np

from grasp_semantics.data.objects import make_object
from grasp_semantics.grasping.gripper import opening
from grasp_semantics.models.config import GripperConfig
from grasp_semantics.physics.shapes import object_pieces

# Densities (kg/m^3) of the materials each part is taken to be made of, from engineering
# tables: steel 7850, aluminium 2700, ceramic (stoneware) 2400, phenolic resin 1300,
# polyamide/ABS/PP plastics 1050, water (a filled bottle) 1000, paperboard 750, beech 700,
# nylon bristles packed at about half density 500.
DENSITY = {
    "steel": 7850.0,
    "aluminium": 2700.0,
    "ceramic": 2400.0,
    "phenolic": 1300.0,
    "plastic": 1050.0,
    "water": 1000.0,
    "paperboard": 750.0,
    "wood": 700.0,
    "bristle": 500.0,
    # a closed body that stands for an empty thin-walled vessel or casing (kettle, teapot,
    # hair dryer): its mass spread over the enclosed volume
    "hollow": 300.0,
}
MATERIALS: dict[str, tuple[str, ...]] = {  # per category, in part-index order
    "mug": ("ceramic", "ceramic"),
    "cup": ("paperboard", "paperboard"),
    "knife": ("steel", "plastic"),
    "hammer": ("steel", "wood"),
    "spatula": ("plastic", "plastic"),
    "screwdriver": ("steel", "plastic"),
    "bottle": ("plastic", "water"),
    "pan": ("aluminium", "phenolic"),
    "scissors": ("steel", "plastic"),
    "brush": ("bristle", "plastic"),
    "kettle": ("hollow", "plastic", "hollow", "plastic"),
    "teapot": ("hollow", "ceramic", "hollow", "ceramic"),
    "jug": ("ceramic", "ceramic", "ceramic"),
    "saucepan": ("aluminium", "phenolic", "plastic"),
    "goblet": ("ceramic", "ceramic", "ceramic"),
    "flashlight": ("aluminium", "aluminium", "aluminium"),
    "wrench": ("steel", "steel", "steel"),
    "pliers": ("steel", "steel", "plastic"),
    "tongs": ("plastic", "steel", "steel"),
    "toothbrush": ("bristle", "plastic", "plastic"),
    "sprayer": ("water", "plastic", "plastic"),
    "hairdryer": ("hollow", "plastic", "plastic"),
    "ladle": ("steel", "steel"),
    "jar": ("plastic", "water"),
}
# Coulomb (sliding, torsional, rolling) friction. MuJoCo takes the larger of two geoms' values:
# rubber-padded fingers on anything 1.0; wood, plastic, steel or ceramic on a wooden table 0.5
# (typical dry tables give 0.3-0.6).
FINGER_FRICTION = (1.0, 0.02, 0.001)
OBJECT_FRICTION = (0.5, 0.005, 0.0001)
TABLE_SIZE = (1.2, 0.9, 0.03)  # as the generator's table, top at z=0

OUTCOMES = ("success", "collision", "missed", "wrong_part", "slipped", "unstable")


@dataclass(frozen=True)
class TrialConfig:
    """Timing, control and success thresholds of a trial."""

    timestep: float = 0.002
    settle_s: float = 0.2  # objects come to rest before the hand moves
    pregrasp: float = 0.10  # m back along the approach axis where the hand starts
    approach_s: float = 0.5
    close_s: float = 0.6  # the finger targets ramp closed over this, then hold
    lift: float = 0.15  # m
    lift_s: float = 1.0
    hold_s: float = 1.0
    shake_amplitude: float = 0.02  # m, along world x
    shake_hz: float = 3.0
    shake_cycles: int = 2
    grip_force: float = 40.0  # N, each finger's force limit
    kp: float = 2000.0  # N/m, finger position gain
    kv: float = 20.0  # N s/m, finger damping
    collision_force: float = 1.0  # N, a contact on the way in pushing harder is a collision
    lift_tolerance: float = 0.03  # m the object may trail the hand's lift and still count
    position_noise: float = 0.0  # m, std of an execution error of the grasp position
    rotation_noise: float = 0.0  # rad, std of an execution error of the grasp orientation
    # The other objects are fixed in place (still obstacles the hand can hit): resting objects'
    # contacts with the table were most of a trial's cost, and no outcome needs them to move.
    fixed_others: bool = True


@dataclass(frozen=True)
class SceneSpec:
    """What a trial needs of a scene: its objects, the task's target and part, the frames."""

    objects: tuple[tuple[str, int, tuple[tuple[float, ...], ...]], ...]  # category, index, pose
    target: int  # object index
    part: int  # part index within the target
    camera_to_world: tuple[tuple[float, ...], ...]  # 4x4: grasps come in the camera frame

    @staticmethod
    def of(scene) -> SceneSpec:
        """The spec of a generated ``data.scene.Scene`` (small and picklable)."""
        objects = []
        for info in scene.objects:
            category, index = info.instance_id.split("/")
            objects.append((category, int(index), tuple(map(tuple, info.pose))))
        inverse = np.linalg.inv(np.asarray(scene.world_to_camera, np.float64))
        return SceneSpec(
            tuple(objects),
            int(scene.target),
            int(scene.functional_part),
            tuple(map(tuple, inverse)),
        )

    def to_world(self, poses: np.ndarray) -> np.ndarray:
        """Camera-frame poses ``[..., 4, 4]`` in the world frame."""
        return np.asarray(self.camera_to_world) @ np.asarray(poses, np.float64)


@dataclass
class TrialResult:
    """What happened in one trial."""

    outcome: str  # one of OUTCOMES
    hit: str  # what the hand hit on the way in ("" when nothing)
    finger_objects: tuple[list[int], list[int]]  # objects each finger touches after closing
    on_part: bool  # both fingers touch the task's part after closing
    rise_lifted: float  # m the target's centre of mass rose, after the lift
    rise_final: float  # m, after the hold and shake
    tilt_deg: float  # the target's rotation from rest, after the shake
    held: bool  # both fingers still touch the target after the shake
    steps: int = 0
    phases: dict[str, int] = field(default_factory=dict)  # step at the end of each phase

    @property
    def success(self) -> bool:
        return self.outcome == "success"


def _floats(values) -> str:
    return " ".join(f"{v:.6g}" for v in np.ravel(values))


def _quat(rotation: np.ndarray) -> np.ndarray:
    q = np.zeros(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(rotation, np.float64).ravel())
    return q


def scene_xml(spec: SceneSpec, gripper: GripperConfig, config: TrialConfig) -> str:
    """The MJCF of the scene's table and objects and of the gripper."""
    assets, bodies = [], []
    for i, (category, index, pose) in enumerate(spec.objects):
        obj = make_object(category, index)
        t = np.asarray(pose, np.float64)
        geoms = []
        for k, piece in enumerate(object_pieces(category, index)):
            name = f"o{i}p{k}"
            assets.append(f'<mesh name="{name}" vertex="{_floats(piece.vertices)}"/>')
            on = obj.mesh.part == piece.part
            rgba = np.r_[obj.mesh.colour[on].mean(axis=0), 1.0]
            density = DENSITY[MATERIALS[category][piece.part]]
            geoms.append(
                f'<geom name="{name}" type="mesh" mesh="{name}" density="{density:g}" '
                f'rgba="{_floats(rgba)}"/>'
            )
        bodies.append(
            f'<body name="object{i}" pos="{_floats(t[:3, 3])}" quat="{_floats(_quat(t[:3, :3]))}">'
            f"{'<freejoint/>' if i == spec.target or not config.fixed_others else ''}"
            f"{''.join(geoms)}</body>"
        )
    g = gripper
    half_finger = (g.finger_thickness / 2, g.finger_breadth / 2, g.finger_depth / 2)
    palm_x = g.max_width / 2 + g.finger_thickness
    finger_x = g.max_width / 2 + g.finger_thickness / 2  # finger centres when fully open
    fingers = "".join(
        f'<body name="finger{k}" pos="{sign * -finger_x:g} 0 {-g.finger_depth / 2:g}" '
        f'gravcomp="1"><joint name="slide{k}" type="slide" axis="{sign:g} 0 0" '
        f'range="0 {g.max_width / 2:g}" damping="1"/>'
        f'<geom name="finger{k}" type="box" size="{_floats(half_finger)}" mass="0.05" '
        f'friction="{_floats(FINGER_FRICTION)}" rgba="0.25 0.25 0.28 1"/></body>'
        for k, sign in ((1, 1.0), (2, -1.0))
    )
    actuators = "".join(
        f'<position name="close{k}" joint="slide{k}" kp="{config.kp:g}" kv="{config.kv:g}" '
        f'forcerange="{-config.grip_force:g} {config.grip_force:g}" '
        f'ctrlrange="0 {g.max_width / 2 + 0.03:g}"/>'
        for k in (1, 2)
    )
    return f"""<mujoco model="grasp_trial">
  <compiler angle="radian" autolimits="true"/>
  <option timestep="{config.timestep:g}" integrator="implicitfast" cone="elliptic"
          impratio="10"/>
  <visual><global offwidth="1280" offheight="960"/></visual>
  <default>
    <geom condim="4" solref="0.01 1" solimp="0.95 0.99 0.001"
          friction="{_floats(OBJECT_FRICTION)}"/>
    <mesh inertia="convex"/>
  </default>
  <asset>{"".join(assets)}</asset>
  <worldbody>
    <light pos="0 0 1.5" dir="0 0 -1" directional="true"/>
    <geom name="table" type="box" size="{_floats(np.array(TABLE_SIZE) / 2)}"
          pos="0 0 {-TABLE_SIZE[2] / 2:g}" rgba="0.72 0.55 0.38 1"/>
    {"".join(bodies)}
    <body name="target" mocap="true"/>
    <body name="hand" gravcomp="1">
      <freejoint/>
      <geom name="palm" type="box" mass="0.5" rgba="0.35 0.35 0.38 1"
            size="{palm_x:g} {g.finger_breadth / 2:g} {g.palm_depth / 2:g}"
            pos="0 0 {-g.finger_depth - g.palm_depth / 2:g}"/>
      {fingers}
    </body>
  </worldbody>
  <equality><weld body1="target" body2="hand" solref="0.004 1"/></equality>
  <contact><exclude body1="finger1" body2="finger2"/></contact>
  <actuator>{actuators}</actuator>
</mujoco>"""


class TrialWorld:
    """A scene compiled once; ``run`` tries one grasp on a fresh state each time."""

    def __init__(
        self,
        spec: SceneSpec,
        gripper: GripperConfig | None = None,
        config: TrialConfig | None = None,
    ) -> None:
        self.spec = spec
        self.gripper = gripper or GripperConfig()
        self.config = config or TrialConfig()
        self.model = mujoco.MjModel.from_xml_string(scene_xml(spec, self.gripper, self.config))
        m = self.model
        self.hand_qpos = m.jnt_qposadr[m.body("hand").jntadr[0]]
        self.finger_qpos = [m.jnt_qposadr[m.joint(f"slide{k}").id] for k in (1, 2)]
        self.fingers = [m.geom(f"finger{k}").id for k in (1, 2)]
        self.gripper_geoms = set(self.fingers) | {m.geom("palm").id}
        self.target_body = m.body(f"object{spec.target}").id
        # object index and part of each geom (-1: table or gripper)
        self.geom_object = np.full(m.ngeom, -1)
        self.geom_part = np.full(m.ngeom, -1)
        for i, (category, index, _) in enumerate(spec.objects):
            for k, piece in enumerate(object_pieces(category, index)):
                gid = m.geom(f"o{i}p{k}").id
                self.geom_object[gid], self.geom_part[gid] = i, piece.part

    def run(
        self,
        pose: np.ndarray,
        width: float,
        seed: int = 0,
        on_phase: Callable[[str, mujoco.MjData], None] | None = None,
    ) -> TrialResult:
        """Try the grasp ``pose`` [4, 4] (world frame, gripper.py convention) of ``width``;
        ``on_phase(name, data)`` is called at the end of each phase (for pictures)."""
        cfg, m = self.config, self.model
        pose = self._noisy(np.asarray(pose, np.float64), seed)
        rotation, tcp = pose[:3, :3], pose[:3, 3]
        approach = rotation[:, 2]
        start = tcp - cfg.pregrasp * approach
        d = mujoco.MjData(m)
        quat = _quat(rotation)
        d.qpos[self.hand_qpos : self.hand_qpos + 3] = start
        d.qpos[self.hand_qpos + 3 : self.hand_qpos + 7] = quat
        d.mocap_pos[0], d.mocap_quat[0] = start, quat
        open_q = (self.gripper.max_width - float(opening(np.array([width]), self.gripper)[0])) / 2
        for q in self.finger_qpos:
            d.qpos[q] = open_q
        d.ctrl[:] = open_q
        closed_q = self.gripper.max_width / 2 + 0.03
        mujoco.mj_forward(m, d)
        phases: dict[str, int] = {}
        state = {"hit": "", "step": 0}

        def advance(seconds: float, name: str, move=None, check_hits: bool = False) -> None:
            n = round(seconds / cfg.timestep)
            for s in range(n):
                if move is not None:
                    move((s + 1) / n)
                mujoco.mj_step(m, d)
                state["step"] += 1
                if check_hits and not state["hit"] and s % 5 == 4:
                    state["hit"] = self._hit(d)
            phases[name] = state["step"]
            if on_phase is not None:
                on_phase(name, d)

        advance(cfg.settle_s, "settled", check_hits=True)
        rest_com = d.xipos[self.target_body].copy()
        rest_rotation = d.xmat[self.target_body].reshape(3, 3).copy()

        def approach_move(f: float) -> None:
            d.mocap_pos[0] = start + _smooth(f) * cfg.pregrasp * approach

        advance(cfg.approach_s, "approach", approach_move, check_hits=True)

        def close_move(f: float) -> None:
            d.ctrl[:] = open_q + min(1.0, 1.5 * f) * (closed_q - open_q)

        advance(cfg.close_s, "closed", close_move)
        touching = self._finger_contacts(d)
        lifted_from = d.mocap_pos[0].copy()

        def lift_move(f: float) -> None:
            d.mocap_pos[0] = lifted_from + np.array([0.0, 0.0, _smooth(f) * cfg.lift])

        advance(cfg.lift_s, "lifted", lift_move)
        rise_lifted = float(d.xipos[self.target_body][2] - rest_com[2])
        advance(cfg.hold_s, "held")
        top = d.mocap_pos[0].copy()
        shake_s = cfg.shake_cycles / cfg.shake_hz

        def shake_move(f: float) -> None:
            phase = 2 * np.pi * cfg.shake_cycles * f
            d.mocap_pos[0] = top + np.array([cfg.shake_amplitude * np.sin(phase), 0.0, 0.0])

        advance(shake_s, "shaken", shake_move)
        advance(0.2, "final")
        rise_final = float(d.xipos[self.target_body][2] - rest_com[2])
        now = d.xmat[self.target_body].reshape(3, 3)
        cos = np.clip((np.trace(rest_rotation.T @ now) - 1) / 2, -1, 1)
        final_touch = self._finger_contacts(d)
        held = all(self.spec.target in objs for objs, _ in final_touch)
        on_target = all(self.spec.target in objs for objs, _ in touching)
        on_part = all(self.spec.part in parts for _, parts in touching) and on_target
        if not np.isfinite(d.qpos).all():
            outcome = "unstable"
        elif state["hit"]:
            outcome = "collision"
        elif not on_target:
            outcome = "missed"
        elif not on_part:
            outcome = "wrong_part"
        elif not held or rise_final < cfg.lift - cfg.lift_tolerance:
            outcome = "slipped"
        else:
            outcome = "success"
        return TrialResult(
            outcome=outcome,
            hit=state["hit"],
            finger_objects=(sorted(touching[0][0]), sorted(touching[1][0])),
            on_part=on_part,
            rise_lifted=rise_lifted,
            rise_final=rise_final,
            tilt_deg=float(np.degrees(np.arccos(cos))),
            held=held,
            steps=state["step"],
            phases=phases,
        )

    def _noisy(self, pose: np.ndarray, seed: int) -> np.ndarray:
        """``pose`` with the configured execution error drawn from ``seed`` (none by default)."""
        cfg = self.config
        if cfg.position_noise == 0 and cfg.rotation_noise == 0:
            return pose
        rng = np.random.default_rng(seed)
        out = pose.copy()
        out[:3, 3] += rng.normal(0, cfg.position_noise, 3)
        rotvec = rng.normal(0, cfg.rotation_noise, 3)
        turn = np.zeros(9)
        q = np.zeros(4)
        mujoco.mju_axisAngle2Quat(
            q, rotvec / max(np.linalg.norm(rotvec), 1e-12), np.linalg.norm(rotvec)
        )
        mujoco.mju_quat2Mat(turn, q)
        out[:3, :3] = turn.reshape(3, 3) @ pose[:3, :3]
        return out

    def _hit(self, d: mujoco.MjData) -> str:
        """Name of what a hand or finger geom pushes against harder than the limit, or ""."""
        force = np.zeros(6)
        for i in range(d.ncon):
            c = d.contact[i]
            pair = {int(c.geom1), int(c.geom2)}
            mine = pair & self.gripper_geoms
            if not mine or len(mine) == 2:
                continue
            other = (pair - mine).pop()
            mujoco.mj_contactForce(self.model, d, i, force)
            if abs(force[0]) > self.config.collision_force:
                obj = self.geom_object[other]
                return "table" if obj < 0 else f"object{obj}"
        return ""

    def _finger_contacts(self, d: mujoco.MjData) -> list[tuple[set[int], set[int]]]:
        """Per finger, the objects it touches and the parts of the target it touches."""
        out: list[tuple[set[int], set[int]]] = [(set(), set()), (set(), set())]
        for i in range(d.ncon):
            c = d.contact[i]
            for k, finger in enumerate(self.fingers):
                if finger in (c.geom1, c.geom2):
                    other = c.geom2 if c.geom1 == finger else c.geom1
                    obj = int(self.geom_object[other])
                    if obj >= 0:
                        out[k][0].add(obj)
                        if obj == self.spec.target:
                            out[k][1].add(int(self.geom_part[other]))
        return out


def _smooth(f: float) -> float:
    """Smooth 0..1 ramp (zero velocity at both ends)."""
    return 0.5 - 0.5 * np.cos(np.pi * f)
