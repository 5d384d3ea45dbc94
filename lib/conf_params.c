/* conf_params.c -- the validators of postlink.conf parameters and the
 * parameter table, built from conf_params.def (the one list of them). */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_params.h"
#include "log.h"
#include "netmatch.h"
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

static const char *check_over_action(const char *v)
{
    if (strcmp(v, "bounce") == 0 || strcmp(v, "drop") == 0)
        return NULL;
    return "must be bounce or drop";
}

static const char *check_engine(const char *v)
{
    if (strcmp(v, "native") == 0 || strcmp(v, "libmilter") == 0)
        return NULL;
    return "must be native or libmilter";
}

/* milter_filters: "tag", "route" and "sync", each at most once, at least
 * one, sync last. */
static const char *check_filters(const char *v)
{
    char buf[256], *save = NULL, *w;
    int tag = 0, sync = 0, route = 0, mirror = 0, last_sync = 0;
    if (strlen(v) >= sizeof(buf))
        return "too long";
    snprintf(buf, sizeof(buf), "%s", v);
    for (w = strtok_r(buf, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
        int *seen = strcmp(w, "tag") == 0 ? &tag : strcmp(w, "sync") == 0 ? &sync
                  : strcmp(w, "route") == 0 ? &route : strcmp(w, "mirror") == 0 ? &mirror : NULL;
        if (seen == NULL)
            return "may list only tag, route, mirror and sync";
        if ((*seen)++)
            return "lists a filter twice";
        last_sync = seen == &sync;
    }
    if (tag + sync + route + mirror == 0)
        return "must list at least one filter (tag, route, mirror, sync)";
    /* sync records arrivals and releases held controls at the end of the
     * message: no filter after it may still refuse the message */
    if (sync && last_sync == 0)
        return "must list sync last (it commits at the end of the message)";
    return NULL;
}

/* route_order: prefix, map and keyword, each at most once. */
static const char *check_route_order(const char *v)
{
    char buf[128], *save = NULL, *w;
    int seen[3] = {0, 0, 0}, n = 0;
    static const char *const words[] = {"prefix", "map", "keyword"};
    if (strlen(v) >= sizeof(buf))
        return "too long";
    snprintf(buf, sizeof(buf), "%s", v);
    for (w = strtok_r(buf, ", \t", &save); w; w = strtok_r(NULL, ", \t", &save)) {
        int k = -1;
        for (int i = 0; i < 3; i++)
            if (strcmp(w, words[i]) == 0)
                k = i;
        if (k < 0)
            return "may list only prefix, map and keyword";
        if (seen[k]++)
            return "lists a rule twice";
        n++;
    }
    return n ? NULL : "must list at least one rule (prefix, map, keyword)";
}

/* route_country_code: 1-3 digits, or empty. */
static const char *check_country_code(const char *v)
{
    size_t n = strlen(v);
    if (n == 0)
        return NULL;
    if (n > 3 || strspn(v, "0123456789") != n || v[0] == '0')
        return "must be 1-3 digits without '+' (e.g. 81), or empty";
    return NULL;
}

/* sip_server, sip_bind: a SIP URI "sip:HOST[:PORT][;params]". */
static const char *check_sip_uri(const char *v)
{
    if (*v == '\0')
        return NULL;
    if (strncmp(v, "sip:", 4) != 0 || v[4] == '\0' || strchr(v, ' '))
        return "must be a SIP URI such as sip:127.0.0.1:5060;transport=tcp";
    return NULL;
}

/* A numeric IPv4 or IPv6 address. */
static const char *check_ip(const char *v)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, v, buf) == 1 || inet_pton(AF_INET6, v, buf) == 1)
        return NULL;
    return "must be a numeric IPv4 or IPv6 address";
}

static const char *check_setup(const char *v)
{
    return strcmp(v, "passive") == 0 || strcmp(v, "active") == 0 ? NULL : "must be passive or active";
}

/* IP:PORT (IPv6 as [addr]:port). */
static const char *check_hostport(const char *v)
{
    char host[64];
    unsigned port;
    switch (pl_hostport_split(v, host, sizeof(host), &port)) {
    case 0:
        return NULL;
    case -2:
        return "must be IP:PORT with a numeric address";
    default:
        return "must be IP:PORT, e.g. 127.0.0.1:25 or [::1]:25";
    }
}

/* A list of IPv4/IPv6 addresses or networks. */
static const char *check_networks(const char *v)
{
    static _Thread_local char msg[300];
    struct pl_netlist l = {0};
    char err[256];
    if (pl_netlist_parse(&l, v, err, sizeof(err)) != 0) {
        snprintf(msg, sizeof(msg), "%s (an address or address/prefix-length)", err);
        return msg;
    }
    pl_netlist_free(&l);
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

#define PL_LISTOFF_STR(name) 0
#define PL_LISTOFF_BOOL(name) 0
#define PL_LISTOFF_INT(name) 0
#define PL_LISTOFF_SIZE(name) 0
#define PL_LISTOFF_TIME(name) 0
#define PL_LISTOFF_LIST(name) offsetof(struct pl_cfg, name##_list)
#define PL_CONF_ROW(name, type, def, min, max, check, when, help) \
    {#name, PL_CONF_##type, def, min, max, check, help, PL_CONF_##when, \
     offsetof(struct pl_cfg, name), PL_LISTOFF_##type(name)},
const struct pl_conf_param pl_conf_params[] = {
#define X PL_CONF_ROW
#include "conf_params.def"
#undef X
    {NULL, PL_CONF_STR, NULL, 0, 0, NULL, NULL, PL_CONF_RELOAD, 0, 0},
};
