#!/usr/bin/env bash
# Fuzzes the rules loader with libFuzzer for a fixed time (default 60 s).
# Every input must either load or be refused with a message: a crash, a failed
# precondition, a hang (over 5 s for one input) or 2 GB of memory is a finding,
# and libFuzzer writes the input to ./crash-* (or ./timeout-*, ./oom-*).
#   scripts/fuzz-rules.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

swift build -c release -Xswiftc -sanitize=fuzzer --package-path Fuzz --scratch-path Fuzz/.build-fuzz 2>&1 | tail -1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# The seed corpus: the committed seeds, every rejection case of the tests and the default rules.
# New inputs go to a temporary folder, so the committed corpus stays small and reviewed.
Fuzz/.build-fuzz/release/RulesFuzzer -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" Fixtures/fuzz-corpus Tests/JourneyCoreTests/Rules Rules 2>"$work.log" || {
    tail -40 "$work.log"
    echo "fuzz-rules: a finding; see the crash-*/timeout-*/oom-* file above"
    exit 1
}
runs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work.log" | grep -o '[0-9]*$')"
units="$(grep -o 'stat::new_units_added: *[0-9]*' "$work.log" | grep -o '[0-9]*$')"
rm -f "$work.log"
echo "fuzz-rules: ${runs} inputs in ${seconds} s, ${units} new coverage units, 0 crashes, 0 hangs"
