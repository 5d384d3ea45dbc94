#!/usr/bin/env bash
# t_layers.sh -- the layers include only downward: lib/ (plain utility)
# -> db/ (the store) -> state/ (postlink's data model) -> server/ (the
# process skeleton) -> the programs (milters/, agents/, policy/, ctl/).
# Every #include "x.h" in a layer must name a header of that layer or of
# one below it; a program may not include another program's headers.
set -u
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
cd "$abs_top_srcdir" || exit 1

rank() {   # DIR -> its layer number (programs: 4)
    case $1 in lib) echo 0 ;; db) echo 1 ;; state) echo 2 ;; server) echo 3 ;; *) echo 4 ;; esac
}
where() {  # HEADER -> the folder that holds it (first match), or ""
    local f
    f=$(find lib db state server milters agents policy ctl -name "$1" -print 2>/dev/null | head -1)
    [ -n "$f" ] && dirname "$f"
}
bad=0 checked=0
for dir in lib db state server milters agents policy ctl; do
    for src in $(find "$dir" -name '*.[ch]' | sort); do
        mine=$(rank "${src%%/*}")
        prog=$(dirname "$src")
        while read -r hdr; do
            [ "$hdr" = config.h ] && continue
            at=$(where "$hdr")
            [ -z "$at" ] && continue          # generated or system header
            checked=$((checked + 1))
            theirs=$(rank "${at%%/*}")
            if [ "$theirs" -gt "$mine" ]; then
                tap_diag "$src includes $hdr from $at, a higher layer"; bad=$((bad + 1))
            elif [ "$mine" = 4 ] && [ "$theirs" = 4 ] && [ "${at%%/*}" != "${prog%%/*}" ]; then
                tap_diag "$src includes $hdr from another program ($at)"; bad=$((bad + 1))
            fi
        done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$src")
    done
done
tap_check "every include goes downward ($checked checked, $bad wrong)" test "$bad" = 0 -a "$checked" -gt 100
# the check itself can fail: a lower layer that includes a higher one is caught
tmp=$(mktemp -d)
mkdir -p "$tmp/lib" "$tmp/db"
echo '#include "store.h"' >"$tmp/lib/x.c"; : >"$tmp/db/store.h"
out=$(cd "$tmp" && for s in lib/x.c; do h=$(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$s"); \
      [ "$(rank "$(dirname "$(find lib db -name "$h" | head -1)")")" -gt 0 ] && echo caught; done)
rm -rf "$tmp"
tap_check "a planted lib/ -> db/ include is caught" test "$out" = caught
tap_done
