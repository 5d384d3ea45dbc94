/* mirror.c -- capability 2's tables (mirror.h): the mirror accounts, the
 * ids of each primary's list, the last sync's status, sync requests and
 * the hand-over guard. */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "mirror.h"
#include "netmatch.h"
#include "route.h"
#include "strutil.h"

/* pl_store_scan hands values without a terminating NUL: a copy with one. */
static char *val_str(const void *v, size_t vl)
{
    char *c = pl_xmalloc(vl + 1);
    memcpy(c, v, vl);
    c[vl] = '\0';
    return c;
}

/* ---- accounts -------------------------------------------------------- */

int pl_mirror_url(const char *url, char *scheme, size_t slen, char *host, size_t hlen,
                  unsigned *port)
{
    static const struct { const char *s; unsigned port; } schemes[] = {
        {"pop3", 110}, {"pop3s", 995}, {"imap", 143}, {"imaps", 993}};
    const char *p = strstr(url, "://");
    char hp[300];
    size_t n;
    if (p == NULL)
        return -1;
    n = (size_t)(p - url);
    for (size_t i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
        if (strlen(schemes[i].s) != n || strncmp(url, schemes[i].s, n) != 0)
            continue;
        p += 3;
        n = strlen(p);
        if (n && p[n - 1] == '/')
            n--;
        if (n == 0 || n >= sizeof(hp) || n >= hlen || memchr(p, '/', n) || memchr(p, '@', n))
            return -1;
        memcpy(hp, p, n);
        hp[n] = '\0';
        snprintf(scheme, slen, "%s", schemes[i].s);
        *port = schemes[i].port;
        if (hp[0] == '[')           /* [IPv6] or [IPv6]:PORT */
            return pl_hostport_split(hp, host, hlen, port) == 0 && *port ? 0 : -1;
        char *colon = strchr(hp, ':');
        if (colon) {
            char *end;
            unsigned long pn = strtoul(colon + 1, &end, 10);
            if (strchr(colon + 1, ':') || *end || end == colon + 1 || pn == 0 || pn > 65535)
                return -1;
            *colon = '\0';
            *port = (unsigned)pn;
        }
        if (hp[0] == '\0')
            return -1;
        for (const char *c = hp; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
                return -1;
        snprintf(host, hlen, "%s", hp);
        return 0;
    }
    return -1;
}

static int times_ok(const char *s)
{
    while (*s) {
        if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) || s[2] != ':' ||
            !isdigit((unsigned char)s[3]) || !isdigit((unsigned char)s[4]))
            return 0;
        if ((s[0] - '0') * 10 + (s[1] - '0') > 23 || (s[3] - '0') * 10 + (s[4] - '0') > 59)
            return 0;
        s += 5;
        if (*s == ',')
            s++;
        else if (*s)
            return 0;
    }
    return 1;
}

static int field_ok(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

const char *pl_maccount_check(const struct pl_maccount *a)
{
    char scheme[8], host[256];
    unsigned port;
    if (pl_addr_check(a->user) != NULL)
        return "the user is not an address (local@domain)";
    if (pl_mirror_url(a->primary, scheme, sizeof(scheme), host, sizeof(host), &port) != 0)
        return "the primary is not pop3://host[:port], pop3s://host[:port], imap://host[:port] "
               "or imaps://host[:port]";
    if (a->use_retr && strncmp(scheme, "imap", 4) == 0)
        return "--retr is for POP3 primaries (an IMAP primary is read with BODY.PEEK only)";
    if (a->plain && (strcmp(scheme, "pop3s") == 0 || strcmp(scheme, "imaps") == 0))
        return "--plain is for pop3:// or imap:// (no TLS at all), not a TLS URL";
    if (a->login[0] == '\0' || !field_ok(a->login))
        return "the login is empty or has control characters";
    if (a->secret_file[0] != '/' || !field_ok(a->secret_file))
        return "the secret file must be an absolute path";
    if (strcmp(a->deliver_to, "push") != 0 && pl_addr_check(a->deliver_to) != NULL)
        return "deliver-to is not an address (local@domain)";
    if (!field_ok(a->ca_file) || (a->ca_file[0] && a->ca_file[0] != '/'))
        return "the CA file must be an absolute path";
    for (const char *c = a->tls_name; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '-')
            return "the TLS name must be a host name";
    if (!times_ok(a->times))
        return "times must be HH:MM[,HH:MM...]";
    if (a->interval && a->interval < 10)
        return "the interval must be at least 10 seconds";
    return NULL;
}

static size_t user_key(const char *user, char *out, size_t outlen)
{
    return pl_addr_canon(user, out, outlen) == 0 ? strlen(out) : 0;
}

static void account_format(const struct pl_maccount *a, char *out, size_t outlen)
{
    snprintf(out, outlen,
             "primary=%s\nlogin=%s\nsecret_file=%s\nmode=%s\ndeliver_to=%s\nca_file=%s\ntls_name=%s\n"
             "insecure=%d\nplain=%d\nretr=%d\ninterval=%u\ntimes=%s\nadopt=%d\ncreated=%" PRId64 "\n",
             a->primary, a->login, a->secret_file, a->mode == PL_MIRROR_MARK ? "mark" : "delete",
             a->deliver_to, a->ca_file, a->tls_name, a->insecure, a->plain, a->use_retr, a->interval, a->times, a->adopt,
             a->created);
}

void pl_mstatus_field(const char *text, const char *name, char *out, size_t outlen)
{
    size_t n = strlen(name);
    out[0] = '\0';
    for (const char *l = text; l && *l;) {
        const char *e = strchr(l, '\n');
        size_t len = e ? (size_t)(e - l) : strlen(l);
        if (len > n && strncmp(l, name, n) == 0 && l[n] == '=') {
            size_t vl = len - n - 1;
            if (vl >= outlen)
                vl = outlen - 1;
            memcpy(out, l + n + 1, vl);
            out[vl] = '\0';
            return;
        }
        l = e ? e + 1 : NULL;
    }
}

static void account_parse(const char *user, const char *text, struct pl_maccount *a)
{
    char v[32];
    memset(a, 0, sizeof(*a));
    snprintf(a->user, sizeof(a->user), "%s", user);
    pl_mstatus_field(text, "primary", a->primary, sizeof(a->primary));
    pl_mstatus_field(text, "login", a->login, sizeof(a->login));
    pl_mstatus_field(text, "secret_file", a->secret_file, sizeof(a->secret_file));
    pl_mstatus_field(text, "mode", v, sizeof(v));
    a->mode = strcmp(v, "mark") == 0 ? PL_MIRROR_MARK : PL_MIRROR_DELETE;
    pl_mstatus_field(text, "deliver_to", a->deliver_to, sizeof(a->deliver_to));
    pl_mstatus_field(text, "ca_file", a->ca_file, sizeof(a->ca_file));
    pl_mstatus_field(text, "tls_name", a->tls_name, sizeof(a->tls_name));
    pl_mstatus_field(text, "insecure", v, sizeof(v));
    a->insecure = atoi(v);
    pl_mstatus_field(text, "plain", v, sizeof(v));
    a->plain = atoi(v);
    pl_mstatus_field(text, "retr", v, sizeof(v));
    a->use_retr = atoi(v);
    pl_mstatus_field(text, "interval", v, sizeof(v));
    a->interval = (unsigned)strtoul(v, NULL, 10);
    pl_mstatus_field(text, "times", a->times, sizeof(a->times));
    pl_mstatus_field(text, "adopt", v, sizeof(v));
    a->adopt = atoi(v);
    pl_mstatus_field(text, "created", v, sizeof(v));
    a->created = strtoll(v, NULL, 10);
}

int pl_maccount_get(pl_txn *t, const char *user, struct pl_maccount *a)
{
    char key[256];
    size_t klen = user_key(user, key, sizeof(key));
    void *val;
    int rc;
    if (klen == 0)
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, PL_T_MACCOUNT, key, klen, &val, NULL, 0)) != PL_OK)
        return rc;
    account_parse(key, val, a);
    free(val);
    return PL_OK;
}

int pl_maccount_put(pl_txn *t, const struct pl_maccount *a, int replace, int *exists)
{
    char key[256], val[4096];
    size_t klen = user_key(a->user, key, sizeof(key));
    void *old = NULL;
    int rc;
    if (exists)
        *exists = 0;
    if (klen == 0 || pl_maccount_check(a) != NULL)
        return PL_ERR;
    rc = pl_store_get(t, PL_T_MACCOUNT, key, klen, &old, NULL, 1);
    free(old);
    if (rc == PL_OK && !replace) {
        if (exists)
            *exists = 1;
        return PL_ERR;
    }
    if (rc != PL_OK && rc != PL_NOTFOUND)
        return rc;
    account_format(a, val, sizeof(val));
    return pl_store_put(t, PL_T_MACCOUNT, key, klen, val, strlen(val));
}


int pl_maccount_del(pl_txn *t, const char *user)
{
    char key[257];
    size_t klen = user_key(user, key, sizeof(key) - 1);
    int rc;
    if (klen == 0)
        return PL_NOTFOUND;
    if ((rc = pl_store_del(t, PL_T_MACCOUNT, key, klen)) != PL_OK)
        return rc;
    if ((rc = pl_store_del(t, PL_T_MSTATUS, key, klen)) != PL_OK && rc != PL_NOTFOUND)
        return rc;
    key[klen++] = '\n';
    if ((rc = pl_store_del_prefix(t, PL_T_MID, key, klen)) != PL_OK)
        return rc;
    return pl_store_del_prefix(t, PL_T_MREQ, key, klen);
}

struct listctx { pl_maccount_fn fn; void *ctx; };

static int list_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct listctx *l = ctx;
    struct pl_maccount a;
    char user[256], *text;
    if (kl >= sizeof(user))
        return 0;
    memcpy(user, k, kl);
    user[kl] = '\0';
    text = val_str(v, vl);
    account_parse(user, text, &a);
    free(text);
    return l->fn(l->ctx, &a);
}

int pl_maccount_list(pl_txn *t, pl_maccount_fn fn, void *ctx)
{
    struct listctx l = {fn, ctx};
    return pl_store_scan(t, PL_T_MACCOUNT, "", 0, list_visit, &l);
}

/* ---- ids ------------------------------------------------------------- */

static size_t mid_key(const char *user, const char *id, char *out, size_t outlen)
{
    char u[256];
    int n;
    if (user_key(user, u, sizeof(u)) == 0)
        return 0;
    n = snprintf(out, outlen, "%s\n%s", u, id);
    return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}

int pl_mrec_put(pl_txn *t, const char *user, const struct pl_mrec *r)
{
    char key[PL_UIDL_MAX + 260], val[700];
    size_t klen = mid_key(user, r->id, key, sizeof(key));
    int n;
    if (klen == 0 || strchr(r->msgid, ' ') || !field_ok(r->msgid))
        return PL_ERR;
    n = snprintf(val, sizeof(val), "%c %u %" PRId64 " %llu %s %s", r->state, r->missing, r->changed,
                 r->size, r->token[0] ? r->token : "-", r->msgid[0] ? r->msgid : "-");
    if (n < 0 || (size_t)n >= sizeof(val))
        return PL_ERR;
    return pl_store_put(t, PL_T_MID, key, klen, val, (size_t)n);
}

static int mrec_parse(const char *id, size_t idlen, const char *val, struct pl_mrec *r)
{
    char tok[64], msgid[600];
    long long changed;
    memset(r, 0, sizeof(*r));
    if (idlen == 0 || idlen > PL_UIDL_MAX)
        return -1;
    memcpy(r->id, id, idlen);
    if (sscanf(val, "%c %u %lld %llu %63s %599s", &r->state, &r->missing, &changed, &r->size, tok,
               msgid) != 6)
        return -1;
    r->changed = changed;
    if (strcmp(tok, "-") != 0 && strlen(tok) < sizeof(r->token))
        memcpy(r->token, tok, strlen(tok) + 1);
    if (strcmp(msgid, "-") != 0 && strlen(msgid) < sizeof(r->msgid))
        memcpy(r->msgid, msgid, strlen(msgid) + 1);
    return strchr("HPST", r->state) && r->state ? 0 : -1;
}

int pl_mrec_get(pl_txn *t, const char *user, const char *id, struct pl_mrec *r, int for_update)
{
    char key[PL_UIDL_MAX + 260];
    size_t klen = mid_key(user, id, key, sizeof(key));
    void *val;
    int rc;
    if (klen == 0)
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, PL_T_MID, key, klen, &val, NULL, for_update)) != PL_OK)
        return rc;
    rc = mrec_parse(id, strlen(id), val, r) == 0 ? PL_OK : PL_ERR;
    free(val);
    return rc;
}

int pl_mrec_del(pl_txn *t, const char *user, const char *id)
{
    char key[PL_UIDL_MAX + 260];
    size_t klen = mid_key(user, id, key, sizeof(key));
    return klen == 0 ? PL_NOTFOUND : pl_store_del(t, PL_T_MID, key, klen);
}

struct mlist { size_t plen; pl_mrec_fn fn; void *ctx; };

static int mrec_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct mlist *m = ctx;
    struct pl_mrec r;
    char *text = val_str(v, vl);
    int bad = mrec_parse((const char *)k + m->plen, kl - m->plen, text, &r);
    free(text);
    if (bad)
        return 0;                   /* never written by us: skipped */
    return m->fn(m->ctx, &r);
}

int pl_mrec_list(pl_txn *t, const char *user, pl_mrec_fn fn, void *ctx)
{
    char key[260];
    size_t klen = user_key(user, key, sizeof(key) - 1);
    struct mlist m = {klen + 1, fn, ctx};
    if (klen == 0)
        return PL_OK;
    key[klen++] = '\n';
    return pl_store_scan(t, PL_T_MID, key, klen, mrec_visit, &m);
}

struct mpurge { pl_txn *t; const char *user; int64_t before; unsigned n; };

static int purge_one(void *ctx, const struct pl_mrec *r)
{
    struct mpurge *p = ctx;
    if (r->state != PL_MREC_TOMB || r->changed >= p->before)
        return 0;
    if (pl_mrec_del(p->t, p->user, r->id) != PL_OK)
        return PL_ERR;
    p->n++;
    return 0;
}

int pl_mrec_purge(pl_txn *t, const char *user, int64_t tomb_before, unsigned *n)
{
    struct mpurge p = {t, user, tomb_before, 0};
    int rc = pl_mrec_list(t, user, purge_one, &p);
    if (n)
        *n = p.n;
    return rc;
}

int pl_mtoken_new(char *out, size_t outlen) { return pl_route_token(out, outlen); }

int pl_mtoken_ok(const char *tok)
{
    return strlen(tok) == PL_MTOKEN_LEN && strspn(tok, "0123456789abcdef") == PL_MTOKEN_LEN;
}

/* ---- status, requests, guard ----------------------------------------- */

int pl_mstatus_get(pl_txn *t, const char *user, char **text)
{
    char key[256];
    size_t klen = user_key(user, key, sizeof(key));
    if (klen == 0)
        return PL_NOTFOUND;
    return pl_store_get(t, PL_T_MSTATUS, key, klen, (void **)text, NULL, 0);
}

int pl_mstatus_put(pl_txn *t, const char *user, const char *text)
{
    char key[256];
    size_t klen = user_key(user, key, sizeof(key));
    return klen == 0 ? PL_ERR : pl_store_put(t, PL_T_MSTATUS, key, klen, text, strlen(text));
}

static size_t req_key(const char *user, const char *what, char *out, size_t outlen)
{
    char u[256];
    int n;
    if (user_key(user, u, sizeof(u)) == 0 || !field_ok(what) || what[0] == '\0')
        return 0;
    n = snprintf(out, outlen, "%s\n%s", u, what);
    return n < 0 || (size_t)n >= outlen ? 0 : (size_t)n;
}

int pl_mreq_put(pl_txn *t, const char *user, const char *what, int64_t now)
{
    char key[400], val[32];
    size_t klen = req_key(user, what, key, sizeof(key));
    if (klen == 0)
        return PL_ERR;
    snprintf(val, sizeof(val), "%" PRId64, now);
    return pl_store_put(t, PL_T_MREQ, key, klen, val, strlen(val));
}

struct rlist { pl_mreq_fn fn; void *ctx; };

static int req_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct rlist *r = ctx;
    char key[400], *nl, *text;
    long long when;
    if (kl >= sizeof(key))
        return 0;
    memcpy(key, k, kl);
    key[kl] = '\0';
    if ((nl = strchr(key, '\n')) == NULL)
        return 0;
    *nl = '\0';
    text = val_str(v, vl);
    when = strtoll(text, NULL, 10);
    free(text);
    return r->fn(r->ctx, key, nl + 1, when);
}

int pl_mreq_list(pl_txn *t, pl_mreq_fn fn, void *ctx)
{
    struct rlist r = {fn, ctx};
    return pl_store_scan(t, PL_T_MREQ, "", 0, req_visit, &r);
}

int pl_mreq_del(pl_txn *t, const char *user, const char *what)
{
    char key[400];
    size_t klen = req_key(user, what, key, sizeof(key));
    return klen == 0 ? PL_NOTFOUND : pl_store_del(t, PL_T_MREQ, key, klen);
}

int pl_mguard_take(pl_txn *t, const char *token, int64_t now)
{
    char val[32];
    void *old = NULL;
    int rc;
    if (!pl_mtoken_ok(token))
        return PL_ERR;
    rc = pl_store_get(t, PL_T_MGUARD, token, PL_MTOKEN_LEN, &old, NULL, 1);
    free(old);
    if (rc == PL_OK)
        return 1;
    if (rc != PL_NOTFOUND)
        return rc;
    snprintf(val, sizeof(val), "%" PRId64, now);
    rc = pl_store_put(t, PL_T_MGUARD, token, PL_MTOKEN_LEN, val, strlen(val));
    return rc == PL_OK ? 0 : rc;
}

struct gpurge { pl_txn *t; int64_t before; unsigned n; };

static int guard_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct gpurge *g = ctx;
    char *text = val_str(v, vl);
    long long when = strtoll(text, NULL, 10);
    free(text);
    if (when >= g->before)
        return 0;
    if (pl_store_del(g->t, PL_T_MGUARD, k, kl) != PL_OK)
        return PL_ERR;
    g->n++;
    return 0;
}

int pl_mguard_purge(pl_txn *t, int64_t before, unsigned *n)
{
    struct gpurge g = {t, before, 0};
    int rc = pl_store_scan(t, PL_T_MGUARD, "", 0, guard_visit, &g);
    if (n)
        *n = g.n;
    return rc;
}
