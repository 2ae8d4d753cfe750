#!/usr/bin/env bash
# The soak test of issue 8 (Tests/JourneyCLITests/SoakTests.swift), off by default in `swift test`.
#
#   scripts/soak.sh [SECONDS]          # default 60
#
# Environment: JOURNEY_SOAK_USERS (default 5000) sets the size of the generated database;
# SCRATCH_PATH picks a build directory (default .build). The last line of the output is the
# result ("soak result: …"); it is also written to soak-result.txt in the build directory.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
scratch="${SCRATCH_PATH:-.build}"
case "$seconds" in
  ''|*[!0-9]*) echo "usage: scripts/soak.sh [SECONDS]" >&2; exit 64 ;;
esac

swift build --build-tests --scratch-path "$scratch"
report="$scratch/soak-result.txt"
rm -f "$report"
JOURNEY_SOAK_SECONDS="$seconds" JOURNEY_SOAK_REPORT="$report" \
  swift test --skip-build --scratch-path "$scratch" --filter SoakTests
echo
cat "$report"
