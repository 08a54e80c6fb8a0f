#!/usr/bin/env python
"""Ingest your copy of CREMA-D: ``python data_scripts/ingest_cremad.py /path/to/CREMA-D --out data/cremad``.

The folder is a clone of github.com/CheyneyComputerScience/CREMA-D with its VideoFlash/ and
AudioWAV/ (Git LFS files fetched). The same as ``python -m s2v_lib ingest cremad``; options:
``--resolution 64``, ``--workers N``, ``--seed 0``, ``--detector auto|haar|dlib|mtcnn``.
Then ``make course CORPUS=data/cremad``.
"""
import sys

from s2v_lib.machinery.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", "cremad", *sys.argv[1:]]))
