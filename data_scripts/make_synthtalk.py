#!/usr/bin/env python
"""Generate a SynthTalk corpus: ``python data_scripts/make_synthtalk.py --out data/synthtalk --profile course``.

The same as ``python -m s2v_lib synthtalk``; notebook 01 calls the library directly.
"""
import sys

from s2v_lib.machinery.cli import main

if __name__ == "__main__":
    sys.exit(main(["synthtalk", *sys.argv[1:]]))
