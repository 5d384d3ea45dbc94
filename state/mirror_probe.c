/* mirror_probe.c -- the primary's id list from "UIDL n" probes
 * (mirror_probe.h): bisection over message numbers against the ids known
 * from the last sync, every answer checked against the model. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mirror_probe.h"

struct pctx {
    const char *const *k;
    size_t m;
    pl_probe_fn fn;
    void *ctx;
    const char **ids;               /* ids[msgno - 1] */
    unsigned long probes, budget;
    char (*seen)[PL_UIDL_MAX + 1];  /* the bisection's answers, by slot */
    unsigned long *seen_at;
    size_t nseen;
};

/* 0 with the id of msgno in id, 1 the model fails (or over budget), -1 broken. */
static int ask(struct pctx *p, unsigned long msgno, char *id)
{
    int rc;
    for (size_t i = 0; i < p->nseen; i++)
        if (p->seen_at[i] == msgno) {
            memcpy(id, p->seen[i], PL_UIDL_MAX + 1);
            return 0;
        }
    if (++p->probes > p->budget)
        return 1;
    id[0] = '\0';
    if ((rc = p->fn(p->ctx, msgno, id)) != 0)
        return rc < 0 ? -1 : 1;
    if (id[0] == '\0' || strlen(id) > PL_UIDL_MAX)
        return 1;
    return 0;
}

/* The index of id in k[a..b], or -1. */
static long find(const struct pctx *p, size_t a, size_t b, const char *id)
{
    size_t lo = a, hi = b + 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(p->k[mid], id);
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Message numbers pp..qq hold exactly the survivors of k[a..b], in order
 * (a > b: none; ranges as signed so that empty ones are simple). */
static int solve(struct pctx *p, long pp, long qq, long a, long b)
{
    char id[PL_UIDL_MAX + 1];
    long mid, x;
    int rc;

    if (pp > qq)
        return 0;                   /* all of k[a..b] vanished */
    if (a > b || qq - pp > b - a)
        return 1;                   /* more numbers than ids left: not the model */
    if (qq - pp == b - a) {
        for (long i = 0; i <= qq - pp; i++)
            p->ids[pp - 1 + i] = p->k[a + i];
        /* none of them vanished -- which the answers already had agree */
        for (size_t i = 0; i < p->nseen; i++)
            if ((long)p->seen_at[i] >= pp && (long)p->seen_at[i] <= qq &&
                strcmp(p->seen[i], p->ids[p->seen_at[i] - 1]) != 0)
                return 1;
        return 0;
    }
    mid = pp + (qq - pp) / 2;
    if ((rc = ask(p, (unsigned long)mid, id)) != 0)
        return rc;
    if ((x = find(p, (size_t)a, (size_t)b, id)) < 0)
        return 1;
    if (x - a < mid - pp || b - x < qq - mid)
        return 1;                   /* too few ids on one side for its numbers */
    p->ids[mid - 1] = p->k[x];
    if ((rc = solve(p, pp, mid - 1, a, x - 1)) != 0)
        return rc;
    return solve(p, mid + 1, qq, x + 1, b);
}

static void remember(struct pctx *p, unsigned long msgno, const char *id, size_t cap)
{
    if (p->nseen == cap)
        return;
    memcpy(p->seen[p->nseen], id, PL_UIDL_MAX + 1);
    p->seen_at[p->nseen++] = msgno;
}

int pl_mirror_probe(const char *const *known, size_t m, unsigned long count, pl_probe_fn probe,
                    void *ctx, struct pl_probe_out *out)
{
    struct pctx p = {known, m, probe, ctx, NULL, 0, 0, NULL, NULL, 0};
    const size_t cap = 128;
    char id[PL_UIDL_MAX + 1];
    unsigned long lo = 0, hi = count + 1, j;
    int rc = 1;

    memset(out, 0, sizeof(*out));
    if (m == 0 || pl_ids_grow(known, m) == 0)
        return 1;                   /* nothing to bisect against */
    /* past this many probes the whole listing is cheaper */
    p.budget = m / 2 + 16;
    p.ids = calloc(count ? count : 1, sizeof(*p.ids));
    p.seen = malloc(cap * sizeof(*p.seen));
    p.seen_at = malloc(cap * sizeof(*p.seen_at));
    if (p.ids == NULL || p.seen == NULL || p.seen_at == NULL)
        goto out;
    /* the survivors are the numbers 1..j whose ids are <= the largest
     * known one; the rest are new.  The last number first: often all are
     * survivors. */
    while (hi - lo > 1) {
        unsigned long mid = hi == count + 1 && lo == 0 ? count : lo + (hi - lo) / 2;
        if ((rc = ask(&p, mid, id)) != 0)
            goto out;
        remember(&p, mid, id, cap);
        if (strcmp(id, known[m - 1]) <= 0) {
            if (find(&p, 0, m - 1, id) < 0) {
                rc = 1;             /* an id below the largest known one that is not known */
                goto out;
            }
            lo = mid;
        } else {
            hi = mid;
        }
    }
    j = lo;
    if (j > m) {
        rc = 1;
        goto out;
    }
    out->nnew = count - j;
    out->news = malloc((out->nnew ? out->nnew : 1) * sizeof(*out->news));
    if (out->news == NULL) {
        rc = 1;
        goto out;
    }
    for (unsigned long n = j + 1; n <= count; n++) {
        char *nid = out->news[n - j - 1];
        if ((rc = ask(&p, n, nid)) != 0)
            goto out;
        /* new ids grow too, and are above every known one */
        if (strcmp(nid, n == j + 1 ? known[m - 1] : out->news[n - j - 2]) <= 0) {
            rc = 1;
            goto out;
        }
        p.ids[n - 1] = nid;
    }
    rc = solve(&p, 1, (long)j, 0, (long)m - 1);
out:
    free(p.seen);
    free(p.seen_at);
    out->probes = p.probes;
    if (rc != 0) {
        free(p.ids);
        free(out->news);
        out->news = NULL;
        out->nnew = 0;
        return rc;
    }
    out->ids = p.ids;
    return 0;
}

int pl_ids_grow(const char *const *listed, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (strcmp(listed[i - 1], listed[i]) >= 0)
            return 0;
    return 1;
}
