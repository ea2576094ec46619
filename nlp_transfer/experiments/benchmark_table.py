"""The benchmark's table: one row per run from its record, the speed ratios against the peer, and benchmark.md."""

from __future__ import annotations

from typing import Any

from nlp_transfer.evaluation.record import TrainingCost
from nlp_transfer.tables import markdown_table


def strategy_row(name: str, outcome: dict[str, Any], peak: float) -> dict[str, Any]:
    """One row of the table from a strategy's record, predict rates and memory."""
    record, cost = outcome["record"], outcome["record"].get("training_cost") or {}
    steps_s = cost.get("steps_s") or record["train_runtime_s"]
    return {
        "run": name,
        "train_samples_per_s": record["train_samples_per_second"],
        "steps_only_samples_per_s": round(cost.get("sequences", 0) / steps_s, 2) if steps_s else None,
        "real_tokens_per_s": round(cost.get("real_tokens", 0) / record["train_runtime_s"], 1),
        "padding_share": _share(cost),
        "steps_gflop_per_s": round(cost.get("flops", 0) / steps_s / 1e9, 2) if steps_s else None,
        "steps_peak_share": round(cost.get("flops", 0) / steps_s / peak, 3) if steps_s else None,
        "evaluation_s": cost.get("evaluation_s"),
        "checkpoint_s": cost.get("checkpoint_s"),
        "peak_rss_mb": outcome.get("peak_rss_mb"),
        "predict_b1_per_s": outcome["predict"]["batch_1"],
        "predict_b32_per_s": outcome["predict"]["batch_32"],
        "accuracy": _rounded(record["eval"].get("accuracy")),
    }


def peer_row(outcome: dict[str, Any], peak: float) -> dict[str, Any]:
    cost, runtime = outcome["training_cost"], outcome["train_runtime_s"]
    return {
        "run": "peer: Trainer script (pad 128, batch 32, 2e-5)",
        "train_samples_per_s": outcome["train_samples_per_second"],
        "steps_only_samples_per_s": outcome["train_samples_per_second"],  # it neither evaluates nor saves
        "real_tokens_per_s": round(cost["real_tokens"] / runtime, 1),
        "padding_share": _share(cost),
        "steps_gflop_per_s": round(cost["flops"] / runtime / 1e9, 2),
        "steps_peak_share": round(cost["flops"] / runtime / peak, 3),
        "evaluation_s": 0.0,
        "checkpoint_s": 0.0,
        "peak_rss_mb": outcome.get("peak_rss_mb"),
        "predict_b1_per_s": None,
        "predict_b32_per_s": None,
        "accuracy": _rounded(outcome["accuracy"]),
    }


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return round(value, digits) if value is not None else None


def _share(cost: dict[str, Any]) -> float | None:
    share = TrainingCost(real_tokens=cost.get("real_tokens", 0), padded_tokens=cost.get("padded_tokens", 0))
    return _rounded(share.padding_share, 3)


def with_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's training samples/s over the peer's (the first row when the peer ran)."""
    peer = next((row for row in rows if row["run"].startswith("peer")), None)
    for row in rows:
        base = peer["train_samples_per_s"] if peer else None
        row["speed_vs_peer"] = round(row["train_samples_per_s"] / base, 2) if base else None
    return rows


def _cell(value: Any) -> str:
    return "–" if value is None else str(value)


def table(results: dict[str, Any]) -> str:
    """benchmark.md: the machine, the table, and predict against transformers.pipeline."""
    columns = [
        "run",
        "train_samples_per_s",
        "speed_vs_peer",
        "steps_only_samples_per_s",
        "real_tokens_per_s",
        "padding_share",
        "steps_gflop_per_s",
        "steps_peak_share",
        "evaluation_s",
        "checkpoint_s",
        "peak_rss_mb",
        "predict_b1_per_s",
        "predict_b32_per_s",
        "accuracy",
    ]
    lines = [
        f"Device {results['device']} ({results['threads']} threads), {results['precision']}; matrix-multiply peak "
        f"{results['matmul_peak_gflop_per_s']} GFLOP/s measured in this run (the peer's share is of the fp32 "
        f"peak, {results['fp32_matmul_peak_gflop_per_s']}). Model: {results['model']}.",
        "train_samples_per_s and real_tokens_per_s count the whole training loop, evaluations and checkpoint "
        "saves included (Trainer's figure); the steps_ columns count the training steps alone. FLOPs: "
        "nlp_transfer.modeling.flops, on real tokens.",
        "",
        markdown_table(columns, [[_cell(row.get(column)) for column in columns] for row in results["rows"]]),
    ]
    pipeline = results.get("pipeline")
    if pipeline:
        first = results["settings"]["strategies"][0]
        ours = next(row for row in results["rows"] if row["run"] == first)["predict_b32_per_s"]
        lines += [
            "",
            f"predict at batch 32: {ours} samples/s; transformers.pipeline on the same texts and model: "
            f"{pipeline['batch_32']} samples/s ({ours / pipeline['batch_32']:.2f}x); same labels: "
            f"{pipeline['same_labels']}.",
        ]
    return "\n".join(lines) + "\n"
