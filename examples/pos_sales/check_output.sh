#!/usr/bin/env bash
# Runs pos_sales in both modes and checks what it printed against the hand-computed results of
# its 12 records (see pos_sales.cpp), in micro-batch tables and continuous-mode lines alike.
set -u
source "$(dirname "$0")/../row_check.sh"
check() {
  local out=$1 mode=$2 d="2024-05-01" n
  # tumbling 5 minutes
  row "$out" p1 "$d 10:00:00" "$d 10:05:00" 15.5
  row "$out" p2 "$d 10:00:00" "$d 10:05:00" 20
  row "$out" p1 "$d 10:10:00" "$d 10:15:00" 1
  row "$out" p3 "$d 10:15:00" "$d 10:20:00" 3
  # sliding 10 minutes by 5
  row "$out" p1 "$d 09:55:00" "$d 10:05:00" 15.5
  row "$out" p1 "$d 10:00:00" "$d 10:10:00" 20
  row "$out" p3 "$d 10:05:00" "$d 10:15:00" 20
  row "$out" p3 "$d 10:10:00" "$d 10:20:00" 15.75
  row "$out" p2 "$d 10:20:00" "$d 10:30:00" 0.5
  # every window row once: 11 tumbling + 16 sliding
  n=$(grep -Ec "$d [0-9:]{8}[ ,|]+$d [0-9:]{8}" "$out")
  [ "$n" = 27 ] || { echo "$mode: $n window rows, expected 27"; fail=1; }
  # the totals (the last complete table in micro-batch mode holds them)
  row "$out" p1 30
  row "$out" p2 53
  row "$out" p3 23
  grep -q "yesterday.*create_date is not YYYY-MM-DD HH:MM:SS" "$out" ||
    { echo "$mode: the bad record is not reported"; fail=1; }
}
run_modes "$1" pos-sales check
echo "pos_sales: both modes print the expected totals and windows"
