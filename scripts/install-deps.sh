#!/bin/sh
# install-deps.sh -- install, as root and non-interactively, every Debian 12
# package postlink needs to build, test and run its demo; skips what is there.
set -eu

PKGS="build-essential autoconf automake libtool pkg-config
      libdb5.3-dev db5.3-util libmilter-dev libcmocka-dev
      libcurl4-openssl-dev miltertest libstrophe-dev libssl-dev prosody lua-unbound
      libgmime-3.0-dev libjansson-dev clang libclang-rt-14-dev
      postfix dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd
      swaks libnet-ssleay-perl jq python3 procps man-db groff-base bsdextrautils
      opendkim opendkim-tools
      libsofia-sip-ua-dev kamailio sip-tester baresip socat
      fetchmail
      faketime mpop getmail6
      libmicrohttpd-dev"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "install-deps: missing packages:$missing; run as root to install them" >&2
        exit 1
    fi
    echo "install-deps: installing:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # Never let package scripts start system daemons on their standard ports.
    cleanup_rc=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        cleanup_rc=1
    fi
    # Postfix asks questions at install time: answer them up front.
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    echo "postfix postfix/mailname string postlink.invalid" | debconf-set-selections
    apt-get update -q >/dev/null 2>&1 || apt-get update -q
    apt-get install -y -q --no-install-recommends $missing
    if [ "$cleanup_rc" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

# The unprivileged account postlink's daemons and the test mail store run as.
if [ "$(id -u)" = 0 ] && ! getent passwd postlink >/dev/null; then
    useradd --system --user-group --home-dir /var/lib/postlink \
            --shell /usr/sbin/nologin postlink
fi
# The Node tools of the integration tests (tests/node: web-push-testing, the
# mock push service of t_webpush.sh), exactly as package-lock.json has them.
node_dir=$(cd "$(dirname "$0")/.." && pwd)/tests/node
if [ ! -d "$node_dir/node_modules" ]; then
    if ! command -v npm >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm ||
            echo "install-deps: no nodejs/npm: t_webpush.sh will fail" >&2
    fi
    if command -v npm >/dev/null 2>&1; then
        echo "install-deps: npm ci --prefix tests/node"
        npm ci --prefix "$node_dir" --no-audit --no-fund ||
            { echo "install-deps: npm ci failed: t_webpush.sh will fail" >&2; rm -rf "$node_dir/node_modules"; }
    fi
fi
exit 0
