"""``grasp-semantics soak`` and ``grasp-semantics lifecycle-cycle``: a node subprocess over time.

    grasp-semantics soak [--minutes 30] [--rate 10] [--window 60] [--json PATH]
    grasp-semantics lifecycle-cycle [--cycles 100] [--json PATH]

``soak`` streams the demo's sample bag (made in a temporary folder unless ``--bag`` names one
written by ``make-bag``), looped, to a node subprocess at ``--rate`` Hz: camera_info, image and
cloud of a scene per tick, the scene's instruction when it changes. Every message is stamped
*now*, as a live camera's are: the bag's own stamps would jump back at each loop. Each frame
also gets sensor-like noise (pixel values +-1, 0.5 mm on the cloud; ``--no-noise`` turns it
off), as consecutive camera frames are never byte-identical and the node caches results for
byte-identical inputs. Per ``--window`` seconds it reports the node's resident memory
(``/proc/PID/status`` VmRSS), pairs sent against predictions received (drops), the model time
of each prediction (``GraspPrediction.inference_ms``) and its end-to-end latency (arrival minus
stamp: a growing queue anywhere shows here), and the node's own ``/diagnostics`` counters
(``dropped_pairs``, ``rejected_inputs``, ``latency_ms_p95``). The verdict compares the windows
after the warm-up: RSS growth (%) and slope, p95 latencies of the first and last window.

``lifecycle-cycle`` drives a node subprocess started with ``autostart:=false`` through
configure, activate, one prediction, deactivate and cleanup ``--cycles`` times with the
lifecycle services (``lifecycle_msgs/srv/ChangeState``, ``GetState``), recording whether each
transition succeeded and reached its state, and the RSS after each cleanup; the check is that it
stays within ``--rss-tolerance-mb`` (50 MB) of the first cleanup's.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from std_msgs.msg import String

from grasp_semantics.ros.harness import (
    NodeProcess,
    Peer,
    SceneInputs,
    add_node_arguments,
    default_domain_id,
    isolate_ros,
    last_exception,
    now_ns,
    parse_parameters,
    prediction_for,
    publish_pair,
    summarize,
)
from grasp_semantics.ros.node_inputs import stamp_ns

TRANSITIONS = (  # (transition id, label, state it must reach)
    (Transition.TRANSITION_CONFIGURE, "configure", State.PRIMARY_STATE_INACTIVE),
    (Transition.TRANSITION_ACTIVATE, "activate", State.PRIMARY_STATE_ACTIVE),
    (Transition.TRANSITION_DEACTIVATE, "deactivate", State.PRIMARY_STATE_INACTIVE),
    (Transition.TRANSITION_CLEANUP, "cleanup", State.PRIMARY_STATE_UNCONFIGURED),
)


def bag_scenes(bag: Path | None, scenes: int = 6) -> list[SceneInputs]:
    """The scenes of a ``make-bag`` bag; without one, the demo's sample bag, made in a
    temporary folder."""
    from grasp_semantics.data.bag import read_bag
    from grasp_semantics.ros.demo import make_sample_bag

    if bag is None:
        bag = make_sample_bag(Path(tempfile.mkdtemp(prefix="soak_")) / "sample_bag", scenes)
    return [
        SceneInputs(s["rgb"], s["intrinsics"], s["points"], s["instruction"])
        for s in read_bag(bag)
    ]


def with_noise(scene: SceneInputs, rng: np.random.Generator) -> SceneInputs:
    """The scene as another frame of a still camera: pixels +-1, points 0.5 mm of noise."""
    rgb = scene.rgb.astype(np.int16) + rng.integers(-1, 2, scene.rgb.shape, dtype=np.int16)
    points = scene.points + rng.normal(0.0, 5e-4, scene.points.shape).astype(np.float32)
    return SceneInputs(
        np.clip(rgb, 0, 255).astype(np.uint8), scene.intrinsics, points, scene.instruction
    )


def start(
    parameters: dict[str, Any],
    domain_id: int | None,
    log_path: Path | None,
    active: bool,
    start_timeout_s: float,
) -> tuple[NodeProcess, Peer]:
    """A node subprocess on a domain of its own and a peer that is connected to it."""
    domain = domain_id or default_domain_id()
    env = isolate_ros(domain)
    log = log_path or Path(tempfile.mkdtemp(prefix="node_")) / "node.log"
    process = NodeProcess(parameters, log, env)
    peer = Peer(domain)
    try:
        process.start()
        peer.wait_ready(process, start_timeout_s, active=active)
    except BaseException:
        stop(process, peer)
        raise
    return process, peer


def stop(process: NodeProcess, peer: Peer) -> int | None:
    """Stop the node and close the peer; the node's exit code."""
    try:
        return process.stop()
    finally:
        peer.close()


# ------------------------------------------------------------------------------------ soak
@dataclass
class Window:
    """One reporting window of a soak."""

    index: int
    started: float  # s since the soak's start
    pairs_sent: int = 0
    rss_mb: list[float] = field(default_factory=list)
    predictions: list[tuple[int, Any]] = field(default_factory=list)  # (arrival ns, message)

    def as_dict(self, diagnostics: dict[str, str], before: dict[str, str]) -> dict[str, Any]:
        inference = [float(m.inference_ms) for _, m in self.predictions]
        e2e = [(arrived - stamp_ns(m.header)) / 1e6 for arrived, m in self.predictions]

        def delta(key: str) -> int | None:
            if key not in diagnostics:
                return None
            return int(diagnostics[key]) - int(before.get(key, 0))

        return {
            "window": self.index,
            "start_s": round(self.started, 1),
            "pairs_sent": self.pairs_sent,
            "predictions": len(self.predictions),
            "unanswered_fraction": round(1 - len(self.predictions) / max(self.pairs_sent, 1), 3),
            "inference_ms": summarize(inference),
            "end_to_end_ms": summarize(e2e),
            "rss_mb_end": round(self.rss_mb[-1], 1) if self.rss_mb else None,
            "rss_mb_max": round(max(self.rss_mb), 1) if self.rss_mb else None,
            "node_dropped_pairs": delta("dropped_pairs"),
            # sent, neither predicted nor dropped by the node: lost on the way, or one half of
            # the pair lost (the node never formed it); a pair in flight at the window's end
            # counts here too
            "not_seen_as_pair": (
                None
                if delta("dropped_pairs") is None
                else self.pairs_sent - len(self.predictions) - delta("dropped_pairs")
            ),
            "node_rejected_inputs": delta("rejected_inputs"),
            "node_latency_ms_p95": (
                float(diagnostics["latency_ms_p95"]) if "latency_ms_p95" in diagnostics else None
            ),
        }


@dataclass
class SoakSettings:
    minutes: float = 30.0
    rate_hz: float = 10.0
    window_s: float = 60.0
    warmup_windows: int = 1
    noise: bool = True
    reduced: bool = False
    bag: Path | None = None
    scenes: int = 6  # scenes of the sample bag made when ``bag`` is None
    parameters: dict[str, Any] = field(default_factory=dict)
    domain_id: int | None = None
    log_path: Path | None = None
    start_timeout_s: float = 180.0
    max_rss_growth_pct: float = 2.0
    max_latency_ratio: float = 1.5


def soak(settings: SoakSettings, node: tuple[NodeProcess, Peer] | None = None) -> dict[str, Any]:
    """Stream the looped bag through a node subprocess; the report as a dict. ``node``: an
    active node (and its peer) to use and leave running, instead of starting one."""
    scenes = bag_scenes(settings.bag, settings.scenes)
    if settings.reduced:
        scenes = [scene.reduced() for scene in scenes]
    process, peer = node or start(
        settings.parameters,
        settings.domain_id,
        settings.log_path,
        True,
        settings.start_timeout_s,
    )
    rng = np.random.default_rng(0)
    pause = threading.Event()  # never set: the pacing waits
    windows: list[dict[str, Any]] = []
    rss_samples: list[tuple[float, float]] = []  # (s since start, MB)
    died: str | None = None
    try:
        with peer.cond:  # counters from here on: a fresh diagnostics (1 Hz) as the baseline
            seen = len(peer.seen.predictions)  # predictions before the soak are not its own
            heard = len(peer.seen.diagnostics)
        peer.wait(lambda: len(peer.seen.diagnostics) > heard, 3.0, process)
        diag_before = latest_values(peer)
        started = time.monotonic()
        duration = 60.0 * settings.minutes
        window = Window(0, 0.0)
        instruction = None
        next_rss = 0.0
        frame = 0
        while True:
            elapsed = time.monotonic() - started
            if not process.alive():
                died = f"exit code {process.returncode()}: {last_exception(process.new_output())}"
                break
            if elapsed >= next_rss:
                try:
                    rss_samples.append((elapsed, process.rss_mb()))
                except FileNotFoundError:  # exited since the check above
                    continue
                window.rss_mb.append(rss_samples[-1][1])
                next_rss += 1.0
            with peer.cond:
                window.predictions += [(w, m) for _, w, m in peer.seen.predictions[seen:]]
                seen = len(peer.seen.predictions)
            if elapsed >= (window.index + 1) * settings.window_s or elapsed >= duration:
                diag = latest_values(peer)
                windows.append(window.as_dict(diag, diag_before))
                diag_before = diag
                if elapsed >= duration:
                    break
                window = Window(window.index + 1, elapsed)
            due = frame / settings.rate_hz
            if elapsed < due:
                pause.wait(min(due - elapsed, max(next_rss - elapsed, 0.0)))
                continue
            scene = scenes[frame % len(scenes)]
            if scene.instruction != instruction:
                peer.instruction.publish(String(data=scene.instruction))
                instruction = scene.instruction
            publish_pair(peer, with_noise(scene, rng) if settings.noise else scene, now_ns())
            window.pairs_sent += 1
            frame += 1
        seconds = time.monotonic() - started
    finally:
        code = stop(process, peer) if node is None else None
    return {
        "command": "soak",
        "minutes": settings.minutes,
        "seconds": round(seconds, 1),
        "rate_hz": settings.rate_hz,
        "window_s": settings.window_s,
        "scenes_looped": len(scenes),
        "stamps": "now at publishing (a live camera's), not the bag's",
        "noise": settings.noise,
        "reduced": settings.reduced,
        "node": {
            "parameters": settings.parameters,
            "log": str(process.log_path),
            "exit_code": code,
            "died": died,
        },
        "pairs_sent": sum(w["pairs_sent"] for w in windows),
        "predictions": sum(w["predictions"] for w in windows),
        "verdict": verdict(windows, rss_samples, settings),
        "windows": windows,
        "rss_mb": [[round(t, 1), round(mb, 1)] for t, mb in rss_samples],
    }


def latest_values(peer: Peer) -> dict[str, str]:
    with peer.cond:
        return dict(peer.seen.diagnostics[-1].values) if peer.seen.diagnostics else {}


def verdict(
    windows: list[dict[str, Any]], rss: list[tuple[float, float]], settings: SoakSettings
) -> dict[str, Any]:
    """RSS growth and latency drift after the warm-up windows, against the thresholds."""
    after = windows[settings.warmup_windows :]
    if not after or not rss:
        return {"complete": False, "reason": "no window after the warm-up"}
    warm_end = after[0]["start_s"]
    tail = [(t, mb) for t, mb in rss if t >= warm_end]
    base, last = tail[0][1], tail[-1][1]
    times, values = np.array([t for t, _ in tail]), np.array([mb for _, mb in tail])
    slope = float(np.polyfit(times / 60.0, values, 1)[0]) if len(tail) > 2 else 0.0
    growth = 100.0 * (last - base) / base

    def ratio(key: str) -> float | None:
        first, final = after[0][key]["p95"], after[-1][key]["p95"]
        return None if not first or final is None else round(final / first, 3)

    inference, e2e = ratio("inference_ms"), ratio("end_to_end_ms")
    return {
        "complete": True,
        "warmup_s": warm_end,
        "rss_mb_after_warmup": round(base, 1),
        "rss_mb_end": round(last, 1),
        "rss_growth_pct": round(growth, 2),
        "rss_slope_mb_per_min": round(slope, 3),
        "inference_p95_first_last_ms": [
            after[0]["inference_ms"]["p95"],
            after[-1]["inference_ms"]["p95"],
        ],
        "inference_p95_ratio": inference,
        "end_to_end_p95_first_last_ms": [
            after[0]["end_to_end_ms"]["p95"],
            after[-1]["end_to_end_ms"]["p95"],
        ],
        "end_to_end_p95_ratio": e2e,
        "answered_fraction": round(
            sum(w["predictions"] for w in after) / max(sum(w["pairs_sent"] for w in after), 1),
            3,
        ),
        "rss_ok": growth < settings.max_rss_growth_pct,
        "latency_ok": inference is not None and inference <= settings.max_latency_ratio,
        "no_queue_growth": e2e is not None and e2e <= settings.max_latency_ratio,
        "thresholds": {
            "rss_growth_pct": settings.max_rss_growth_pct,
            "p95_ratio": settings.max_latency_ratio,
        },
    }


# -------------------------------------------------------------------------------- lifecycle
@dataclass
class CycleSettings:
    cycles: int = 100
    parameters: dict[str, Any] = field(default_factory=dict)
    domain_id: int | None = None
    log_path: Path | None = None
    start_timeout_s: float = 180.0
    transition_timeout_s: float = 120.0
    prediction_timeout_s: float = 60.0
    resend_s: float = 3.0
    rss_tolerance_mb: float = 50.0
    reduced: bool = False
    bag: Path | None = None


def lifecycle_cycles(
    settings: CycleSettings, node: tuple[NodeProcess, Peer] | None = None
) -> dict[str, Any]:
    """Cycle a node subprocess through its lifecycle; the report as a dict. ``node``: an
    unconfigured node (and its peer) to use and leave running, instead of starting one."""
    scene = bag_scenes(settings.bag, scenes=1)[0]
    if settings.reduced:
        scene = scene.reduced()
    parameters = {**settings.parameters, "autostart": False}
    process, peer = node or start(
        parameters, settings.domain_id, settings.log_path, False, settings.start_timeout_s
    )
    cycles: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        peer.instruction.publish(String(data=scene.instruction))  # latched for each configure
        for index in range(settings.cycles):
            cycle = one_cycle(index, process, peer, scene, settings)
            cycles.append(cycle)
            if not process.alive():
                break
    finally:
        code = stop(process, peer) if node is None else None
    rss = [c["rss_mb_after_cleanup"] for c in cycles if c["rss_mb_after_cleanup"] is not None]
    deviation = [round(mb - rss[0], 1) for mb in rss]
    transitions = [t for c in cycles for t in c["transitions"]]
    return {
        "command": "lifecycle-cycle",
        "cycles_requested": settings.cycles,
        "cycles_completed": sum(c["ok"] for c in cycles),
        "reduced": settings.reduced,
        "seconds": round(time.monotonic() - started, 1),
        "node": {"parameters": parameters, "log": str(process.log_path), "exit_code": code},
        "transitions_ok": sum(t["ok"] for t in transitions),
        "transitions_total": len(transitions),
        "predictions_ok": sum(c["prediction"]["ok"] for c in cycles),
        "rss_mb_after_cleanup": rss,
        "rss_mb_deviation_from_first": deviation,
        "rss_max_deviation_mb": max((abs(d) for d in deviation), default=None),
        "rss_within_tolerance": bool(rss)
        and max(abs(d) for d in deviation) <= settings.rss_tolerance_mb,
        "rss_tolerance_mb": settings.rss_tolerance_mb,
        "all_ok": len(cycles) == settings.cycles and all(c["ok"] for c in cycles),
        "cycles": cycles,
    }


def one_cycle(
    index: int, process: NodeProcess, peer: Peer, scene: SceneInputs, s: CycleSettings
) -> dict[str, Any]:
    """configure, activate, a prediction, deactivate, cleanup; each step recorded."""
    record: dict[str, Any] = {"cycle": index, "transitions": [], "prediction": {"ok": False}}
    for transition, label, state in TRANSITIONS:
        step = change_state(peer, process, transition, label, state, s.transition_timeout_s)
        record["transitions"].append(step)
        if not step["ok"]:
            break
        if label == "activate":
            record["prediction"] = predict_once(peer, process, scene, s)
    record["rss_mb_after_cleanup"] = (
        round(process.rss_mb(), 1)
        if process.alive() and record["transitions"][-1]["transition"] == "cleanup"
        else None
    )
    record["ok"] = (
        len(record["transitions"]) == len(TRANSITIONS)
        and all(t["ok"] for t in record["transitions"])
        and record["prediction"]["ok"]
    )
    return record


def change_state(
    peer: Peer, process: NodeProcess, transition: int, label: str, state: int, timeout_s: float
) -> dict[str, Any]:
    """One lifecycle transition and the state the node reports after it."""
    started = time.monotonic()
    request = ChangeState.Request()
    request.transition.id = transition
    response = peer.call(peer.change_state, request, timeout_s, process)
    reached = peer.call(peer.get_state, GetState.Request(), timeout_s, process)
    reached_id = None if reached is None else int(reached.current_state.id)
    return {
        "transition": label,
        "ok": response is not None and response.success and reached_id == state,
        "success": None if response is None else bool(response.success),
        "state": None if reached is None else reached.current_state.label,
        "seconds": round(time.monotonic() - started, 3),
    }


def predict_once(
    peer: Peer, process: NodeProcess, scene: SceneInputs, s: CycleSettings
) -> dict[str, Any]:
    """Send the scene (again every ``resend_s``, fresh stamp: the node subscribes on activate
    and may miss the first) until a prediction of one of the stamps sent comes."""
    started = time.monotonic()
    stamps: list[int] = []
    while time.monotonic() - started < s.prediction_timeout_s and process.alive():
        stamps.append(now_ns())
        publish_pair(peer, scene, stamps[-1])
        if peer.wait(
            lambda: any(prediction_for(peer, ns) is not None for ns in stamps),
            s.resend_s,
            process,
        ):
            return {
                "ok": True,
                "sent": len(stamps),
                "seconds": round(time.monotonic() - started, 3),
            }
    return {"ok": False, "sent": len(stamps), "seconds": round(time.monotonic() - started, 3)}


# ---------------------------------------------------------------------------------- command
def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    if command == "soak":
        parser.add_argument("--minutes", type=float, default=30.0, help="how long to stream")
        parser.add_argument("--rate", type=float, default=10.0, help="pairs per second")
        parser.add_argument("--window", type=float, default=60.0, help="s per report window")
        parser.add_argument(
            "--warmup-windows", type=int, default=1, help="windows left out of the verdict"
        )
        parser.add_argument(
            "--no-noise", action="store_true", help="loop byte-identical frames (cache hits)"
        )
        parser.add_argument(
            "--scenes", type=int, default=6, help="scenes of the sample bag (without --bag)"
        )
    else:
        parser.add_argument("--cycles", type=int, default=100, help="lifecycle cycles")
        parser.add_argument(
            "--rss-tolerance-mb", type=float, default=50.0, help="allowed RSS change"
        )
    parser.add_argument("--bag", type=Path, default=None, help="a make-bag bag (default: sample)")
    parser.add_argument(
        "--reduced",
        action="store_true",
        help="send each scene reduced (every 4th pixel, 5,000 points: tens of kB) instead of "
        "full size (~1.4 MB a pair), for transports that lose large best-effort messages",
    )
    add_node_arguments(parser)


def run(args: argparse.Namespace, command: str) -> int:
    parameters = parse_parameters(args.param)
    if command == "soak":
        report = soak(
            SoakSettings(
                minutes=args.minutes,
                rate_hz=args.rate,
                window_s=args.window,
                warmup_windows=args.warmup_windows,
                noise=not args.no_noise,
                reduced=args.reduced,
                bag=args.bag,
                scenes=args.scenes,
                parameters=parameters,
                domain_id=args.domain_id,
                log_path=args.log,
            )
        )
        shown = {k: v for k, v in report.items() if k != "rss_mb"}
        ok = report["node"]["died"] is None and report["verdict"].get("complete", False)
        ok = ok and all(report["verdict"][k] for k in ("rss_ok", "latency_ok", "no_queue_growth"))
    else:
        report = lifecycle_cycles(
            CycleSettings(
                cycles=args.cycles,
                parameters=parameters,
                domain_id=args.domain_id,
                log_path=args.log,
                rss_tolerance_mb=args.rss_tolerance_mb,
                reduced=args.reduced,
                bag=args.bag,
            )
        )
        shown = {k: v for k, v in report.items() if k != "cycles"}
        ok = report["all_ok"] and report["rss_within_tolerance"]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, allow_nan=False))
    print(json.dumps(shown, indent=1))
    return 0 if ok else 1
