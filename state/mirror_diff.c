/* mirror_diff.c -- UIDL lines and the saved-list/listing comparison
 * (mirror_diff.h).  Both lists are sorted once (n log n), so a mailbox of
 * 10,000 messages compares in well under a millisecond. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mirror_diff.h"
#include "pop3_client.h"

static const char *const act_names[] = {"keep", "fetch", "withdraw", "forget", "missing",
                                        "held-back", "revived"};

const char *pl_mact_name(enum pl_mact a)
{
    return (unsigned)a < sizeof(act_names) / sizeof(act_names[0]) ? act_names[a] : "?";
}

int pl_uidl_parse_line(const char *line, size_t len, unsigned long *msgno, char *id, const char **why)
{
    /* one parser of UIDL lines: the POP3 client's */
    return pl_pop3_uidl_parse(line, len, msgno, id, why);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > PL_UIDL_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)id[i] < 0x21 || (unsigned char)id[i] > 0x7e)
            return 0;
    return 1;
}

static int in_sorted(const char *const *v, size_t n, const char *id)
{
    return n > 0 && bsearch(&id, v, n, sizeof(*v), cmp_str) != NULL;
}

int pl_mirror_diff(const struct pl_mid *saved, size_t nsaved, const char *const *listed,
                   size_t nlisted, const struct pl_mdiff_opts *opts, pl_mdiff_fn fn, void *ctx,
                   struct pl_mdiff_sum *sum)
{
    const char **ls = malloc((nlisted ? nlisted : 1) * sizeof(*ls));
    const char **ss = malloc((nsaved ? nsaved : 1) * sizeof(*ss));
    unsigned need = opts->missing_syncs ? opts->missing_syncs : 1;
    double share = opts->hold_share > 0 ? opts->hold_share : 0.5;
    size_t hold_min = opts->hold_min ? opts->hold_min : 10, gone = 0, live = 0;
    int rc = 0;

    memset(sum, 0, sizeof(*sum));
    if (ls == NULL || ss == NULL) {
        free(ls);
        free(ss);
        return -1;
    }
    for (size_t i = 0; i < nlisted; i++) {
        if (!id_ok(listed[i])) {
            rc = -1;
            goto out;
        }
        ls[i] = listed[i];
    }
    qsort(ls, nlisted, sizeof(*ls), cmp_str);
    for (size_t i = 1; i < nlisted; i++)
        if (strcmp(ls[i - 1], ls[i]) == 0) {
            rc = -1;                        /* a listing that repeats an id is no listing */
            goto out;
        }
    for (size_t i = 0; i < nsaved; i++)
        ss[i] = saved[i].id;
    qsort(ss, nsaved, sizeof(*ss), cmp_str);

    /* first pass: how much would go, for the mass-vanish guard */
    for (size_t i = 0; i < nsaved; i++) {
        if (saved[i].state == PL_MID_TOMBSTONE)
            continue;
        live++;
        if (opts->complete && !in_sorted(ls, nlisted, saved[i].id) && saved[i].missing + 1 >= need)
            gone++;
    }
    sum->held = gone >= hold_min && (double)gone > share * (double)live;

    for (size_t i = 0; i < nsaved && rc == 0; i++) {
        const struct pl_mid *m = &saved[i];
        int listed_now = in_sorted(ls, nlisted, m->id);
        enum pl_mact a;
        if (m->state == PL_MID_TOMBSTONE)
            a = listed_now ? PL_MACT_REVIVED : PL_MACT_KEEP;
        else if (listed_now || !opts->complete)
            a = PL_MACT_KEEP;
        else if (m->missing + 1 < need)
            a = PL_MACT_MISSING;
        else if (sum->held)
            a = PL_MACT_HELD_BACK;
        else
            a = m->state == PL_MID_HELD ? PL_MACT_WITHDRAW : PL_MACT_FORGET;
        switch (a) {
        case PL_MACT_KEEP: sum->keep++; break;
        case PL_MACT_REVIVED: sum->revived++; break;
        case PL_MACT_MISSING: sum->missing++; break;
        case PL_MACT_HELD_BACK: sum->held_back++; break;
        case PL_MACT_WITHDRAW: sum->withdraw++; break;
        case PL_MACT_FORGET: sum->forget++; break;
        default: break;
        }
        rc = fn(ctx, m->id, a);
    }
    for (size_t i = 0; i < nlisted && rc == 0; i++)
        if (!in_sorted(ss, nsaved, listed[i])) {
            sum->fetch++;
            rc = fn(ctx, listed[i], PL_MACT_FETCH);
        }
out:
    free(ls);
    free(ss);
    return rc;
}
