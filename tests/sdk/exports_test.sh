#!/usr/bin/env bash
# libnasoa exports nasoa's API and nothing else: every defined dynamic symbol
# is in namespace nasoa (or is the type information or vtable of a nasoa
# class), and what an app needs is there, nasoa::Error's type information
# included, without which an app cannot catch it.
# Usage: exports_test.sh NM LIBNASOA
set -euo pipefail
nm_tool=$1
lib=$2

symbols=$("$nm_tool" -D --extern-only --defined-only -C "$lib" | cut -d' ' -f3-)
[[ -n $symbols ]] || { echo "FAIL: $lib exports nothing" >&2; exit 1; }

foreign=$(grep -v -E '^(nasoa::|typeinfo for nasoa::|typeinfo name for nasoa::|vtable for nasoa::)' <<<"$symbols" || true)
if [[ -n $foreign ]]; then
  echo "FAIL: $lib exports $(wc -l <<<"$foreign") symbols outside nasoa, e.g.:" >&2
  head -n 5 <<<"$foreign" >&2
  exit 1
fi

for needed in 'typeinfo for nasoa::Error' 'vtable for nasoa::Error' 'nasoa::Zoo::open(' \
              'nasoa::Classifier::open(' 'nasoa::Adapter::fine_tune(' 'nasoa::Task::from_folder('; do
  grep -q -F "$needed" <<<"$symbols" || { echo "FAIL: $lib does not export $needed" >&2; exit 1; }
done
echo "ok: $(wc -l <<<"$symbols") symbols, all nasoa's"
