"""Where a training step's time goes: torch.profiler over a few optimizer steps of `nlp-transfer train`.

    python scripts/profile_training_step.py --train-file ../shared/data/sst2/train.csv \
        --validation-file ../shared/data/sst2/test.csv --max-train-samples 2000 [--predict-model DIR]

First the machine's matrix-multiply peak (`nlp_transfer.experiments.benchmark.matmul_peak`, 2048^3) and the speed of the
matrix multiplies a training batch of about 512 tokens makes with MiniLM's shapes. Then it trains with the
package's defaults (any `nlp-transfer train` option may follow `--`) in a temporary folder, profiles the CPU
operators of steps WARMUP .. WARMUP+STEPS, prints them by their own time and ends the run there (the folder is
removed). With --predict-model, also the share of `Classifier.predict`'s time (batch 32, the first 256 validation
texts) spent in nn.Linear, and its speed beside transformers.pipeline's on the same texts. Run it on a quiet
machine.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from typing import Any

import torch
from transformers import TrainerCallback

from nlp_transfer import RunConfig
from nlp_transfer.experiments.benchmark import matmul_peak
from nlp_transfer.training import train_phase
from nlp_transfer.training.fine_tune import fine_tune

MATMUL_OPERATORS = ("aten::mm", "aten::addmm", "aten::bmm")
BATCH_SHAPES = {"q/k/v/out 512x384 @ 384x384": (512, 384, 384), "FFN up 512x384 @ 384x1536": (512, 384, 1536)}
BATCH_SHAPES["FFN down 512x1536 @ 1536x384"] = (512, 1536, 384)


def matmul_rate(m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """GFLOP/s of the fastest of repeated (m x k) @ (k x n) fp32 products."""
    a, b = torch.randn(m, k), torch.randn(k, n)
    for _ in range(3):
        a @ b
    best, deadline = float("inf"), time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * m * k * n / best / 1e9


def profile_predict(model: str, validation_file: str) -> None:
    """cProfile of Classifier.predict at batch 32 on the first 256 validation texts: the share in nn.Linear."""
    import cProfile
    import pstats

    from nlp_transfer import load_classifier
    from nlp_transfer.data.reading import read_texts

    texts = read_texts(validation_file, None, None)[0][:256]
    classifier = load_classifier(model)
    classifier.predict(texts, batch_size=32)  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    classifier.predict(texts, batch_size=32)
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    total = max(entry[3] for entry in stats.values())  # cumulative time of the outermost call
    linear = sum(entry[2] for key, entry in stats.items() if key[2] == "<built-in method torch._C._nn.linear>")
    print(f"predict, 256 texts at batch 32: {total:.2f} s, of which nn.Linear {linear:.2f} s ({linear / total:.0%})")

    from transformers import pipeline

    peer = pipeline("text-classification", model=classifier.model, tokenizer=classifier.tokenizer, device=-1)
    rates = {}
    for name, run in (("predict", lambda: classifier.predict(texts, batch_size=32)),
                      ("pipeline", lambda: peer(texts, batch_size=32, truncation=True))):  # fmt: skip
        run()  # warm-up
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            run()
            best = min(best, time.perf_counter() - started)
        rates[name] = len(texts) / best
    print(
        f"texts/s at batch 32, best of 3: predict {rates['predict']:.1f}, pipeline {rates['pipeline']:.1f} "
        f"({rates['predict'] / rates['pipeline']:.2f}x)"
    )


class ProfileSteps(TrainerCallback):
    """Profiles optimizer steps warmup .. warmup + steps, prints the table, then ends training."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps = warmup, steps
        self.profiler: Any = None
        self.started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.warmup and self.profiler is None:
            self.profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
            self.profiler.__enter__()
            self.started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self.profiler is not None and state.global_step == self.warmup + self.steps:
            seconds = time.perf_counter() - self.started
            self.profiler.__exit__(None, None, None)
            report(self.profiler, seconds, self.steps)
            control.should_training_stop = True


def report(profiler: Any, seconds: float, steps: int) -> None:
    events = profiler.key_averages()
    total = sum(event.self_cpu_time_total for event in events)
    matmul = sum(event.self_cpu_time_total for event in events if event.key in MATMUL_OPERATORS)
    print(f"{steps} steps in {seconds:.2f} s ({1000 * seconds / steps:.0f} ms a step, profiler included)")
    print(f"matrix multiplies ({', '.join(MATMUL_OPERATORS)}): {matmul / total:.1%} of the operators' own CPU time")
    print(events.table(sort_by="self_cpu_time_total", row_limit=25))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-file", required=True)
    parser.add_argument("--validation-file", required=True)
    parser.add_argument("--max-train-samples", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=10, help="Optimizer steps before profiling (default 10).")
    parser.add_argument("--steps", type=int, default=20, help="Optimizer steps profiled (default 20).")
    parser.add_argument("--predict-model", help="A trained folder whose predict to profile as well.")
    args, train_args = parser.parse_known_args()
    train_args = [arg for arg in train_args if arg != "--"]

    peak = matmul_peak() / 1e9
    print(f"matrix-multiply peak measured here: {peak:.1f} GFLOP/s (fp32, {torch.get_num_threads()} threads)")
    for name, shape in BATCH_SHAPES.items():
        rate = matmul_rate(*shape)
        print(f"  {name}: {rate:.1f} GFLOP/s ({rate / peak:.0%} of the peak)")
    if args.predict_model:
        profile_predict(args.predict_model, args.validation_file)
    output = tempfile.mkdtemp(prefix="nlp-transfer-profile-")
    argv = [
        "--train-file", args.train_file, "--validation-file", args.validation_file,
        "--max-train-samples", str(args.max_train_samples), "--output-dir", f"{output}/run",
        "--eval-strategy", "no", "--save-strategy", "no", "--load-best-model-at-end", "false",
        "--disable-tqdm", "true", *train_args,
    ]  # fmt: skip
    config = RunConfig.from_args(argv)
    build = train_phase.build_trainer

    def build_with_profiler(*positional: Any, **named: Any) -> Any:
        trainer = build(*positional, **named)
        trainer.add_callback(ProfileSteps(args.warmup, args.steps))
        return trainer

    train_phase.build_trainer = build_with_profiler  # the run as `train` builds it, plus one callback
    try:
        fine_tune(config)
    finally:
        train_phase.build_trainer = build
        shutil.rmtree(output, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
