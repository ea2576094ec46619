"""A few-label topic data set that is not in ../shared/data: Debian's `fortunes` files, one class per file.

Why: the few-label defaults (pooling, probe-initialised heads, recipes) were measured on SST-2 and AG News; a
third data set, never used while choosing them, checks that they hold for other texts and label sets. The
fortune-mod collection (package `fortunes`, BSD-licensed fortune-mod, texts of mixed public origin) sorts short
quotations and jokes into topic files; four of them make a 4-class topic task with short, noisy, informal
texts, unlike news or movie reviews.

    apt-get download fortunes && dpkg-deb -x fortunes_*.deb fortunes-deb
    python scripts/make_fortune_topics.py --fortunes-dir fortunes-deb/usr/share/games/fortunes \
        --output-dir runs/data/fortune_topics

Writes train.csv and test.csv (`text,label`): the test set is a fixed 100 texts per class (seed 0), the train
file holds the rest, for `scripts/benchmark_fewshot.py --data-root runs/data --datasets fortune_topics`.
The output folder lies outside the repository (a benchmark input, never shipped).
"""

from __future__ import annotations

import argparse
import csv
import re
from pathlib import Path

import numpy as np

TOPICS = ("computers", "law", "politics", "science")
TEST_PER_CLASS = 100


def read_fortunes(path: Path) -> list[str]:
    """The entries of one fortune file (separated by lines holding only '%'), whitespace collapsed."""
    entries = path.read_text(encoding="utf-8", errors="replace").split("\n%\n")
    texts = [re.sub(r"\s+", " ", entry).strip() for entry in entries]
    return [text for text in texts if len(text) >= 20]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fortunes-dir", default="/usr/share/games/fortunes", help="Folder of the fortune files.")
    parser.add_argument("--output-dir", required=True, help="Where train.csv and test.csv go.")
    args = parser.parse_args()

    source, target = Path(args.fortunes_dir), Path(args.output_dir)
    missing = [topic for topic in TOPICS if not (source / topic).is_file()]
    if missing:
        parser.error(f"{source} has no fortune file {', '.join(missing)}: install or unpack Debian's `fortunes`.")
    rng = np.random.default_rng(0)
    train, test = [], []
    for topic in TOPICS:
        texts = sorted(set(read_fortunes(source / topic)))
        order = rng.permutation(len(texts))
        test += [(texts[i], topic) for i in order[:TEST_PER_CLASS]]
        train += [(texts[i], topic) for i in order[TEST_PER_CLASS:]]
    target.mkdir(parents=True, exist_ok=True)
    for name, rows in (("train.csv", train), ("test.csv", test)):
        with open(target / name, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows(rows)
        print(f"{target / name}: {len(rows)} rows")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
