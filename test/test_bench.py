"""Benchmark smoke run: the JSON schema, not the timings."""

import json

from grasp_semantics.bench import STAGES, main, run_bench


def test_bench_quick_schema():
    result = run_bench("tiny", "cpu", quick=True)
    assert result["image"] == [480, 640] and result["input_points"] == 20_000
    for stage in STAGES:
        stats = result["latency_ms"][stage]
        assert set(stats) == {"median", "p95"} and stats["p95"] >= stats["median"] >= 0
    assert result["memory"]["peak_rss_mb"] > 0
    fps = result["fps"]
    assert fps["n_points"] == 20_000 and fps["n_samples"] == 2048
    assert fps["reference_loop_ms"] > 0 and fps["torch_vectorised_ms"] > 0
    assert fps["speedup_vs_reference"] > 0


def test_main_prints_json_and_writes_the_file(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr("grasp_semantics.bench.run_bench", lambda *a, **k: {"ok": True})
    assert main(["--quick", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"ok": True}
    out = tmp_path / "bench.json"
    assert main(["--quick", "--json", str(out)]) == 0
    assert json.loads(out.read_text()) == {"ok": True}
