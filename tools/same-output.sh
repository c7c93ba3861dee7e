#!/usr/bin/env bash
# Does a refactoring change what catalog-gen publishes? Builds the demo site and a generated
# 1,000-course site (then the same a night later, incrementally) with two commits of
# catalog-gen, from the same inputs at the same pinned moment, and compares them file by file.
#
#   tools/same-output.sh OLD_REV [NEW_REV]      # NEW_REV defaults to HEAD; run in a venv
#                                               # with the test extra installed
#   EXCLUDE=pagefind tools/same-output.sh OLD   # leaves out files and folders of that name
#                                               # (a change meant to move the search index)
# Prints IDENTICAL for each pair, or the files that differ (and exits 1).
set -euo pipefail
cd "$(dirname "$0")/.."
old=$1; new=${2:-HEAD}
# A moment close to the machine's own: a demo emulator older than 2026-12-05 reads its clock.
now=${NOW:-$(TZ=Europe/Oslo date +%Y-%m-%dT%H:%M:00%:z)}
later=$(python -c "import datetime, sys; print((datetime.datetime.fromisoformat(sys.argv[1]) + datetime.timedelta(days=1)).isoformat())" "$now")
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
python - "$work/input-1k" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "bench")
from bench_build import make_project  # the benchmark's generated catalog, through the emulator
folder = Path(sys.argv[1]); folder.mkdir()
print("1,000-course input: %d courses, %d dates" % make_project(folder, 1000, 5))
PY
for rev in "$old" "$new"; do
  code="$work/code-$rev"; mkdir -p "$code" && git archive "$rev" | tar -x -C "$code"
  run() { PYTHONPATH="$code" python -m catalog_gen "$@"; }
  (cd "$code" && run build --demo --now "$now" -q)
  cp -a "$work/input-1k" "$work/1k-$rev"
  (cd "$work/1k-$rev" && run build --offline --now "$now" -q && cp -a site ../1k-first-$rev \
      && run build --offline --now "$later" -q)
done
status=0
for pair in "code-%s/site demo" "1k-first-%s 1,000 courses" "1k-%s/site 1,000 courses, a night later"; do
  pattern=${pair%% *}; name=${pair#* }
  # shellcheck disable=SC2059
  a=$work/$(printf "$pattern" "$old"); b=$work/$(printf "$pattern" "$new")
  if diff -r -q ${EXCLUDE:+--exclude="$EXCLUDE"} "$a" "$b"; then echo "IDENTICAL${EXCLUDE:+ but $EXCLUDE}: $name ($(find "$a" -type f | wc -l) files)"
  else status=1; fi
done
exit $status
