"""Replay the hostile inputs of the issue "Never delete what the user owns" against a checkout, as a user types them.

Each case runs the CLI in a fresh process (`python -m nlp_transfer.cli ...` with the checkout first on the
path) and records the exit code, whether a traceback was printed, the first line of the package's message,
the noise printed before it, and, where the case owns files, whether they are still there byte for byte.
Run it once against the old commit and once against the new to get the before/after table:

    git worktree add /tmp/before <old-commit>
    python scripts/hostile_inputs.py --checkout /tmp/before --output before.md
    python scripts/hostile_inputs.py --checkout . --output after.md

Needs the package's dependencies installed (the venv of either checkout); offline; about 3 minutes on 2 cores
(two short trainings of the bundled MiniLM, 1 step each).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "nlp_transfer" / "demo_data"
TOKEN = "hf_" + "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"  # token-shaped, not a real token


@dataclass
class Outcome:
    case: str
    code: int
    traceback: bool
    message: str
    noise: int
    """Lines printed to stderr before the package's message (library logs, progress bars)."""
    kept: str = ""


class Runner:
    def __init__(self, checkout: Path, folder: Path) -> None:
        self.checkout, self.folder = checkout.resolve(), folder
        self.env = {**os.environ, "PYTHONPATH": str(self.checkout), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        self.env["NLP_TRANSFER_CACHE"] = str(folder / "cache")

    def cli(self, *argv: str, background: bool = False) -> subprocess.CompletedProcess | subprocess.Popen:
        command = [sys.executable, "-m", "nlp_transfer.cli", *argv]
        if background:
            return subprocess.Popen(
                command, env=self.env, cwd=self.folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        return subprocess.run(command, env=self.env, cwd=self.folder, capture_output=True, text=True, timeout=900)

    def outcome(self, case: str, done: subprocess.CompletedProcess, kept: str = "") -> Outcome:
        err = done.stderr
        lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
        start = next((i for i, line in enumerate(lines) if line.startswith(("error:", "usage:"))), None)
        if start is None:
            last = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "")
            return Outcome(case, done.returncode, "Traceback" in err, last[:110], len(lines), kept)
        message = " ".join(lines[start : start + 3])
        return Outcome(case, done.returncode, "Traceback" in err, message[:110], start, kept)


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha1(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _user_folder(base: Path) -> Path:
    folder = base / "D"
    folder.mkdir(parents=True)
    shutil.copy(DEMO / "train.csv", folder / "train.csv")
    shutil.copy(DEMO / "validation.csv", folder / "validation.csv")
    (folder / "notes.txt").write_text("three weeks of annotation notes\n", encoding="utf-8")
    return folder


def _kept(folder: Path, before: dict[str, str]) -> str:
    after = _digest(folder) if folder.is_dir() else {}
    lost = [name for name in before if after.get(name) != before[name]]
    return "all kept" if not lost else f"LOST {', '.join(lost)}"


QUICK = ["--max-steps", "1", "--disable-tqdm", "true"]


def cases(run: Runner, base: Path) -> list[Outcome]:
    results: list[Outcome] = []
    add: Callable[[Outcome], None] = results.append

    # 1. --overwrite-output-dir onto the folder that holds the data.
    folder = _user_folder(base / "1")
    before = _digest(folder)
    done = run.cli(
        "train", "--train-file", f"{folder}/train.csv", "--validation-file", f"{folder}/validation.csv",
        "--output-dir", str(folder), "--overwrite-output-dir", *QUICK,
    )  # fmt: skip
    add(run.outcome("1 output dir = data folder, --overwrite-output-dir", done, _kept(folder, before)))

    # A trained folder for the cases that need one.
    model = base / "model"
    trained = run.cli("train", "--output-dir", str(model), *QUICK)
    if trained.returncode != 0:
        raise SystemExit(f"could not train the helper model:\n{trained.stderr[-2000:]}")

    # 2. Two identical runs into one folder, 2 s apart.
    target = base / "2" / "out"
    argv = ["train", "--output-dir", str(target), "--max-steps", "20", "--disable-tqdm", "true"]
    first = run.cli(*argv, background=True)
    time.sleep(2)
    second = run.cli(*argv)
    first.communicate(timeout=900)
    add(run.outcome("2 second run into the same folder, 2 s later", second, f"first run exit {first.returncode}"))

    # 3. Tracebacks.
    add(
        run.outcome(
            "3 --per-device-train-batch-size 0",
            run.cli("train", "--output-dir", str(base / "3"), "--per-device-train-batch-size", "0", *QUICK),
        )
    )
    afile = base / "a-file.txt"
    afile.write_text("x", encoding="utf-8")
    add(
        run.outcome(
            "3 benchmark --output-dir naming a file", run.cli("benchmark", "--output-dir", str(afile), "--no-progress")
        )
    )

    # 4. Silent-wrong results.
    joined = base / "joined.csv"
    rows = ["text,label"] + [f"ticket about billing {i},billing" for i in range(4)]
    rows += [f"billing and parcel {i},billing;delivery" for i in range(4)] + [
        f"app crash and parcel {i},technical;delivery" for i in range(4)
    ]
    joined.write_text("\n".join(rows) + "\n", encoding="utf-8")
    add(
        run.outcome(
            "4 joined labels, no --label-separator",
            run.cli("train", "--train-file", str(joined), "--output-dir", str(base / "4a"), *QUICK),
        )
    )
    for header in ("text,label,label", "text,text,label"):
        repeated = base / f"repeated-{header.replace(',', '-')}.csv"
        repeated.write_text(
            header
            + "\n"
            + "\n".join(f"good {i},x{i},positive" if i % 2 else f"bad {i},y{i},negative" for i in range(20))
            + "\n",
            encoding="utf-8",
        )
        add(
            run.outcome(
                f"4 header {header}",
                run.cli("train", "--train-file", str(repeated), "--output-dir", str(base / f"4b{header}"), *QUICK),
            )
        )
    two = base / "two.txt"
    two.write_text("first note\nsecond note\n", encoding="utf-8")
    add(
        run.outcome(
            "4 adapt on 2 texts",
            run.cli("adapt", "--text-file", str(two), "--output-dir", str(base / "4c"), "--max-steps", "1"),
        )
    )
    add(run.outcome("4 predict --text ''", run.cli("predict", "--model", str(model), "--text", "")))

    # 5. Misleading errors.
    fifo = base / "pipe.csv"
    os.mkfifo(fifo)
    add(
        run.outcome(
            "5 named pipe as --train-file",
            run.cli("train", "--train-file", str(fifo), "--output-dir", str(base / "5a")),
        )
    )
    checkpoint = base / "checkpoint-1"
    shutil.copytree(model, checkpoint)
    (checkpoint / "metrics.json").unlink()
    add(
        run.outcome(
            "5 export of an intermediate checkpoint",
            run.cli("export", "--model", str(checkpoint), "--output-dir", str(base / "5b")),
        )
    )
    body = base / "body.csv"
    body.write_text(
        "body,label\n" + "\n".join(f"text {i},{'a' if i % 2 else 'b'}" for i in range(20)) + "\n", encoding="utf-8"
    )
    add(
        run.outcome(
            "5 no text column (train)", run.cli("train", "--train-file", str(body), "--output-dir", str(base / "5c"))
        )
    )
    add(run.outcome("5 no text column (predict)", run.cli("predict", "--model", str(model), "--file", str(body))))
    add(run.outcome("5 no text column (evaluate)", run.cli("evaluate", "--model", str(model), "--file", str(body))))

    # 6. A token in the card.
    leaky = base / "leaky"
    shutil.copytree(model, leaky)
    with open(leaky / "README.md", "a", encoding="utf-8") as card:
        card.write(f"\nUse my token {TOKEN} to download.\n")
    done = run.cli("push", "--model", str(leaky), "--repo-id", "me/leaky", "--dry-run")
    shown = "TOKEN SHOWN" if TOKEN in done.stdout + done.stderr else "token not shown"
    add(run.outcome("6 push --dry-run, token in README.md", done, shown))

    # 9. Noise before clean errors.
    bad = base / "bad.jsonl"
    bad.write_text(
        '{"text": "fine", "label": "a"}\n{"text": "broken", "label": \n{"text": "fine", "label": "b"}\n',
        encoding="utf-8",
    )
    add(run.outcome("9 malformed JSONL", run.cli("train", "--train-file", str(bad), "--output-dir", str(base / "9a"))))
    add(
        run.outcome(
            "9 benchmark, bad data file",
            run.cli("benchmark", "--output-dir", str(base / "9b"), "--train-file", str(body)),
        )
    )
    done = run.cli("train", "--output-dir", str(base / "9c"), *QUICK)
    report = (
        "LOAD REPORT table"
        if "LOAD REPORT" in done.stderr
        else "one line"
        if "New classification head" in done.stderr
        else "-"
    )
    add(run.outcome("9 load report of a training", done, report))
    return results


def startup(run: Runner) -> list[tuple[str, float]]:
    """Best of 3 wall times of the start-up cases (after one untimed call that may fill the parser cache)."""
    entry = "nlp_transfer_cli" if (run.checkout / "nlp_transfer_cli.py").exists() else "nlp_transfer.cli"
    code = f"import sys; import {entry} as m; sys.argv[0] = 'nlp-transfer'; sys.exit(m.main())"
    times = []
    for argv in (["--help"], ["train", "--help"], ["train", "--bogus"]):
        command = [sys.executable, "-c", code, *argv]
        subprocess.run(command, env=run.env, capture_output=True, timeout=120)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(command, env=run.env, capture_output=True, timeout=120)
            best = min(best, time.perf_counter() - start)
        times.append((" ".join(argv), best))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", default=str(REPO), help="The checkout whose nlp_transfer is run.")
    parser.add_argument("--output", help="Write the Markdown table here (default: stdout).")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hostile-") as temporary:
        base = Path(temporary)
        run = Runner(Path(args.checkout), base)
        results = cases(run, base)
        times = startup(run)
    lines = ["| case | exit | traceback | noise lines before the message | message (first words) | files / note |"]
    lines.append("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        message = r.message.replace("|", "\\|")
        lines.append(f"| {r.case} | {r.code} | {'yes' if r.traceback else 'no'} | {r.noise} | {message} | {r.kept} |")
    lines.append("")
    lines.append("| start-up (best of 3) | seconds |")
    lines.append("| --- | --- |")
    lines += [f"| {case} | {seconds:.2f} |" for case, seconds in times]
    text = "\n".join(lines) + "\n"
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
