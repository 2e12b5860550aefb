"""``grasp-semantics stress``: generated malformed (and valid) input against a node subprocess.

    grasp-semantics stress [--messages 1000] [--seed 0] [--valid-every 50] [--json PATH]

Hypothesis draws each message's recipe over the fields of the node's inputs: the ``points``,
``image``, ``camera_info`` and ``instruction`` topics, header stamps, and the ``~/predict`` and
``~/describe`` services (random bytes read as float32 clouds, 1e20 or float32-max coordinates,
``is_bigendian`` flags, wrong point_step / row_step / field offsets / datatypes / counts,
truncated data, 0x0 images, wrong encodings and steps, absurd camera_info K, instructions with
NUL, control characters, huge or unusual text, far-future and backwards stamps, service requests
that declare sizes with empty data). A bad image or cloud travels with a good partner of the
same stamp, so the pair reaches the predictor; a bad camera_info or instruction is followed by a
good pair. Recipes are drawn first (seeded, reproducible), messages are built when sent, from a
held-out scene of the demo's sample bag reduced to every 4th pixel and 5,000 of its points (tens
of kB, which this machine's transport delivers to the node's best-effort subscriptions; a
full-size pair, ~1.4 MB, mostly does not arrive there: see ``SceneInputs.reduced``).

Each message's outcome is named from what the node does, seen from outside:

- ``predicted`` / ``predicted_with_warning``: a prediction with the message's stamp came (the
  node logged a warning meanwhile); for a service, ``success`` true;
- ``accepted`` / ``accepted_altered``: an instruction the next prediction carries as sent / in
  another form (e.g. cut at a NUL);
- ``rejected``: the node logged an error or counted a rejected input on ``/diagnostics`` (the
  text is kept), or the service answered ``success`` false with a message;
- ``warned``: no prediction, but a warning logged; ``ignored``: no reaction within
  ``--timeout``; ``no_response``: a service call unanswered within ``--service-timeout``;
- ``process_died``: the node exited (exit code and last exception of its log kept);
- ``worker_dead`` / ``locked_out``: after the message a good pair (a probe, sent after every
  ignored message and every stamp message) was ignored / refused: the node lives but no longer
  predicts.

A valid pair of a held-out scene at full size (640x480, its whole cloud) follows every
``--valid-every`` messages; each must be answered. After a death or a failed valid pair or
probe the node is restarted, so one fault does not hide the rest. The run is bounded by
``--messages``, ``--max-minutes`` and ``--max-restarts`` and always stops the node. The JSON
report has counts per outcome and per kind, deaths, restarts, valid pairs answered, the
messages whose outcome differs from what their kind calls for (``unexpected``), and every
message's outcome.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rcl_interfaces.msg import Log
from std_msgs.msg import String

from grasp_semantics.ros.harness import (
    NodeProcess,
    Peer,
    SceneInputs,
    add_node_arguments,
    default_domain_id,
    held_out_scenes,
    isolate_ros,
    last_exception,
    now_ns,
    parse_parameters,
    prediction_for,
    publish_pair,
)
from grasp_semantics.ros.stress_messages import build
from grasp_semantics.ros.stress_recipes import KINDS, generate_recipes

# stamp gap between messages: more than the node's default slop_s (0.05 s), so a message's
# leftover image or cloud never pairs with the next one's
SPACING_NS = 100_000_000
OUTCOMES = (
    "predicted",
    "predicted_with_warning",
    "accepted",
    "accepted_with_warning",
    "accepted_altered",
    "answered",
    "rejected",
    "warned",
    "ignored",
    "no_response",
    "unsendable",
    "process_died",
    "worker_dead",
    "locked_out",
)
# outcomes that are never right, whatever the input
FAILURES = ("process_died", "worker_dead", "locked_out", "no_response")
SILENT = ("predicted", "accepted", "accepted_altered", "answered", "ignored", "unsendable")
PREDICTED = (
    "predicted",
    "predicted_with_warning",
    "accepted",
    "accepted_with_warning",
    "answered",
)


@dataclass
class Settings:
    messages: int = 1000
    seed: int = 0
    valid_every: int = 50
    timeout_s: float = 3.0
    valid_timeout_s: float = 30.0
    service_timeout_s: float = 30.0
    start_timeout_s: float = 180.0
    max_minutes: float = 60.0
    max_restarts: int = 100
    scenes: int = 3
    parameters: dict[str, Any] = field(default_factory=dict)
    domain_id: int | None = None
    log_path: Path | None = None


class Stress:
    """One run: the node subprocess, the peer, the recipes, the record."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.parameters = {"max_rate_hz": 0.0, **settings.parameters}
        self.domain_id = settings.domain_id or default_domain_id()
        env = isolate_ros(self.domain_id)
        log_path = settings.log_path or Path(tempfile.mkdtemp(prefix="stress_")) / "node.log"
        self.process = NodeProcess(self.parameters, log_path, env)
        self.peer: Peer | None = None
        self.full: list[SceneInputs] = []  # held-out scenes, as a camera sends them
        self.small: list[SceneInputs] = []  # the same reduced: what generated messages use
        self.scene_index = -1
        self.scene: SceneInputs | None = None
        self.last_ns = 0
        self.instruction_sent = ""
        self.records: list[dict[str, Any]] = []
        self.valid: list[dict[str, Any]] = []
        self.restarts: list[dict[str, Any]] = []
        self.worker_reports: list[str] = []
        self._pause = threading.Event()  # never set: bounded pacing waits

    # ------------------------------------------------------------------------ node control
    def start_node(self) -> None:
        self.process.start()
        assert self.peer is not None
        self.peer.wait_ready(self.process, self.settings.start_timeout_s)
        self.instruction_sent = ""

    def restart(self, reason: str, index: int) -> None:
        code = self.process.stop()
        self.restarts.append({"after_message": index, "reason": reason, "exit_code": code})
        self.start_node()
        if self.scene is not None:  # the instruction latched last may be a bad one
            self.send_instruction(self.scene.instruction)

    def next_stamp(self) -> int:
        """Now, at least SPACING_NS after the previous message's stamp (waiting for it)."""
        wait_ns = self.last_ns + SPACING_NS - now_ns()
        if wait_ns > 0:
            self._pause.wait(wait_ns / 1e9)
        self.last_ns = max(now_ns(), self.last_ns + SPACING_NS)
        return self.last_ns

    # ---------------------------------------------------------------------------- observe
    def mark(self) -> tuple[int, int, int]:
        peer = self.peer
        assert peer is not None
        with peer.cond:
            return (len(peer.seen.predictions), len(peer.seen.logs), len(peer.seen.diagnostics))

    def logs_since(self, mark: tuple[int, int, int], level: int) -> list[str]:
        assert self.peer is not None
        with self.peer.cond:
            return [log.msg[:300] for log in self.peer.seen.logs[mark[1] :] if log.level >= level]

    def _counted_rejection(self, mark: tuple[int, int, int]) -> str | None:
        """``last_error`` of the diagnostics when ``rejected_inputs`` rose since ``mark``."""
        assert self.peer is not None
        diagnostics = self.peer.seen.diagnostics
        if mark[2] and len(diagnostics) > mark[2]:
            before = diagnostics[mark[2] - 1].values.get("rejected_inputs", "")
            after = diagnostics[-1].values.get("rejected_inputs", "")
            if before.isdigit() and after.isdigit() and int(after) > int(before):
                return diagnostics[-1].values.get("last_error", "")[:300] or "rejected"
        return None

    def _logged_errors(self, mark: tuple[int, int, int]) -> list[str]:
        assert self.peer is not None
        return [log.msg for log in self.peer.seen.logs[mark[1] :] if log.level >= Log.ERROR]

    def rejected_since(self, mark: tuple[int, int, int]) -> str | None:
        """The node's error text if it counted a rejected input (the text its diagnostics
        carry with the count) or logged an error since ``mark`` (call under ``peer.cond``)."""
        counted = self._counted_rejection(mark)
        if counted:
            return counted
        errors = self._logged_errors(mark)
        return errors[-1][:300] if errors else None

    def settle(self, mark: tuple[int, int, int], timeout_s: float = 1.0) -> None:
        """After a rejection seen on one channel, wait (briefly) for it on the other (the node
        logs it and publishes diagnostics; either may arrive first), so that it is not taken
        for the next message's."""
        assert self.peer is not None
        with self.peer.cond:
            counted, logged = self._counted_rejection(mark), self._logged_errors(mark)
        if bool(counted) != bool(logged):
            self.peer.wait(
                lambda: bool(self._counted_rejection(mark)) and bool(self._logged_errors(mark)),
                timeout_s,
            )

    def watch_worker(self) -> None:
        """Keep what the node says on /diagnostics about its worker (a watchdog's report)."""
        assert self.peer is not None
        with self.peer.cond:
            for status in self.peer.seen.diagnostics[-20:]:
                text = f"{status.message} {status.values}"
                worker = status.level >= 2 and "worker" in text.lower()
                if worker and status.message[:300] not in self.worker_reports:
                    self.worker_reports.append(status.message[:300])

    # ------------------------------------------------------------------------------- send
    def send_instruction(self, text: str, timeout_s: float = 2.0) -> None:
        """Publish an instruction and give the node up to ``timeout_s`` to log taking or
        refusing it (it logs either), so the pair after it meets the new instruction."""
        peer = self.peer
        assert peer is not None
        mark = self.mark()
        peer.instruction.publish(String(data=text))
        self.instruction_sent = text
        peer.wait(lambda: len(peer.seen.logs) > mark[1], timeout_s, self.process)

    def send_valid(self, index: int, probe_for: str | None = None) -> dict[str, Any]:
        """A good pair that must be predicted: the next held-out scene at full size, or, as a
        probe after a message, the current scene reduced (the size the generated messages
        travel at, which this machine's transport delivers: see ``SceneInputs.reduced``)."""
        peer = self.peer
        assert peer is not None
        if probe_for is None:
            self.scene_index = (self.scene_index + 1) % len(self.full)
        self.scene = self.small[self.scene_index]
        pair = self.scene if probe_for else self.full[self.scene_index]
        if self.instruction_sent != pair.instruction:
            self.send_instruction(pair.instruction)
        ns = self.next_stamp()
        mark = self.mark()
        started = time.monotonic()
        publish_pair(peer, pair, ns)
        peer.wait(
            lambda: prediction_for(peer, ns) is not None or self.rejected_since(mark),
            self.settings.valid_timeout_s,
            self.process,
        )
        self.settle(mark)
        with peer.cond:
            refused = self.rejected_since(mark)
        if refused:  # perhaps a late reaction to the message before: wait a little longer
            peer.wait(
                lambda: prediction_for(peer, ns) is not None, self.settings.timeout_s, self.process
            )
        with peer.cond:
            answered = prediction_for(peer, ns) is not None
        entry = {
            "after_message": index,
            "answered": answered,
            "seconds": round(time.monotonic() - started, 3),
        }
        if probe_for:
            entry["probe_for"] = probe_for
        if not answered:
            entry["reason"] = refused or "no reaction"
            if not self.process.alive():
                entry["reason"] = f"process died (exit code {self.process.returncode()})"
        self.valid.append(entry)
        return entry

    def warm_up(self, tries: int = 10) -> None:
        """Send reduced good pairs until one is predicted (the first prediction loads lazily
        held parts), so that a run starts from a node known to predict; not counted."""
        peer = self.peer
        assert peer is not None
        self.scene_index = 0
        self.scene = self.small[0]
        self.send_instruction(self.scene.instruction)
        for _ in range(tries):
            ns = self.next_stamp()
            publish_pair(peer, self.scene, ns)
            if peer.wait(
                lambda n=ns: prediction_for(peer, n) is not None,
                self.settings.valid_timeout_s / tries,
                self.process,
            ):
                return
        raise RuntimeError(
            f"the node predicted none of {tries} good pairs at the start (log: "
            f"{self.process.log_path}): {last_exception(self.process.new_output())}"
        )

    def send_message(self, index: int, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """Send one recipe's message(s) and name the outcome."""
        target = KINDS[name].target
        if target in ("predict", "describe"):
            return self._send_service(name, params, target)
        mark = self.mark()
        try:
            return self._publish_and_classify(name, params, target, mark)
        except (TypeError, ValueError, AssertionError) as error:  # rclpy refused to publish it
            return {"outcome": "unsendable", "detail": f"{type(error).__name__}: {error}"[:300]}

    def _publish_and_classify(
        self, name: str, params: dict[str, Any], target: str, mark: tuple[int, int, int]
    ) -> dict[str, Any]:
        peer, scene = self.peer, self.scene
        assert peer is not None and scene is not None
        sent_text = None
        if target == "instruction":
            sent_text = build(name, params, scene, 0)
            self.send_instruction(sent_text)
        ns = self.next_stamp()
        overrides: dict[str, Any] = {}
        if target == "stamp":
            overrides, ns = build(name, params, scene, ns)
        elif target != "instruction":
            overrides[{"points": "cloud"}.get(target, target)] = build(name, params, scene, ns)
        publish_pair(peer, scene, ns, **overrides)
        peer.wait(
            lambda: prediction_for(peer, ns) is not None or self.rejected_since(mark),
            self.settings.timeout_s,
            self.process,
        )
        self.settle(mark)
        with peer.cond:
            prediction = prediction_for(peer, ns)
            refused = self.rejected_since(mark)
        warnings = self.logs_since(mark, Log.WARN)
        if sent_text is not None and refused:
            return {"outcome": "rejected", "detail": refused}
        if prediction is not None and sent_text is not None:
            if warnings:
                return {"outcome": "accepted_with_warning", "detail": warnings[-1]}
            if prediction.instruction == sent_text.strip():
                return {"outcome": "accepted", "detail": ""}
            return {
                "outcome": "accepted_altered",
                "detail": f"used {prediction.instruction[:200]!r}",
            }
        if prediction is not None:
            if warnings:
                return {"outcome": "predicted_with_warning", "detail": warnings[-1]}
            return {"outcome": "predicted", "detail": ""}
        if refused:
            return {"outcome": "rejected", "detail": refused}
        if warnings:
            return {"outcome": "warned", "detail": warnings[-1]}
        with peer.cond:
            last = peer.seen.diagnostics[-1] if peer.seen.diagnostics else None
        detail = f"diagnostics level {last.level}: {last.message[:200]}" if last else ""
        return {"outcome": "ignored", "detail": detail}

    def _send_service(self, name: str, params: dict[str, Any], target: str) -> dict[str, Any]:
        peer, scene = self.peer, self.scene
        assert peer is not None and scene is not None
        request = build(name, params, scene, self.next_stamp())
        client = peer.predict if target == "predict" else peer.describe
        mark = self.mark()
        response = peer.call(client, request, self.settings.service_timeout_s, self.process)
        self.settle(mark)
        warnings = self.logs_since(mark, Log.WARN)
        if response is None:
            return {"outcome": "no_response", "detail": ""}
        if response.success:
            answered = "predicted" if target == "predict" else "answered"
            if warnings:
                return {"outcome": "predicted_with_warning", "detail": warnings[-1]}
            return {"outcome": answered, "detail": ""}
        return {"outcome": "rejected", "detail": response.message[:300]}

    # -------------------------------------------------------------------------------- run
    def run(self) -> dict[str, Any]:
        s = self.settings
        started = time.monotonic()
        recipes = generate_recipes(s.messages, s.seed)
        self.full = held_out_scenes(s.scenes)
        self.small = [scene.reduced() for scene in self.full]
        self.peer = Peer(self.domain_id)
        stopped_by = "done"
        try:
            self.start_node()
            self.warm_up()
            for index, (name, params) in enumerate(recipes):
                if time.monotonic() - started > 60 * s.max_minutes:
                    stopped_by = f"time limit ({s.max_minutes} min)"
                    break
                if len(self.restarts) > s.max_restarts:
                    stopped_by = f"restart limit ({s.max_restarts})"
                    break
                self.records.append(self._one(index, name, params))
                due = (index + 1) % s.valid_every == 0 or index == len(recipes) - 1
                if due and not self.send_valid(index)["answered"]:
                    self.restart("valid pair unanswered", index)
                self.watch_worker()
        finally:
            self.process.stop()
            self.peer.close()
        return self.report(time.monotonic() - started, stopped_by)

    def _one(self, index: int, name: str, params: dict[str, Any]) -> dict[str, Any]:
        kind_ = KINDS[name]
        result = self.send_message(index, name, params)
        output = self.process.new_output()
        if not self.process.alive():
            code = self.process.returncode()
            result = {
                "outcome": "process_died",
                "detail": f"exit code {code}: {last_exception(output)}",
                "reaction": result["outcome"],
            }
            self.restart("process died", index)
        elif result["outcome"] in ("ignored", "no_response") or kind_.probe:
            probe = self.send_valid(index, probe_for=name)
            if not probe["answered"]:
                reaction = result["outcome"]
                died = not self.process.alive()
                outcome = (
                    "process_died"
                    if died
                    else ("locked_out" if probe["reason"] != "no reaction" else "worker_dead")
                )
                result = {"outcome": outcome, "detail": probe["reason"], "reaction": reaction}
                output += self.process.new_output()  # a traceback may come after the message
                self.restart(f"probe after {name}: {outcome}", index)
        if "Traceback" in output:
            result["traceback"] = last_exception(output)
        expect = kind_.expect(params)
        return {
            "index": index,
            "kind": name,
            "target": kind_.target,
            **result,
            "expect": expect,
            "params": jsonable(params),
        }

    def report(self, seconds: float, stopped_by: str) -> dict[str, Any]:
        by_kind: dict[str, Counter] = defaultdict(Counter)
        for record in self.records:
            by_kind[record["kind"]][record["outcome"]] += 1
        unexpected = [r for r in self.records if not outcome_fits(r["outcome"], r["expect"])]
        valid = [v for v in self.valid if "probe_for" not in v]
        probes = [v for v in self.valid if "probe_for" in v]
        outcomes = Counter(r["outcome"] for r in self.records)
        return {
            "command": "stress",
            "seed": self.settings.seed,
            "messages_requested": self.settings.messages,
            "messages_sent": len(self.records),
            "stopped_by": stopped_by,
            "seconds": round(seconds, 1),
            "valid_every": self.settings.valid_every,
            "timeout_s": self.settings.timeout_s,
            "node": {
                "parameters": self.parameters,
                "log": str(self.process.log_path),
                "domain_id": self.domain_id,
                "starts": self.process.starts,
            },
            "outcomes": dict(sorted(outcomes.items())),
            "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(by_kind.items())},
            "kinds_covered": len(by_kind),
            "kinds_total": len(KINDS),
            "process_deaths": outcomes["process_died"],
            "worker_failures": outcomes["worker_dead"] + outcomes["locked_out"],
            "diagnostics_worker_reports": self.worker_reports,
            "valid_pairs": {
                "sent": len(valid),
                "answered": sum(v["answered"] for v in valid),
                "unanswered": [v for v in valid if not v["answered"]],
            },
            "probes": {"sent": len(probes), "answered": sum(p["answered"] for p in probes)},
            "restarts": self.restarts,
            "unexpected": [
                {k: r[k] for k in ("index", "kind", "expect", "outcome", "detail")}
                for r in unexpected
            ],
            "messages": self.records,
        }


def outcome_fits(outcome: str, expect: str) -> bool:
    """Whether an outcome is right for a message its kind expects ``expect`` of."""
    if outcome in FAILURES:
        return False
    if expect == "predicted":
        return outcome in PREDICTED
    if expect == "not_silent":
        return outcome not in SILENT
    return True


def jsonable(value: Any, limit: int = 200) -> Any:
    """``value`` for a strict JSON report: non-finite floats as strings, long text cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"... ({len(value)} chars)"
    if isinstance(value, dict):
        return {str(k): jsonable(v, limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, limit) for v in value]
    return value


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    parser.add_argument("--messages", type=int, default=1000, help="generated messages to send")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generated recipes")
    parser.add_argument("--valid-every", type=int, default=50, help="a valid pair every N")
    parser.add_argument("--timeout", type=float, default=3.0, help="s to wait for a reaction")
    parser.add_argument(
        "--valid-timeout", type=float, default=30.0, help="s to wait for a valid pair's answer"
    )
    parser.add_argument(
        "--service-timeout", type=float, default=30.0, help="s to wait for a service answer"
    )
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop after this long")
    parser.add_argument(
        "--max-restarts", type=int, default=100, help="stop after restarting the node this often"
    )
    add_node_arguments(parser)


def run(args: argparse.Namespace, command: str) -> int:
    settings = Settings(
        messages=args.messages,
        seed=args.seed,
        valid_every=args.valid_every,
        timeout_s=args.timeout,
        valid_timeout_s=args.valid_timeout,
        service_timeout_s=args.service_timeout,
        max_minutes=args.max_minutes,
        max_restarts=args.max_restarts,
        parameters=parse_parameters(args.param),
        domain_id=args.domain_id,
        log_path=args.log,
    )
    report = Stress(settings).run()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1, allow_nan=False))
    print(
        json.dumps({k: v for k, v in report.items() if k not in ("messages", "by_kind")}, indent=1)
    )
    valid = report["valid_pairs"]
    healthy = report["process_deaths"] == 0 and report["worker_failures"] == 0
    return 0 if healthy and valid["answered"] == valid["sent"] else 1
