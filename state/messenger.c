/* messenger.c -- links, mail-ids and the presence cache (messenger.h). */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "address.h"
#include "messenger.h"
#include "strutil.h"
#include "sync.h"

/* ---- JIDs ---------------------------------------------------------------- */

const char *pl_jid_check(const char *jid)
{
    const char *at = strchr(jid, '@'), *p;
    size_t n = strlen(jid);

    if (n == 0 || n >= PL_JID_MAX)
        return "empty or longer than 319 bytes";
    if (strchr(jid, '/'))
        return "must be a bare JID (no /resource)";
    if (at == NULL || at == jid || at[1] == '\0' || strchr(at + 1, '@'))
        return "must be local@domain";
    for (p = jid; p < at; p++)
        if ((unsigned char)*p <= ' ' || strchr("\"&':<>", *p) || (unsigned char)*p >= 0x7f)
            return "local part has a character XMPP forbids (space \" & ' : < >), or is not ASCII";
    for (p = at + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.'))
            return "domain must be a host name";
    if (at[1] == '.' || jid[n - 1] == '.' || strstr(at, ".."))
        return "domain must be a host name";
    return NULL;
}

void pl_jid_canon(const char *jid, char *out, size_t outlen)
{
    size_t i;
    if (outlen == 0)
        return;
    for (i = 0; jid[i] && jid[i] != '/' && i + 1 < outlen; i++)
        out[i] = (char)tolower((unsigned char)jid[i]);
    out[i] = '\0';
}

/* ---- links --------------------------------------------------------------- */

static int parse_link(const char *addr, const void *v, size_t vl, struct pl_mlink *l)
{
    char buf[PL_JID_MAX + 64];
    long long created;
    int share;

    snprintf(buf, sizeof(buf), "%.*s", (int)(vl < sizeof(buf) - 1 ? vl : sizeof(buf) - 1),
             (const char *)v);
    memset(l, 0, sizeof(*l));
    if (sscanf(buf, "%lld %d %15s %319s", &created, &share, l->sub, l->jid) != 4)
        return PL_ERR;
    l->created = created;
    l->share = share != 0;
    snprintf(l->addr, sizeof(l->addr), "%s", addr);
    return PL_OK;
}

static int put_link(pl_txn *t, const struct pl_mlink *l)
{
    char v[PL_JID_MAX + 64];
    int n = snprintf(v, sizeof(v), "%" PRId64 " %d %s %s", l->created, l->share, l->sub, l->jid);
    if (n < 0 || (size_t)n >= sizeof(v))
        return PL_ERR;
    return pl_store_put(t, "mlink", l->addr, strlen(l->addr), v, (size_t)n);
}

int pl_mlink_get(pl_txn *t, const char *addr, struct pl_mlink *out)
{
    char a[PL_JID_MAX];
    void *v = NULL;
    size_t vl = 0;
    int rc;

    if (pl_addr_canon(addr, a, sizeof(a)) != 0)
        return PL_NOTFOUND;                 /* longer than any address: no link */
    if ((rc = pl_store_get(t, "mlink", a, strlen(a), &v, &vl, 0)) != PL_OK)
        return rc;
    rc = parse_link(a, v, vl, out);
    free(v);
    return rc;
}

int pl_mlink_by_jid(pl_txn *t, const char *jid, struct pl_mlink *out)
{
    char j[PL_JID_MAX], a[PL_JID_MAX];
    void *v = NULL;
    size_t vl = 0;
    int rc;

    pl_jid_canon(jid, j, sizeof(j));
    if ((rc = pl_store_get(t, "mjid", j, strlen(j), &v, &vl, 0)) != PL_OK)
        return rc;
    snprintf(a, sizeof(a), "%.*s", (int)vl, (const char *)v);
    free(v);
    return pl_mlink_get(t, a, out);
}

int pl_mlink_add(pl_txn *t, const char *addr, const char *jid, int64_t now)
{
    struct pl_mlink l, old;
    int rc;

    memset(&l, 0, sizeof(l));
    if (pl_addr_canon(addr, l.addr, sizeof(l.addr)) != 0)
        return PL_ERR;                      /* never store a cut address */
    pl_jid_canon(jid, l.jid, sizeof(l.jid));
    if ((rc = pl_mlink_get(t, l.addr, &old)) == PL_OK)
        return strcmp(old.jid, l.jid) == 0 ? PL_OK : PL_MLINK_OTHER;
    if (rc != PL_NOTFOUND)
        return rc;
    if ((rc = pl_mlink_by_jid(t, l.jid, &old)) == PL_OK)
        return PL_MLINK_OTHER;
    if (rc != PL_NOTFOUND)
        return rc;
    l.created = now;
    l.share = 1;
    snprintf(l.sub, sizeof(l.sub), "none");
    if ((rc = put_link(t, &l)) != PL_OK)
        return rc;
    return pl_store_put(t, "mjid", l.jid, strlen(l.jid), l.addr, strlen(l.addr));
}

int pl_mlink_del(pl_txn *t, const char *addr)
{
    struct pl_mlink l;
    int rc;

    if ((rc = pl_mlink_get(t, addr, &l)) != PL_OK)
        return rc;
    if ((rc = pl_store_del(t, "mjid", l.jid, strlen(l.jid))) != PL_OK && rc != PL_NOTFOUND)
        return rc;
    return pl_store_del(t, "mlink", l.addr, strlen(l.addr));
}

int pl_mlink_set_sub(pl_txn *t, const char *addr, const char *sub)
{
    struct pl_mlink l;
    int rc;
    if ((rc = pl_mlink_get(t, addr, &l)) != PL_OK)
        return rc;
    if (strcmp(l.sub, sub) == 0)
        return PL_OK;
    snprintf(l.sub, sizeof(l.sub), "%s", sub);
    return put_link(t, &l);
}

int pl_mlink_set_share(pl_txn *t, const char *addr, int share)
{
    struct pl_mlink l;
    int rc;
    if ((rc = pl_mlink_get(t, addr, &l)) != PL_OK)
        return rc;
    l.share = share != 0;
    return put_link(t, &l);
}

struct lvisit { pl_mlink_fn fn; void *ctx; };

static int link_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct lvisit *lv = ctx;
    struct pl_mlink l;
    char a[PL_JID_MAX];
    snprintf(a, sizeof(a), "%.*s", (int)kl, (const char *)k);
    if (parse_link(a, v, vl, &l) != PL_OK)
        return 0;                      /* unreadable: skip */
    return lv->fn(lv->ctx, &l);
}

int pl_mlink_list(pl_txn *t, pl_mlink_fn fn, void *ctx)
{
    struct lvisit lv = {fn, ctx};
    int rc = pl_store_scan(t, "mlink", "", 0, link_visit, &lv);
    return rc < 0 ? rc : PL_OK;
}

/* ---- mail-ids ------------------------------------------------------------ */

int pl_mailid_new(char *out, size_t outlen)
{
    static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
    unsigned char r[16];
    if (outlen < PL_MAILID_LEN + 1 || getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        return PL_ERR;
    for (int i = 0; i < PL_MAILID_LEN; i++) {
        int bit = i * 5, byte = bit / 8, off = bit % 8;
        unsigned v = (unsigned)r[byte] << 8 | (byte + 1 < 16 ? r[byte + 1] : 0);
        out[i] = b32[(v >> (11 - off)) & 31];
    }
    out[PL_MAILID_LEN] = '\0';
    return PL_OK;
}

int pl_mailid_ok(const char *mailid)
{
    return strlen(mailid) == PL_MAILID_LEN &&
           strspn(mailid, "abcdefghijklmnopqrstuvwxyz234567") == PL_MAILID_LEN;
}

/* One field per line: no CR or LF inside a field. */
static void field(struct pl_strbuf *b, const char *s, size_t max)
{
    size_t n = 0;
    for (; *s && n < max; s++, n++)
        pl_strbuf_addc(b, *s == '\r' || *s == '\n' ? ' ' : *s);
    pl_strbuf_addc(b, '\n');
}

int pl_mailid_put(pl_txn *t, const char *mailid, const struct pl_mailid *m)
{
    struct pl_strbuf b = {0};
    int rc;
    if (!pl_mailid_ok(mailid))
        return PL_ERR;
    pl_strbuf_addf(&b, "%" PRId64 "\n", m->created);
    field(&b, m->sender, sizeof(m->sender) - 1);
    field(&b, m->jid, sizeof(m->jid) - 1);
    field(&b, m->msgid, sizeof(m->msgid) - 1);
    field(&b, m->date, sizeof(m->date) - 1);
    field(&b, m->subject, sizeof(m->subject) - 1);
    field(&b, m->rcpts, sizeof(m->rcpts) - 1);
    rc = pl_store_put(t, "mailid", mailid, PL_MAILID_LEN, b.s, b.len);
    pl_strbuf_free(&b);
    return rc;
}

static const char *take_line(const char *p, const char *end, char *out, size_t outlen)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n;
    if (nl == NULL)
        nl = end;
    n = (size_t)(nl - p);
    snprintf(out, outlen, "%.*s", (int)n, p);
    return nl < end ? nl + 1 : end;
}

int pl_mailid_get(pl_txn *t, const char *mailid, struct pl_mailid *m)
{
    void *v = NULL;
    size_t vl = 0;
    char created[32];
    const char *p, *end;
    int rc;

    if (!pl_mailid_ok(mailid))
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, "mailid", mailid, PL_MAILID_LEN, &v, &vl, 0)) != PL_OK)
        return rc;
    memset(m, 0, sizeof(*m));
    p = v;
    end = p + vl;
    p = take_line(p, end, created, sizeof(created));
    m->created = strtoll(created, NULL, 10);
    p = take_line(p, end, m->sender, sizeof(m->sender));
    p = take_line(p, end, m->jid, sizeof(m->jid));
    p = take_line(p, end, m->msgid, sizeof(m->msgid));
    p = take_line(p, end, m->date, sizeof(m->date));
    p = take_line(p, end, m->subject, sizeof(m->subject));
    take_line(p, end, m->rcpts, sizeof(m->rcpts));
    free(v);
    return PL_OK;
}

int pl_mailid_has_rcpt(const struct pl_mailid *m, const char *addr)
{
    char a[PL_JID_MAX];
    size_t n;
    const char *p = m->rcpts;

    pl_addr_canon(addr, a, sizeof(a));
    n = strlen(a);
    if (n == 0 || strpbrk(a, " \"~") != NULL)
        return 0;
    while ((p = strstr(p, a)) != NULL) {
        int start = p == m->rcpts || p[-1] == ' ' || (p[-1] == '~' && (p - 1 == m->rcpts || p[-2] == ' '));
        if (start && (p[n] == ' ' || p[n] == '\0'))
            return 1;
        p += n;
    }
    return 0;
}

int pl_mailid_rcpt_ok(const char *addr)
{
    return *addr && strpbrk(addr, " \"~") == NULL && strlen(addr) < PL_JID_MAX;
}

int pl_mailid_purge(pl_txn *t, int64_t before, unsigned *purged)
{
    return pl_sync_purge_older(t, "mailid", before, purged);
}

/* ---- presence cache ------------------------------------------------------ */

static const char *const pres_names[] = {"unknown", "online", "away", "offline"};

const char *pl_presence_name(enum pl_presence p)
{
    return (unsigned)p < 4 ? pres_names[p] : "unknown";
}

enum pl_presence pl_presence_parse(const char *word)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(word, pres_names[i]) == 0)
            return (enum pl_presence)i;
    return PL_PRES_UNKNOWN;
}

int pl_presence_put(pl_txn *t, const char *jid, enum pl_presence p, int64_t now)
{
    char j[PL_JID_MAX], v[64];
    int n;
    pl_jid_canon(jid, j, sizeof(j));
    n = snprintf(v, sizeof(v), "%" PRId64 " %s", now, pl_presence_name(p));
    return pl_store_put(t, "presence", j, strlen(j), v, (size_t)n);
}

int pl_presence_get(pl_txn *t, const char *jid, enum pl_presence *p, int64_t *updated)
{
    char j[PL_JID_MAX], word[16] = "";
    long long u = 0;
    void *v = NULL;
    int rc;

    pl_jid_canon(jid, j, sizeof(j));
    if ((rc = pl_store_get(t, "presence", j, strlen(j), &v, NULL, 0)) != PL_OK)
        return rc;
    sscanf(v, "%lld %15s", &u, word);
    free(v);
    *p = pl_presence_parse(word);
    if (updated)
        *updated = u;
    return PL_OK;
}
