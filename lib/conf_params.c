/* conf_params.c -- the table of every postlink.conf parameter: name, type,
 * default, bounds and validator. Documented in postlink.conf(5); keep the
 * two in step. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "peers.h"

static const char *check_abs_path(const char *v)
{
    return v[0] == '/' ? NULL : "must be an absolute path";
}

static const char *check_word(const char *v)
{
    if (*v == '\0')
        return "must not be empty";
    for (; *v; v++)
        if (!(isalnum((unsigned char)*v) || *v == '-' || *v == '_' || *v == '.'))
            return "may contain only letters, digits, '-', '_' and '.'";
    return NULL;
}

static const char *check_facility(const char *v)
{
    return pl_log_facility(v) >= 0 ? NULL
        : "unknown syslog facility (mail, daemon, user, local0..local7)";
}

/* One domain name: LDH labels separated by dots. */
static int valid_domain(const char *d, size_t len)
{
    size_t label = 0;
    if (len == 0 || len > 253 || d[0] == '.' || d[len - 1] == '.')
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return 0;
            label = 0;
        } else if (isalnum(c) || c == '-') {
            if (label == 0 && c == '-')
                return 0;
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}

static const char *check_domains(const char *v)
{
    const char *item;
    size_t len;
    while ((item = pl_conf_next_item(&v, &len)) != NULL)
        if (!valid_domain(item, len))
            return "contains something that is not a domain name";
    return NULL;
}

static const char *check_domain(const char *v)
{
    return valid_domain(v, strlen(v)) ? NULL : "must be a domain name";
}

static const char *check_socket(const char *v)
{
    if (strncmp(v, "unix:", 5) == 0 && v[5] == '/')
        return NULL;
    if (strncmp(v, "inet:", 5) == 0 && strchr(v + 5, '@') != NULL)
        return NULL;
    return "must be unix:/path or inet:port@host";
}

static const char *check_url(const char *v)
{
    if (*v == '\0' || strncmp(v, "smtp://", 7) == 0)
        return NULL;
    return "must be an smtp:// URL";
}

/* sync_peers: IPv4/IPv6 addresses or networks (addr/len), or TLS client
 * certificate fingerprints. */
static const char *check_peers(const char *v)
{
    static _Thread_local char msg[400];
    struct pl_peers p;
    char err[256];
    if (pl_peers_parse(&p, v, err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "%s (an address, address/prefix-length, or a TLS certificate "
                 "fingerprint AB:CD:... as Postfix logs it)", err);
        return msg;
    }
    pl_peers_free(&p);
    return NULL;
}

static const char *check_tls_mode(const char *v)
{
    if (strcmp(v, "required") == 0 || strcmp(v, "may") == 0 || strcmp(v, "none") == 0)
        return NULL;
    return "must be required, may or none";
}

/* imap_url: items "domain=imap://host:port". */
static const char *check_imap(const char *v)
{
    const char *item, *eq;
    size_t len;
    while ((item = pl_conf_next_item(&v, &len)) != NULL) {
        eq = memchr(item, '=', len);
        if (eq == NULL || !valid_domain(item, (size_t)(eq - item)) ||
            (size_t)(item + len - eq) < 8 || strncmp(eq + 1, "imap://", 7) != 0)
            return "items must be domain=imap://host:port";
    }
    return NULL;
}

const struct pl_conf_param pl_conf_params[] = {
    {"db_home", PL_CONF_STR, PL_DEFAULT_DB_HOME, 0, 0, check_abs_path,
     "directory of the shared Berkeley DB environment"},
    {"db_cache_size", PL_CONF_SIZE, "8m", 256 * 1024LL, 1024LL * 1024 * 1024, NULL,
     "Berkeley DB cache size (set when the environment is created)"},
    {"db_log_file_size", PL_CONF_SIZE, "1m", 64 * 1024LL, 256LL * 1024 * 1024, NULL,
     "size of one transaction log file"},
    {"db_checkpoint_interval", PL_CONF_TIME, "60s", 1, 3600, NULL,
     "how often a process checkpoints and removes unneeded log files"},
    {"db_lock_timeout", PL_CONF_TIME, "2s", 1, 600, NULL,
     "a lock wait longer than this checks for dead processes and retries"},
    {"enabled_domains", PL_CONF_LIST, "", 0, 0, check_domains,
     "domains for which postlink acts; mail for others passes untouched"},
    {"postlink_user", PL_CONF_STR, "postlink", 0, 0, check_word,
     "unprivileged account the daemons run as and that owns db_home"},
    {"syslog_name", PL_CONF_STR, "postlink", 0, 0, check_word,
     "prefix of every syslog line"},
    {"syslog_facility", PL_CONF_STR, "mail", 0, 0, check_facility,
     "syslog facility"},
    {"sync_milter_socket", PL_CONF_STR, "unix:/var/spool/postfix/postlink/sync-milter", 0, 0,
     check_socket, "where postlink-sync listens for Postfix (smtpd_milters)"},
    {"sync_lmtp_socket", PL_CONF_STR, "/var/spool/postfix/private/postlink-sync", 0, 0,
     check_abs_path, "where postlink-syncd listens for Postfix's lmtp(8) client"},
    {"policy_socket", PL_CONF_STR, "/var/spool/postfix/private/postlink-policy", 0, 0,
     check_abs_path, "where postlink-policyd listens for Postfix (check_policy_service)"},
    {"sync_transport_domain", PL_CONF_STR, "sync.postlink.invalid", 0, 0, check_domain,
     "pseudo-domain whose mail transport_maps sends to postlink-syncd"},
    {"reinject_url", PL_CONF_STR, "smtp://127.0.0.1:10026", 0, 0, check_url,
     "Postfix listener without milters where copies of controls are injected"},
    {"sync_peers", PL_CONF_LIST, "", 0, 0, check_peers,
     "client IP addresses/networks or TLS certificate fingerprints trusted to send controls for any enabled user"},
    {"sync_hostname", PL_CONF_STR, "", 0, 0, NULL,
     "name of this server in X-Postlink-Forwarded (default: the host name)"},
    {"pending_ttl", PL_CONF_TIME, "7d", 1, 366LL * 86400, NULL,
     "how long a control waits for its target message"},
    {"control_max_targets", PL_CONF_INT, "50", 1, 10000, NULL,
     "most X-Control-Target message-ids in one control"},
    {"control_dedupe_ttl", PL_CONF_TIME, "30d", 60, 366LL * 86400, NULL,
     "how long a control's Message-ID is remembered to apply it only once"},
    {"seen_ttl", PL_CONF_TIME, "90d", 3600, 3660LL * 86400, NULL,
     "forget messages whose state never changed after this long"},
    {"outbox_retry_time", PL_CONF_TIME, "30s", 1, 3600, NULL,
     "wait before retrying a copy or IMAP change that failed"},
    {"outbox_max_age", PL_CONF_TIME, "5d", 60, 366LL * 86400, NULL,
     "give up (and log) a copy or IMAP change still failing after this long"},
    {"imap_url", PL_CONF_LIST, "", 0, 0, check_imap,
     "per domain, the IMAP server where states are also set: domain=imap://host:port"},
    {"imap_login", PL_CONF_STR, "%u*postlink", 0, 0, NULL,
     "IMAP login for a user (%u = the user's address), e.g. a Dovecot master user"},
    {"imap_password_file", PL_CONF_STR, "", 0, 0, NULL,
     "file holding the IMAP (master) password"},
    {"tag_milter_socket", PL_CONF_STR, "unix:/var/spool/postfix/postlink/tag-milter", 0, 0,
     check_socket, "where postlink-tag listens for Postfix (smtpd_milters)"},
    {"tag_keys_file", PL_CONF_STR, "/etc/postlink/tag.keys", 0, 0, check_abs_path,
     "HMAC keys for X-Postlink-Tag: lines \"KEY-ID HEX-SECRET [sign]\" (this site's and trusted peers')"},
    {"tag_max_age", PL_CONF_TIME, "30d", 1, 3660LL * 86400, NULL,
     "presence is shown for a tagged mail only while its mail-id is younger than this"},
    {"presence_timeout_ms", PL_CONF_INT, "200", 10, 10000, NULL,
     "time budget in milliseconds for one presence lookup by the milter; past it: unknown"},
    {"xmpp_jid", PL_CONF_STR, "", 0, 0, NULL,
     "postlink-xmppd's own XMPP account (bare JID), e.g. postlink@chat.example.com"},
    {"xmpp_password_file", PL_CONF_STR, "/etc/postlink/xmpp.password", 0, 0, check_abs_path,
     "file holding the password of xmpp_jid"},
    {"xmpp_server", PL_CONF_STR, "", 0, 0, NULL,
     "host:port of the XMPP server (default: DNS SRV of the JID's domain)"},
    {"xmpp_tls", PL_CONF_STR, "required", 0, 0, check_tls_mode,
     "TLS to the XMPP server: required, may or none"},
    {"xmpp_ping_interval", PL_CONF_TIME, "60s", 1, 3600, NULL,
     "postlink-xmppd pings the XMPP server this often and reconnects when a ping goes unanswered"},
    {"xmpp_lookup_socket", PL_CONF_STR, "/run/postlink/xmpp-lookup", 0, 0, check_abs_path,
     "unix socket where postlink-xmppd answers the milter's presence lookups"},
    {"xmpp_muc_service", PL_CONF_STR, "", 0, 0, NULL,
     "MUC (XEP-0045) service for group chats about a mail, e.g. conference.chat.example.com"},
    {NULL, PL_CONF_STR, NULL, 0, 0, NULL, NULL},
};
