/* route_decide.c -- the routing rules in their configured order, over the
 * tables held in memory (route_decide.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "route_decide.h"
#include "siproute.h"
#include "strutil.h"

static const char *const rule_names[ROUTE_NRULES] = {"prefix", "map", "keyword"};

const char *route_rule_name(enum route_rule r)
{
    return (unsigned)r < ROUTE_NRULES ? rule_names[r] : "?";
}

int route_order_parse(const char *const *words, struct route_opts *o, char *err, size_t errlen)
{
    o->norder = 0;
    for (; words && *words; words++) {
        int r = -1;
        for (int i = 0; i < ROUTE_NRULES; i++)
            if (strcmp(*words, rule_names[i]) == 0)
                r = i;
        if (r < 0) {
            snprintf(err, errlen, "unknown rule \"%.40s\" (prefix, map, keyword)", *words);
            return -1;
        }
        for (size_t i = 0; i < o->norder; i++)
            if ((int)o->order[i] == r) {
                snprintf(err, errlen, "rule \"%s\" named twice", *words);
                return -1;
            }
        o->order[o->norder++] = (enum route_rule)r;
    }
    if (o->norder == 0) {
        snprintf(err, errlen, "no rule named (prefix, map, keyword)");
        return -1;
    }
    return 0;
}

void route_order_text(const struct route_opts *o, const char *sep, char *out, size_t len)
{
    out[0] = '\0';
    for (size_t i = 0; i < o->norder; i++)
        snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? sep : "", route_rule_name(o->order[i]));
}

void route_tables_free(struct route_tables *rt)
{
    free(rt->prefix);
    pl_kw_free(rt->kw);
    for (size_t i = 0; i < rt->nkw; i++) {
        free(rt->kw_word[i]);
        free(rt->kw_number[i]);
    }
    free(rt->kw_word);
    free(rt->kw_number);
    memset(rt, 0, sizeof(*rt));
}

struct load { struct route_tables *rt; size_t cap; };

static int add_prefix(void *ctx, const struct pl_rrow *r)
{
    struct load *l = ctx;
    struct route_tables *rt = l->rt;
    if (rt->nprefix == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        rt->prefix = pl_xrealloc(rt->prefix, l->cap * sizeof(*rt->prefix));
    }
    snprintf(rt->prefix[rt->nprefix].digits, sizeof(rt->prefix[0].digits), "%s", r->key);
    rt->prefix[rt->nprefix++].after = r->after;
    return 0;
}

static int add_keyword(void *ctx, const struct pl_rrow *r)
{
    struct load *l = ctx;
    struct route_tables *rt = l->rt;
    if (rt->nkw == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 8;
        rt->kw_word = pl_xrealloc(rt->kw_word, l->cap * sizeof(char *));
        rt->kw_number = pl_xrealloc(rt->kw_number, l->cap * sizeof(char *));
    }
    rt->kw_word[rt->nkw] = pl_xstrdup(r->key);
    rt->kw_number[rt->nkw++] = pl_xstrdup(r->number);
    return 0;
}

int route_tables_load(pl_txn *t, struct route_tables *rt)
{
    uint64_t gen;
    struct route_tables n = {0};
    struct load l = {&n, 0};
    int rc = pl_route_gen(t, &gen);
    if (rc != PL_OK)
        return rc;
    if (rt->loaded && gen == rt->gen)
        return PL_OK;
    if ((rc = pl_rtable_list(t, PL_T_RPREFIX, add_prefix, &l)) != PL_OK)
        goto fail;
    l.cap = 0;
    if ((rc = pl_rtable_list(t, PL_T_RKEYWORD, add_keyword, &l)) != PL_OK)
        goto fail;
    if (n.nkw > 0 && (n.kw = pl_kw_build((const char *const *)n.kw_word, n.nkw)) == NULL) {
        rc = PL_ERR;
        goto fail;
    }
    n.gen = gen;
    n.loaded = 1;
    route_tables_free(rt);
    *rt = n;
    return PL_OK;
fail:
    route_tables_free(&n);
    return rc;
}

int route_tables_want_text(const struct route_tables *rt, int trusted)
{
    return rt->nkw > 0 || (trusted && rt->nprefix > 0);
}

static void set_hit(struct route_hit *h, const char *number, const char *rule, const char *detail,
                    size_t dlen)
{
    snprintf(h->number, sizeof(h->number), "%s", number);
    snprintf(h->rule, sizeof(h->rule), "%s", rule);
    if (dlen >= sizeof(h->detail))
        dlen = sizeof(h->detail) - 1;
    memcpy(h->detail, detail, dlen);
    h->detail[dlen] = '\0';
    for (char *p = h->detail; *p; p++)          /* one line, tab-free, for the record */
        if (*p == '\t' || *p == '\n' || *p == '\r')
            *p = ' ';
}

/* The name of the header field holding offset at. */
static void field_name(const char *h, size_t at, char *out, size_t outlen)
{
    size_t s = at;
    while (s > 0 && h[s - 1] != '\n')
        s--;
    size_t n = strcspn(h + s, ":\n");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, h + s, n);
    out[n] = '\0';
}

static int try_prefix(const struct route_tables *rt, const struct route_opts *o, const char *rcpt,
                      const struct route_text *text, int trusted, struct route_hit *hit)
{
    char num[PL_PHONE_MAX], name[80];
    size_t at;
    if (rt->nprefix == 0)
        return 0;
    if (pl_phone_in_address(rcpt, rt->prefix, rt->nprefix, o->country_code, num, sizeof(num))) {
        set_hit(hit, num, "prefix:address", rcpt, strlen(rcpt));
        return 1;
    }
    if (!trusted || text == NULL)
        return 0;
    if (pl_phone_in_text(text->headers, text->hlen, rt->prefix, rt->nprefix, o->country_code,
                         num, sizeof(num), &at)) {
        field_name(text->headers, at, name, sizeof(name));
        set_hit(hit, num, "prefix:header", name, strlen(name));
        return 1;
    }
    if (pl_phone_in_text(text->body, text->blen, rt->prefix, rt->nprefix, o->country_code, num,
                         sizeof(num), &at)) {
        set_hit(hit, num, "prefix:body", "text", 4);
        return 1;
    }
    return 0;
}

static int try_keyword(const struct route_tables *rt, const char *rcpt,
                       const struct route_text *text, struct route_hit *hit)
{
    long k;
    size_t at;
    if (rt->kw == NULL)
        return 0;
    if ((k = pl_kw_first(rt->kw, rcpt, strlen(rcpt), &at)) >= 0) {
        set_hit(hit, rt->kw_number[k], "keyword:address", rt->kw_word[k], strlen(rt->kw_word[k]));
        return 1;
    }
    if (text == NULL)
        return 0;
    if ((k = pl_kw_first(rt->kw, text->headers, text->hlen, &at)) >= 0) {
        set_hit(hit, rt->kw_number[k], "keyword:header", rt->kw_word[k], strlen(rt->kw_word[k]));
        return 1;
    }
    if ((k = pl_kw_first(rt->kw, text->body, text->blen, &at)) >= 0) {
        set_hit(hit, rt->kw_number[k], "keyword:body", rt->kw_word[k], strlen(rt->kw_word[k]));
        return 1;
    }
    return 0;
}

int route_decide(pl_txn *t, const struct route_tables *rt, const struct route_opts *o,
                 const char *rcpt, const struct route_text *text, int trusted,
                 struct route_hit *hit)
{
    for (size_t i = 0; i < o->norder; i++) {
        switch (o->order[i]) {
        case ROUTE_PREFIX:
            if (try_prefix(rt, o, rcpt, text, trusted, hit))
                return 1;
            break;
        case ROUTE_MAP: {
            char num[PL_PHONE_MAX], row[PL_RMAP_KEY_MAX + 2], rule[32];
            const char *kind = "";
            int rc = pl_rmap_lookup(t, rcpt, num, sizeof(num), row, sizeof(row), &kind);
            if (rc == PL_OK) {
                snprintf(rule, sizeof(rule), "map:%s", kind);
                set_hit(hit, num, rule, row, strlen(row));
                return 1;
            }
            if (rc != PL_NOTFOUND)
                return rc < 0 ? rc : -rc;
            break;
        }
        case ROUTE_KEYWORD:
            if (try_keyword(rt, rcpt, text, hit))
                return 1;
            break;
        default:
            break;
        }
    }
    return 0;
}
