#!/bin/sh
# The project's test suite: exits 2 when a test fails (like pytest).
failed=0
check() {
  got=$(sh calc.sh "$1" "$2" "$3")
  if [ "$got" = "$4" ]; then echo "PASS $1 $2 $3 = $4"
  else echo "FAIL $1 $2 $3: got $got, expected $4"; failed=$((failed + 1)); fi
}
check add 2 3 5
check add 10 0 10
check mul 4 5 20
echo "$failed failed"
[ "$failed" -eq 0 ] || exit 2
