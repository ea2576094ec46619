"""`nlp-transfer benchmark` as a script: python scripts/benchmark.py --output-dir runs/benchmark [options]."""

import sys

from nlp_transfer.cli.app import main

if __name__ == "__main__":
    sys.exit(main(["benchmark", *sys.argv[1:]]))
