/* siproute.c -- postlink-route's tables, decisions and sipd's results
 * (siproute.h). */
#include "config.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "address.h"
#include "route.h"
#include "siproute.h"
#include "sync.h"

#define GEN_KEY "route_gen"

static int bump_gen(pl_txn *t)
{
    uint64_t g = 0;
    char buf[32];
    int rc = pl_route_gen(t, &g);
    if (rc != PL_OK)
        return rc;
    snprintf(buf, sizeof(buf), "%" PRIu64, g + 1);
    return pl_store_put(t, "meta", GEN_KEY, strlen(GEN_KEY), buf, strlen(buf));
}

int pl_route_gen(pl_txn *t, uint64_t *gen)
{
    void *v = NULL;
    int rc = pl_store_get(t, "meta", GEN_KEY, strlen(GEN_KEY), &v, NULL, 0);
    *gen = 0;
    if (rc == PL_NOTFOUND)
        return PL_OK;
    if (rc != PL_OK)
        return rc;
    *gen = strtoull(v, NULL, 10);
    free(v);
    return PL_OK;
}

static int domain_ok(const char *d)
{
    size_t n = strlen(d), label = 0;
    if (n == 0 || n > 253 || d[0] == '.' || d[n - 1] == '.' || d[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c < 0x80)
            return 0;
        if (++label > 63)
            return 0;
    }
    return 1;
}

const char *pl_rmap_key_check(const char *key, char *out, size_t outlen)
{
    size_t n = strlen(key);
    if (n == 0)
        return "empty address or domain";
    if (n > PL_RMAP_KEY_MAX || n >= outlen)
        return "longer than 254 characters";
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)key[i]);
    if (strchr(out, '@')) {
        const char *why = pl_addr_check(out);
        if (why)
            return why;
        if (!domain_ok(strrchr(out, '@') + 1))
            return "the address's domain is not a domain name";
        return NULL;
    }
    if (out[0] == '*') {
        if (out[1] != '.' || !domain_ok(out + 2))
            return "a wildcard row is \"*.\" and a domain, e.g. *.com";
        return NULL;
    }
    if (!domain_ok(out))
        return "not an address (local@domain), a domain, or *.domain";
    return NULL;
}

const char *pl_rkeyword_check(const char *word)
{
    size_t n = strlen(word);
    if (n == 0)
        return "empty keyword";
    if (n > 256)
        return "keyword longer than 256 bytes";
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)word[i] < 0x20 || word[i] == 0x7f)
            return "keyword with a control character";
    if (word[0] == ' ' || word[n - 1] == ' ')
        return "keyword starting or ending with a space";
    return NULL;
}

static void fold_key(const char *in, char *out, size_t outlen)
{
    size_t i = 0;
    for (; in[i] && i + 1 < outlen; i++)
        out[i] = (in[i] >= 'A' && in[i] <= 'Z') ? (char)(in[i] + 32) : in[i];
    out[i] = '\0';
}

static int put_row(pl_txn *t, const char *table, const char *key, const char *val)
{
    int rc = pl_store_put(t, table, key, strlen(key), val, strlen(val));
    return rc == PL_OK ? bump_gen(t) : rc;
}

static int del_row(pl_txn *t, const char *table, const char *key)
{
    void *v = NULL;
    int rc = pl_store_get(t, table, key, strlen(key), &v, NULL, 1);
    if (rc != PL_OK)
        return rc;
    free(v);
    rc = pl_store_del(t, table, key, strlen(key));
    return rc == PL_OK ? bump_gen(t) : rc;
}

int pl_rprefix_add(pl_txn *t, const struct pl_phone_prefix *p, int64_t now)
{
    char v[64];
    snprintf(v, sizeof(v), "%" PRId64 " %u", now, p->after);
    return put_row(t, PL_T_RPREFIX, p->digits, v);
}

int pl_rmap_add(pl_txn *t, const char *key, const char *number, int64_t now)
{
    char v[64 + PL_PHONE_MAX];
    snprintf(v, sizeof(v), "%" PRId64 " %s", now, number);
    return put_row(t, PL_T_RMAP, key, v);
}

int pl_rkeyword_add(pl_txn *t, const char *word, const char *number, int64_t now)
{
    char k[300], v[64 + PL_PHONE_MAX + 300];
    fold_key(word, k, sizeof(k));
    snprintf(v, sizeof(v), "%" PRId64 " %s %s", now, number, word);
    return put_row(t, PL_T_RKEYWORD, k, v);
}

int pl_rprefix_del(pl_txn *t, const char *digits) { return del_row(t, PL_T_RPREFIX, digits); }
int pl_rmap_del(pl_txn *t, const char *key) { return del_row(t, PL_T_RMAP, key); }

int pl_rkeyword_del(pl_txn *t, const char *word)
{
    char k[300];
    fold_key(word, k, sizeof(k));
    return del_row(t, PL_T_RKEYWORD, k);
}

struct list_ctx { const char *table; pl_rrow_fn fn; void *ctx; };

static int list_one(void *c, const void *k, size_t kl, const void *v, size_t vl)
{
    struct list_ctx *l = c;
    char key[300], val[700], num[PL_PHONE_MAX] = "";
    struct pl_rrow r = {key, num, 0, 0};
    long long created = 0;
    int off = 0;

    if (kl >= sizeof(key) || vl >= sizeof(val))
        return 0;                               /* never written by us */
    memcpy(key, k, kl);
    key[kl] = '\0';
    memcpy(val, v, vl);
    val[vl] = '\0';
    if (strcmp(l->table, PL_T_RPREFIX) == 0) {
        if (sscanf(val, "%lld %u", &created, &r.after) != 2)
            return 0;
    } else if (sscanf(val, "%lld %19s %n", &created, num, &off) < 2)
        return 0;
    if (strcmp(l->table, PL_T_RKEYWORD) == 0 && off > 0 && val[off])
        r.key = val + off;
    r.created = created;
    return l->fn(l->ctx, &r);
}

int pl_rtable_list(pl_txn *t, const char *table, pl_rrow_fn fn, void *ctx)
{
    struct list_ctx l = {table, fn, ctx};
    int rc = pl_store_scan(t, table, "", 0, list_one, &l);
    return rc < 0 ? rc : PL_OK;
}

static int get_number(pl_txn *t, const char *key, char *number, size_t nlen)
{
    void *v = NULL;
    char num[PL_PHONE_MAX];
    long long created;
    int rc = pl_store_get(t, PL_T_RMAP, key, strlen(key), &v, NULL, 0);
    if (rc != PL_OK)
        return rc;
    rc = sscanf(v, "%lld %19s", &created, num) == 2 && strlen(num) < nlen ? PL_OK : PL_NOTFOUND;
    free(v);
    if (rc == PL_OK)
        snprintf(number, nlen, "%s", num);
    return rc;
}

int pl_rmap_lookup(pl_txn *t, const char *addr, char *number, size_t nlen,
                   char *row, size_t rowlen, const char **kind)
{
    char a[PL_ADDR_SIZE + 2];
    const char *d;
    int rc;

    if (strlen(addr) > PL_ADDR_MAX)
        return PL_NOTFOUND;
    fold_key(addr, a, sizeof(a));
    if ((rc = get_number(t, a, number, nlen)) != PL_NOTFOUND) {
        snprintf(row, rowlen, "%s", a);
        *kind = "address";
        return rc;
    }
    if ((d = strrchr(a, '@')) == NULL)
        return PL_NOTFOUND;
    d++;
    if ((rc = get_number(t, d, number, nlen)) != PL_NOTFOUND) {
        snprintf(row, rowlen, "%s", d);
        *kind = "domain";
        return rc;
    }
    /* "*.b.c" for a.b.c, then "*.c" */
    for (const char *s = strchr(d, '.'); s; s = strchr(s + 1, '.')) {
        char w[PL_ADDR_SIZE + 2];
        snprintf(w, sizeof(w), "*%s", s);
        if ((rc = get_number(t, w, number, nlen)) != PL_NOTFOUND) {
            snprintf(row, rowlen, "%s", w);
            *kind = "wildcard";
            return rc;
        }
    }
    return PL_NOTFOUND;
}

/* ---- decisions and results --------------------------------------------- */

/* The same random tokens as sync's route tokens (state/route.c). */
int pl_rtoken_new(char *out, size_t outlen)
{
    return pl_route_token(out, outlen);
}

int pl_rtoken_ok(const char *tok)
{
    return strlen(tok) == PL_RTOKEN_LEN && strspn(tok, "0123456789abcdef") == PL_RTOKEN_LEN;
}

static int field_ok(const char *s)
{
    return s && strpbrk(s, "\t\n\r") == NULL;
}

int pl_rdecide_put(pl_txn *t, const char *token, const char *qid,
                   const struct pl_rdecision *d, size_t n, int64_t now)
{
    size_t cap = 64 + strlen(qid), len;
    char *buf;
    int rc;
    if (!pl_rtoken_ok(token) || !field_ok(qid) || strchr(qid, ' '))
        return PL_ERR;
    for (size_t i = 0; i < n; i++) {
        if (!field_ok(d[i].addr) || !field_ok(d[i].number) || !field_ok(d[i].rule) ||
            !field_ok(d[i].detail))
            return PL_ERR;
        cap += strlen(d[i].addr) + strlen(d[i].number) + strlen(d[i].rule) +
               strlen(d[i].detail) + 8;
    }
    buf = malloc(cap);
    if (buf == NULL)
        return PL_ERR;
    len = (size_t)snprintf(buf, cap, "%" PRId64 " %s\n", now, qid[0] ? qid : "-");
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(buf + len, cap - len, "%s\t%s\t%s\t%s\n", d[i].addr,
                                d[i].number, d[i].rule, d[i].detail);
    rc = pl_store_put(t, PL_T_RDECIDE, token, PL_RTOKEN_LEN, buf, len);
    free(buf);
    return rc;
}

int pl_rdecide_get(pl_txn *t, const char *token, char **rec)
{
    void *v = NULL;
    int rc;
    *rec = NULL;
    if (!pl_rtoken_ok(token))
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, PL_T_RDECIDE, token, PL_RTOKEN_LEN, &v, NULL, 0)) != PL_OK)
        return rc;
    *rec = v;
    return PL_OK;
}

static char *cut(char **p, int sep)
{
    char *s = *p, *e = s ? strchr(s, sep) : NULL;
    if (e == NULL)
        return NULL;
    *e = '\0';
    *p = e + 1;
    return s;
}

int pl_rdecide_next(char *rec, size_t *pos, const char **qid, struct pl_rdecision *d)
{
    char *p = rec + *pos, *line;
    if (*pos == 0) {
        char *first = cut(&p, '\n'), *sp;
        if (first == NULL)
            return 0;
        sp = strchr(first, ' ');
        if (qid)
            *qid = sp ? sp + 1 : "-";
    }
    if ((line = cut(&p, '\n')) == NULL)
        return 0;
    *pos = (size_t)(p - rec);
    d->addr = cut(&line, '\t');
    d->number = cut(&line, '\t');
    d->rule = cut(&line, '\t');
    d->detail = line;
    if (d->addr == NULL || d->number == NULL || d->rule == NULL)
        return 0;
    return 1;
}

static size_t result_key(char *k, size_t klen, const char *token, const char *addr)
{
    int n = snprintf(k, klen, "%s\n%s", token, addr);
    return n < 0 || (size_t)n >= klen ? 0 : (size_t)n;
}

int pl_rresult_put(pl_txn *t, const char *token, const char *addr, const char *outcome,
                   const char *detail, int64_t now)
{
    char k[PL_RTOKEN_LEN + PL_ADDR_SIZE + 2], v[1024];
    size_t kl = result_key(k, sizeof(k), token, addr);
    int n;
    if (kl == 0 || !pl_rtoken_ok(token) || strchr(outcome, ' ') || !field_ok(detail))
        return PL_ERR;
    n = snprintf(v, sizeof(v), "%" PRId64 " %s %s", now, outcome, detail);
    if (n < 0 || (size_t)n >= sizeof(v))
        n = (int)sizeof(v) - 1;
    return pl_store_put(t, PL_T_RRESULT, k, kl, v, (size_t)n);
}

int pl_rresult_get(pl_txn *t, const char *token, const char *addr, char *outcome, size_t olen,
                   char *detail, size_t dlen)
{
    char k[PL_RTOKEN_LEN + PL_ADDR_SIZE + 2], o[64];
    size_t kl = result_key(k, sizeof(k), token, addr);
    void *v = NULL;
    long long when;
    int off = 0, rc;
    if (kl == 0)
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, PL_T_RRESULT, k, kl, &v, NULL, 0)) != PL_OK)
        return rc;
    if (sscanf(v, "%lld %63s %n", &when, o, &off) < 2) {
        free(v);
        return PL_NOTFOUND;
    }
    snprintf(outcome, olen, "%s", o);
    snprintf(detail, dlen, "%s", off > 0 ? (char *)v + off : "");
    free(v);
    return PL_OK;
}

int pl_route_purge_decisions(pl_txn *t, int64_t before, unsigned *purged)
{
    unsigned a = 0, b = 0;
    int rc = pl_sync_purge_older(t, PL_T_RDECIDE, before, &a);
    if (rc == PL_OK)
        rc = pl_sync_purge_older(t, PL_T_RRESULT, before, &b);
    *purged = a + b;
    return rc;
}
