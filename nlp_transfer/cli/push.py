"""`nlp-transfer push`: upload a trained folder to the Hugging Face Hub."""

from __future__ import annotations

import argparse
from typing import Any

from nlp_transfer.cli.common import _command_parser
from nlp_transfer.cli.export import VERIFICATION_DESTS, add_verification_arguments, verification_options


def _push(argv: list[str]) -> int:
    parser = _command_parser(
        "push",
        description="Upload a trained output folder to the Hugging Face Hub in one commit: the model (or LoRA "
        "adapter), tokenizer, model card, metrics and plots; never checkpoints, optimizer state, logs or "
        "tokens. The token comes from HF_TOKEN or a saved 'hf auth login'; the package never writes it.",
        epilog="Examples:\n  nlp-transfer push --model runs/demo --repo-id my-user/support-classifier --dry-run\n"
        "  nlp-transfer push --model runs/demo --repo-id my-user/support-classifier --with-onnx --quantize int8",
    )
    parser.add_argument("--model", required=True, help="Output folder of 'nlp-transfer train'.")
    parser.add_argument("--repo-id", required=True, help="Hub model repository: NAME or NAMESPACE/NAME.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private (if new).")
    parser.add_argument("--revision", help="Branch to push to (created from main when missing).")
    parser.add_argument("--create-pr", action="store_true", help="Open a pull request instead of committing.")
    parser.add_argument("--commit-message", help="Commit title (default: strategy and primary metric).")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="List the files that would be uploaded, with sizes, and each file left local with the reason; upload "
        "nothing.",
    )
    _onnx_arguments(parser)
    args = parser.parse_args(argv)
    from nlp_transfer.hub.push import push_folder
    from nlp_transfer.hub.upload_plan import format_plan

    options = {
        "private": args.private,
        "revision": args.revision,
        "create_pr": args.create_pr,
        "commit_message": args.commit_message,
        "dry_run": args.dry_run,
    }
    if args.with_onnx:
        result = _push_with_onnx(args, options)
    else:
        _refuse_onnx_options_without_onnx(parser, args)
        result = push_folder(args.model, args.repo_id, **options)
    if result.dry_run:
        print(f"Dry run: would upload to {result.repo_id} (branch {result.revision}):")
        print(format_plan(result.files, result.refused))
        return 0
    print(f"Pushed {len(result.files)} files to {result.repo_id}: {result.pr_url or result.url}")
    return 0


def _onnx_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "ONNX graph beside the weights",
        "With --with-onnx the push first exports the classifier to ONNX and verifies it against PyTorch on the "
        "run's validation texts (as 'nlp-transfer export' does, with its options below), then uploads the graph, "
        "its tokenizer, config and export_report.json under onnx/ in the same commit, and adds the verification "
        "figures to the card. A graph that fails its verification stops the push: nothing is uploaded. --dry-run "
        "exports and verifies too. Needs the onnx extra: pip install 'nlp-transfer[onnx]'.",
    )
    group.add_argument("--with-onnx", action="store_true", help="Export, verify and upload the ONNX graph too.")
    add_verification_arguments(group)


def _refuse_onnx_options_without_onnx(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An export option given without --with-onnx would be ignored: refused, naming it."""
    given = [
        f"--{name.replace('_', '-')}" for name in VERIFICATION_DESTS if getattr(args, name) != parser.get_default(name)
    ]
    if given:
        from nlp_transfer.errors import UserInputError

        raise UserInputError(f"{', '.join(given)} only apply with --with-onnx; add --with-onnx or drop them.")


def _push_with_onnx(args: argparse.Namespace, options: dict[str, Any]) -> Any:
    from nlp_transfer.inference.export_check import summary
    from nlp_transfer.inference.export_push import ONNX_SUBFOLDER, push_with_onnx

    done = push_with_onnx(args.model, args.repo_id, **verification_options(args), **options)
    print(summary(done.export, f"{ONNX_SUBFOLDER}/ of the push"))
    return done.push
