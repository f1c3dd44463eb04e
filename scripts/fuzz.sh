#!/usr/bin/env bash
# Coverage-guided fuzzing of every reader of user files with libFuzzer (swiftc -sanitize=fuzzer) and
# AddressSanitizer, in an optimised build that keeps Swift's overflow and bounds traps (-O, not the
# package's -Ounchecked). Usage:
#
#     scripts/fuzz.sh [SECONDS] [TARGET]      # default 600 s, all targets (the first byte picks one)
#
# Seeds: the samples, the diagnostic fixtures, the damaged-file corpus, Tests/VAECoreTests/Fixtures/
# fuzz-corpus and good files of the current formats. Findings (crash-*, timeout-*, oom-*) land in
# .build-fuzz/findings; minimise one with the binary's -minimize_crash=1 and add it to
# Tests/VAECoreTests/Fixtures/fuzz-corpus/<target>/ (without its first byte), where FuzzTests replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
target=${2:-}
work=.build-fuzz
mkdir -p "$work/corpus" "$work/seeds" "$work/findings"

binary="$work/vaec-fuzz"
if [[ ! -x "$binary" || -n "$(find Sources/VAECore scripts/fuzz -name '*.swift' -newer "$binary" -print -quit)" ]]; then
    echo "building $binary (optimised, libFuzzer + AddressSanitizer)…"
    # From a snapshot of the sources, so edits made meanwhile do not break the build.
    rm -rf "$work/src" && mkdir -p "$work/src" && cp -R Sources/VAECore scripts/fuzz/Harness.swift "$work/src/"
    swiftc -O -target-cpu native -sanitize=fuzzer,address -parse-as-library -module-name VAECore \
        $(find "$work/src" -name '*.swift' | sort) -o "$binary" 2>&1 \
        | grep -E "error" || true
    [[ -x "$binary" ]] || { echo "the fuzzing build failed"; exit 1; }
fi

# Seeds: every file, prefixed with the byte of each target whose extension it has.
targets=(model idx npy csv safetensors checkpoint trainingState program programBody)
index_of() { local i; for i in "${!targets[@]}"; do if [[ "${targets[$i]}" == "$1" ]]; then echo "$i"; fi; done; }
seed() {  # seed FILE TARGET
    local byte; byte=$(index_of "$2")
    { printf "\\x$(printf %02x "$byte")"; cat "$1"; } > "$work/seeds/$2-$(basename "$1")-$(cksum < "$1" | cut -d' ' -f1)"
}
rm -f "$work/seeds/"*
while IFS= read -r -d '' f; do
    case "$f" in
        */fuzz-corpus/*/*) seed "$f" "$(basename "$(dirname "$f")")" ;;
        *.vae) seed "$f" model ;;
        *.idx|*-ubyte) seed "$f" idx ;;
        *.npy) seed "$f" npy ;;
        *.csv) seed "$f" csv ;;
        *.safetensors) seed "$f" safetensors; seed "$f" checkpoint; seed "$f" trainingState ;;
        *.vaek) seed "$f" program; seed "$f" programBody ;;
    esac
done < <(find samples Tests/VAECoreTests/Fixtures/diagnostics Tests/VAECoreTests/Fixtures/damaged \
              Tests/VAECoreTests/Fixtures/fuzz-corpus -type f -size -64k -print0 2>/dev/null)
VAEC_FUZZ_WRITE_SEEDS="$PWD/$work/seeds" SWIFT_BACKTRACE=enable=no "$binary" -runs=0 >/dev/null 2>&1 || true
echo "seeds: $(ls "$work/seeds" | wc -l) files"

export SWIFT_BACKTRACE=enable=no
# Leaks are not crashes: LeakSanitizer would only report them at exit (and turn that into a finding).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
export VAEC_FUZZ_TARGET="$target"
"$binary" "$work/corpus" "$work/seeds" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
    -rss_limit_mb=2048 -malloc_limit_mb=1024 -detect_leaks=0 -artifact_prefix="$work/findings/" -print_final_stats=1 \
    -dict=scripts/fuzz/vae.dict 2>&1 | tee "$work/last-run.log" | grep -E "^#[0-9]+.*(pulse|DONE)|ERROR|SUMMARY|stat::|Test unit written" || true
echo "findings: $(ls "$work/findings" | wc -l) (in $work/findings); log: $work/last-run.log"
