#!/usr/bin/env bash
# t_configure.sh -- configure stops with the name of the Debian package to
# install when a library is missing (simulated with autoconf cache values);
# the documented install (--prefix=/usr --sysconfdir=/etc) gives the paths
# the docs name, a plain configure the /usr/local ones the README names.
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

# build postlinkctl with PATH's configure options; print the file it reads
S=${abs_top_srcdir:-.}
built_conf() {
    local dir=$T/build-$1; shift
    mkdir -p "$dir" && (cd "$dir" && "$S/configure" -q "$@" >/dev/null 2>&1 && make -s ctl/postlinkctl >/dev/null 2>&1) &&
        "$dir/ctl/postlinkctl" -h | sed -n 's/^.*else \(\/.*\)\.$/\1/p'
}
c=$(built_conf usr --prefix=/usr --sysconfdir=/etc)
tap_check "./configure --prefix=/usr --sysconfdir=/etc: postlinkctl reads /etc/postlink/postlink.conf ($c)" \
    test "$c" = /etc/postlink/postlink.conf
inst=$(cd "$T/build-usr" && make -s install-sbinPROGRAMS install-man8 sbin_PROGRAMS=ctl/postlinkctl \
       dist_man_MANS=man/postlinkctl.8 DESTDIR="$T/dest" >/dev/null 2>&1 && cd "$T/dest" && find . -type f | sort)
tap_check "... and installs it as /usr/sbin/postlinkctl, the man page under /usr/share/man" \
    sh -c "grep -qx './usr/sbin/postlinkctl' <<'X'
$inst
X
grep -qx './usr/share/man/man8/postlinkctl.8' <<'X'
$inst
X"
c=$(built_conf default)
tap_check "a plain ./configure: postlinkctl reads /usr/local/etc/postlink/postlink.conf ($c)" \
    test "$c" = /usr/local/etc/postlink/postlink.conf
readme=$(sed -n '/^## Installing/,/^## /p' "$S/README.md")
tap_check "the README's install section configures --prefix=/usr --sysconfdir=/etc" \
    grep -q '^\./autogen\.sh && \./configure --prefix=/usr --sysconfdir=/etc' <<<"$readme"
tap_check "... and names the file a plain ./configure reads" \
    grep -q '/usr/local/etc/postlink/postlink.conf' <<<"$readme"
# every document naming /etc/postlink/postlink.conf or /usr/sbin says which install that is
undocumented=""
for f in README.md man/postlinkctl.8 man/postlink.conf.5 contrib/postlink.conf contrib/main.cf.fragment \
         $(cd "$S" && echo contrib/systemd/*.service); do
    [ -f "$S/$f" ] || continue
    grep -qE '/etc/postlink/postlink\.conf|/usr/sbin' "$S/$f" || continue
    grep -qE -- '(--|\\-\\-)prefix=/usr (--|\\-\\-)sysconfdir=/etc' "$S/$f" || undocumented="$undocumented $f"
done
tap_check "every document that names /etc/postlink or /usr/sbin names the configure line${undocumented:+ (not:$undocumented)}" \
    test -z "$undocumented"
tap_done
