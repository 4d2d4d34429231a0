#!/usr/bin/env bash
# Runs pos_sales in both modes and checks what it printed against the hand-computed results of
# its 12 records (see pos_sales.cpp). Cells are matched with [ ,|]+ between them, so the same
# patterns fit micro-batch table rows and continuous-mode lines.
set -u
bin=$1
cd "$(dirname "$bin")"
fail=0
for mode in micro-batch continuous; do
  out=pos-sales-$mode.txt
  "$bin" "$mode" > "$out" 2>&1 || { echo "pos_sales $mode failed"; cat "$out"; exit 1; }
  row() {  # cells...: a line holding them in order, separated as a row or a tuple
    local re="(^|[|(])[ ]*$1"
    shift
    for c in "$@"; do re="$re[ ,|]+$c"; done
    grep -Eq "$re[ ]*[|)]\$" "$out" || { echo "$mode: no row $re"; fail=1; }
  }
  d="2024-05-01"
  # tumbling 5 minutes
  row p1 "$d 10:00:00" "$d 10:05:00" 15.5
  row p2 "$d 10:00:00" "$d 10:05:00" 20
  row p1 "$d 10:10:00" "$d 10:15:00" 1
  row p3 "$d 10:15:00" "$d 10:20:00" 3
  # sliding 10 minutes by 5
  row p1 "$d 09:55:00" "$d 10:05:00" 15.5
  row p1 "$d 10:00:00" "$d 10:10:00" 20
  row p3 "$d 10:05:00" "$d 10:15:00" 20
  row p3 "$d 10:10:00" "$d 10:20:00" 15.75
  row p2 "$d 10:20:00" "$d 10:30:00" 0.5
  # every window row once: 11 tumbling + 16 sliding
  n=$(grep -Ec "$d [0-9:]{8}[ ,|]+$d [0-9:]{8}" "$out")
  [ "$n" = 27 ] || { echo "$mode: $n window rows, expected 27"; fail=1; }
  # the totals (the last complete table in micro-batch mode holds them)
  row p1 30
  row p2 53
  row p3 23
  grep -q "yesterday.*create_date is not YYYY-MM-DD HH:MM:SS" "$out" || { echo "$mode: the bad record is not reported"; fail=1; }
  [ $fail = 0 ] || { cat "$out"; exit 1; }
done
echo "pos_sales: both modes print the expected totals and windows"
