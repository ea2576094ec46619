"""`nlp-transfer push` reads what it would send: a Hub token in an allowed file, or a file the classifier needs
refused as a symlink, stops the push (dry run too) before any token or network use, and the token is never shown.

Run through the CLI as a user types it; the folders are written by hand, as in test_push.py (no training).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from unittest import mock

import pytest
from hub_simulation import FakeApi
from huggingface_hub import HfApi
from test_push import CLASSIFIER_FILES, METRICS, _write

from nlp_transfer.cli.app import main
from nlp_transfer.errors import UserInputError
from nlp_transfer.hub import push, secret_scan

# Token-shaped as a real one is (hf_ and 35 letters and digits); only "hf_Q7x…" may ever be shown.
TOKEN = "hf_Q7xSentinelTokenDoNotLeak0123456789"
SHOWN = "hf_Q7x…"
PUSH = ["push", "--repo-id", "me/x"]


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """A finished full fine-tuning folder with nothing but what the push sends."""
    return _write(tmp_path / "run", CLASSIFIER_FILES)


@pytest.fixture()
def hub_never_called(monkeypatch: pytest.MonkeyPatch) -> mock.Mock:
    """No Hub client may be built and no token resolved; the returned client fails the test if it is used."""
    monkeypatch.setattr(push, "HfApi", mock.Mock(side_effect=AssertionError("no Hub client")))
    monkeypatch.setattr(push, "resolve_token", mock.Mock(side_effect=AssertionError("no token lookup")))
    return mock.Mock(spec=HfApi)


def _run(
    argv: list[str], capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture | None = None
) -> tuple[int, str]:
    """The exit code and everything printed, whitespace folded (the CLI wraps its errors at 100 columns)."""
    code = main(argv)
    captured = capsys.readouterr()
    printed = captured.out + captured.err + (caplog.text if caplog else "")
    assert "Traceback" not in printed
    assert TOKEN not in printed and TOKEN[:12] not in printed
    return code, " ".join(printed.split())


def _token_line(lines: list[str], line: int) -> bytes:
    """`lines` with the token in the middle of line `line` (from 1), as the file's content."""
    lines = list(lines)
    lines.insert(line - 1, f"my token: {TOKEN} (do not share)")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.parametrize(
    ("path", "content", "line"),
    [
        ("README.md", _token_line(["---", "library_name: transformers", "---", "# classifier", ""], 6), 6),
        ("vocab.txt", _token_line([f"word{i}" for i in range(30_000)], 30_001), 30_001),
        ("config.json", f'{{\n  "architectures": ["Bert"],\n  "hub_token": "{TOKEN}"\n}}\n'.encode(), 3),
        ("tokenizer_config.json", f'{{"do_lower_case": true, "token": "{TOKEN}"}}'.encode(), 1),
        ("metrics.json", json.dumps({**METRICS, "note": f"HF_TOKEN={TOKEN}"}, indent=2).encode(), 8),
    ],
    ids=["card", "vocab-30k-lines", "config", "tokenizer-config", "metrics"],
)
def test_a_dry_run_refuses_a_token_in_an_allowed_file_naming_the_file_and_line(
    folder: Path,
    path: str,
    content: bytes,
    line: int,
    capsys: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    (folder / path).write_bytes(content)
    caplog.set_level(logging.DEBUG)

    code, printed = _run([*PUSH, "--model", str(folder), "--dry-run"], capsys, caplog)

    assert code == 2
    assert (
        f"error: The push would be refused: {path} in {folder} holds what looks like a Hugging Face token " in printed
    )
    assert f"({SHOWN}) on line {line}, which the push would upload to the Hub." in printed
    assert f"Remove the token from {path}, revoke it at https://huggingface.co/settings/tokens" in printed
    assert "Dry run: would upload" not in printed


def test_a_token_only_the_uploaded_copy_reveals_is_caught(folder: Path, capsys: pytest.CaptureFixture) -> None:
    """metrics.json goes as its public copy, re-written: a JSON escape there becomes the plain token."""
    escaped = "\\u0068" + TOKEN[1:]  # "h" escaped: not a token on disk, one in the copy the push sends
    record = json.dumps({**METRICS, "note": "NOTE"}, indent=2).replace('"NOTE"', f'"{escaped}"')
    (folder / "metrics.json").write_text(record, encoding="utf-8")
    assert TOKEN not in record

    code, printed = _run([*PUSH, "--model", str(folder), "--dry-run"], capsys)

    assert code == 2
    assert f"metrics.json in {folder} holds what looks like a Hugging Face token ({SHOWN}) on line 8 of the copy " in (
        printed
    )


def test_a_push_with_a_token_in_the_card_stops_before_any_token_lookup_or_hub_call(
    folder: Path, hub_never_called: mock.Mock, capsys: pytest.CaptureFixture
) -> None:
    (folder / "README.md").write_text(f"# classifier\n\nHF_TOKEN={TOKEN}\n", encoding="utf-8")

    code, printed = _run([*PUSH, "--model", str(folder)], capsys)
    assert code == 2
    assert (
        f"error: Push refused: README.md in {folder} holds what looks like a Hugging Face token ({SHOWN}) on line 3"
        in (printed)
    )

    with pytest.raises(UserInputError) as raised:
        push.push_folder(folder, "me/x", api=hub_never_called)
    assert hub_never_called.mock_calls == []
    assert SHOWN in str(raised.value) and TOKEN not in str(raised.value) and TOKEN not in repr(raised.value)


def test_a_token_cut_between_two_reads_is_found_on_its_line(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setattr(secret_scan, "_SCAN_CHUNK", 70)  # the token straddles the first and second read
    (folder / "vocab.txt").write_bytes(_token_line([f"w{i}" for i in range(12)], 13))

    code, printed = _run([*PUSH, "--model", str(folder), "--dry-run"], capsys)

    assert code == 2
    assert f"vocab.txt in {folder} holds what looks like a Hugging Face token ({SHOWN}) on line 13," in printed


@pytest.mark.parametrize(
    "text",
    [
        "hf_short123",  # too short for a token
        "xhf_Q7xSentinelTokenDoNotLeak0123456789",  # part of a longer word
        "HF_Q7xSentinelTokenDoNotLeak0123456789",  # tokens are lower-case hf_
        "hf_Q7x-Sentinel-Token-Do-Not-Leak-0123",  # not letters and digits only
    ],
)
def test_what_is_not_token_shaped_passes(folder: Path, text: str, capsys: pytest.CaptureFixture) -> None:
    (folder / "README.md").write_text(f"# classifier\n\n{text}\n", encoding="utf-8")
    code, printed = _run([*PUSH, "--model", str(folder), "--dry-run"], capsys)
    assert code == 0
    assert "Dry run: would upload to me/x (branch main):" in printed and "README.md" in printed


def test_weights_are_not_read(folder: Path, capsys: pytest.CaptureFixture) -> None:
    """Tensors hold no pasted text, and reading gigabytes of weights would slow every push."""
    (folder / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + TOKEN.encode())
    code, _ = _run([*PUSH, "--model", str(folder), "--dry-run"], capsys)
    assert code == 0


def test_a_clean_folder_is_pushed_in_one_commit(
    folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setattr(push, "HfApi", mock.Mock(return_value=(api := FakeApi())))

    code, printed = _run([*PUSH, "--model", str(folder)], capsys)

    assert code == 0
    assert api.names() == ["create_repo", "list_repo_files", "create_commit"]
    assert "Pushed 9 files to me/x: https://huggingface.co/me/x/commit/abc123" in printed


@pytest.mark.parametrize(
    ("files", "link"),
    [
        (CLASSIFIER_FILES, "vocab.txt"),
        (CLASSIFIER_FILES, "tokenizer.json"),
        (CLASSIFIER_FILES, "config.json"),
        ({**CLASSIFIER_FILES, "spiece.model": b"sp"}, "spiece.model"),
        ({**CLASSIFIER_FILES, "merged/config.json": b"{}", "merged/tokenizer.json": b"{}"}, "merged/tokenizer.json"),
    ],
    ids=["vocab", "tokenizer-json", "config", "sentencepiece", "merged-tokenizer"],
)
def test_a_symlinked_file_the_classifier_needs_stops_the_push(
    tmp_path: Path, files: dict[str, bytes], link: str, hub_never_called: mock.Mock, capsys: pytest.CaptureFixture
) -> None:
    folder = _write(tmp_path / "run", files)
    real = _write(tmp_path / "elsewhere", {"real": files[link]}) / "real"
    (folder / link).unlink()
    (folder / link).symlink_to(real)

    for options in (["--dry-run"], []):
        code, printed = _run([*PUSH, "--model", str(folder), *options], capsys)
        assert code == 2
        assert (
            f"error: {folder} cannot be pushed: {link} is a symlink, which the push never follows (it can point "
            "outside the folder), and the classifier cannot be loaded without it, so the push would publish an "
            "incomplete model. Copy the real file into the folder in place of the link, then push again. "
            "Nothing was uploaded."
        ) in printed
    assert hub_never_called.mock_calls == []


def test_a_symlinked_file_the_classifier_does_without_stays_local(
    tmp_path: Path, folder: Path, capsys: pytest.CaptureFixture
) -> None:
    real = _write(tmp_path / "elsewhere", {"README.md": CLASSIFIER_FILES["README.md"]}) / "README.md"
    (folder / "README.md").unlink()
    (folder / "README.md").symlink_to(real)

    code, printed = _run([*PUSH, "--model", str(folder), "--dry-run"], capsys)

    assert code == 0
    assert "Not uploaded (1, left in the folder): README.md a symlink: never followed" in printed


@pytest.mark.parametrize("chunk", [1, 7, 38, 64, 65, 100, 1 << 20])
def test_the_scan_finds_the_first_token_and_its_line_whatever_the_read_size(
    chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads of any size, a token anywhere across them: the same line, the same shown prefix, no false match."""
    monkeypatch.setattr(secret_scan, "_SCAN_CHUNK", chunk)
    for offset in range(0, 140, 3):
        text = b"a\n" * 3 + b"x" * offset + b" " + TOKEN.encode() + b"\nb\n" + b"hf_" + b"Z" * 40
        assert secret_scan._find_token(text) == (4, SHOWN), offset
        longer_word = b"y" * (offset + 1) + TOKEN.encode() + b"\n" + b"z\n" * 40
        assert secret_scan._find_token(longer_word) is None, offset
