# tests/cli/check.sh: the assertions the CLI test scripts share. Source it.
#   check "what" command...   passes when the command succeeds
#   finish                    prints "N passed, M failed" and exits 1 on any failure
#   need_fashion_mnist FILE...   sets $fashion to Debian's Fashion-MNIST folder;
#                             skips the test (exit 77) when a FILE is not in it
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

need_fashion_mnist() {
  fashion=/usr/share/datasets/fashion-mnist
  local file
  for file in "$@"; do
    if [ ! -f "$fashion/$file" ]; then
      echo "skipped: package dataset-fashion-mnist is not installed (scripts/setup.sh installs it)"
      exit 77
    fi
  done
}
