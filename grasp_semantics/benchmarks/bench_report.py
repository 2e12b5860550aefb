"""The markdown summary of a bench result (``grasp-semantics bench --markdown``, docs/bench.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from grasp_semantics.benchmarks.bench_setup import TARGETS


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows), ""]


def markdown(result: dict) -> str:
    """A short markdown summary of a bench result (docs/bench.md)."""
    m, s = result["machine"], result["settings"]
    lines = [
        "# Benchmark",
        "",
        f"`{result['command']}` on {m['cpu']} ({m['cores']} cores, {m['threads']} "
        f"torch threads, {m['device']}, torch {m['torch']}): model `{s['model']}` "
        f"({s['dtype']}, compile {s['compile']}), on the {s['input']}: a "
        f"{s['image'][1]}x{s['image'][0]} image "
        f"(encoder input {s['encoder_image'][1]}x{s['encoder_image'][0]}), "
        f"the camera's {s.get('input_cloud', 'cloud')} ({s['input_points']:,} points returned; "
        f"thinned to {s['max_cloud_points']:,}) -> {s['network_points']:,} network points, "
        f"{s['warm_runs']} warm runs, "
        "caches cleared before each. Load average (1 min) "
        f"{m.get('load_average_1m_at_start')} at the start, {m.get('load_average_1m_at_end')} "
        "at the end (other work on the machine inflates every timing).",
        "",
        "## Stages (ms)",
        "",
    ]
    lat = result["latency_ms"]
    lines += _table(
        ["stage", "median", "p95"], [[k, v["median"], v["p95"]] for k, v in lat.items()]
    )
    lines += [
        f"Throughput {result['throughput_hz']} Hz; peak RSS {result['memory']['peak_rss_mb']} MB.",
        "",
    ]
    node = result.get("node")
    if node:
        lines += [
            "## The node against the predictor (same scenes, same run)",
            "",
            f"The demo bag's {node['scenes']} held-out scenes ({node['cloud_points']:,}-point "
            f"clouds), {node['repeats']} passes: the predictor called directly, then the real "
            "node replaying the bag in lock step (its own `predict` time, as on /diagnostics).",
            "",
            *_table(
                ["path", "median ms", "p95 ms", "n"],
                [
                    [name, node[key]["median"], node[key]["p95"], node[key]["n"]]
                    for name, key in (("predictor", "direct_ms"), ("node", "node_ms"))
                ],
            ),
            f"Node / predictor (medians): {node['node_over_direct']}.",
            "",
        ]
    lines += [
        "## Targets",
        "",
    ]
    lines += _table(
        ["target", "measured", "goal", "met"],
        [
            [k, v["value"], ("<= " if v["kind"] == "max" else ">= ") + str(v["goal"]), v["met"]]
            for k, v in result["targets"].items()
        ],
    )
    c = result["cached"]
    goal = TARGETS["cached_speedup"][0]
    lines += [
        f"Cached encoder: an uncached call spends {c['uncached_encoder_ms']} ms in the encoder "
        f"and {c['rest_ms']} ms in everything else (medians over the same runs), so a cached "
        f"encoder that cost nothing would make it {c['bound']}x faster (measured "
        f"{c['speedup']}x); {goal:g}x would need everything else under "
        f"{c['rest_for_target_ms']} ms.",
        "",
    ]
    refs = result["references"]
    fps = refs["fps_20k_to_2048"]
    lines += ["## Speed-ups, each against its reference in the same run (ms)", ""]
    ref_rows = [
        [
            "model call: cached encoder (new cloud) vs uncached",
            c["uncached_ms"]["median"],
            c["cached_ms"]["median"],
            c["speedup"],
        ],
        [
            "model call: cached point path (same cloud, encoder rerun) vs uncached",
            c["uncached_ms"]["median"],
            c["points_cached_ms"]["median"],
            c["points_cached_speedup"],
        ],
        [
            f"FPS 20k -> 2,048: {fps['used']} vs loop",
            fps["reference_loop_ms"],
            fps[f"{fps['used']}_ms"],
            fps["speedup_vs_reference"],
        ],
    ]
    for key, what in (
        ("fps_exact_2048_to_512", "exact FPS 2,048 -> 512: C++ vs torch loop"),
        ("point_net", "PointNet++: fast vs textbook set abstraction"),
        ("decode_blas_threads", "model call: decoding on one BLAS thread vs numpy's default"),
    ):
        r = refs[key]
        ref_rows.append([what, r["reference_ms"], r["fast_ms"], r["speedup"]])
    for row in (result["sweeps"] or {}).get("batch", []):
        r = row["encoder_per_sample_calls"]
        ref_rows.append(
            [
                f"encoder, batch {row['batch']}: batched vs one call per sample",
                r["reference_ms"],
                r["fast_ms"],
                r["speedup"],
            ]
        )
    scorer_features = (result.get("grasp_scorer") or {}).get("features")
    if scorer_features:
        ref_rows.append(
            [
                "grasp scorer features, every part planned on a held-out scene: fast vs "
                "straightforward",
                scorer_features["reference_ms"],
                scorer_features["fast_ms"],
                scorer_features["speedup"],
            ]
        )
    lines += _table(["what", "reference", "fast", "speed-up"], ref_rows)
    if result.get("grasp_scorer"):
        g = result["grasp_scorer"]
        lines += [
            "## Grasp scorer cost (median ms of a model call on a held-out scene)",
            "",
            *_table(
                ["planner ranking", "grasp scorer ranking", "added"],
                [[g["planner_ranking_ms"], g["scorer_ranking_ms"], g["added_ms"]]],
            ),
        ]
    if result.get("describe"):
        d = result["describe"]
        lines += [
            "## Scene questions (the `~/describe` service's path, greedy, on the scene's image)",
            "",
            *_table(
                ["task", "median ms", "p95 ms", "answer"],
                [[t, v["median"], v["p95"], repr(v["answer"])] for t, v in d["tasks"].items()],
            ),
            f"Attaching the describe head to the loaded grasp model added {d['rss_added_mb']} MB "
            "RSS (the backbone is shared).",
            "",
        ]
    if result["sweeps"]:
        sw = result["sweeps"]
        lines += ["## How cost grows (median ms)", ""]
        lines += [
            f"Cloud size: a held-out scene at the camera's full density, subsampled; the model "
            f"thins clouds above {result['settings']['max_cloud_points']:,} points (every "
            "point: `max_cloud_points` 0). Encoder cached, point path not.",
            "",
        ]
        lines += _table(
            [
                "input points",
                "point sampling",
                "point net",
                "decode",
                "model",
                "every point: decode",
                "every point: model",
            ],
            [
                [
                    f"{r['input_points']:,}",
                    r["point_sampling_ms"],
                    r["point_net_ms"],
                    r["decode_ms"],
                    r["model_ms"],
                    *(
                        (r["every_point"]["decode_ms"], r["every_point"]["model_ms"])
                        if r["every_point"]
                        else ("same", "same")
                    ),
                ]
                for r in sw["points"]
            ],
        )
        lines += _table(
            ["image", "preprocess", "vision encoder", "language model", "model"],
            [
                [
                    f"{r['image'][1]}x{r['image'][0]}",
                    r["preprocess_ms"],
                    r["vision_encoder_ms"],
                    r["language_model_ms"],
                    r["model_ms"],
                ]
                for r in sw["image"]
            ],
        )
        lines += _table(
            ["batch", "model", "per sample", "throughput (Hz)"],
            [
                [r["batch"], r["model_ms"], r["per_sample_ms"], r["throughput_hz"]]
                for r in sw["batch"]
            ],
        )
    if result["soak"]:
        so = result["soak"]
        lines += [
            f"Soak: {so['predictions']} consecutive predictions, RSS {so['rss_after_warmup_mb']}"
            f" MB after the first tenth, {so['rss_end_mb']} MB at the end "
            f"({so['growth_pct']:+.2f}%).",
            "",
        ]
    fl = result["flops"]
    peak = fl["h100"]["bf16_flops"] / 1e12
    bandwidth = fl["h100"]["memory_bytes_per_s"] / 1e12
    lines += [
        "## FLOPs per stage and the H100 bound",
        "",
        f"GFLOPs per sample (batch 1) at each flavour's fixed input resolution, "
        f"{fl['text_tokens']} text tokens; bound = max(FLOPs / {peak:.0f} TFLOP/s bf16, "
        f"bf16 weights / {bandwidth:.2f} TB/s) per stage, summed. GPU timings: not measured "
        "yet (no GPU here).",
        "",
    ]
    stages = ("vision_encoder", "language_model", "projection", "point_net", "heads")
    rows = []
    for name, f in fl["flavours"].items():
        st = f["stages"]
        rows.append(
            [
                name,
                f"{f['image'][1]}x{f['image'][0]}",
                f["visual_tokens"],
                *(st[x]["gflops"] for x in stages),
                f["total_gflops"],
                f["h100_bound_ms"],
            ]
        )
    lines += _table(
        ["flavour", "input", "visual tokens", *stages, "total", "H100 bound (ms)"], rows
    )
    if "check" in fl:
        ch = fl["check"]
        lines += [
            f"Check on the bench model: torch's FLOP counter {ch['flop_counter_gflops']} GFLOPs "
            f"for the encoder, the analytic count {ch['analytic_without_attention_scores_gflops']}"
            f" without attention scores (which the counter does not see on CPU), "
            f"{ch['analytic_gflops']} with them.",
            "",
        ]
    return "\n".join(lines)
