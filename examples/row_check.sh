# Sourced by the examples' output checks. row FILE CELL...: FILE holds a line with these cells in
# order, as a console-sink table row ("|  a|b|") or a continuous-mode tuple ("(a, b)"); cells are
# extended regular expressions. Sets fail=1 and says which row is missing otherwise.
row() {
  local file=$1 re
  re="(^|[|(])[ ]*$2"
  shift 2
  for c in "$@"; do re="$re[ ,|]+$c"; done
  grep -Eq "$re[ ]*[|)]\$" "$file" || { echo "$file: no row $re"; fail=1; }
}

# run_modes BIN NAME CHECK: runs BIN in micro-batch and in continuous mode (from BIN's directory),
# output in NAME-<mode>.txt, and calls CHECK FILE MODE on each; prints the output and exits 1 when
# the program fails or CHECK sets fail.
run_modes() {
  local bin=$1 name=$2 check=$3 mode out
  cd "$(dirname "$bin")" || exit 1
  for mode in micro-batch continuous; do
    out=$name-$mode.txt
    fail=0
    "$bin" "$mode" > "$out" 2>&1 || { echo "$name $mode failed"; cat "$out"; exit 1; }
    "$check" "$out" "$mode"
    [ $fail = 0 ] || { cat "$out"; exit 1; }
  done
}
