/* mirrord_sync.c -- one sync of a POP3 mirror account (seed 001 Fig. 2):
 * log in, list the ids (UIDL) and sizes (LIST), compare with the list
 * saved at the last sync (state/mirror_diff.c), withdraw or mark the
 * copies of ids that were read on the primary, and fetch only the new ids
 * with TOP (which, unlike RETR, sets no \Seen on Dovecot), each checked
 * against its LIST size and handed over to Postfix.
 *
 * Never twice, never lost: before a batch is fetched its ids are recorded
 * as pending (P) under fresh hand-over tokens (a durable commit); an id
 * becomes held (H) in a transaction after Postfix accepted its copy.  A
 * crash in between leaves P: the next sync hands the copy over again under
 * the same token, which the destination's guard recognises.  For a push
 * destination (mirrord_push.c) the copy and its held record are one
 * transaction: nothing to recognise.  Nothing on the primary is ever
 * changed: no DELE, no RETR unless configured. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "mirror_diff.h"
#include "mirror_probe.h"
#include "push.h"
#include "mirrord_sync_int.h"
#include "server.h"

/* Something went wrong that does not stop the sync (a withdrawal that
 * can be tried again next time): the first one is kept for the status. */
static void sync_warn(struct sync *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sync_warn(struct sync *s, const char *fmt, ...)
{
    va_list ap;
    char m[512];
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    msg_warn("mirror %s: %s", s->a->user, m);
    if (s->r->warning[0] == '\0')
        snprintf(s->r->warning, sizeof(s->r->warning), "%s", m);
}

void mirrord_fail(struct sync *s, const char *fmt, ...)
{
    va_list ap;
    if (s->r->error[0])
        return;                     /* the first error is the one that counts */
    va_start(ap, fmt);
    vsnprintf(s->r->error, sizeof(s->r->error), fmt, ap);
    va_end(ap);
}

/* ---- the listing ----------------------------------------------------- */

struct lid *mirrord_add_id(struct sync *s, unsigned long msgno, const char *id)
{
    struct lid *l;
    if (s->nids == s->capids) {
        s->capids = s->capids ? 2 * s->capids : 256;
        s->ids = pl_xrealloc(s->ids, s->capids * sizeof(*s->ids));
    }
    l = &s->ids[s->nids++];
    memset(l, 0, sizeof(*l));
    l->msgno = msgno;
    snprintf(l->id, sizeof(l->id), "%s", id);
    return l;
}

int mirrord_by_msgno(const void *x, const void *y)
{
    const struct lid *a = x, *b = y;
    return a->msgno < b->msgno ? -1 : a->msgno > b->msgno;
}

static int by_id(const void *x, const void *y)
{
    return strcmp((*(struct lid *const *)x)->id, (*(struct lid *const *)y)->id);
}

struct lid *mirrord_find_msgno(struct sync *s, unsigned long msgno)
{
    struct lid key = {.msgno = msgno};
    return bsearch(&key, s->ids, s->nids, sizeof(*s->ids), mirrord_by_msgno);
}

struct lid *mirrord_find_id(struct sync *s, const char *id)
{
    struct lid key, *kp = &key, **f;
    snprintf(key.id, sizeof(key.id), "%s", id);
    f = bsearch(&kp, s->byid, s->nids, sizeof(*s->byid), by_id);
    return f ? *f : NULL;
}

#define FULL_LISTING_EVERY 86400    /* probes or not, list in full once a day */
#define PROBE_MIN_IDS 16            /* a shorter listing "grows" by chance */

/* Ids that are IMAP UIDs, as Dovecot's default pop3_uidl_format
 * "%08Xu%08Xv" makes them: 16 hex digits, the last 8 (UIDVALIDITY) the
 * same for all.  UIDs only grow and the listing is in UID order: the
 * model of state/mirror_probe.c holds by the server's contract, not by
 * chance. */
static int uid_shaped(const char *const *ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(ids[i]) != 16 || strspn(ids[i], "0123456789ABCDEFabcdef") != 16 ||
            memcmp(ids[i] + 8, ids[0] + 8, 8) != 0)
            return 0;
    return 1;
}

static int probe_cb(void *ctx, unsigned long msgno, char *id)
{
    struct sync *s = ctx;
    return s->pr->probe(s, msgno, id);
}

/* The listing by "UIDL n" probes (state/mirror_probe.c) where the last
 * full listing found ids that grow in order: 0 done, 1 list in full, -1
 * failed. */
static int try_probes(struct sync *s)
{
    const char **known;
    struct pl_probe_out o;
    size_t m = 0;
    int rc;

    if (s->pr->probe == NULL || s->pr->count == NULL || !s->prev_ordered || s->a->adopt ||
        s->r->release || s->now - s->prev_full_at >= FULL_LISTING_EVERY ||
        s->now < s->prev_full_at || s->nsaved == 0)
        return 1;
    known = pl_xmalloc(s->nsaved * sizeof(*known));
    /* every id saved as on the primary, sorted -- also those missing from
     * a listing before (they may be back where they were) */
    for (size_t i = 0; i < s->nsaved; i++)
        if (s->saved[i].state != PL_MREC_TOMB)
            known[m++] = s->saved[i].id;
    if (m < PROBE_MIN_IDS || !uid_shaped(known, m)) {
        free(known);
        return 1;
    }
    if (s->pr->count(s) != 0) {
        free(known);
        return -1;
    }
    s->counted = 1;
    rc = pl_mirror_probe(known, m, s->r->stat_count, probe_cb, s, &o);
    if (rc == 0) {
        /* STAT's count checked too: there is no message after the last */
        char id[PL_UIDL_MAX + 1];
        int r2 = s->pr->probe(s, s->r->stat_count + 1, id);
        o.probes++;
        if (r2 != 1) {
            free(o.ids);
            free(o.news);
            rc = r2 < 0 ? -1 : 1;
        }
    }
    s->r->probes = o.probes;
    free(known);
    if (rc == 1)
        msg_info("mirror %s: after %lu UIDL n probe(s) the primary's ids do not look as "
                 "expected: listing them in full", s->a->user, o.probes);
    if (rc != 0)
        return rc;
    for (unsigned long i = 0; i < s->r->stat_count; i++)
        mirrord_add_id(s, i + 1, o.ids[i]);
    free(o.ids);
    free(o.news);
    return 0;
}

static struct pl_mrec *saved_find(struct sync *s, const char *id);

/* Whether the listing (message-number order) has ids that grow, each new
 * one after every known one and above every id saved before (what a
 * primary whose ids are UIDs shows): then the next sync may probe. */
static int ids_grow(struct sync *s)
{
    const char *top = NULL;
    int seen_new = 0;
    for (size_t i = 0; i < s->nsaved; i++)
        if (s->saved[i].state != PL_MREC_TOMB)
            top = s->saved[i].id;           /* sorted: the last is the largest */
    for (size_t i = 0; i < s->nids; i++) {
        if (i && strcmp(s->ids[i - 1].id, s->ids[i].id) >= 0)
            return 0;
        if (saved_find(s, s->ids[i].id) == NULL) {
            if (top && strcmp(s->ids[i].id, top) <= 0)
                return 0;
            seen_new = 1;
        } else if (seen_new) {
            return 0;
        }
    }
    return 1;
}

/* The primary's listing (probes, or s->pr->listing filling s->ids and
 * stat_count); then duplicates are marked bad and the listing's
 * completeness found. */
static int listing(struct sync *s)
{
    size_t good = 0, dups = 0;
    int full = 0, rc;

    if ((rc = try_probes(s)) < 0)
        return -1;
    if (rc == 1) {
        if (s->pr->listing(s) != 0)
            return -1;
        full = 1;
    }
    qsort(s->ids, s->nids, sizeof(*s->ids), mirrord_by_msgno);
    s->byid = pl_xmalloc((s->nids ? s->nids : 1) * sizeof(*s->byid));
    for (size_t i = 0; i < s->nids; i++)
        s->byid[i] = &s->ids[i];
    qsort(s->byid, s->nids, sizeof(*s->byid), by_id);
    for (size_t i = 1; i < s->nids; i++)
        if (strcmp(s->byid[i - 1]->id, s->byid[i]->id) == 0) {
            if (!s->byid[i - 1]->bad && dups++ < 3)
                msg_warn("mirror %s: the primary lists id \"%s\" twice: neither copy is fetched",
                         s->a->user, s->byid[i]->id);
            s->byid[i - 1]->bad = s->byid[i]->bad = 1;
        }
    for (size_t i = 0; i < s->nids; i++) {
        good += !s->ids[i].bad;
        s->r->bad_lines += s->ids[i].bad;
        if (i && s->ids[i].msgno == s->ids[i - 1].msgno)
            s->r->bad_lines++;
    }
    s->r->listed = good;
    s->r->complete = s->r->bad_lines == 0 && s->nids == s->r->stat_count;
    s->r->full_at = full ? s->now : s->prev_full_at;
    s->r->probed = !full;
    s->r->ordered = s->r->complete && (!full || ids_grow(s));
    return 0;
}

#define FEW_SIZES 64                /* more than this: one LIST instead of LIST n each */

int mirrord_need_sizes(struct sync *s, struct lid **v, size_t n)
{
    struct lid **want;
    size_t k = 0, total = v ? n : s->nids;
    int rc;

    if (s->pr->sizes == NULL || s->sized_all)
        return 0;
    want = pl_xmalloc((total ? total : 1) * sizeof(*want));
    for (size_t i = 0; i < total; i++) {
        struct lid *l = v ? v[i] : &s->ids[i];
        if (l && !l->sized && !l->bad)
            want[k++] = l;
    }
    if (k == 0)
        rc = 0;
    else if (k > FEW_SIZES || v == NULL) {
        rc = s->pr->sizes(s, NULL, 0, 1);
        s->sized_all = rc == 0;
    } else {
        rc = s->pr->sizes(s, want, k, 0);
    }
    free(want);
    return rc;
}

/* ---- the saved list ---------------------------------------------------- */

static int collect_saved(void *ctx, const struct pl_mrec *r)
{
    struct sync *s = ctx;
    if (s->nsaved == s->capsaved) {
        s->capsaved = s->capsaved ? 2 * s->capsaved : 256;
        s->saved = pl_xrealloc(s->saved, s->capsaved * sizeof(*s->saved));
    }
    s->saved[s->nsaved++] = *r;
    return 0;
}

static int load_saved(pl_txn *t, void *ctx)
{
    struct sync *s = ctx;
    char *st = NULL, v[32];
    int rc;
    s->nsaved = 0;
    if ((rc = pl_mrec_list(t, s->a->user, collect_saved, s)) != PL_OK)
        return rc;
    /* what the last sync found out about the primary's ids */
    if ((rc = pl_mstatus_get(t, s->a->user, &st)) == PL_OK) {
        pl_mstatus_field(st, "ordered", v, sizeof(v));
        s->prev_ordered = atoi(v) == 1;
        pl_mstatus_field(st, "full_at", v, sizeof(v));
        s->prev_full_at = strtoll(v, NULL, 10);
    }
    free(st);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

int mirrord_mrec_cmp(const void *a, const void *b)
{
    return strcmp(((const struct pl_mrec *)a)->id, ((const struct pl_mrec *)b)->id);
}

static struct pl_mrec *saved_find(struct sync *s, const char *id)
{
    size_t lo = 0, hi = s->nsaved;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->saved[mid].id, id);
        if (c == 0)
            return &s->saved[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static int on_action(void *ctx, const char *id, enum pl_mact a)
{
    struct sync *s = ctx;
    struct pl_mrec *r = saved_find(s, id);
    if (a == PL_MACT_FETCH || r == NULL) {
        if (a != PL_MACT_FETCH)
            return 0;
        if (s->nfetch_new == s->capfetch) {
            s->capfetch = s->capfetch ? 2 * s->capfetch : 256;
            s->fetch_new = pl_xrealloc(s->fetch_new, s->capfetch * sizeof(*s->fetch_new));
        }
        s->fetch_new[s->nfetch_new++] = id;
        return 0;
    }
    if (s->nacts == s->capacts) {
        s->capacts = s->capacts ? 2 * s->capacts : 256;
        s->acts = pl_xrealloc(s->acts, s->capacts * sizeof(*s->acts));
    }
    s->acts[s->nacts].saved = (size_t)(r - s->saved);
    s->acts[s->nacts++].a = a;
    return 0;
}

/* ---- writing ids ------------------------------------------------------- */

struct put { const char *user; const struct pl_mrec *recs; size_t n; const char *const *dels; size_t ndel; };

/* The account still exists (postlinkctl mirror del may run meanwhile:
 * its ids must not come back). */
static int account_there(pl_txn *t, const char *user)
{
    struct pl_maccount a;
    return pl_maccount_get(t, user, &a);
}

static int put_fn(pl_txn *t, void *ctx)
{
    struct put *p = ctx;
    int rc;
    if ((rc = account_there(t, p->user)) != PL_OK)
        return rc;
    for (size_t i = 0; i < p->n; i++)
        if ((rc = pl_mrec_put(t, p->user, &p->recs[i])) != PL_OK)
            return rc;
    for (size_t i = 0; i < p->ndel; i++)
        if ((rc = pl_mrec_del(t, p->user, p->dels[i])) != PL_OK && rc != PL_NOTFOUND)
            return rc;
    return PL_OK;
}

int mirrord_put_recs(struct sync *s, const struct pl_mrec *recs, size_t n, unsigned flags)
{
    struct put p = {s->a->user, recs, n, NULL, 0};
    int rc = n ? pl_store_run(md.store, flags, put_fn, &p) : PL_OK;
    if (rc == PL_NOTFOUND)
        mirrord_fail(s, "the account was deleted during the sync");
    else if (rc != PL_OK)
        mirrord_fail(s, "cannot record %zu id(s) in the store, the first %s (%s)", n, recs[0].id,
                     rc == PL_TEMP ? "busy" : "error");
    return rc;
}

/* ---- vanished ids ------------------------------------------------------- */

/* A vanished id whose copy is in the push store: delete mode takes it out
 * of the queues of the devices that have not been sent it (a device it
 * was sent to keeps it until it acknowledges); mark mode keeps it (the
 * device has a short notice, or the whole message it asked for). */
/* The first failed withdrawal of a sync is a warning (the rest are
 * counted): the ids stay as they were and are tried again next sync, the
 * new mail is fetched meanwhile. */
static void withdraw_failed(struct sync *s, const struct pl_mrec *r)
{
    if (s->r->withdraw_failed++ > 0)
        return;
    if (s->nwd > 1)
        sync_warn(s, "withdrawing the copies of %s and %zu more (tried again next sync): %s",
                  r->id, s->nwd - 1, s->wd_why);
    else
        sync_warn(s, "withdrawing the copy of %s (tried again next sync): %s", r->id, s->wd_why);
}

static void vanished_push(struct sync *s, const struct pl_mrec *r, const struct wres *w,
                          size_t *nout)
{
    if (s->a->mode == PL_MIRROR_MARK) {
        s->r->marked++;
        msg_info("mirror %s: %s was read on the primary: its copy stays in the push store "
                 "(mark mode)", s->a->user, r->id);
        (*nout)++;
        return;
    }
    if (w->rc != 0) {
        withdraw_failed(s, r);
        return;
    }
    s->r->withdrawn++;
    msg_info("mirror %s: %s was read on the primary: withdrawn from %d device queue(s) of the "
             "push store", s->a->user, r->id, w->found);
    (*nout)++;
}

/* A vanished id that was not hidden by the primary right after the fetch
 * and has not expired there: read elsewhere, its copy is withdrawn (or,
 * for the push store in mark mode, kept). */
static int read_elsewhere(struct sync *s, const struct pl_mrec *r)
{
    long exp = s->r->expire_days;
    int64_t age = s->now - r->changed;
    if (age < (int64_t)s->cfg->mirror_refetch_window)
        return 0;
    return !(exp >= 0 && age >= (int64_t)exp * 86400);
}

/* Every withdrawal of this sync at once, before the ids are recorded: for
 * the push store in one transaction, for a mailbox in one IMAP session. */
static void withdraw_all(struct sync *s)
{
    const char **toks = pl_xmalloc((s->nacts ? s->nacts : 1) * sizeof(*toks));
    size_t *at = pl_xmalloc((s->nacts ? s->nacts : 1) * sizeof(*at));
    int *found = pl_xmalloc((s->nacts ? s->nacts : 1) * sizeof(*found));
    size_t n = 0, nwant = 0;
    int push = mirrord_is_push(s->a), rc, total = 0;

    s->wd = pl_xcalloc(s->nacts ? s->nacts : 1, sizeof(*s->wd));
    for (size_t i = 0; i < s->nacts; i++) {
        const struct pl_mrec *r = &s->saved[s->acts[i].saved];
        if (s->acts[i].a != PL_MACT_WITHDRAW || !read_elsewhere(s, r))
            continue;
        if (push && s->a->mode == PL_MIRROR_MARK)
            continue;
        s->wd[i].tried = 1;
        nwant++;
        if (r->token[0]) {
            toks[n] = r->token;
            at[n++] = i;
        }
    }
    s->nwd = nwant;
    if (nwant) {
        if (push)
            rc = mirrord_push_withdraw(s->a, toks, n, found, s->wd_why, sizeof(s->wd_why));
        else
            rc = mirrord_withdraw(s->a, toks, n, s->a->mode == PL_MIRROR_DELETE, &total,
                                  s->wd_why, sizeof(s->wd_why));
        if (rc < 0)
            s->withdraw_down = 1;
        for (size_t i = 0; i < s->nacts; i++)
            if (s->wd[i].tried) {
                s->wd[i].rc = rc;
                s->wd[i].found = push ? 0 : -1;
            }
        for (size_t k = 0; push && rc == 0 && k < n; k++)
            s->wd[at[k]].found = found[k];
        if (!push && rc == 0 && n)
            msg_info("mirror %s: %zu id(s) read on the primary: %d cop%s %s in %s (one IMAP "
                     "session)", s->a->user, n, total, total == 1 ? "y" : "ies",
                     s->a->mode == PL_MIRROR_DELETE ? "withdrawn" : "marked", s->a->deliver_to);
    }
    free(toks);
    free(at);
    free(found);
}

static void vanished(struct sync *s, struct pl_mrec *r, const struct wres *w, struct pl_mrec *out,
                     size_t *nout)
{
    int rc, found;
    long exp = s->r->expire_days;
    int64_t age = s->now - r->changed;

    *out = *r;
    out->state = PL_MREC_TOMB;
    out->missing = 0;
    out->changed = s->now;
    if (age < (int64_t)s->cfg->mirror_refetch_window) {
        /* gone right after the mirror fetched it: the primary hides what
         * was downloaded (Gmail's POP does) -- not read elsewhere */
        s->r->hidden++;
        (*nout)++;
        return;
    }
    if (exp >= 0 && age >= (int64_t)exp * 86400) {
        s->r->expired++;            /* the primary said it expires mail: not read */
        (*nout)++;
        return;
    }
    if (mirrord_is_push(s->a)) {
        vanished_push(s, r, w, nout);
        return;
    }
    if (!w->tried || w->rc < 0) {
        withdraw_failed(s, r);
        return;
    }
    rc = w->rc;
    found = w->found;
    if (mirrord_sync_enabled(s->a) && r->msgid[0] && r->token[0]) {
        unsigned copies = 0;
        if (mirrord_sync_withdraw(s->a, r->msgid, r->token, s->now, &copies) != PL_OK) {
            s->r->withdraw_failed++;
            sync_warn(s, "recording the %s control for %s in the store (tried again next sync)",
                      s->a->mode == PL_MIRROR_DELETE ? "deleted" : "read", r->msgid);
            return;
        }
        msg_info("mirror %s: %s was read on the primary: X-Control %s for %s (%u device "
                 "cop%s)", s->a->user, r->id, s->a->mode == PL_MIRROR_DELETE ? "deleted" : "read",
                 r->msgid, copies, copies == 1 ? "y" : "ies");
        if (rc == 1) {
            rc = 0;                  /* the sync control is the withdrawal */
            found = 1;
        }
    }
    if (rc == 1) {
        s->r->failed++;
        if (s->r->failed == 1)
            msg_warn("mirror %s: the copy of %s cannot be %s: no imap_url (or imap_password_file) "
                     "for %s", s->a->user, r->id,
                     s->a->mode == PL_MIRROR_DELETE ? "withdrawn" : "marked", s->a->deliver_to);
    } else if (s->a->mode == PL_MIRROR_DELETE) {
        s->r->withdrawn++;
        if (found >= 0)
            msg_info("mirror %s: %s was read on the primary: %d copy withdrawn from %s",
                     s->a->user, r->id, found, s->a->deliver_to);
        else
            msg_info("mirror %s: %s was read on the primary: its copy withdrawn from %s",
                     s->a->user, r->id, s->a->deliver_to);
    } else {
        s->r->marked++;
        if (found >= 0)
            msg_info("mirror %s: %s was read on the primary: %d copy marked in %s", s->a->user,
                     r->id, found, s->a->deliver_to);
        else
            msg_info("mirror %s: %s was read on the primary: its copy marked in %s", s->a->user,
                     r->id, s->a->deliver_to);
    }
    (*nout)++;
}

static int apply_saved(struct sync *s, struct job **jobs, size_t *njobs)
{
    struct pl_mrec *recs = pl_xmalloc((s->nacts ? s->nacts : 1) * sizeof(*recs));
    size_t n = 0;
    int rc;

    s->dels = pl_xmalloc((s->nacts ? s->nacts : 1) * sizeof(*s->dels));
    s->ndels = 0;
    withdraw_all(s);
    for (size_t i = 0; i < s->nacts && !pl_server_stopping(); i++) {
        struct pl_mrec *r = &s->saved[s->acts[i].saved];
        switch (s->acts[i].a) {
        case PL_MACT_WITHDRAW:
            vanished(s, r, &s->wd[i], &recs[n], &n);
            break;
        case PL_MACT_FORGET:
            recs[n] = *r;
            recs[n].state = PL_MREC_TOMB;
            recs[n].missing = 0;
            recs[n++].changed = s->now;
            s->r->forgotten++;
            break;
        case PL_MACT_MISSING:
            recs[n] = *r;
            recs[n++].missing++;
            s->r->missing++;
            break;
        case PL_MACT_HELD_BACK:
            s->r->held_back++;
            break;
        case PL_MACT_REVIVED:
            /* a vanished id listed again: not copied again, and its
             * retention counts from now */
            if (s->now - r->changed > 86400) {
                recs[n] = *r;
                recs[n++].changed = s->now;
            }
            break;
        case PL_MACT_KEEP:
            if (r->state == PL_MREC_TOMB && s->r->complete && !s->r->probed &&
                s->now - r->changed > (int64_t)s->cfg->mirror_tombstone_ttl) {
                /* not listed (a listed one is REVIVED) and past its retention */
                s->dels[s->ndels++] = r->id;
                break;
            }
            if (r->missing) {
                recs[n] = *r;
                recs[n++].missing = 0;
            }
            if (r->state == PL_MREC_PENDING) {
                struct lid *l = mirrord_find_id(s, r->id);
                if (l && !l->bad) {
                    struct job *j = &(*jobs)[(*njobs)++];
                    j->msgno = l->msgno;
                    j->id = l->id;
                    j->size = l->size;
                    snprintf(j->token, sizeof(j->token), "%s", r->token);
                    j->refetch = 1;
                }
            }
            break;
        default:
            break;
        }
    }
    rc = mirrord_put_recs(s, recs, n, PL_TXN_SYNC);
    free(recs);
    if (rc == PL_OK && s->ndels) {
        struct put p = {s->a->user, NULL, 0, s->dels, s->ndels};
        if ((rc = pl_store_run(md.store, PL_TXN_SYNC, put_fn, &p)) != PL_OK)
            mirrord_fail(s, "cannot forget %zu old tombstone(s) in the store", s->ndels);
        else
            s->r->purged = s->ndels;
    }
    return rc == PL_OK ? 0 : -1;
}

/* ---- fetching ------------------------------------------------------------ */

struct held { struct sync *s; const struct pl_mrec *rec; };

static int held_fn(pl_txn *t, void *ctx)
{
    struct held *h = ctx;
    int rc = account_there(t, h->s->a->user);
    if (rc == PL_OK)
        rc = pl_mrec_put(t, h->s->a->user, h->rec);
    if (rc == PL_OK)
        rc = mirrord_sync_arrived(t, h->s->a, h->rec->msgid, h->s->now);
    return rc;
}

/* The id as held, and (for a sync-enabled user) the copy as arrived. */
static int record_held(struct sync *s, const struct pl_mrec *rec)
{
    struct held h = {s, rec};
    int rc = pl_store_run(md.store, PL_TXN_WRITE_NOSYNC, held_fn, &h);
    if (rc == PL_NOTFOUND)
        mirrord_fail(s, "the account was deleted during the sync");
    else if (rc != PL_OK)
        mirrord_fail(s, "cannot record %s as held in the store (%s)", rec->id,
                     rc == PL_TEMP ? "busy" : "error");
    return rc;
}

int mirrord_f_begin(void *ctx, size_t i)
{
    struct sync *s = ctx;
    (void)i;
    s->buf.len = 0;
    s->over = 0;
    return pl_server_stopping() ? 1 : 0;
}

int mirrord_f_data(void *ctx, size_t i, const char *b, size_t len)
{
    struct sync *s = ctx;
    (void)i;
    if (s->over || s->buf.len + len > (size_t)s->cfg->mirror_max_message) {
        s->over = 1;
        return 0;
    }
    pl_strbuf_addn(&s->buf, b, len);
    return 0;
}

/* A fetched copy into the push store, recorded held in the same
 * transaction; a failure (no device) stops the sync with the ids pending. */
static int push_end(struct sync *s, const struct job *j, struct pl_mrec *rec)
{
    char pid[PL_PID_LEN + 1], why[512];
    int notice = s->a->mode == PL_MIRROR_MARK && !s->whole;
    rec->state = PL_MREC_HELD;
    if (mirrord_push_put(s->a, rec, s->buf.s ? s->buf.s : "", s->buf.len, s->whole, pid, why,
                         sizeof(why)) != 0) {
        mirrord_fail(s, "%s", why);
        return 1;
    }
    msg_info("mirror %s: %s (%llu bytes) -> the push store as %s%s%s", s->a->user, j->id, j->size,
             pid, notice ? " (a short notice: mark mode)" : "",
             j->refetch ? " (pending since an interrupted sync)" : "");
    s->r->fetched++;
    return pl_server_stopping() ? 1 : 0;
}

int mirrord_f_end(void *ctx, size_t i, int status)
{
    struct sync *s = ctx;
    struct job *j;
    struct pl_mrec rec = {0};
    char qid[64], why[512];
    int rc;

    if (s->headers) {               /* TOP n 0: only the Message-ID is kept */
        if (status == PL_POP3_OK) {
            mirrord_msgid(s->buf.s ? s->buf.s : "", s->buf.len, why, sizeof(why));
            if (why[0])
                s->hdr_lids[i]->msgid = pl_xstrdup(why);
        }
        return pl_server_stopping() ? 1 : 0;
    }
    j = &s->jobs[i];

    if (status == PL_POP3_BROKEN) {
        mirrord_fail(s, "the connection broke in the middle of %s (message %lu): %s; nothing of it "
             "was handed over", j->id, j->msgno, s->pr->error(s));
        return 0;                    /* stays pending: tried again next time */
    }
    if (status != PL_POP3_OK) {
        msg_warn("mirror %s: the primary refused to send %s (message %lu): %s", s->a->user, j->id,
                 j->msgno, s->pr->last(s));
        s->r->failed++;
        return 0;                    /* stays pending: tried again next time */
    }
    /* a message without a final line end comes with one (Dovecot adds
     * CRLF before the terminating dot): 2 bytes more than LIST said */
    if (!s->pr->exact_size && !s->over && s->buf.len == j->size + 2 && s->buf.len >= 2 &&
        memcmp(s->buf.s + s->buf.len - 2, "\r\n", 2) == 0)
        s->buf.len -= 2;
    if (s->over || s->buf.len != j->size) {
        mirrord_fail(s, "%s (message %lu): got %zu bytes, LIST said %llu%s", j->id, j->msgno, s->buf.len,
             j->size, s->over ? " (over mirror_max_message)" : ": not mirrored");
        s->r->failed++;
        return 0;
    }
    snprintf(rec.id, sizeof(rec.id), "%s", j->id);
    snprintf(rec.token, sizeof(rec.token), "%s", j->token);
    rec.size = j->size;
    rec.changed = s->now;
    mirrord_msgid(s->buf.s ? s->buf.s : "", s->buf.len, rec.msgid, sizeof(rec.msgid));
    if (mirrord_is_push(s->a))
        return push_end(s, j, &rec);
    rc = mirrord_handover(&s->out, s->a, j->token, s->buf.s ? s->buf.s : "", s->buf.len, qid,
                          sizeof(qid), why, sizeof(why));
    if (rc == 0) {
        rec.state = PL_MREC_HELD;
        msg_info("mirror %s: %s (%llu bytes) -> %s%s%s%s", s->a->user, j->id, j->size,
                 s->a->deliver_to, qid[0] ? ", queued as " : "", qid,
                 j->refetch ? " (pending since an interrupted sync)" : "");
        s->r->fetched++;
        /* survives the process (written to the OS); after a power failure
         * the id is pending again and the same token is handed over */
        if (record_held(s, &rec) != PL_OK)
            return 1;
        return pl_server_stopping() ? 1 : 0;
    }
    if (rc == 1) {
        rec.state = PL_MREC_SEEN;   /* refused for good: logged, not retried */
        msg_warn("mirror %s: %s not mirrored: %s", s->a->user, j->id, why);
        s->r->failed++;
        return mirrord_put_recs(s, &rec, 1, PL_TXN_SYNC) != PL_OK;
    }
    mirrord_fail(s, "%s", why);
    if (rc == -3) {
        /* this copy only: pending under a new token, the others go on */
        msg_warn("mirror %s: %s: %s", s->a->user, j->id, why);
        s->r->failed++;
        rec.state = PL_MREC_PENDING;
        if (pl_mtoken_new(rec.token, sizeof(rec.token)) != PL_OK ||
            mirrord_put_recs(s, &rec, 1, PL_TXN_SYNC) != PL_OK)
            return 1;
        return pl_server_stopping() ? 1 : 0;
    }
    {
        /* Postfix said no, never got the message, or its answer was lost
         * (-2): the guard may have taken the token without Postfix queueing
         * the copy, so the next hand-over needs a new one -- at worst one
         * duplicate, never a copy discarded as a repeat */
        rec.state = PL_MREC_PENDING;
        if (pl_mtoken_new(rec.token, sizeof(rec.token)) == PL_OK)
            mirrord_put_recs(s, &rec, 1, PL_TXN_SYNC);
    }
    return 1;                        /* Postfix does not take mail now: stop */
}

static int fetch_jobs(struct sync *s, struct job *jobs, size_t n)
{
    long lines = s->a->use_retr ? -1 : TOP_ALL;
    /* a message that fails alone (its size) fails the sync but not the
     * rest of the batches; a callback that stops (Postfix, the store)
     * or a broken session ends the fetch */
    for (size_t off = 0; off < n && !pl_server_stopping(); off += BATCH) {
        size_t k = n - off < BATCH ? n - off : BATCH;
        struct pl_mrec pend[BATCH];
        unsigned long msgnos[BATCH];
        size_t np = 0;
        struct pl_pop3_fetch_cb cb = {mirrord_f_begin, mirrord_f_data, mirrord_f_end, s};
        int rc;
        for (size_t i = 0; i < k; i++) {
            struct job *j = &jobs[off + i];
            msgnos[i] = j->msgno;
            if (j->refetch)
                continue;
            memset(&pend[np], 0, sizeof(pend[np]));
            snprintf(pend[np].id, sizeof(pend[np].id), "%s", j->id);
            pend[np].state = PL_MREC_PENDING;
            pend[np].size = j->size;
            pend[np].changed = s->now;
            snprintf(pend[np++].token, PL_MTOKEN_LEN + 1, "%s", j->token);
        }
        /* durable before anything is handed over */
        if (mirrord_put_recs(s, pend, np, PL_TXN_SYNC) != PL_OK)
            return -1;
        s->jobs = jobs + off;
        rc = s->pr->fetch(s, msgnos, k, lines, &cb);
        if (rc == PL_POP3_BROKEN)
            mirrord_fail(s, "fetching from the primary: %s", s->pr->error(s));
        if (rc != PL_POP3_OK)
            return -1;
    }
    return 0;
}

/* ---- the whole sync --------------------------------------------------- */

static int adopt(struct sync *s)
{
    struct pl_mrec *recs = pl_xmalloc((s->nids ? s->nids : 1) * sizeof(*recs));
    size_t n = 0;
    int rc;
    /* the headers and sizes too (no body): so that an adopted id can be re-mapped */
    if (mirrord_headers(s) != 0 || mirrord_need_sizes(s, NULL, 0) != 0) {
        free(recs);
        return -1;
    }
    for (size_t i = 0; i < s->nids; i++) {
        if (s->ids[i].bad || saved_find(s, s->ids[i].id))
            continue;
        memset(&recs[n], 0, sizeof(recs[n]));
        snprintf(recs[n].id, sizeof(recs[n].id), "%s", s->ids[i].id);
        if (s->ids[i].msgid && strlen(s->ids[i].msgid) < sizeof(recs[n].msgid) &&
            strchr(s->ids[i].msgid, ' ') == NULL)
            memcpy(recs[n].msgid, s->ids[i].msgid, strlen(s->ids[i].msgid) + 1);
        recs[n].state = PL_MREC_SEEN;
        recs[n].size = s->ids[i].size;
        recs[n++].changed = s->now;
    }
    rc = mirrord_put_recs(s, recs, n, PL_TXN_SYNC);
    free(recs);
    s->r->adopted = n;
    return rc == PL_OK ? 0 : -1;
}

static int one_fetch(struct sync *s, const char *uidl)
{
    struct lid *l = mirrord_find_id(s, uidl);
    struct job j = {0};
    if (l == NULL || l->bad) {
        mirrord_fail(s, "the primary does not list %s (now)", uidl);
        return -1;
    }
    if (mirrord_need_sizes(s, &l, 1) != 0)
        return -1;
    j.msgno = l->msgno;
    j.id = l->id;
    j.size = l->size;
    if (pl_mtoken_new(j.token, sizeof(j.token)) != PL_OK)
        return -1;
    s->whole = 1;
    return fetch_jobs(s, &j, 1);
}

static int job_order(const void *x, const void *y)
{
    const struct job *a = x, *b = y;
    return a->msgno < b->msgno ? -1 : a->msgno > b->msgno;
}

static int full_sync(struct sync *s)
{
    struct pl_mid *mids = pl_xmalloc((s->nsaved ? s->nsaved : 1) * sizeof(*mids));
    const char **listed = pl_xmalloc((s->nids ? s->nids : 1) * sizeof(*listed));
    struct pl_mdiff_opts o = {0};
    struct pl_mdiff_sum sum;
    struct job *jobs;
    size_t nl = 0, njobs = 0;
    int rc;

    if (mirrord_remap(s) != 0) {
        free(mids);
        free(listed);
        return -1;
    }
    for (size_t i = 0; i < s->nsaved; i++) {
        mids[i].id = s->saved[i].id;
        mids[i].missing = s->saved[i].missing;
        mids[i].state = s->saved[i].state == PL_MREC_SEEN   ? PL_MID_SEEN
                        : s->saved[i].state == PL_MREC_TOMB ? PL_MID_TOMBSTONE
                                                            : PL_MID_HELD;
    }
    for (size_t i = 0; i < s->nids; i++)
        if (!s->ids[i].bad)
            listed[nl++] = s->ids[i].id;
    o.complete = s->r->complete;
    o.missing_syncs = (unsigned)s->cfg->mirror_missing_syncs;
    o.hold_share = (double)s->cfg->mirror_hold_percent / 100.0;
    o.hold_min = s->r->release ? SIZE_MAX : (size_t)s->cfg->mirror_hold_min;
    rc = pl_mirror_diff(mids, s->nsaved, listed, nl, &o, on_action, s, &sum);
    free(mids);
    free(listed);
    if (rc != 0) {
        mirrord_fail(s, "the primary's listing cannot be compared (invalid id)");
        return -1;
    }
    s->r->guard = sum.held;
    if (sum.held)
        msg_warn("mirror %s: %zu of the mailbox's ids vanished at once: withdrawals held back "
                 "(a migrated or emptied mailbox?); see postlinkctl mirror status",
                 s->a->user, sum.held_back);
    {
        /* the sizes of what is fetched: the new ids, and pending ones again */
        struct lid **v = pl_xmalloc((s->nacts + s->nfetch_new + 1) * sizeof(*v));
        size_t nv = 0;
        for (size_t i = 0; i < s->nfetch_new; i++)
            v[nv++] = mirrord_find_id(s, s->fetch_new[i]);
        for (size_t i = 0; i < s->nacts; i++)
            if (s->acts[i].a == PL_MACT_KEEP && s->saved[s->acts[i].saved].state == PL_MREC_PENDING)
                v[nv++] = mirrord_find_id(s, s->saved[s->acts[i].saved].id);
        rc = mirrord_need_sizes(s, v, nv);
        free(v);
        if (rc != 0)
            return -1;
    }
    jobs = pl_xmalloc((s->nacts + s->nfetch_new + 1) * sizeof(*jobs));
    if (apply_saved(s, &jobs, &njobs) != 0) {
        free(jobs);
        return -1;
    }
    for (size_t i = 0; i < s->nfetch_new; i++) {
        struct lid *l = mirrord_find_id(s, s->fetch_new[i]);
        struct job *j = &jobs[njobs];
        if (l == NULL)
            continue;
        if (l->size > (unsigned long long)s->cfg->mirror_max_message) {
            struct pl_mrec rec = {0};
            snprintf(rec.id, sizeof(rec.id), "%s", l->id);
            rec.state = PL_MREC_SEEN;
            rec.size = l->size;
            rec.changed = s->now;
            msg_warn("mirror %s: %s not mirrored: %llu bytes is over mirror_max_message",
                     s->a->user, l->id, l->size);
            s->r->oversize++;
            if (mirrord_put_recs(s, &rec, 1, PL_TXN_SYNC) != PL_OK)
                break;
            continue;
        }
        memset(j, 0, sizeof(*j));
        j->msgno = l->msgno;
        j->id = l->id;
        j->size = l->size;
        if (pl_mtoken_new(j->token, sizeof(j->token)) != PL_OK)
            break;
        njobs++;
    }
    qsort(jobs, njobs, sizeof(*jobs), job_order);   /* the oldest first */
    rc = fetch_jobs(s, jobs, njobs);
    free(jobs);
    return rc;
}

static int connect_primary(struct sync *s)
{
    char scheme[8], host[256], *pw = NULL, err[512];
    unsigned port;
    int rc;

    if (pl_mirror_url(s->a->primary, scheme, sizeof(scheme), host, sizeof(host), &port) != 0) {
        mirrord_fail(s, "bad primary URL");
        return -1;
    }
    s->pr = strncmp(scheme, "imap", 4) == 0 ? &mirrord_imap_primary : &mirrord_pop3_primary;
    err[0] = '\0';
    if (pl_server_read_secret("secret file", s->a->secret_file, &pw, err, sizeof(err)) != 0 ||
        pw == NULL || pw[0] == '\0') {
        mirrord_fail(s, "%s", err[0] == '\0' ? "the secret file's first line is empty" : err);
        free(pw);
        return -1;
    }
    rc = s->pr->open(s, scheme, host, port, pw);
    explicit_bzero(pw, strlen(pw));  /* the secret does not linger */
    free(pw);
    return rc;
}

int mirrord_sync(const struct pl_maccount *a, const char *what, struct msync_result *r)
{
    struct sync s;
    struct timespec t0, t1;
    int rc = -1;

    memset(&s, 0, sizeof(s));
    memset(r, 0, sizeof(*r));
    r->expire_days = -1;
    s.a = a;
    s.cfg = atomic_load(&md.cfg);
    s.r = r;
    s.pr = &mirrord_pop3_primary;
    s.now = (int64_t)time(NULL);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    r->release = strcmp(what, "release") == 0;
    if (connect_primary(&s) == 0 && pl_store_run(md.store, PL_TXN_SYNC, load_saved, &s) == PL_OK &&
        listing(&s) == 0) {
        if (r->release)
            msg_info("mirror %s: release: the withdrawals held back by the mass-vanish guard "
                     "are applied now", a->user);
        if (strncmp(what, "fetch ", 6) == 0)
            rc = one_fetch(&s, what + 6);
        else if (a->adopt)
            rc = adopt(&s);
        else
            rc = full_sync(&s);
    }
    mirrord_out_close(&s.out);
    if (s.pr->close)
        s.pr->close(&s);
    r->ok = rc == 0 && r->error[0] == '\0';
    clock_gettime(CLOCK_MONOTONIC, &t1);
    r->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    for (size_t i = 0; i < s.nids; i++)
        free(s.ids[i].msgid);
    free(s.ids);
    free(s.byid);
    free(s.hdr_lids);
    free(s.saved);
    free(s.acts);
    free(s.fetch_new);
    free(s.dels);
    free(s.wd);
    pl_strbuf_free(&s.buf);
    return 0;
}
