/* mirrord_pop3.c -- a POP3 primary for a sync (mirrord_sync_int.h, struct
 * mprimary): log in (TLS from the first byte for pop3s, STLS for pop3://
 * unless the account says --plain), STAT and UIDL for the listing, LIST
 * or LIST n for the sizes of what is fetched, TOP n <lines> for messages
 * and TOP n 0 for
 * headers (RETR only for an account added with --retr), through postlink's
 * own POP3 client (lib/pop3_client.c), which has no DELE at all. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mirrord_sync_int.h"

static struct pl_pop3 *P(struct sync *s) { return s->pctx; }

static int on_uidl(void *ctx, unsigned long msgno, const char *id)
{
    struct lid *l = mirrord_add_id(ctx, msgno, id);
    (void)l;
    return 0;
}

static void on_bad(void *ctx, const char *line, const char *why)
{
    struct sync *s = ctx;
    if (s->r->bad_lines++ < 3)
        msg_warn("mirror %s: the primary's listing has a bad line (%s): \"%.80s\"", s->a->user,
                 why, line);
}

static int on_list(void *ctx, unsigned long msgno, unsigned long long size)
{
    struct lid *l = mirrord_find_msgno(ctx, msgno);
    if (l) {
        l->size = size;
        l->sized = 1;
    }
    return 0;
}

static int pop3_open(struct sync *s, const char *scheme, const char *host, unsigned port,
                     const char *pw)
{
    struct pl_pop3 *p = pl_xcalloc(1, sizeof(*p));
    struct pl_pop3_opts o = {0};
    int rc;

    p->fd = -1;
    s->pctx = p;
    /* pop3:// upgrades with STLS unless the account says --plain */
    o.tls = strcmp(scheme, "pop3s") == 0 ? PL_POP3_IMPLICIT_TLS
            : s->a->plain                ? PL_POP3_PLAIN
                                         : PL_POP3_STLS;
    o.servername = s->a->tls_name[0] ? s->a->tls_name : host;
    o.ca_file = s->a->ca_file[0] ? s->a->ca_file : NULL;
    o.insecure = s->a->insecure;
    o.connect_ms = o.cmd_ms = o.data_ms = (unsigned)s->cfg->mirror_timeout * 1000u;
    if (pl_pop3_connect(p, host, port, &o) != PL_POP3_OK) {
        if (o.tls == PL_POP3_STLS && p->caps.known && !p->caps.stls)
            mirrord_fail(s, "%s:%u does not announce STLS: use pop3s://, or --plain to send the "
                         "password in the clear", host, port);
        else
            mirrord_fail(s, "cannot connect to %s:%u: %s", host, port, p->err);
        return -1;
    }
    rc = pl_pop3_login(p, s->a->login, pw);
    if (rc == PL_POP3_AUTH) {
        s->r->auth_failed = !(strcmp(p->last_code, "IN-USE") == 0 ||
                              strncmp(p->last_code, "SYS/TEMP", 8) == 0 ||
                              strcmp(p->last_code, "LOGIN-DELAY") == 0);
        mirrord_fail(s, "the primary refused the login of %s: %s%s%s%s", s->a->login,
                     p->last_code[0] ? "[" : "", p->last_code, p->last_code[0] ? "] " : "",
                     p->last);
        return -1;
    }
    if (rc != PL_POP3_OK) {
        mirrord_fail(s, "login at %s:%u failed: %s", host, port, p->err);
        return -1;
    }
    if (p->caps.known && p->caps.expire != -1)
        s->r->expire_days = p->caps.expire;
    return 0;
}

static int pop3_count(struct sync *s)
{
    struct pl_pop3 *p = P(s);
    unsigned long long octets;
    int rc;

    if ((rc = pl_pop3_stat(p, &s->r->stat_count, &octets)) != PL_POP3_OK) {
        mirrord_fail(s, "STAT failed: %s", rc == PL_POP3_NO ? p->last : p->err);
        return -1;
    }
    return 0;
}

static int pop3_probe(struct sync *s, unsigned long msgno, char *id)
{
    struct pl_pop3 *p = P(s);
    int rc = pl_pop3_uidl_one(p, msgno, id);
    if (rc == PL_POP3_BROKEN)
        mirrord_fail(s, "UIDL %lu failed: %s", msgno, p->err);
    return rc == PL_POP3_OK ? 0 : rc == PL_POP3_BROKEN ? -1 : 1;   /* -ERR, malformed: list */
}

static int pop3_listing(struct sync *s)
{
    struct pl_pop3 *p = P(s);
    int rc;

    if (!s->counted && pop3_count(s) != 0)
        return -1;
    if ((rc = pl_pop3_uidl(p, on_uidl, on_bad, s)) != PL_POP3_OK) {
        if (rc == PL_POP3_NO)
            mirrord_fail(s, "UIDL refused: %s (the primary must support UIDL)", p->last);
        else
            mirrord_fail(s, "UIDL failed: %s", p->err);
        return -1;
    }
    return 0;
}

/* LIST for the whole mailbox, or LIST n for a few: the sizes a sync needs
 * (the messages it fetches; all of them for a re-map) and no more. */
static int pop3_sizes(struct sync *s, struct lid **v, size_t n, int all)
{
    struct pl_pop3 *p = P(s);
    int rc;

    if (all) {
        if ((rc = pl_pop3_list(p, on_list, on_bad, s)) != PL_POP3_OK) {
            mirrord_fail(s, "LIST failed: %s", rc == PL_POP3_NO ? p->last : p->err);
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        rc = pl_pop3_list_one(p, v[i]->msgno, &v[i]->size);
        if (rc == PL_POP3_BROKEN) {
            mirrord_fail(s, "LIST %lu failed: %s", v[i]->msgno, p->err);
            return -1;
        }
        if (rc != PL_POP3_OK)
            return pop3_sizes(s, NULL, 0, 1);   /* refused: the whole LIST says */
        v[i]->sized = 1;
    }
    return 0;
}

static int pop3_fetch(struct sync *s, const unsigned long *msgnos, size_t n, long lines,
                      const struct pl_pop3_fetch_cb *cb)
{
    return pl_pop3_fetch(P(s), msgnos, n, lines, (unsigned)s->cfg->mirror_pipeline, cb);
}

static const char *pop3_error(struct sync *s) { return P(s)->err; }
static const char *pop3_last(struct sync *s) { return P(s)->last; }

static void pop3_close(struct sync *s)
{
    struct pl_pop3 *p = P(s);
    if (p == NULL)
        return;
    s->r->bytes_in = p->bytes_in;
    pl_pop3_close(p);
    free(p);
    s->pctx = NULL;
}

const struct mprimary mirrord_pop3_primary = {
    .open = pop3_open, .listing = pop3_listing, .sizes = pop3_sizes, .count = pop3_count,
    .probe = pop3_probe, .fetch = pop3_fetch,
    .error = pop3_error, .last = pop3_last, .close = pop3_close,
};
