#!/usr/bin/env python
"""Ingest your copy of RAVDESS: ``python data_scripts/ingest_ravdess.py /path/to/RAVDESS --out data/ravdess``.

The folder holds the Actor_01 ... Actor_24 folders unpacked from the Video_Speech_Actor_NN.zip
files of zenodo.org/record/1188976. The same as ``python -m s2v_lib ingest ravdess``; options:
``--resolution 64``, ``--workers N``, ``--seed 0``, ``--detector auto|haar|dlib|mtcnn``.
Then ``make course CORPUS=data/ravdess``.
"""
import sys

from s2v_lib.machinery.cli import main

if __name__ == "__main__":
    sys.exit(main(["ingest", "ravdess", *sys.argv[1:]]))
