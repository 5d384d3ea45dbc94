/* outbox.c -- the "outbox" table (outbox.h).  Key: the entry id as 20
 * decimal digits, so key order is creation order.  Value: a first line
 * "<kind> <attempts> <next_try>", the tag, then for SMTP the envelope
 * sender, the recipients separated by spaces and the message; for IMAP the
 * user, the Message-ID, "+" or "-" and the flags. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbox.h"
#include "strutil.h"
#include "sync.h"

#define SEQ_KEY "outbox_seq"

static int next_id(pl_txn *t, uint64_t *id)
{
    void *v = NULL;
    char buf[32];
    int rc = pl_store_get(t, "meta", SEQ_KEY, strlen(SEQ_KEY), &v, NULL, 1);
    uint64_t n = 0;

    if (rc == PL_OK)
        n = strtoull(v, NULL, 10);
    else if (rc != PL_NOTFOUND)
        return rc;
    free(v);
    *id = ++n;
    snprintf(buf, sizeof(buf), "%" PRIu64, n);
    return pl_store_put(t, "meta", SEQ_KEY, strlen(SEQ_KEY), buf, strlen(buf));
}

static int put_entry(pl_txn *t, uint64_t id, const struct pl_strbuf *b)
{
    char key[24];
    snprintf(key, sizeof(key), "%020" PRIu64, id);
    return pl_store_put(t, PL_T_OUTBOX, key, 20, b->s, b->len);
}

int pl_outbox_add_smtp(pl_txn *t, const char *tag, const char *from,
                       const char *const *rcpts, size_t nrcpts,
                       const char *msg, size_t msglen, uint64_t *id)
{
    struct pl_strbuf b = {0};
    int rc = next_id(t, id);
    if (rc != PL_OK)
        return rc;
    pl_strbuf_addf(&b, "%d 0 0\n%s\n%s\n", PL_OB_SMTP, tag, from);
    for (size_t i = 0; i < nrcpts; i++)
        pl_strbuf_addf(&b, "%s%s", i ? " " : "", rcpts[i]);
    pl_strbuf_addc(&b, '\n');
    pl_strbuf_addn(&b, msg, msglen);
    rc = put_entry(t, *id, &b);
    pl_strbuf_free(&b);
    return rc;
}

int pl_outbox_add_imap(pl_txn *t, const char *tag, const char *user,
                       const char *msgid, int add, const char *flags, uint64_t *id)
{
    struct pl_strbuf b = {0};
    int rc = next_id(t, id);
    if (rc != PL_OK)
        return rc;
    pl_strbuf_addf(&b, "%d 0 0\n%s\n%s\n%s\n%c\n%s", PL_OB_IMAP, tag, user, msgid,
                   add ? '+' : '-', flags);
    rc = put_entry(t, *id, &b);
    pl_strbuf_free(&b);
    return rc;
}

/* Cut the next line off *p (NUL-terminating it); NULL when none is left. */
static char *next_line(char **p)
{
    char *s = *p, *nl;
    if (s == NULL)
        return NULL;
    if ((nl = strchr(s, '\n')) != NULL) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = NULL;
    }
    return s;
}

/* Decode one value; buf is a NUL-terminated private copy that e points into.
 * rcpts must hold room for as many recipients as there are spaces + 1. */
static int decode(char *buf, size_t len, struct pl_outbox_entry *e, const char **rcpts)
{
    char *p = buf, *l1, *r, *tok;
    int kind;

    if ((l1 = next_line(&p)) == NULL ||
        sscanf(l1, "%d %u %" SCNd64, &kind, &e->attempts, &e->next_try) != 3)
        return -1;
    e->kind = (enum pl_outbox_kind)kind;
    if ((e->tag = next_line(&p)) == NULL)
        return -1;
    if (kind == PL_OB_SMTP) {
        if ((e->from = next_line(&p)) == NULL || (r = next_line(&p)) == NULL || p == NULL)
            return -1;
        e->nrcpts = 0;
        for (tok = strtok(r, " "); tok; tok = strtok(NULL, " "))
            rcpts[e->nrcpts++] = tok;
        e->rcpts = rcpts;
        e->msg = p;
        e->msglen = len - (size_t)(p - buf);
        return 0;
    }
    if (kind == PL_OB_IMAP) {
        char *sign;
        if ((e->user = next_line(&p)) == NULL || (e->msgid = next_line(&p)) == NULL ||
            (sign = next_line(&p)) == NULL || p == NULL)
            return -1;
        e->add = sign[0] == '+';
        e->flags = p;
        return 0;
    }
    return -1;
}

struct scan { uint64_t first, last; pl_outbox_fn fn; void *ctx; int stop; };

static int visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct scan *s = ctx;
    struct pl_outbox_entry e;
    char key[24], *buf;
    const char **rcpts;
    size_t spaces = 1;
    int rc;

    if (kl != 20)
        return 0;
    memcpy(key, k, 20);
    key[20] = '\0';
    memset(&e, 0, sizeof(e));
    e.id = strtoull(key, NULL, 10);
    if (e.id < s->first)
        return 0;
    if (s->last && e.id > s->last) {
        s->stop = 1;
        return 1;
    }
    buf = pl_xmalloc(vl + 1);
    memcpy(buf, v, vl);
    buf[vl] = '\0';
    for (size_t i = 0; i < vl; i++)
        spaces += buf[i] == ' ';
    rcpts = pl_xcalloc(spaces, sizeof(*rcpts));
    rc = decode(buf, vl, &e, rcpts) == 0 ? s->fn(s->ctx, &e) : 0;
    free(rcpts);
    free(buf);
    return rc;
}

int pl_outbox_scan(pl_txn *t, uint64_t first, uint64_t last, pl_outbox_fn fn, void *ctx)
{
    struct scan s = {first, last, fn, ctx, 0};
    int rc = pl_store_scan(t, PL_T_OUTBOX, "", 0, visit, &s);
    return s.stop ? PL_OK : rc;
}

int pl_outbox_del(pl_txn *t, uint64_t id)
{
    char key[24];
    snprintf(key, sizeof(key), "%020" PRIu64, id);
    return pl_store_del(t, PL_T_OUTBOX, key, 20);
}

int pl_outbox_retry_later(pl_txn *t, uint64_t id, int64_t next_try)
{
    char key[24], *nl;
    void *v = NULL;
    size_t vl;
    unsigned kind, attempts;
    struct pl_strbuf b = {0};
    int rc;

    snprintf(key, sizeof(key), "%020" PRIu64, id);
    if ((rc = pl_store_get(t, PL_T_OUTBOX, key, 20, &v, &vl, 1)) != PL_OK)
        return rc;
    nl = memchr(v, '\n', vl);
    if (nl == NULL || sscanf(v, "%u %u", &kind, &attempts) != 2) {
        free(v);
        return PL_ERR;
    }
    pl_strbuf_addf(&b, "%u %u %" PRId64, kind, attempts + 1, next_try);
    pl_strbuf_addn(&b, nl, vl - (size_t)(nl - (char *)v));
    rc = pl_store_put(t, PL_T_OUTBOX, key, 20, b.s, b.len);
    pl_strbuf_free(&b);
    free(v);
    return rc;
}
