/* ctl_state.c -- "postlinkctl state show" and "postlinkctl pending
 * list|purge": the authoritative message state of capability 1 and the
 * controls held for targets that have not arrived (state/sync.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "ctl.h"
#include "ctl_json.h"
#include "header.h"
#include "strutil.h"
#include "sync.h"

/* The rows of one transaction (it may be retried, so output is collected
 * and printed only after it committed). */
struct out { int json, n; json_t *list; struct pl_strbuf text; int want_expired; };

static void when(char *buf, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t <= 0)
        snprintf(buf, len, "-");
    else
        strftime(buf, len, "%Y-%m-%d %H:%M:%S", localtime_r(&tt, &tm));
}

static int print_state(void *ctx, const struct pl_msg_state *m)
{
    struct out *o = ctx;
    char states[64], at[32];
    pl_state_format(m->flags, states, sizeof(states));
    if (o->json) {
        json_t *j = json_object(), *st = json_array();
        json_object_set_new(j, "user", ctl_json_string(m->user));
        json_object_set_new(j, "message_id", ctl_json_string(m->msgid));
        for (unsigned bit = 1; bit <= PL_ST_DELETED; bit <<= 1) {
            char one[16];
            if (!(m->flags & bit))
                continue;
            pl_state_format(bit, one, sizeof(one));
            json_array_append_new(st, ctl_json_string(one));
        }
        json_object_set_new(j, "states", st);
        json_object_set_new(j, "version", json_integer((json_int_t)m->version));
        json_object_set_new(j, "arrived", json_integer((json_int_t)m->arrived));
        if (json_array_append_new(o->list, j) < 0)
            return PL_ERR;
    } else {
        when(at, sizeof(at), m->arrived);
        pl_strbuf_addf(&o->text, "%-40s %-28s v%-6lld arrived %s\n", m->msgid,
                       *states ? states : "-", (long long)m->version, at);
    }
    o->n++;
    return 0;
}

static int print_pending(void *ctx, const struct pl_pending_info *p)
{
    struct out *o = ctx;
    char a[32], b[32];
    if (p->expired != o->want_expired)
        return 0;
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "user", ctl_json_string(p->user));
        json_object_set_new(j, "target", ctl_json_string(p->target));
        json_object_set_new(j, "state", ctl_json_string(p->word));
        json_object_set_new(j, "sender", ctl_json_string(p->sender));
        json_object_set_new(j, "control", ctl_json_string(p->ctl_msgid));
        json_object_set_new(j, "expired", json_boolean(p->expired));
        json_object_set_new(j, "date", json_integer((json_int_t)p->date));
        json_object_set_new(j, "expires", json_integer((json_int_t)p->expires));
        if (json_array_append_new(o->list, j) < 0)
            return PL_ERR;
    } else {
        when(a, sizeof(a), p->date);
        when(b, sizeof(b), p->expires);
        pl_strbuf_addf(&o->text, "%-28s %-36s %-9s from %s, dated %s, %s %s\n", p->user,
                       p->target, p->word, p->sender, a, p->expired ? "expired" : "expires", b);
    }
    o->n++;
    return 0;
}

struct q { const char *user, *msgid; struct out *o; int pending, purge; unsigned purged;
           int64_t version; };

static int query_fn(pl_txn *t, void *ctx)
{
    struct q *q = ctx;
    q->o->n = 0;
    json_array_clear(q->o->list);
    pl_strbuf_free(&q->o->text);
    if (q->purge)
        return pl_sync_purge(t, q->user, &q->purged);
    if (q->pending)
        return pl_sync_pending_list(t, q->user, print_pending, q->o);
    q->version = pl_sync_user_version(t, q->user);
    return pl_sync_state_list(t, q->user, q->msgid, print_state, q->o);
}

static int user_ok(const char *user)
{
    const char *why = pl_addr_check(user);
    if (why)
        fprintf(stderr, "postlinkctl: USER \"%s\": %s\n", user, why);
    return why == NULL;
}

static int finish(int rc, struct ctl *ctl, struct out *o, pl_store *s)
{
    pl_store_close(s);
    rc = ctl_json_output(rc, ctl->json, o->list, &o->text);
    return rc == PL_OK ? CTL_OK : rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
}

/* state show USER [MSGID] [--json] */
int ctl_state(struct ctl *ctl, int argc, char **argv)
{
    const char *args[2] = {NULL, NULL};
    char user[PL_ADDR_SIZE], msgid[PL_MSGID_MAX + 1];
    int nargs = 0, rc;
    struct out o = {0, 0, NULL, {0}, 0};
    struct q q = {NULL, NULL, &o, 0, 0, 0, 0};
    pl_store *s;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (nargs < 2)
            args[nargs++] = argv[i];
        else
            nargs = 3;
    }
    if (argc < 2 || strcmp(argv[1], "show") != 0 || nargs < 1 || nargs > 2) {
        fprintf(stderr, "usage: postlinkctl state show USER [MESSAGE-ID] [--json]\n");
        return CTL_USAGE;
    }
    if (!user_ok(args[0]))
        return CTL_USAGE;
    if (pl_addr_canon(args[0], user, sizeof(user)) != 0) {
        fprintf(stderr, "postlinkctl: USER \"%s\": longer than %d characters\n", args[0], PL_ADDR_MAX);
        return CTL_USAGE;
    }
    q.user = user;
    if (args[1]) {
        const char *why = NULL;
        if (pl_msgid_parse(args[1], msgid, sizeof(msgid), &why) != 0) {
            fprintf(stderr, "postlinkctl: MESSAGE-ID \"%s\": %s\n", args[1], why ? why : "malformed");
            return CTL_USAGE;
        }
        q.msgid = msgid;
    }
    o.json = ctl->json;
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    o.list = json_array();
    rc = pl_store_run(s, PL_TXN_NOSYNC, query_fn, &q);
    if (rc == PL_NOTFOUND) {
        fprintf(stderr, "postlinkctl: %s has no message %s\n", user, q.msgid);
        finish(PL_ERR, ctl, &o, s);
        return CTL_FAIL;
    }
    if (!ctl->json && rc == PL_OK)
        pl_strbuf_addf(&o.text, "# %s: %d message(s), version %lld\n", user, o.n,
                       (long long)q.version);
    return finish(rc, ctl, &o, s);
}

/* pending list [USER] [--expired] [--json] | pending purge [USER] */
int ctl_pending(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "", *uarg = NULL;
    char user[PL_ADDR_SIZE];
    struct out o = {0, 0, NULL, {0}, 0};
    struct q q = {NULL, NULL, &o, 1, 0, 0, 0};
    pl_store *s;
    int rc, bad = 0;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (strcmp(argv[i], "--expired") == 0)
            o.want_expired = 1;
        else if (uarg == NULL && argv[i][0] != '-')
            uarg = argv[i];
        else
            bad = 1;
    }
    if (bad || (strcmp(sub, "list") != 0 && strcmp(sub, "purge") != 0)) {
        fprintf(stderr, "usage: postlinkctl pending list [USER] [--expired] [--json]\n"
                        "       postlinkctl pending purge [USER]\n");
        return CTL_USAGE;
    }
    if (uarg) {
        if (!user_ok(uarg))
            return CTL_USAGE;
        if (pl_addr_canon(uarg, user, sizeof(user)) != 0) {
            fprintf(stderr, "postlinkctl: USER \"%s\": longer than %d characters\n", uarg, PL_ADDR_MAX);
            return CTL_USAGE;
        }
        q.user = user;
    }
    q.purge = strcmp(sub, "purge") == 0;
    o.json = ctl->json;
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    o.list = json_array();
    rc = pl_store_run(s, q.purge ? PL_TXN_SYNC : PL_TXN_NOSYNC, query_fn, &q);
    if (q.purge) {
        if (rc == PL_OK)
            pl_strbuf_addf(&o.text, "purged %u expired pending control(s)\n", q.purged);
        ctl->json = 0;               /* purge has no JSON output */
        return finish(rc, ctl, &o, s);
    }
    if (!ctl->json && rc == PL_OK && o.n == 0)
        pl_strbuf_addf(&o.text, "# no %s controls\n", o.want_expired ? "expired" : "pending");
    return finish(rc, ctl, &o, s);
}
