#!/usr/bin/env bash
# Runs login_join in both modes and checks that every login is printed once, joined with its
# user's row of the CSV table (a user missing from it: nulls), and that the malformed event is
# reported with the reason.
set -u
source "$(dirname "$0")/../row_check.sh"
check() {
  local out=$1 mode=$2 t="2024-05-01 08" n
  row "$out" "$t:00:00" 1 10.0.0.1 phone "Kari Nordmann" NO
  row "$out" "$t:01:00" 3 10.0.0.2 laptop "Quispe, Rosa" PE
  row "$out" "$t:04:00" 4 10.0.0.5 laptop "Jean Dupont" FR
  row "$out" "$t:05:00" 99 10.0.0.6 laptop null null
  row "$out" "$t:09:00" 4 10.0.0.10 phone "Jean Dupont" FR
  n=$(grep -Ec "10\.0\.0\.[0-9]+[ ,|]+(phone|laptop)" "$out")
  [ "$n" = 10 ] || { echo "$mode: $n joined logins, expected 10"; fail=1; }
  grep -q "field 'user_id' is declared int64 but the value is a string" "$out" ||
    { echo "$mode: the malformed event is not reported"; fail=1; }
}
run_modes "$1" login-join check
echo "login_join: both modes join every login with its user"
