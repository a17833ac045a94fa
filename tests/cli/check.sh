# tests/cli/check.sh: the assertions the CLI test scripts share. Source it.
#   check "what" command...   passes when the command succeeds
#   finish                    prints "N passed, M failed" and exits 1 on any failure
passes=0
failures=0

check() {
  local what=$1; shift
  if "$@"; then echo "ok   $what"; passes=$((passes + 1))
  else echo "FAIL $what"; failures=$((failures + 1)); fi
}

finish() {
  echo "$passes passed, $failures failed"
  exit $(( failures > 0 ))
}
