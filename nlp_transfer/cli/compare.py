"""`nlp-transfer compare`: train a grid of runs and tabulate mean +- std over seeds."""

from __future__ import annotations

import argparse
import sys

from nlp_transfer.cli.common import _command_parser

GRID_EXAMPLE = """\
Example grid file (YAML; every option of 'nlp-transfer train' works, a list of values is one more axis):

  train_file: ../shared/data/sst2/train.csv
  validation_file: ../shared/data/sst2/test.csv
  strategies: [full, freeze, {strategy: lora, lora_r: 16, name: lora-r16}]
  train_sizes: [16, 64, 256, 2000]      # drawn stratified by label; 'all' for the whole file
  seeds: [0, 1, 2]
  output_dir: runs/grid

Without a validation file, one validation split is carved from the training data with split_seed (default
42) before any size is drawn, so every cell is scored on the same rows. Re-running the same command skips
the cells already in OUTPUT_DIR/runs.jsonl. Writes runs.csv (one row per run), summary.csv, summary.json and
summary.md (mean +- std over seeds); cells/CELL/metrics.json keeps each run's record (the model too with
keep_models: true).
"""


def _compare_parser() -> argparse.ArgumentParser:
    parser = _command_parser(
        "compare",
        description="Train a grid of runs (strategies x training-set sizes x seeds, and any option given as a "
        "list) one after another on one fixed validation set, and tabulate what each strategy reaches at "
        "each size, with the spread over seeds.",
        epilog=GRID_EXAMPLE,
    )
    parser.add_argument("--config", required=True, help="Grid file (YAML or JSON), as in the example below.")
    parser.add_argument("--output-dir", help="The grid's folder (overrides output_dir in the file).")
    parser.add_argument("--no-progress", action="store_true", help="No progress bar over the cells.")
    parser.add_argument(
        "--dry-run", action="store_true", help="List the cells (and which are finished) and train nothing."
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="Write the tables and plots from the cells finished so far and train nothing (read a long grid "
        "while it runs, or after a kill).",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "ray"),
        default="local",
        help="local: cells one after another in this process. ray: each cell a Ray task, several at a time "
        "(pip install 'nlp-transfer[ray]'); on a multi-node cluster the grid's folder must be shared storage.",
    )
    parser.add_argument(
        "--ray-address", help="Join this Ray cluster (e.g. auto, or ray://host:10001); without it a local one starts."
    )
    parser.add_argument(
        "--cpus-per-cell", type=float, default=1, help="CPUs Ray reserves for each cell (a GPU too when there is one)."
    )
    return parser


def _compare(argv: list[str]) -> int:
    args = _compare_parser().parse_args(argv)
    from nlp_transfer.experiments.grid import load_grid
    from nlp_transfer.experiments.report import report_grid
    from nlp_transfer.experiments.results import finished_cells
    from nlp_transfer.experiments.runner import run_grid

    grid = load_grid(args.config, {"output_dir": args.output_dir} if args.output_dir else None)
    if args.dry_run:
        finished = finished_cells(grid)
        for cell in grid.cells:
            print(f"{'finished' if cell.key in finished else 'to train':<9} {cell.key}")
        print(f"{len(grid.cells)} cells, {len(finished)} finished, into {grid.folder}")
        return 0
    if args.report_only:
        rows = report_grid(grid)
        print((grid.folder / "summary.md").read_text(encoding="utf-8"))
        print(f"Report of {len(rows)} of {len(grid.cells)} cells written to {grid.folder}", file=sys.stderr)
        return 0
    print(f"Grid: {len(grid.cells)} runs into {grid.folder} ({args.backend} backend)", file=sys.stderr)
    outcome = run_grid(
        grid,
        progress=not args.no_progress,
        backend=args.backend,
        ray_address=args.ray_address,
        cpus_per_cell=args.cpus_per_cell,
    )
    print((grid.folder / "summary.md").read_text(encoding="utf-8"))
    print(
        f"Trained {len(outcome.trained)} cells, {len(outcome.skipped)} finished before; tables in {grid.folder}",
        file=sys.stderr,
    )
    if outcome.failed:
        for key, message in outcome.failed.items():
            print(f"Cell {key} failed: {message}", file=sys.stderr)
        print(
            f"{len(outcome.failed)} cells failed (see {grid.folder / 'failed.jsonl'}); re-run to retry them.",
            file=sys.stderr,
        )
        return 1
    return 0
