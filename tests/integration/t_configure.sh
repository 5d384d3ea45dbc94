#!/usr/bin/env bash
# t_configure.sh -- configure stops with the name of the Debian package to
# install when a library is missing (simulated with autoconf cache values).
. "${abs_top_srcdir:-.}/tests/integration/tap.sh"
T=$(mktemp -d /tmp/postlink-configure.XXXXXX)
trap 'rm -rf "$T"' EXIT
try() {                            # try PACKAGE VAR=VALUE...
    local pkg=$1 out rc; shift
    out=$(cd "$T" && env "$@" "${abs_top_srcdir:-.}/configure" -q 2>&1); rc=$?
    tap_check "configure without it fails naming $pkg" \
        sh -c "test $rc != 0 && grep -q 'install the Debian package $pkg' <<'X'
$out
X"
}
try libdb5.3-dev ac_cv_header_db_h=no
try libmilter-dev ac_cv_lib_milter_smfi_main=no
try libcmocka-dev PKG_CONFIG=/bin/false
# a pkg-config that knows everything but libcurl (then libstrophe, libcrypto, GMime, jansson)
printf '#!/bin/sh\ncase "$*" in *libcurl*) exit 1 ;; esac\nexec pkg-config "$@"\n' >"$T/pkgconf"
chmod +x "$T/pkgconf"
try libcurl4-openssl-dev PKG_CONFIG="$T/pkgconf"
sed 's/libcurl/libstrophe/' "$T/pkgconf" >"$T/pkgconf-strophe"
sed 's/libcurl/libcrypto/' "$T/pkgconf" >"$T/pkgconf-crypto"
sed 's/libcurl/gmime-3.0/' "$T/pkgconf" >"$T/pkgconf-gmime"
sed 's/libcurl/jansson/' "$T/pkgconf" >"$T/pkgconf-jansson"
chmod +x "$T"/pkgconf-*
try libstrophe-dev PKG_CONFIG="$T/pkgconf-strophe"
try libssl-dev PKG_CONFIG="$T/pkgconf-crypto"
try libgmime-3.0-dev PKG_CONFIG="$T/pkgconf-gmime"
try libjansson-dev PKG_CONFIG="$T/pkgconf-jansson"
tap_done
