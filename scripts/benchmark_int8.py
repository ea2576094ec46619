"""int8 settings side by side: onnxruntime's dynamic quantisation defaults against the package's, on one folder.

    python scripts/benchmark_int8.py --model runs/export_sst2/model \
        --validation-file ../shared/data/sst2/test.csv --output-dir runs/export_sst2/int8_settings

`nlp-transfer export --quantize int8` quantises with one scale per weight channel and keeps the feed-forward output
projections in fp32 (nlp_transfer.inference.export.quantize_int8). This script shows why: it exports the
folder's fp32 graph once, quantises it three ways (onnxruntime's defaults: one scale per tensor; per channel;
per channel with the feed-forward outputs kept fp32) and scores every form through the same code as the
export's verification (decisions equal to PyTorch's, largest logit difference, accuracy, latency at batch 1
and 32, file size). Single-label folders only (accuracy is argmax against the label). Results:
OUTPUT_DIR/results.json and results.md. Time it on a quiet machine: the latency columns are the point.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from nlp_transfer.inference import export
from nlp_transfer.tables import markdown_table

HEADERS = ["form", "decisions = PyTorch's", "max logit difference", "accuracy", "ms/text (b1)", "texts/s (b32)", "MB"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="A single-label folder written by 'nlp-transfer train'.")
    parser.add_argument("--validation-file", required=True, help="Labelled texts to score every form on.")
    parser.add_argument("--output-dir", required=True, help="Where the graphs and results go.")
    parser.add_argument("--max-rows", type=int, default=1000, help="Validation texts to use (default 1000).")
    args = parser.parse_args()

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    options = export.ExportOptions(
        model=args.model, output_dir=str(out), validation_file=args.validation_file, max_rows=args.max_rows
    )
    reference = export._reference_classifier(args.model)
    texts, pairs, labels, _ = export._validation_data(options, reference)
    fp32 = out / "model.onnx"
    export.export_graph(reference.model, reference.tokenizer, fp32)
    feed_forward = export.feed_forward_sizes(reference.model.config)
    variants = {  # (per_channel, feed-forward sizes whose output projections stay fp32)
        "int8, per tensor (onnxruntime's defaults)": (False, None),
        "int8, per channel": (True, None),
        "int8, per channel, feed-forward outputs fp32 (nlp-transfer)": (True, feed_forward),
    }
    files = {"fp32": fp32}
    for index, (name, (per_channel, kept)) in enumerate(variants.items()):
        files[name] = out / f"int8_{index}.onnx"
        export.quantize_int8(fp32, files[name], kept, per_channel=per_channel)

    reference_logits = reference.logits(texts, pairs, options.batch_size)
    results = [
        {
            "form": "pytorch",
            "accuracy": float(np.mean(reference_logits.argmax(1) == labels)),
            **export.measure_latency(reference, texts, pairs),
        }
    ]
    for name, path in files.items():
        classifier = export._onnx_classifier(path, reference)
        logits = classifier.logits(texts, pairs, options.batch_size)
        results.append(
            {
                "form": name,
                "agreement": export.label_agreement(reference, reference_logits, logits, labels),
                "max_abs_logit_difference": float(np.max(np.abs(logits - reference_logits))),
                "accuracy": float(np.mean(logits.argmax(1) == labels)),
                "megabytes": round(path.stat().st_size / 1e6, 1),
                **export.measure_latency(classifier, texts, pairs),
            }
        )
        print(name, f"agreement {results[-1]['agreement']:.4f}", flush=True)

    rows = [
        [
            entry["form"],
            f"{entry['agreement']:.2%}" if "agreement" in entry else "-",
            f"{entry['max_abs_logit_difference']:.2f}" if "agreement" in entry else "-",
            f"{entry['accuracy']:.4f}",
            f"{entry['batch_1_ms']:.2f}",
            f"{entry['batch_32_texts_per_s']:.0f}",
            str(entry.get("megabytes", "-")),
        ]
        for entry in results
    ]
    table = markdown_table(HEADERS, rows)
    (out / "results.json").write_text(json.dumps({"texts": len(texts), "results": results}, indent=2) + "\n")
    (out / "results.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
