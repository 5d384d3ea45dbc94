/* ctl_messenger.c -- "postlinkctl messenger link|unlink|list|share": which
 * senders opted in to messenger tagging, with which XMPP account, whether
 * they share their presence, and the state of postlink-xmppd's presence
 * subscription to each account (see state/messenger.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "ctl.h"
#include "ctl_json.h"
#include "messenger.h"
#include "strutil.h"

static int usage(void)
{
    fprintf(stderr, "usage: postlinkctl messenger link MAILADDR XMPP-JID\n"
                    "       postlinkctl messenger unlink MAILADDR\n"
                    "       postlinkctl messenger share MAILADDR on|off\n"
                    "       postlinkctl messenger list [--json]\n");
    return CTL_USAGE;
}

struct op { const char *addr, *jid; int share, rc; };

static int link_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    return pl_mlink_add(t, op->addr, op->jid, (int64_t)time(NULL));
}

static int unlink_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    return pl_mlink_del(t, op->addr);
}

static int share_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    return pl_mlink_set_share(t, op->addr, op->share);
}

/* The rows of one transaction (it may be retried, so output is collected
 * and printed only after it committed). */
struct out { pl_txn *t; int json, n; json_t *list; struct pl_strbuf text; };

static int print_link(void *ctx, const struct pl_mlink *l)
{
    struct out *o = ctx;
    enum pl_presence p = PL_PRES_UNKNOWN;
    int64_t upd = 0;

    pl_presence_get(o->t, l->jid, &p, &upd);
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "address", ctl_json_string(l->addr));
        json_object_set_new(j, "jid", ctl_json_string(l->jid));
        json_object_set_new(j, "share", json_boolean(l->share));
        json_object_set_new(j, "subscription", ctl_json_string(l->sub));
        json_object_set_new(j, "presence", ctl_json_string(pl_presence_name(p)));
        json_object_set_new(j, "presence_updated", json_integer((json_int_t)upd));
        json_object_set_new(j, "created", json_integer((json_int_t)l->created));
        if (json_array_append_new(o->list, j) < 0)
            return PL_ERR;
    } else {
        pl_strbuf_addf(&o->text, "%-32s %-32s share=%-3s subscription=%-10s presence=%s\n",
                       l->addr, l->jid, l->share ? "on" : "off", l->sub, pl_presence_name(p));
    }
    o->n++;
    return 0;
}

static int list_fn(pl_txn *t, void *ctx)
{
    struct out *o = ctx;
    o->t = t;
    o->n = 0;
    json_array_clear(o->list);
    pl_strbuf_free(&o->text);
    return pl_mlink_list(t, print_link, o);
}

int ctl_messenger(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "", *args[2] = {NULL, NULL}, *why;
    int nargs = 0, rc;
    struct op op = {NULL, NULL, 1, 0};
    char jid[PL_JID_MAX];
    pl_store *s;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (nargs < 2)
            args[nargs++] = argv[i];
        else
            return usage();
    }
    op.addr = args[0];
    if (strcmp(sub, "list") == 0) {
        if (nargs != 0)
            return usage();
    } else if ((strcmp(sub, "link") == 0 || strcmp(sub, "share") == 0) ? nargs != 2 :
               !(strcmp(sub, "unlink") == 0 && nargs == 1)) {
        return usage();
    } else if ((why = pl_addr_check(args[0])) != NULL) {
        fprintf(stderr, "postlinkctl: MAILADDR \"%s\": %s\n", args[0], why);
        return CTL_USAGE;
    }
    if (strcmp(sub, "link") == 0) {
        if ((why = pl_jid_check(args[1])) != NULL) {
            fprintf(stderr, "postlinkctl: XMPP-JID \"%s\": %s\n", args[1], why);
            return CTL_USAGE;
        }
        if (!pl_conf_domain_enabled(ctl->conf, pl_addr_domain(args[0]))) {
            fprintf(stderr, "postlinkctl: the domain of %s is not in enabled_domains (%s)\n",
                    args[0], ctl->conf_path);
            return CTL_FAIL;
        }
        pl_jid_canon(args[1], jid, sizeof(jid));
        op.jid = jid;
    } else if (strcmp(sub, "share") == 0) {
        if (strcmp(args[1], "on") != 0 && strcmp(args[1], "off") != 0)
            return usage();
        op.share = strcmp(args[1], "on") == 0;
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    if (strcmp(sub, "link") == 0) {
        rc = pl_store_run(s, PL_TXN_SYNC, link_fn, &op);
        if (rc == PL_MLINK_OTHER)
            fprintf(stderr, "postlinkctl: %s or %s is already linked to another account "
                            "(unlink it first)\n", args[0], jid);
        else if (rc == PL_OK)
            printf("%s: linked to %s; postlink-xmppd will ask %s to share presence\n",
                   args[0], jid, jid);
    } else if (strcmp(sub, "unlink") == 0) {
        rc = pl_store_run(s, PL_TXN_SYNC, unlink_fn, &op);
        if (rc == PL_NOTFOUND)
            fprintf(stderr, "postlinkctl: %s is not linked\n", args[0]);
        else if (rc == PL_OK)
            printf("%s: unlinked; its mail is no longer tagged\n", args[0]);
    } else if (strcmp(sub, "share") == 0) {
        rc = pl_store_run(s, PL_TXN_SYNC, share_fn, &op);
        if (rc == PL_NOTFOUND)
            fprintf(stderr, "postlinkctl: %s is not linked\n", args[0]);
        else if (rc == PL_OK)
            printf("%s: presence sharing %s\n", args[0], op.share ? "on" : "off");
    } else {
        struct out o = {NULL, ctl->json, 0, json_array(), {0}};
        rc = o.list ? pl_store_run(s, PL_TXN_SYNC, list_fn, &o) : PL_ERR;
        rc = ctl_json_output(rc, o.json, o.list, &o.text);
    }
    pl_store_close(s);
    return rc == PL_OK ? CTL_OK : rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
}
