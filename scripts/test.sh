#!/bin/bash
# Run every test: install what is missing, then the Rust core's tests (no
# Python needed) and the Python tests (binding, CLI, reference decoder).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev --no-demo
cargo test -p crypto-core --release -q
python3 -m pytest -q tests
