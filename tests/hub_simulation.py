"""A Hugging Face Hub simulated where the tests can reach it: a fake client that records each push's one commit, and
a cache folder in which huggingface_hub, transformers and peft find that commit's files offline.

`put_repository` writes files as the snapshot of a repository's main branch in a Hugging Face cache (HF_HUB_CACHE),
which is where those libraries look when HF_HUB_OFFLINE=1; `run_snippets` runs a card's Python snippets unchanged in
a fresh process against it and compares what each shows with the probabilities `load_classifier` gives.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from huggingface_hub import CommitInfo, RepoUrl

EXAMPLE = "Where is my parcel? It was due on Monday."
"""The text every card's snippets classify."""
COMMIT = "0" * 40


class FakeApi:
    """Records every call with its arguments; `fail` maps a method name to the exception it raises."""

    def __init__(
        self,
        fail: dict[str, BaseException] | None = None,
        namespace: str = "my-user",
        role: str = "write",
        repo_files: list[str] | None = None,
    ) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail or {}
        self.namespace = namespace
        self.role = role
        self.repo_files = repo_files or []
        """What the repository already holds, for `list_repo_files`."""

    def _record(self, name: str, **kwargs: Any) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def whoami(self, **kwargs: Any) -> dict[str, Any]:
        self._record("whoami", **kwargs)
        return {"type": "user", "name": self.namespace, "auth": {"accessToken": {"role": self.role}}}

    def create_repo(self, repo_id: str, **kwargs: Any) -> RepoUrl:
        self._record("create_repo", repo_id=repo_id, **kwargs)
        full = repo_id if "/" in repo_id else f"{self.namespace}/{repo_id}"
        return RepoUrl(f"https://huggingface.co/{full}")

    def create_branch(self, repo_id: str, **kwargs: Any) -> None:
        self._record("create_branch", repo_id=repo_id, **kwargs)

    def list_repo_files(self, repo_id: str, **kwargs: Any) -> list[str]:
        self._record("list_repo_files", repo_id=repo_id, **kwargs)
        return list(self.repo_files)

    def create_commit(self, repo_id: str, operations: list, **kwargs: Any) -> CommitInfo:
        self._record("create_commit", repo_id=repo_id, operations=list(operations), **kwargs)
        return CommitInfo(
            commit_url=f"https://huggingface.co/{repo_id}/commit/abc123",
            commit_message=kwargs["commit_message"],
            commit_description="",
            oid="abc123",
            pr_url=f"https://huggingface.co/{repo_id}/discussions/7" if kwargs.get("create_pr") else None,
        )

    def call(self, name: str) -> dict[str, Any]:
        matches = [kwargs for called, kwargs in self.calls if called == name]
        assert len(matches) == 1, f"{name} called {len(matches)} times: {self.calls}"
        return matches[0]

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class CommittingHub(FakeApi):
    """The fake Hub, keeping each file's bytes as the commit sends them (an attachment's files are temporary)."""

    def create_commit(self, repo_id: str, operations: list, **kwargs: Any) -> CommitInfo:
        self.files = {
            op.path_in_repo: _content(op.path_or_fileobj) for op in operations if hasattr(op, "path_or_fileobj")
        }
        self.deleted = sorted(op.path_in_repo for op in operations if not hasattr(op, "path_or_fileobj"))
        return super().create_commit(repo_id, operations, **kwargs)


def _content(source: str | bytes) -> bytes:
    return source if isinstance(source, bytes) else Path(source).read_bytes()


def put_repository(cache: Path, repo_id: str, files: dict[str, str | bytes]) -> None:
    """`files` (path in the repository -> local file or content) as the snapshot of `repo_id`'s main branch in the
    Hugging Face cache `cache`: where huggingface_hub finds a downloaded repository when offline."""
    repository = cache / f"models--{repo_id.replace('/', '--')}"
    (repository / "refs").mkdir(parents=True, exist_ok=True)
    (repository / "refs" / "main").write_text(COMMIT)
    for path, source in files.items():
        target = repository / "snapshots" / COMMIT / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, bytes):
            target.write_bytes(source)
        else:
            shutil.copyfile(source, target)


def pushed_card(cache: Path, repo_id: str) -> str:
    return (cache / f"models--{repo_id.replace('/', '--')}" / "snapshots" / COMMIT / "README.md").read_text("utf-8")


@contextmanager
def simulated_hub(cache: Path) -> Iterator[Path]:
    """`cache` as the Hugging Face cache of this process and of the processes it starts."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
        patch.setenv("HF_HUB_CACHE", str(cache))
        yield cache


def snippets(card: str) -> list[str]:
    """The card's Python code blocks, as written."""
    return re.findall(r"```python\n(.*?)```", card, flags=re.DOTALL)


RUNNER = r"""
import ast, json, sys
import numpy as np
snippets, labels, multi_label, repo_id, without_package = json.loads(sys.stdin.read())
if without_package:
    sys.modules["nlp_transfer"] = None  # as where the package is not installed: any import of it fails


def probabilities(values):
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if multi_label:
        return dict(zip(labels, (1 / (1 + np.exp(-values))).tolist()))
    exp = np.exp(values - values.max())
    return dict(zip(labels, (exp / exp.sum()).tolist()))


results = []
for code in snippets:
    tree = ast.parse(code)
    if isinstance(tree.body[-1], ast.Expr):  # the snippet's last expression is what it shows the user
        tree.body[-1] = ast.Assign([ast.Name("_result", ast.Store())], tree.body[-1].value)
    space = {}
    exec(compile(ast.fix_missing_locations(tree), "<card>", "exec"), space)
    shown = space.get("_result")
    if isinstance(shown, list) and len(shown) == 1 and isinstance(shown[0], list):  # a pipeline's top_k=None
        shown = shown[0]
    if isinstance(shown, list) and shown and "scores" in shown[0]:  # load_classifier(...).predict
        results.append(shown[0]["scores"])
    elif isinstance(shown, list) and shown and "label" in shown[0]:  # a pipeline
        results.append({row["label"]: row["score"] for row in shown})
    elif "logits" in space:  # the ONNX session
        results.append(probabilities(space["logits"][0]))
    elif "model" not in space:
        raise SystemExit(f"nothing to compare from this snippet (it showed {shown!r}):\n{code}")
    else:  # a model: the repository's tokenizer in front
        import torch
        from transformers import AutoTokenizer

        batch = AutoTokenizer.from_pretrained(repo_id)([EXAMPLE], return_tensors="pt", truncation=True, max_length=16)
        with torch.no_grad():
            results.append(probabilities(space["model"](**batch).logits[0].numpy()))
print("RESULTS", json.dumps(results))
""".replace("EXAMPLE", json.dumps(EXAMPLE))


def run_snippets(codes: list[str], folder: Path, repo_id: str, tmp_path: Path) -> None:
    """Run the snippets in a fresh process (those without nlp_transfer where it cannot be imported) and compare what
    each shows on EXAMPLE with the probabilities `load_classifier(folder)` gives, to 1e-5."""
    from nlp_transfer import load_classifier
    from nlp_transfer.tasks import MULTI_LABEL

    classifier = load_classifier(folder, device="cpu")
    expected = classifier.predict([EXAMPLE])[0]["scores"]
    labels, multi_label = list(expected), classifier.task == MULTI_LABEL
    for without_package in (True, False):
        group = [code for code in codes if ("nlp_transfer" in code) != without_package]
        if not group:
            continue
        done = subprocess.run(
            [sys.executable, "-c", RUNNER],
            input=json.dumps([group, labels, multi_label, repo_id, without_package]),
            capture_output=True,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(tmp_path / "modules")},
            cwd=tmp_path,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        printed = [line for line in done.stdout.splitlines() if line.startswith("RESULTS ")]
        assert len(printed) == 1, done.stdout[-3000:]
        for code, shown in zip(group, json.loads(printed[0].removeprefix("RESULTS ")), strict=True):
            assert shown, code
            for label, probability in shown.items():
                assert probability == pytest.approx(expected[label], abs=1e-5), (code, shown, expected)
