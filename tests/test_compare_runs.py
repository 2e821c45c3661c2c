"""benchmarks/compare_runs.py: the byte comparison of two runs finds what differs and only that."""

from __future__ import annotations

import torch

from conftest import load_benchmark

compare_runs = load_benchmark("compare_runs")


def write_run(root, metrics_seconds: float, accuracy: float, weight: float, host: str):
    results = root / "results"
    (results / "logs").mkdir(parents=True)
    (results / "logs" / "job.log").write_text(f"ran on {host}\n")
    (results / "metrics.csv").write_text(
        f"epoch,test_accuracy,epoch_seconds\n1,{accuracy},{metrics_seconds}\n"
    )
    checkpoint = {"state_dict": {"w": torch.tensor([weight])}, "metrics": {"epoch_seconds": metrics_seconds}}
    torch.save({**checkpoint, "provenance": {"host": host}}, results / "best.pt")
    return root


def test_timings_logs_and_provenance_are_not_differences(tmp_path, capsys):
    first = write_run(tmp_path / "a", 1.5, 0.5, 1.0, "node1")
    second = write_run(tmp_path / "b", 2.5, 0.5, 1.0, "node2")
    assert compare_runs.compare(first, second) == []
    assert compare_runs.main([str(first), str(second)]) == 0
    assert "compared 2 files (1 .csv, 1 .pt): 0 differences" in capsys.readouterr().out


def test_a_changed_number_or_weight_is_a_difference(tmp_path):
    first = write_run(tmp_path / "a", 1.5, 0.5, 1.0, "node1")
    second = write_run(tmp_path / "b", 1.5, 0.51, 1.0 + 1e-7, "node1")
    assert compare_runs.compare(first, second) == ["differs: results/best.pt", "differs: results/metrics.csv"]
    assert compare_runs.main([str(first), str(second)]) == 1
    (second / "results" / "extra.csv").write_text("x\n1\n")
    assert "only in" in compare_runs.compare(first, second)[0]
