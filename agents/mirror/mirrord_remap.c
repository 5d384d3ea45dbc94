/* mirrord_remap.c -- a primary whose ids all changed at once (a server
 * migration, a new UIDL scheme, a UIDVALIDITY change): rather than fetch
 * the whole mailbox again, the Message-ID of every listed message is read
 * with TOP n 0 (headers only, no body) and each saved id is re-keyed to
 * the listed id whose Message-ID and size are the same (or, when the size
 * differs, whose Message-ID alone is unique on both sides).  What matches
 * keeps its state (its copy, its token); the rest is compared as usual.
 * The headers are also what --adopt records, so that adopted ids can be
 * re-mapped later. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mirrord_sync_int.h"
#include "server.h"

int mirrord_headers(struct sync *s)
{
    struct pl_pop3_fetch_cb cb = {mirrord_f_begin, mirrord_f_data, mirrord_f_end, s};
    unsigned long *msgnos = pl_xmalloc((s->nids ? s->nids : 1) * sizeof(*msgnos));
    size_t n = 0;
    int rc;

    free(s->hdr_lids);
    s->hdr_lids = pl_xmalloc((s->nids ? s->nids : 1) * sizeof(*s->hdr_lids));
    for (size_t i = 0; i < s->nids; i++)
        if (!s->ids[i].bad && s->ids[i].msgid == NULL) {
            s->hdr_lids[n] = &s->ids[i];
            msgnos[n++] = s->ids[i].msgno;
        }
    s->headers = 1;
    rc = n ? s->pr->fetch(s, msgnos, n, 0, &cb) : PL_POP3_OK;
    s->headers = 0;
    free(msgnos);
    if (rc != PL_POP3_OK) {
        mirrord_fail(s, "reading the primary's headers (TOP n 0): %s",
                     rc == PL_POP3_BROKEN ? s->pr->error(s) : "stopped");
        return -1;
    }
    return 0;
}

static int by_msgid(const void *x, const void *y)
{
    const struct lid *a = *(struct lid *const *)x, *b = *(struct lid *const *)y;
    int c = strcmp(a->msgid, b->msgid);
    return c ? c : a->size < b->size ? -1 : a->size > b->size;
}

/* The listed message for (msgid, size): exact, else by msgid alone when it
 * is unique among the listed; NULL if none. */
static struct lid *match(struct lid **v, size_t n, const char *msgid, unsigned long long size)
{
    size_t lo = 0, hi = n, first;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(v[mid]->msgid, msgid) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    first = lo;
    for (size_t i = first; i < n && strcmp(v[i]->msgid, msgid) == 0; i++)
        if (v[i]->size == size)
            return v[i];
    if (first < n && strcmp(v[first]->msgid, msgid) == 0 &&
        (first + 1 == n || strcmp(v[first + 1]->msgid, msgid) != 0))
        return v[first];
    return NULL;
}

struct rekey { const char *user; struct pl_mrec *old, *new_; size_t n; };

static int rekey_fn(pl_txn *t, void *ctx)
{
    struct rekey *k = ctx;
    int rc;
    for (size_t i = 0; i < k->n; i++) {
        if ((rc = pl_mrec_del(t, k->user, k->old[i].id)) != PL_OK && rc != PL_NOTFOUND)
            return rc;
        if ((rc = pl_mrec_put(t, k->user, &k->new_[i])) != PL_OK)
            return rc;
    }
    return PL_OK;
}

int mirrord_remap(struct sync *s)
{
    size_t known = 0, listed = 0, nm = 0, taken = 0;
    struct lid **v;
    struct rekey k = {s->a->user, NULL, NULL, 0};
    int rc;

    for (size_t i = 0; i < s->nsaved; i++)
        if (s->saved[i].state != PL_MREC_TOMB) {
            known++;
            if (mirrord_find_id(s, s->saved[i].id))
                return 0;           /* an id the mirror knows is still there */
        }
    for (size_t i = 0; i < s->nids; i++)
        listed += !s->ids[i].bad;
    /* a migration keeps most of the mailbox; a client that downloads and
     * deletes leaves only new mail, whose headers need not be read */
    if (known == 0 || listed == 0 || !s->r->complete || 2 * listed < known)
        return 0;
    msg_info("mirror %s: none of the %zu ids the primary lists is one of the %zu the mirror "
             "knows: reading their headers to re-map them", s->a->user, listed, known);
    if (mirrord_headers(s) != 0 || mirrord_need_sizes(s, NULL, 0) != 0)
        return -1;
    v = pl_xmalloc(listed * sizeof(*v));
    for (size_t i = 0; i < s->nids; i++)
        if (!s->ids[i].bad && s->ids[i].msgid)
            v[nm++] = &s->ids[i];
    qsort(v, nm, sizeof(*v), by_msgid);
    k.old = pl_xmalloc(known * sizeof(*k.old));
    k.new_ = pl_xmalloc(known * sizeof(*k.new_));
    for (size_t i = 0; i < s->nsaved; i++) {
        struct pl_mrec *r = &s->saved[i];
        struct lid *l;
        if (r->state == PL_MREC_TOMB || r->msgid[0] == '\0' ||
            (l = match(v, nm, r->msgid, r->size)) == NULL || l->bad == 2)
            continue;
        l->bad = 2;                 /* taken: one saved id per listed one */
        k.old[k.n] = *r;
        k.new_[k.n] = *r;
        snprintf(k.new_[k.n].id, sizeof(k.new_[k.n].id), "%s", l->id);
        k.n++;
    }
    for (size_t i = 0; i < s->nids; i++)
        if (s->ids[i].bad == 2) {
            s->ids[i].bad = 0;
            taken++;
        }
    rc = k.n ? pl_store_run(md.store, PL_TXN_SYNC, rekey_fn, &k) : PL_OK;
    if (rc == PL_OK) {
        /* the saved list as it is now: re-keyed entries replace the old */
        for (size_t i = 0; i < k.n; i++)
            for (size_t j = 0; j < s->nsaved; j++)
                if (strcmp(s->saved[j].id, k.old[i].id) == 0) {
                    s->saved[j] = k.new_[i];
                    break;
                }
        qsort(s->saved, s->nsaved, sizeof(*s->saved), mirrord_mrec_cmp);
        s->r->remapped = k.n;
        msg_info("mirror %s: the primary's ids changed: %zu of %zu re-mapped by Message-ID and "
                 "size, %zu listed ids are new to the mirror", s->a->user, k.n, known, listed - taken);
    } else {
        mirrord_fail(s, "cannot record the re-mapped ids in the store");
    }
    free(v);
    free(k.old);
    free(k.new_);
    return rc == PL_OK ? 0 : -1;
}
