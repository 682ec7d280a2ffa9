#!/usr/bin/env bash
# Create .venv inside the project and install the pinned dependencies, once per change of
# pyproject.toml or deploy/constraints.txt. Safe to run again: it does nothing when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
stamp_source=$(cat pyproject.toml deploy/constraints.txt | sha256sum | cut -c1-16)
stamp="$VENV/.installed-$stamp_source"

# System packages for the browser tests and the Korean pages: Debian's chromium (driven by
# Playwright; never `playwright install`, which would download a browser), CJK fonts, and colour emoji
# (the leaderboard's "T" type symbols, 🟢 🔶 💬 🤝, are emoji as on the Open LLM Leaderboard).
if [ "${SKIP_SYSTEM_PACKAGES:-}" != "1" ] && { [ ! -x /usr/bin/chromium ] || ! dpkg -s fonts-noto-cjk >/dev/null 2>&1 \
        || ! dpkg -s fonts-noto-color-emoji >/dev/null 2>&1; }; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "Installing chromium, fonts-noto-cjk and fonts-noto-color-emoji (apt)..."
        apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji >/dev/null; }
    else
        echo "Note: install Debian's chromium, fonts-noto-cjk and fonts-noto-color-emoji for the browser tests (sudo apt-get install chromium fonts-noto-cjk fonts-noto-color-emoji)." >&2
    fi
fi

if [ -f "$stamp" ]; then
    exit 0
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip

# torch first, on its own: on a machine without an NVIDIA GPU, take the CPU build. pip finds the
# local 2.13.0+cpu wheel through its find-links (it sorts above PyPI's 2.13.0 CUDA build); a
# TORCH_SPEC or TORCH_INDEX_URL set by the operator wins.
if [ -n "${TORCH_INDEX_URL:-}" ]; then
    "$VENV/bin/pip" install --quiet "${TORCH_SPEC:-torch==2.13.0}" --index-url "$TORCH_INDEX_URL"
elif command -v nvidia-smi >/dev/null 2>&1; then
    "$VENV/bin/pip" install --quiet "${TORCH_SPEC:-torch==2.13.0}"
else
    "$VENV/bin/pip" install --quiet "${TORCH_SPEC:-torch==2.13.0+cpu}" || {
        echo "No local CPU build of torch 2.13.0 was found; set TORCH_INDEX_URL to a CPU wheel index." >&2
        exit 1
    }
fi

"$VENV/bin/pip" install --quiet -c deploy/constraints.txt -e ".[dev]"
rm -f "$VENV"/.installed-*
touch "$stamp"
echo "Dependencies installed in $VENV"
