"""Upload a trained output folder to the Hugging Face Hub.

What goes is decided locally first (`upload_plan`), from an allow-list of the files a finished run folder
holds: the classifier's weights (safetensors only) and config, its tokenizer, the model card, metrics, run
configuration and plots, and the `merged/` copy of --merge-lora. Everything else stays local and is named
with the reason (`UploadPlan.refused`): Trainer checkpoints, logs, keys or credentials someone put there,
anything named like a token, and every symlink, which is never followed since it can point out of the
folder. Since the list goes by name, the push then reads what it would send (`_check_secrets`) and stops at
a Hugging Face token pasted into the card, a config or a tokenizer file; it also stops when a file the
classifier needs to load was refused (`_check_loadable`), rather than publish a model that cannot load. Both
checks run before any token or network use, and in a dry run too. The push then sends exactly that list as
one commit (`HfApi.create_commit`), so a failed push leaves no files behind. `HfApi.upload_folder` is not
used: with hf_xet it splits big or slow uploads into several commits, and a failure half-way would leave part
of the classifier on the Hub.

`train --push-to-hub` calls `check_hub_access` before training, so that an offline machine or a bad token
fails at once rather than after the run. The token comes from the caller, `HF_TOKEN` or the saved
`hf auth login`; it is passed to the Hub client only, never written to a file, logged or put in a message.
"""

from __future__ import annotations

import importlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi, constants, get_token
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import validate_repo_id

from nlp_transfer.errors import UserInputError
from nlp_transfer.evaluation.record import RunRecord
from nlp_transfer.hub.secret_scan import _check_secrets
from nlp_transfer.hub.upload_plan import (
    Attachment,
    RefusedFile,
    UploadFile,
    UploadPlan,
    _card_bytes,
    _check_loadable,
    _human_size,
    _item_source,
    upload_plan,
)
from nlp_transfer.outputs import CARD_FILE
from nlp_transfer.version import __version__

logger = logging.getLogger(__name__)


DEFAULT_BRANCH = "main"


@dataclass
class PushResult:
    """What was pushed (or, for a dry run, would be) and where.

    `revision` is where the files were committed: the branch, or `refs/pr/N` for a pull request (a dry run
    gives the branch it targets). `url` is the commit's URL and `pr_url` the pull request's; both None for a
    dry run.
    """

    repo_id: str
    revision: str
    files: list[UploadFile] = field(default_factory=list)
    dry_run: bool = False
    url: str | None = None
    pr_url: str | None = None
    refused: list[RefusedFile] = field(default_factory=list)
    """The folder's paths left local, with the reason, for `format_plan`."""


def resolve_token(token: str | None = None) -> str:
    """The Hub token: `token` when given, else `HF_TOKEN`, else the one saved by `hf auth login`.

    The package never stores a token; a missing one is a UserInputError saying how to provide it.
    """
    for candidate in (token, os.environ.get("HF_TOKEN")):
        if candidate and candidate.strip():
            return candidate.strip()
    try:
        saved = get_token()
    except Exception as error:  # e.g. a failed OIDC exchange when HF_OIDC_RESOURCE is set
        raise UserInputError(
            f"Could not read a Hugging Face token ({type(error).__name__}). Export HF_TOKEN=... with a token "
            "that has write access, or run `hf auth login`."
        ) from None
    if saved and saved.strip():
        return saved.strip()
    raise UserInputError(
        "No Hugging Face token found. Create one with write access at https://huggingface.co/settings/tokens, "
        "then export HF_TOKEN=... (or run `hf auth login` once). nlp-transfer never saves the token."
    )


def push_folder(
    model_dir: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    create_pr: bool = False,
    commit_message: str | None = None,
    dry_run: bool = False,
    token: str | None = None,
    api: HfApi | None = None,
    attachment: Attachment | None = None,
) -> PushResult:
    """Upload the planned files of `model_dir` to the model repository `repo_id` as one commit.

    The repository is created when missing (`private` applies only then), and the branch `revision` too
    (from main). With `create_pr` the commit opens a pull request against the default branch; the Hub
    accepts no other base. A dry run only validates and plans: no token, no network. Every failure is a
    UserInputError naming the repository and saying that nothing was uploaded. `attachment`'s files (made for
    this push, e.g. by `push_with_onnx`) go in the same commit, and its section into the card.
    """
    folder, branch, plan = check_pushable(model_dir, repo_id, revision, create_pr, dry_run, attachment)
    files = plan.files
    target = f"a pull request on {repo_id}" if create_pr else f"{repo_id} (branch {branch})"
    total = _human_size(sum(item.size for item in files))
    logger.info(
        "%s %d files (%s) from %s to %s", "Would push" if dry_run else "Pushing", len(files), total, folder, target
    )
    for item in files:
        logger.debug("  %s (%d bytes)", item.path, item.size)
    if plan.refused:
        logger.info("Not uploaded, left in %s: %s", folder, ", ".join(item.path for item in plan.refused))
    if dry_run:
        return PushResult(repo_id=repo_id, revision=branch, files=files, dry_run=True, refused=plan.refused)

    secret = resolve_token(token)
    title = commit_message or default_commit_message(folder)
    logger.debug("Commit message: %s", title)
    operations, card = _operations(folder, files, repo_id, attachment)
    replaces = attachment.prefix if attachment is not None else None
    commit = _Commit(folder, repo_id, branch, create_pr, private, title, operations, card, replaces)
    api = api or HfApi(library_name="nlp-transfer", library_version=__version__)
    full_id, info = _send(api, commit, secret)
    url, pr_url = _text(getattr(info, "commit_url", None)), _text(getattr(info, "pr_url", None))
    where = _text(getattr(info, "pr_revision", None)) if create_pr else None
    logger.info("Pushed %d files to %s: %s", len(files), full_id, pr_url or url)
    return PushResult(
        repo_id=full_id,
        revision=where or branch,
        files=files,
        dry_run=False,
        url=url,
        pr_url=pr_url,
        refused=plan.refused,
    )


def check_pushable(
    model_dir: str | Path,
    repo_id: str,
    revision: str | None = None,
    create_pr: bool = False,
    dry_run: bool = False,
    attachment: Attachment | None = None,
) -> tuple[Path, str, UploadPlan]:
    """Everything a push checks before the network, without a token: the repository id and branch options, the
    folder's plan, that the classifier can load from what goes up, and no token in the files. (folder, branch, plan).

    `push_with_onnx` calls it before its export, so that a folder the push would refuse does not cost the export.
    """
    branch = _check_arguments(repo_id, revision, create_pr)
    folder = Path(model_dir).expanduser()
    plan = upload_plan(folder, attachment)
    _check_loadable(folder, plan.refused)
    _check_secrets(folder, plan.files, repo_id, dry_run)
    return folder, branch, plan


def check_hub_access(token: str | None, repo_id: str | None, output_dir: str | Path, api: HfApi | None = None) -> None:
    """For `train --push-to-hub`, before training: the Hub is reachable and accepts the token.

    Otherwise the push would fail only once the run is over. Offline mode is refused without a request; else
    one `whoami` call checks the token (rejected, read-only, or the Hub out of reach is a UserInputError).
    """
    later = (
        f"Or train without --push-to-hub and push the finished folder later, where the Hub can be reached, "
        f"with: nlp-transfer push --model {output_dir} --repo-id {repo_id}"
    )
    if _hub_offline():
        raise UserInputError(
            "--push-to-hub needs the Hugging Face Hub, but HF_HUB_OFFLINE=1 (or TRANSFORMERS_OFFLINE=1) is set, "
            f"so the push at the end of training would fail. Unset it to push from this machine. {later}"
        )
    secret = resolve_token(token)
    if not _is_first_process():
        return  # whoami is rate-limited: one check per job, by the process that pushes
    api = api or HfApi(library_name="nlp-transfer", library_version=__version__)
    try:
        identity = api.whoami(token=secret)
    except Exception as error:
        explanation = _explain(error, repo_id or "", DEFAULT_BRANCH)
        if explanation is None:
            raise
        message = f"--push-to-hub: checking the Hugging Face token before training failed: {explanation} {later}"
        raise UserInputError(message.replace(secret, "***")) from None
    if _token_role(identity) == "read":
        raise UserInputError(
            "--push-to-hub: the Hugging Face token is read-only, and pushing needs write access. Create a token "
            "with the write role at https://huggingface.co/settings/tokens and export HF_TOKEN=... (or run "
            f"`hf auth login`). {later}"
        )
    logger.info("Hugging Face Hub reachable; the token belongs to %s", _text(_get(identity, "name")) or "an account")


def _hub_offline() -> bool:
    """huggingface_hub's offline mode (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE, read when it was imported)."""
    return bool(constants.HF_HUB_OFFLINE)


def _is_first_process() -> bool:
    """True outside torchrun and on its rank 0 (the process that pushes)."""
    return os.environ.get("RANK", "0") == "0"


def _token_role(identity: object) -> str | None:
    """'read', 'write' or 'fineGrained' from a whoami answer; None when it does not say."""
    return _text(_get(_get(_get(identity, "auth"), "accessToken"), "role"))


def _get(mapping: object, key: str) -> object:
    return mapping.get(key) if isinstance(mapping, dict) else None


@dataclass
class _Commit:
    """One push, planned and read: where it goes, its message, the files, and the card still to name the repo."""

    folder: Path
    repo_id: str
    branch: str
    create_pr: bool
    private: bool
    title: str
    operations: list[CommitOperationAdd]
    card: str | None
    replaces: str | None = None
    """A folder of the repository (`onnx/`) that the commit replaces whole: its files the commit does not write go."""


def _check_arguments(repo_id: str, revision: str | None, create_pr: bool) -> str:
    """The branch to commit to, once the repository id and the branch options are known to be valid."""
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise UserInputError(
            f"Invalid Hub repository id {repo_id!r}: {error} Use 'NAME' or 'NAMESPACE/NAME' (a user or an "
            "organization), e.g. 'my-user/sentiment-minilm'."
        ) from None
    branch = revision or DEFAULT_BRANCH
    if create_pr and branch != DEFAULT_BRANCH:
        raise UserInputError(
            f"--create-pr opens a pull request against the default branch of {repo_id}; it cannot be combined "
            f"with revision {revision!r}. Drop one of the two (to add to an open pull request, pass its "
            "revision 'refs/pr/N' without --create-pr)."
        )
    return branch


def _operations(
    folder: Path, files: list[UploadFile], repo_id: str, attachment: Attachment | None = None
) -> tuple[list[CommitOperationAdd], str | None]:
    """The commit's files but the card, and the card's text (None when the folder has none and nothing is attached)."""
    try:
        operations = [
            CommitOperationAdd(path_in_repo=item.path, path_or_fileobj=_item_source(folder, item))
            for item in files
            if item.path != CARD_FILE
        ]
        card = (folder / CARD_FILE).read_text(encoding="utf-8") if any(i.path == CARD_FILE for i in files) else None
        if attachment is not None:
            card = (card.rstrip() + "\n\n" if card else "") + attachment.card_section.strip() + "\n"
    except OSError as error:
        raise UserInputError(
            f"Could not read {folder} to push it to {repo_id} ({type(error).__name__}: {error}); nothing was "
            "uploaded. Is a run still writing to it?"
        ) from None
    return operations, card


def _send(api: HfApi, commit: _Commit, secret: str) -> tuple[str, CommitInfo]:
    """Create the repository (and branch) and make the one commit: the resolved repository id and the commit.

    A failure the user can act on becomes a UserInputError naming the stage; any other keeps its traceback.
    """
    stage = "creating the repository"
    try:
        repo_url = api.create_repo(
            commit.repo_id, token=secret, private=commit.private, repo_type="model", exist_ok=True
        )
        # A bare NAME lands in the token's namespace: commit to the id the Hub resolved it to.
        full_id = _text(getattr(repo_url, "repo_id", None)) or commit.repo_id
        if _creates_branch(commit):
            stage = f"creating the branch {commit.branch!r}"
            api.create_branch(full_id, branch=commit.branch, token=secret, repo_type="model", exist_ok=True)
        operations = commit.operations + _card_operation(commit.card, full_id)
        if commit.replaces:
            stage = f"listing the files of {commit.replaces}"
            existing = _repository_files(api, full_id, commit, secret)
            operations += _stale_files(existing, commit.replaces, {op.path_in_repo for op in operations})
        else:
            _warn_of_an_earlier_graph(api, full_id, commit, secret)
        stage = "committing the files"
        info = api.create_commit(
            full_id,
            operations,
            commit_message=commit.title,
            token=secret,
            repo_type="model",
            revision=None if commit.create_pr else commit.branch,
            create_pr=commit.create_pr,
        )
    except Exception as error:
        explanation = _explain(error, commit.repo_id, commit.branch)
        if explanation is None:
            raise
        message = (
            f"Pushing {commit.folder} to {commit.repo_id} failed while {stage}: {explanation} Nothing was uploaded: "
            "the files go in one commit, which did not land."
        )
        raise UserInputError(message.replace(secret, "***")) from None
    return full_id, info


def _repository_files(api: HfApi, repo_id: str, commit: _Commit, secret: str) -> list[str]:
    """The files on the branch the commit lands on (for a pull request, the default branch it opens against)."""
    revision = DEFAULT_BRANCH if commit.create_pr else commit.branch
    return api.list_repo_files(repo_id, revision=revision, repo_type="model", token=secret)


def _stale_files(existing: list[str], replaced: str, written: set[str]) -> list[CommitOperationDelete]:
    """Deletions, in the same commit, of the files under `replaced` that it does not write again: a graph of an
    earlier push (an int8 one, say) must not stay beside the new weights as if it were theirs."""
    stale = sorted(path for path in existing if path.startswith(replaced) and path not in written)
    if stale:
        logger.info("Replacing %s: deleting %s in the same commit", replaced, ", ".join(stale))
    return [CommitOperationDelete(path_in_repo=path) for path in stale]


EXPORT_FOLDER = "onnx/"
"""Where `push --with-onnx` puts the graph (`inference.export_push` names it too)."""


def _warn_of_an_earlier_graph(api: HfApi, repo_id: str, commit: _Commit, secret: str) -> None:
    """A plain push leaves `onnx/` of an earlier `--with-onnx` push as it was: say that it may not match the new
    weights. Only a warning: a listing that fails does not stop the push."""
    try:
        existing = _repository_files(api, repo_id, commit, secret)
    except Exception as error:  # the push itself does not need the listing
        logger.debug("Could not list %s to look for an earlier graph: %s", repo_id, type(error).__name__)
        return
    if any(str(path).startswith(EXPORT_FOLDER) for path in existing):
        logger.warning(
            "%s holds %s from an earlier push, which this push leaves as it was: that graph may not match the new "
            "weights. Push with --with-onnx to replace it.",
            repo_id,
            EXPORT_FOLDER,
        )


def _creates_branch(commit: _Commit) -> bool:
    """True for a named branch other than main; a pull request (new or open) needs none."""
    return commit.branch != DEFAULT_BRANCH and not commit.create_pr and not commit.branch.startswith("refs/pr/")


def _card_operation(card: str | None, full_id: str) -> list[CommitOperationAdd]:
    """The card as uploaded, naming this repository by the id the Hub resolved.

    The card written at training time names no repository yet; the local folder stays as training wrote it.
    """
    if card is None:
        return []
    return [CommitOperationAdd(path_in_repo=CARD_FILE, path_or_fileobj=_card_bytes(card, full_id))]


def default_commit_message(model_dir: str | Path) -> str:
    """'Upload nlp-transfer classifier (strategy lora, accuracy=0.9000 on validation)', from metrics.json."""
    title = "Upload nlp-transfer classifier"
    try:
        record = RunRecord.load(model_dir)
        value = record.primary_value("eval")
    except (UserInputError, TypeError, AttributeError):  # no record of a run, or a malformed one: the plain title
        return title
    details = [f"strategy {record.strategy}"]
    if value is not None:
        details.append(f"{record.primary_metric}={value:.4f} on validation")
    return f"{title} ({', '.join(details)})"


def _optional_errors(module: str, name: str) -> tuple[type[BaseException], ...]:
    try:
        return (getattr(importlib.import_module(module), name),)
    except (ImportError, AttributeError):
        return ()


# HTTP clients huggingface_hub may use underneath: their transport errors are not OSErrors.
_TRANSPORT_ERRORS = _optional_errors("httpx2", "HTTPError") + _optional_errors("httpx", "HTTPError")


def _explain(error: BaseException, repo_id: str, branch: str) -> str | None:
    """What went wrong and what to do, for errors the user can act on; None for anything else (a bug)."""
    if isinstance(error, OfflineModeIsEnabled):
        return "HF_HUB_OFFLINE is set, and pushing needs the network. Run the push with HF_HUB_OFFLINE unset."
    if isinstance(error, HfHubHTTPError):
        return _explain_http(error, repo_id, branch)
    if isinstance(error, OSError) and getattr(error, "filename", None):
        return f"could not read {error.filename} ({type(error).__name__}). Is a run still writing to the folder?"
    if isinstance(error, (OSError, *_TRANSPORT_ERRORS)):  # ConnectionError, timeouts, DNS failures
        detail = _first_line(error)
        return (
            f"could not reach the Hugging Face Hub ({type(error).__name__}{': ' + detail if detail else ''}). "
            "Check the network connection (and HF_ENDPOINT, if set) and try again."
        )
    if isinstance(error, ValueError):  # the client refused the request, e.g. invalid model card metadata
        return f"the push was refused: {_first_line(error)}."
    return None


def _explain_http(error: HfHubHTTPError, repo_id: str, branch: str) -> str:
    """The Hub's HTTP answer, by status: the token, its permissions, a missing repository or revision."""
    namespace = repo_id.split("/")[0] if "/" in repo_id else "your namespace"
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status == 401:
        return (
            "the Hub rejected the token (401): it is invalid or expired. Create a token with write access at "
            "https://huggingface.co/settings/tokens and export HF_TOKEN=... (or run `hf auth login`)."
        )
    if status == 403:
        return (
            f"the token has no write access to {namespace} (403). Use a token with the write role, or a "
            "fine-grained token allowed to write to that namespace, via HF_TOKEN or `hf auth login`."
        )
    if isinstance(error, RevisionNotFoundError):
        return f"the revision {branch!r} does not exist on the Hub (404). Check the name, or push to a branch."
    if isinstance(error, RepositoryNotFoundError) or status == 404:
        return (
            f"the Hub found no repository {repo_id} (404): {namespace} may not exist, or the token cannot "
            "see it. Check the namespace and the token's permissions."
        )
    hint = " The Hub may be having trouble; try again later." if status and status >= 500 else ""
    return f"the Hub answered HTTP {status}: {_first_line(getattr(error, 'server_message', None) or error)}.{hint}"


def _first_line(message: object) -> str:
    lines = str(message).strip().splitlines()
    return lines[0].rstrip(".") if lines else ""


def _text(value: object) -> str | None:
    """`value` when it is a non-empty string, else None (CommitInfo fields may be missing)."""
    return value if isinstance(value, str) and value else None
