/* fuzz_probe.c -- libFuzzer target: the listing by "UIDL n" probes
 * (state/mirror_probe.c) against any primary.  Input: lines; before a
 * line "--" the ids known from the last sync (sorted and made unique
 * here), after it the primary's listing now, one id per line (a line
 * "!" is a refused probe there).  Whatever the primary says: no crash, a
 * result of exactly the listing's length, and -- when the listing is what
 * a primary whose ids grow can show (survivors in order, then new ids
 * above all known ones, nothing refused) and the probes were not over
 * budget -- exactly the listing. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "mirror_probe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 512

struct prim { char (*ids)[PL_UIDL_MAX + 1]; size_t n; };

static int probe(void *ctx, unsigned long msgno, char *id)
{
    struct prim *p = ctx;
    if (msgno == 0 || msgno > p->n)
        abort();                    /* only numbers STAT gave are asked */
    if (strcmp(p->ids[msgno - 1], "!") == 0)
        return 1;
    memcpy(id, p->ids[msgno - 1], PL_UIDL_MAX + 1);
    return 0;
}

static int cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The listing fits the model: a subsequence of known, then growing ids above them. */
static int fits(const char *const *k, size_t m, const struct prim *p)
{
    size_t ki = 0, i = 0;
    for (; i < p->n; i++) {
        if (strcmp(p->ids[i], "!") == 0)
            return 0;
        while (ki < m && strcmp(k[ki], p->ids[i]) < 0)
            ki++;
        if (ki < m && strcmp(k[ki], p->ids[i]) == 0) {
            ki++;
            continue;
        }
        break;
    }
    for (; i < p->n; i++) {
        if (strcmp(p->ids[i], "!") == 0 || (m && strcmp(p->ids[i], k[m - 1]) <= 0))
            return 0;
        if (i && strcmp(p->ids[i - 1], p->ids[i]) >= 0)
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char kbuf[MAXN][PL_UIDL_MAX + 1], lbuf[MAXN][PL_UIDL_MAX + 1];
    char *s = fuzz_strndup(data, size), *line, *save = NULL;
    const char *k[MAXN];
    struct prim p = {lbuf, 0};
    struct pl_probe_out o;
    size_t m = 0, u = 0;
    int after = 0, rc;

    for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        if (strcmp(line, "--") == 0) {
            after = 1;
            continue;
        }
        if (len == 0 || len > PL_UIDL_MAX)
            continue;
        if (!after && m < MAXN) {
            memcpy(kbuf[m], line, len + 1);
            k[m] = kbuf[m];
            m++;
        } else if (after && p.n < MAXN) {
            memcpy(lbuf[p.n++], line, len + 1);
        }
    }
    qsort(k, m, sizeof(*k), cmp);
    for (size_t i = 0; i < m; i++)
        if (u == 0 || strcmp(k[u - 1], k[i]) != 0)
            k[u++] = k[i];
    rc = pl_mirror_probe(k, u, (unsigned long)p.n, probe, &p, &o);
    if (rc == 0) {
        for (size_t i = 0; i < p.n; i++)
            if (o.ids[i] == NULL)
                abort();
        if (fits(k, u, &p))
            for (size_t i = 0; i < p.n; i++)
                if (strcmp(o.ids[i], p.ids[i]) != 0)
                    abort();
        free(o.ids);
        free(o.news);
    } else if (rc != 1) {
        abort();
    } else if (u && fits(k, u, &p) && o.probes <= u / 2 + 16 && p.n <= u / 2) {
        abort();                    /* a listing of the model refused within budget */
    }
    free(s);
    return 0;
}
