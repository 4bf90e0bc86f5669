#!/usr/bin/env bash
# Installs everything lbgen needs on a fresh Debian machine: the simulators and
# synthesiser from Debian, then a venv with torch (CPU), lbgen and its tools.
# Idempotent: every step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

need_apt=()
command -v iverilog >/dev/null 2>&1 || need_apt+=(iverilog)
command -v yosys >/dev/null 2>&1 || need_apt+=(yosys)
command -v tclsh >/dev/null 2>&1 || need_apt+=(tcl)  # checks the emitted Vitis HLS script (tests)
command -v g++ >/dev/null 2>&1 || need_apt+=(g++)
command -v make >/dev/null 2>&1 || need_apt+=(make)
command -v ccache >/dev/null 2>&1 || need_apt+=(ccache)  # Verilator builds share their runtime objects
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "[setup] apt-get install ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating venv $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
# torch first and pinned, so nothing later can pull the CUDA build.
if ! "$VENV/bin/python" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  echo "[setup] pip install torch==2.13.0 (CPU)"
  $PIP install -q "torch==2.13.0"
fi
echo "[setup] pip install -e .[dev]"
$PIP install -q -e ".[dev]"
echo "[setup] done"
