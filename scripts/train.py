"""`nlp-transfer train` as a script, so that `accelerate launch scripts/train.py --output-dir D ...` works."""

import sys

from nlp_transfer.cli.app import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
