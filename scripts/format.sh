#!/usr/bin/env bash
# Formats the Swift sources with the toolchain's swift-format and the repository's .swift-format.
#
#   bash scripts/format.sh           rewrites the files in place
#   bash scripts/format.sh --check   changes nothing; lists every finding (`swift format lint --strict`)
#                                    and exits non-zero if there is any
#
# Covers Sources, Tests, Examples, Benchmarks/Sources, Plugins, Fixtures and Fuzz (the Swift files
# there, never a .build folder's). Examples/QuickStart's main.swift is left as written: the README
# quotes it (a test holds the two equal), and its comments are aligned in a column for the reader.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=format
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    *) echo "usage: scripts/format.sh [--check]" >&2; exit 64 ;;
esac

folders=()
for folder in Sources Tests Examples Benchmarks/Sources Plugins Fixtures Fuzz; do
    [[ -d "$folder" ]] && folders+=("$folder")
done
files=()
if ((${#folders[@]})); then
    while IFS= read -r -d '' file; do files+=("$file"); done < <(
        find "${folders[@]}" \( -name '.build*' -o -name '.swiftpm' -o -path Examples/QuickStart/Sources/QuickStart/main.swift \) -prune -o -name '*.swift' -type f -print0 | sort -z
    )
fi
if ((${#files[@]} == 0)); then
    echo "scripts/format.sh: no Swift file to format" >&2
    exit 0
fi

if [[ "$mode" == check ]]; then
    # Exits 1 on any finding (--strict makes warnings errors); prints them as file:line:column.
    if ! swift format lint --strict --parallel --configuration .swift-format "${files[@]}"; then
        echo "scripts/format.sh: swift format lint --strict reported the findings above (${#files[@]} files checked); run bash scripts/format.sh, then fix by hand what it leaves" >&2
        exit 1
    fi
else
    swift format format --in-place --parallel --configuration .swift-format "${files[@]}"
fi
