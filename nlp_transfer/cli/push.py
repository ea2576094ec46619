"""`nlp-transfer push`: upload a trained folder to the Hugging Face Hub."""

from __future__ import annotations

from nlp_transfer.cli.common import _command_parser


def _push(argv: list[str]) -> int:
    parser = _command_parser(
        "push",
        description="Upload a trained output folder to the Hugging Face Hub in one commit: the model (or LoRA "
        "adapter), tokenizer, model card, metrics and plots; never checkpoints, optimizer state, logs or "
        "tokens. The token comes from HF_TOKEN or a saved 'hf auth login'; the package never writes it.",
        epilog="Example: nlp-transfer push --model runs/demo --repo-id my-user/support-classifier --dry-run",
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
    args = parser.parse_args(argv)
    from nlp_transfer.hub.push import push_folder
    from nlp_transfer.hub.upload_plan import format_plan

    result = push_folder(
        args.model,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        create_pr=args.create_pr,
        commit_message=args.commit_message,
        dry_run=args.dry_run,
    )
    if result.dry_run:
        print(f"Dry run: would upload to {result.repo_id} (branch {result.revision}):")
        print(format_plan(result.files, result.refused))
        return 0
    print(f"Pushed {len(result.files)} files to {result.repo_id}: {result.pr_url or result.url}")
    return 0
