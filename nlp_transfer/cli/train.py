"""`nlp-transfer train`: fine-tune a checkpoint on labelled texts."""

from __future__ import annotations

import argparse

from nlp_transfer.cli.parser_cache import check_arguments
from nlp_transfer.tables import metrics_table


def _train_parser() -> argparse.ArgumentParser:
    from nlp_transfer.config.run import build_parser

    return build_parser(prog="nlp-transfer train")


def _train(argv: list[str]) -> int:
    check_arguments("train", argv, _train_parser)
    from nlp_transfer.config.run import RunConfig
    from nlp_transfer.training.fine_tune import fine_tune

    result = fine_tune(RunConfig.from_args(argv))
    if not result.is_main_process:
        return 0
    record = result.record
    print(f"Primary metric: {record.primary_metric} ({record.primary_metric_reason or ''})")
    print(metrics_table(record.evaluated_splits, record.primary_metric))
    print(f"Saved to {result.output_dir} (metrics in {result.metrics_path})")
    if result.push is not None:
        print(f"Pushed to {result.push.repo_id}: {result.push.url}")
    return 0
