#!/usr/bin/env bash
# Builds gale's libFuzzer targets with clang (-DGALE_FUZZ=ON: -fsanitize=fuzzer,address,undefined)
# and runs each for SECONDS (default 60), starting from its committed corpus. New inputs go to
# BUILD_DIR/fuzz-out/<target>-corpus, never into the repository; a crash leaves its input in
# BUILD_DIR/fuzz-out/<target>-crash-* and makes the script fail. Prints, per target, the runs
# done and their time (the figures of docs/reliability.md, "## Fuzzing").
#
#   bash tests/fuzz/run.sh [SECONDS] [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-60}
dir=${2:-build-fuzz}
targets=(frame json_line csv record)

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
CC=clang CXX=clang++ cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGALE_FUZZ=ON \
  -DGALE_BUILD_TESTS=OFF -DGALE_BUILD_EXAMPLES=OFF "${launcher[@]}" >/dev/null
# shellcheck disable=SC2046
cmake --build "$dir" -j2 --target $(printf 'gale_fuzz_%s ' "${targets[@]}")

out=$dir/fuzz-out
mkdir -p "$out"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$out/$t-corpus"
  log=$out/$t.log
  # -timeout: one input taking 10 s is a hang; -rss_limit_mb: a runaway allocation is a bug too.
  if ! "$dir/tests/fuzz/gale_fuzz_$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$out/$t-" "$out/$t-corpus" "tests/fuzz/corpus/$t" \
      >"$log" 2>&1; then
    failed+=("$t")
    tail -n 60 "$log"
  fi
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')
  time=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | grep -oE 'in [0-9]+' | grep -oE '[0-9]+' || echo "$secs")
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 || true)
  echo "fuzz $t: $runs executions in ${time} s, ${cov:-cov: ?} edges, corpus $(ls "$out/$t-corpus" | wc -l) new inputs"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in: ${failed[*]} (inputs: $out/*-crash-*)"
  exit 1
fi
