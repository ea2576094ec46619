"""Teacher and students side by side: what `nlp-transfer distill` saves and what it costs (BENCHMARKS.md).

    python scripts/benchmark_distill.py --output-root runs/distill --datasets sst2,ag_news

Per dataset, from ../shared/data (slices drawn with seed 0 and written once under OUTPUT_ROOT/data):
- sst2: the teacher is the default `nlp-transfer train` on 2,000 SST-2 training rows (validation: 1,000 rows of
  validation.csv); the unlabelled transfer texts are 20,000 other training sentences, labels dropped; test is
  test.csv (GLUE's dev set).
- ag_news: the teacher trains on 256 rows (64 per class) of train.csv; validation 1,000 other rows; the unlabelled
  texts are the remaining 8,745 rows of that file (it holds 10,001); test is the 7,600-row AG News test set.

Each student kind (layers:3, static) is trained from the teacher with the unlabelled texts, from the teacher on
its own training rows only, and without a teacher: `--student-init base --alpha 0` (the same student built from
the pretrained checkpoint with the teacher's head, trained on the labelled rows alone with the same settings), for
static also with 20 epochs, and for layers:3 the 3-layer cut of the checkpoint trained by `nlp-transfer train`
with its own recipe. Every distill run scores teacher and
student on the same files and times both on this CPU one after the other; at the end each pair is timed again
(--repeat-timing) and the table gives the median speed-up. Finished runs are kept: re-running resumes.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # scripts/csv_rows.py (scripts/ is not a package)
from csv_rows import read_rows, write_rows  # noqa: E402

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
VARIANTS = {
    "teacher+unlabelled": ["--text-file", "{transfer}"],
    "teacher on its training rows": [],
    "no teacher": ["--student-init", "base", "--alpha", "0"],
    "no teacher, 20 epochs": ["--student-init", "base", "--alpha", "0", "--epochs", "20"],
    "no teacher, train's recipe": [],
}
TRAIN_RECIPE = "no teacher, train's recipe"
"""layers:K only: the K-layer cut of the pretrained checkpoint trained by `nlp-transfer train` with its own recipe
(learning rate, epochs, best checkpoint on validation): the strongest student without a teacher the package makes."""
STUDENTS = ("layers:3", "static")


def prepare(dataset: str, folder: Path) -> dict[str, Path]:
    """train / validation / transfer (unlabelled) / test files of one dataset, written once."""
    files = {name: folder / f"{name}.csv" for name in ("train", "validation", "transfer")}
    if dataset == "sst2":
        files["test"] = SHARED / "sst2" / "test.csv"
    else:
        files["test"] = SHARED / "ag_news" / "test.csv"
    if all(path.is_file() for path in files.values()):
        return files
    if dataset == "sst2":
        rows = read_rows(SHARED / "sst2" / "train.csv")
        random.Random(0).shuffle(rows)
        train, transfer = rows[:2000], rows[2000:22000]
        validation = read_rows(SHARED / "sst2" / "validation.csv")
        random.Random(0).shuffle(validation)
        validation = validation[:1000]
    else:
        rows = read_rows(SHARED / "ag_news" / "train.csv")
        random.Random(0).shuffle(rows)
        by_label: dict[str, list[dict[str, str]]] = {}
        for row in rows:
            by_label.setdefault(row["label"], []).append(row)
        train = [row for label in sorted(by_label) for row in by_label[label][:64]]
        random.Random(1).shuffle(train)
        chosen = {id(row) for row in train}
        rest = [row for row in rows if id(row) not in chosen]
        validation, transfer = rest[:1000], rest[1000:]
    write_rows(files["train"], train, ["text", "label"])
    write_rows(files["validation"], validation, ["text", "label"])
    write_rows(files["transfer"], [{"text": row["text"], "label": ""} for row in transfer], ["text", "label"])
    return files


def run(command: list[str], log: Path) -> None:
    print("$", " ".join(command), flush=True)
    with open(log, "w", encoding="utf-8") as handle:
        code = subprocess.call(command, stdout=handle, stderr=subprocess.STDOUT)
    if code:
        sys.exit(f"failed ({code}): see {log}")


def nlp_transfer(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "nlp_transfer.cli", *arguments]


def teacher(files: dict[str, Path], folder: Path) -> Path:
    target = folder / "teacher"
    if not (target / "metrics.json").is_file():
        run(
            nlp_transfer(
                "train",
                "--train-file",
                str(files["train"]),
                "--validation-file",
                str(files["validation"]),
                "--test-file",
                str(files["test"]),
                "--output-dir",
                str(target),
                "--disable-tqdm",
                "true",
            ),
            folder / "teacher.log",
        )
    return target


def folder_name(kind: str, variant: str) -> str:
    return f"{kind.replace(':', '')}-" + "".join(c if c.isalnum() else "-" for c in variant).strip("-")


def cut_checkpoint(kind: str, teacher_dir: Path, folder: Path) -> Path:
    """The teacher's pretrained checkpoint with only the layers `kind` keeps, saved for `nlp-transfer train`."""
    import shutil

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from nlp_transfer.evaluation.record import RunRecord
    from nlp_transfer.modeling.checkpoints import resolve_checkpoint
    from nlp_transfer.modeling.depth import fewer_layers, spread_layers

    target = folder / f"checkpoint-{kind.replace(':', '')}"
    if not (target / "config.json").is_file():
        source = Path(resolve_checkpoint(RunRecord.load(teacher_dir).base_model).source)
        model = AutoModelForSequenceClassification.from_pretrained(source)
        keep = spread_layers(model.config.num_hidden_layers, int(kind.split(":")[1]))
        fewer_layers(model, keep).base_model.save_pretrained(target)
        AutoTokenizer.from_pretrained(source).save_pretrained(target)
        for name in ("modules.json", "1_Pooling"):  # how the checkpoint says it is read (mean pooling)
            if (source / name).is_dir():
                shutil.copytree(source / name, target / name)
            elif (source / name).is_file():
                shutil.copy(source / name, target / name)
    return target


def trained_without_teacher(files: dict[str, Path], teacher_dir: Path, kind: str, folder: Path) -> Path:
    target = folder / folder_name(kind, TRAIN_RECIPE)
    if not (target / "metrics.json").is_file():
        checkpoint = cut_checkpoint(kind, teacher_dir, folder)
        command = nlp_transfer("train", "--model", str(checkpoint), "--train-file", str(files["train"]))
        command += ["--validation-file", str(files["validation"]), "--test-file", str(files["test"])]
        run(command + ["--output-dir", str(target), "--disable-tqdm", "true"], target.with_suffix(".log"))
    return target


def student(files: dict[str, Path], teacher_dir: Path, kind: str, variant: str, folder: Path) -> Path:
    if variant == TRAIN_RECIPE:
        return trained_without_teacher(files, teacher_dir, kind, folder)
    target = folder / folder_name(kind, variant)
    if not (target / "distill_report.json").is_file():
        extra = [part.format(transfer=files["transfer"]) for part in VARIANTS[variant]]
        command = nlp_transfer(
            "distill",
            "--teacher",
            str(teacher_dir),
            "--student",
            kind,
            "--output-dir",
            str(target),
            "--train-file",
            str(files["train"]),
            "--validation-file",
            str(files["validation"]),
            "--test-file",
            str(files["test"]),
            "--quiet",
            "--overwrite-output-dir",
            *extra,
        )
        run(command, target.with_suffix(".log"))
    return target


def applies(kind: str, variant: str) -> bool:
    """The train recipe exists for layers:K (a transformer), the 20-epoch baseline is for the static student."""
    if variant == TRAIN_RECIPE:
        return kind.startswith("layers:")
    return variant != "no teacher, 20 epochs" or kind == "static"


def retime(teacher_dir: Path, student_dir: Path, validation: Path, repeats: int) -> list[float]:
    """Speed-ups at batch 32 measured again, `repeats` times, each pair one after the other in one process."""
    code = (
        "import json,sys;from nlp_transfer import load_classifier;from nlp_transfer.data.reading import read_texts;"
        "from nlp_transfer.inference.export_check import measure_latency;"
        "t,p=read_texts(sys.argv[3],None,None);"
        "a=load_classifier(sys.argv[1],device='cpu');b=load_classifier(sys.argv[2],device='cpu');"
        "print(json.dumps([[measure_latency(m,t,p) for m in (a,b)] for _ in range(int(sys.argv[4]))]))"
    )
    output = subprocess.check_output(
        [sys.executable, "-c", code, str(teacher_dir), str(student_dir), str(validation), str(repeats)], text=True
    )
    pairs = json.loads(output.strip().splitlines()[-1])
    return [b["batch_32_texts_per_s"] / a["batch_32_texts_per_s"] for a, b in pairs]


def table_rows(dataset: str, teacher_dir: Path, runs: dict[tuple[str, str], Path], speedups: dict) -> list[str]:
    record = json.loads((teacher_dir / "metrics.json").read_text())
    primary = record["primary_metric"]
    lines = []
    for (kind, variant), folder in runs.items():
        if not (folder / "distill_report.json").is_file():  # trained by `nlp-transfer train`: scores only
            trained = json.loads((folder / "metrics.json").read_text())
            lines.append(
                f"| {dataset} | {kind} | {variant} | {trained['test'][primary]:.4f} | {trained['eval'][primary]:.4f} "
                "| - | - | - | - | - | - |"
            )
            continue
        report = json.loads((folder / "distill_report.json").read_text())
        splits, cost = report["splits"], report["cost"]
        if not lines:
            t = cost["teacher"]
            lines.append(
                f"| {dataset} | teacher | - | {splits['test']['teacher'][primary]:.4f} | "
                f"{splits['validation']['teacher'][primary]:.4f} | - | {t['batch_1_texts_per_s']:,.0f} | "
                f"{t['batch_32_texts_per_s']:,.0f} | 1.0 | {t['size_mb']:.1f} | {t['parameters']:,} |"
            )
        s = cost["student"]
        again = speedups.get((kind, variant))
        speed = f"{s['batch_32_texts_per_s'] / cost['teacher']['batch_32_texts_per_s']:.1f}"
        if again:
            speed += f" (again: {statistics.median(again):.1f})"
        lines.append(
            f"| {dataset} | {kind} | {variant} | {splits['test']['student'][primary]:.4f} | "
            f"{splits['validation']['student'][primary]:.4f} | {splits['test']['agreement']:.2%} | "
            f"{s['batch_1_texts_per_s']:,.0f} | {s['batch_32_texts_per_s']:,.0f} | {speed} | {s['size_mb']:.1f} | "
            f"{s['parameters']:,} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-root", type=Path, required=True)
    parser.add_argument("--datasets", default="sst2,ag_news")
    parser.add_argument("--students", default=",".join(STUDENTS))
    parser.add_argument("--variants", default=";".join(VARIANTS), help="';'-separated, from: " + "; ".join(VARIANTS))
    parser.add_argument("--repeat-timing", type=int, default=3, help="Timings of each pair at the end (0: none).")
    args = parser.parse_args()
    header = (
        "| dataset | model | transfer texts | test primary | validation primary | test agreement with teacher | "
        "texts/s b1 | texts/s b32 | x teacher b32 | MB | parameters |\n| --- | --- | --- | --- | --- | --- | --- | --- "
        "| --- | --- | --- |"
    )
    lines = [header]
    for dataset in args.datasets.split(","):
        folder = args.output_root / dataset
        files = prepare(dataset, folder / "data")
        teacher_dir = teacher(files, folder)
        runs = {
            (kind, variant): student(files, teacher_dir, kind, variant, folder)
            for kind in args.students.split(",")
            for variant in args.variants.split(";")
            if applies(kind, variant)
        }
        speedups = {}
        if args.repeat_timing:
            for key, path in runs.items():
                if (path / "distill_report.json").is_file():
                    speedups[key] = retime(teacher_dir, path, files["validation"], args.repeat_timing)
        lines += table_rows(dataset, teacher_dir, runs, speedups)
        print("\n".join(lines), flush=True)
    (args.output_root / "table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
