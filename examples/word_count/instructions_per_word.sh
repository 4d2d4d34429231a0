#!/usr/bin/env bash
# The word count's instructions per word, whole program, steady state (issue 12): callgrind's
# total at two input sizes, (total2 - total1) / (words2 - words1), so that start-up, shutdown
# and anything else paid once cancel out. Prints one line per setting.
#
#   examples/word_count/instructions_per_word.sh [build dir] [sentences1] [sentences2]
#
# Settings: acking off with the after-run direct count (the example's oracle) and without it
# (--no-check), and acking on without it. Needs valgrind. Takes about a minute per setting.
set -euo pipefail
build=${1:-build}
n1=${2:-20000}
n2=${3:-60000}
bin=$build/examples/word_count/word_count
[[ -x $bin ]] || { echo "no $bin (build the word_count target)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Prints "<instructions> <words> <publishing>" of one run under callgrind; publishing: the
# inclusive cost of Executor::publish, the tasks' per-interval metrics, paid per 100 ms of wall
# time (so under valgrind's slowdown ~400 times as often per word as in a native run).
measure() {
  local log=$out/log
  valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out/cg" \
    "$bin" --parallelism 1 "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
  local total words publish
  total=$(sed -n 's/^==[0-9]*== Collected : \([0-9]*\)$/\1/p' "$log")
  words=$(sed -n 's/^[0-9]* sentences, \([0-9]*\) words in .*/\1/p' "$log")
  [[ -n $total && -n $words ]] || { echo "unexpected output:" >&2; cat "$log" >&2; return 1; }
  publish=$(callgrind_annotate --inclusive=yes --threshold=100 "$out/cg" 2>/dev/null |
    awk '/ \* .*Executor::publish\(long\) \[/ || /^ *[0-9,]+ .*Executor::publish\(long\) \[/ {
      gsub(",", "", $1); print $1; exit }')
  echo "$total $words ${publish:-0}"
}

printf "%-24s %9s %20s   %s\n" setting marginal "without publishing" "whole program per word at each size"
for setting in "--no-acking" "--no-acking --no-check" "--no-check"; do
  read -r t1 w1 p1 < <(measure --sentences "$n1" $setting)
  read -r t2 w2 p2 < <(measure --sentences "$n2" $setting)
  awk -v s="$setting" -v t1="$t1" -v w1="$w1" -v p1="$p1" -v t2="$t2" -v w2="$w2" -v p2="$p2" 'BEGIN {
    printf "%-24s %9.1f %20.1f   %d words: %.1f, %d words: %.1f\n", s, (t2 - t1) / (w2 - w1),
      ((t2 - p2) - (t1 - p1)) / (w2 - w1), w1, t1 / w1, w2, t2 / w2 }'
done
