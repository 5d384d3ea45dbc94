/* fuzz_uidl.c -- libFuzzer target: the POP3 mirror's UIDL lines and id
 * list comparison (state/mirror_diff.c).  Input: lines; before a line
 * "--" the saved list ("H id", "S id", "T id" with an optional missing
 * count), after it a UIDL listing ("n id").  Every line that parses must
 * give a valid id; the comparison must call back once per saved id and
 * once per new listed id, and its counts must add up. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "mirror_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXN 256

struct calls { size_t n, fetch; };

static int count(void *ctx, const char *id, enum pl_mact a)
{
    struct calls *c = ctx;
    (void)id;
    c->n++;
    if (a == PL_MACT_FETCH)
        c->fetch++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size), *line, *save = NULL;
    static char sid[MAXN][PL_UIDL_MAX + 1], lid[MAXN][PL_UIDL_MAX + 1];
    struct pl_mid saved[MAXN];
    const char *listed[MAXN];
    size_t ns = 0, nl = 0;
    int after = 0;

    for (line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        size_t len = strlen(line);
        if (len && line[len - 1] == '\r')
            line[--len] = '\0';
        if (strcmp(line, "--") == 0) {
            after = 1;
            continue;
        }
        if (!after) {
            if (ns < MAXN && len >= 3 && strchr("HST", line[0]) && line[1] == ' ' && len - 2 <= PL_UIDL_MAX) {
                memcpy(sid[ns], line + 2, len - 2);
                sid[ns][len - 2] = '\0';
                saved[ns] = (struct pl_mid){sid[ns], line[0] == 'H' ? PL_MID_HELD
                                            : line[0] == 'S' ? PL_MID_SEEN : PL_MID_TOMBSTONE,
                                            (unsigned)(len % 3)};
                ns++;
            }
            continue;
        }
        unsigned long n;
        const char *why = NULL;
        if (nl < MAXN && pl_uidl_parse_line(line, len, &n, lid[nl], &why) == 0) {
            size_t k = strlen(lid[nl]);
            if (k == 0 || k > PL_UIDL_MAX || n == 0)
                abort();
            listed[nl] = lid[nl];
            nl++;
        } else if (nl < MAXN && why == NULL)
            abort();
    }
    struct pl_mdiff_opts o = {.complete = (int)(size & 1), .missing_syncs = (unsigned)(size % 3)};
    struct pl_mdiff_sum sum;
    struct calls c = {0, 0};
    int rc = pl_mirror_diff(saved, ns, listed, nl, &o, count, &c, &sum);
    if (rc == 0) {
        if (c.n != ns + sum.fetch || c.fetch != sum.fetch ||
            sum.keep + sum.withdraw + sum.forget + sum.missing + sum.held_back + sum.revived != ns)
            abort();
        if (sum.held && (sum.withdraw || sum.forget))
            abort();
    } else if (c.n != 0)
        abort();
    free(s);
    return 0;
}
