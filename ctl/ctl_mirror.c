/* ctl_mirror.c -- "postlinkctl mirror add|list|del|status|sync|release|fetch": the
 * accounts postlink-mirrord keeps a copy of (state/mirror.h), their last
 * sync, and syncs or single fetches on demand.  The account's secret stays
 * in its file: postlinkctl only checks that postlink can read it.  An
 * account "--deliver-to push" needs a push device of its user (push.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "address.h"
#include "ctl.h"
#include "ctl_json.h"
#include "doorbell.h"
#include "mirror.h"
#include "push.h"
#include "strutil.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: postlinkctl mirror add USER --primary pop3[s]|imap[s]://HOST[:PORT] --login LOGIN\n"
            "                   --secret-file FILE --deliver-to ADDRESS|push [--mode delete|mark]\n"
            "                   [--interval SECONDS] [--times HH:MM[,HH:MM...]] [--adopt]\n"
            "                   [--ca-file FILE] [--tls-name NAME] [--insecure] [--plain] [--retr] [--replace]\n"
            "       postlinkctl mirror list [--json]\n"
            "       postlinkctl mirror del USER\n"
            "       postlinkctl mirror status [USER] [--json]\n"
            "       postlinkctl mirror sync USER [--wait SECONDS]\n"
            "       postlinkctl mirror release USER [--wait SECONDS]\n"
            "       postlinkctl mirror fetch USER UIDL [--wait SECONDS]\n");
    return CTL_USAGE;
}

static int exit_code(int rc)
{
    return rc == PL_OK ? CTL_OK : rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
}

/* ---- add / del ---------------------------------------------------------- */

struct addop { struct pl_maccount *a; int replace, exists, no_device; };

static int one_device(void *ctx, const struct pl_pdev *d)
{
    (void)d;
    (*(unsigned *)ctx)++;
    return 0;
}

static int add_fn(pl_txn *t, void *ctx)
{
    struct addop *o = ctx;
    o->no_device = 0;
    if (strcmp(o->a->deliver_to, "push") == 0) {
        /* the push store of the user: a device must be there to take it */
        unsigned n = 0;
        int rc = pl_pdev_list(t, o->a->user, one_device, &n);
        if (rc != PL_OK)
            return rc;
        if (n == 0) {
            o->no_device = 1;
            return PL_NOTFOUND;
        }
    }
    return pl_maccount_put(t, o->a, o->replace, &o->exists);
}

static int copy_arg(char *dst, size_t len, const char *v, const char *opt)
{
    if (strlen(v) >= len) {
        fprintf(stderr, "postlinkctl: %s is too long\n", opt);
        return -1;
    }
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* Whether postlink-mirrord can withdraw or mark a copy at address: its
 * domain has an imap_url (and imap_password_file is set), or is
 * sync-enabled (an X-Control goes to the user's devices). */
static int can_withdraw(struct ctl *ctl, const char *address)
{
    const char *dom = strrchr(address, '@');
    const char *pwf = pl_conf_str(ctl->conf, "imap_password_file");
    size_t dl;
    if (dom == NULL)
        return 0;
    dl = strlen(++dom);
    for (const char *const *d = pl_conf_list(ctl->conf, "enabled_domains"); d && *d; d++)
        if (strcasecmp(*d, dom) == 0)
            return 1;
    for (const char *const *u = pl_conf_list(ctl->conf, "imap_url"); u && *u && pwf && *pwf; u++)
        if (strncasecmp(*u, dom, dl) == 0 && (*u)[dl] == '=')
            return 1;
    return 0;
}

static int cmd_add(struct ctl *ctl, int argc, char **argv)
{
    struct pl_maccount a;
    struct addop op = {&a, 0, 0, 0};
    const char *why;
    pl_store *s;
    int rc, have_mode = 0;

    memset(&a, 0, sizeof(a));
    if (argc < 3)
        return usage();
    if (copy_arg(a.user, sizeof(a.user), argv[2], "USER") != 0)
        return CTL_USAGE;
    a.interval = (unsigned)pl_conf_int(ctl->conf, "mirror_default_interval");
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int r = 0, takes = 1;
        if (strcmp(o, "--primary") == 0 && v)
            r = copy_arg(a.primary, sizeof(a.primary), v, o);
        else if (strcmp(o, "--login") == 0 && v)
            r = copy_arg(a.login, sizeof(a.login), v, o);
        else if (strcmp(o, "--secret-file") == 0 && v)
            r = copy_arg(a.secret_file, sizeof(a.secret_file), v, o);
        else if (strcmp(o, "--deliver-to") == 0 && v)
            r = copy_arg(a.deliver_to, sizeof(a.deliver_to), v, o);
        else if (strcmp(o, "--ca-file") == 0 && v)
            r = copy_arg(a.ca_file, sizeof(a.ca_file), v, o);
        else if (strcmp(o, "--tls-name") == 0 && v)
            r = copy_arg(a.tls_name, sizeof(a.tls_name), v, o);
        else if (strcmp(o, "--times") == 0 && v)
            r = copy_arg(a.times, sizeof(a.times), v, o);
        else if (strcmp(o, "--mode") == 0 && v) {
            if (strcmp(v, "delete") == 0)
                a.mode = PL_MIRROR_DELETE;
            else if (strcmp(v, "mark") == 0)
                a.mode = PL_MIRROR_MARK;
            else {
                fprintf(stderr, "postlinkctl: --mode is delete or mark, not \"%s\"\n", v);
                return CTL_USAGE;
            }
            have_mode = 1;
        } else if (strcmp(o, "--interval") == 0 && v) {
            char *end;
            unsigned long n = strtoul(v, &end, 10);
            if (*end || end == v || n > 7 * 86400) {
                fprintf(stderr, "postlinkctl: --interval is seconds (0 to 604800), not \"%s\"\n", v);
                return CTL_USAGE;
            }
            a.interval = (unsigned)n;
        } else {
            takes = 0;
            if (strcmp(o, "--adopt") == 0)
                a.adopt = 1;
            else if (strcmp(o, "--insecure") == 0)
                a.insecure = 1;
            else if (strcmp(o, "--plain") == 0)
                a.plain = 1;
            else if (strcmp(o, "--retr") == 0)
                a.use_retr = 1;
            else if (strcmp(o, "--replace") == 0)
                op.replace = 1;
            else {
                fprintf(stderr, "postlinkctl: mirror add: unknown option or missing value: %s\n", o);
                return usage();
            }
        }
        if (r != 0)
            return CTL_USAGE;
        i += takes;
    }
    (void)have_mode;
    if (a.primary[0] == '\0' || a.login[0] == '\0' || a.secret_file[0] == '\0' ||
        a.deliver_to[0] == '\0') {
        fprintf(stderr, "postlinkctl: mirror add needs --primary, --login, --secret-file and --deliver-to\n");
        return CTL_USAGE;
    }
    {
        char canon[256];
        if (pl_addr_canon(a.user, canon, sizeof(canon)) == 0)
            memcpy(a.user, canon, strlen(canon) + 1);
    }
    if ((why = pl_maccount_check(&a)) != NULL) {
        fprintf(stderr, "postlinkctl: mirror add %s: %s\n", argv[2], why);
        return CTL_USAGE;
    }
    a.created = (int64_t)time(NULL);
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    /* as the store's owner now: the account postlink-mirrord runs as */
    if (access(a.secret_file, R_OK) != 0) {
        fprintf(stderr, "postlinkctl: the secret file %s cannot be read by postlink-mirrord's "
                        "user: %s\n", a.secret_file, strerror(errno));
        pl_store_close(s);
        return CTL_NOINPUT;
    }
    if (a.ca_file[0] && access(a.ca_file, R_OK) != 0) {
        fprintf(stderr, "postlinkctl: the CA file %s cannot be read: %s\n", a.ca_file, strerror(errno));
        pl_store_close(s);
        return CTL_NOINPUT;
    }
    rc = pl_store_run(s, PL_TXN_SYNC, add_fn, &op);
    pl_store_close(s);
    if (op.no_device) {
        fprintf(stderr, "postlinkctl: --deliver-to push: %s has no push device (postlinkctl push "
                        "device add %s NAME first)\n", a.user, a.user);
        return CTL_FAIL;
    }
    if (op.exists) {
        fprintf(stderr, "postlinkctl: %s has a mirror account already (--replace changes it)\n", a.user);
        return CTL_FAIL;
    }
    if (rc == PL_OK && strcmp(a.deliver_to, "push") != 0 && !can_withdraw(ctl, a.deliver_to))
        fprintf(stderr, "postlinkctl: warning: neither imap_url (with imap_password_file) nor "
                        "enabled_domains covers %s: a copy whose original is read on the primary "
                        "cannot be %s\n", strrchr(a.deliver_to, '@') + 1,
                a.mode == PL_MIRROR_MARK ? "marked" : "withdrawn");
    if (rc == PL_OK)
        printf("mirror %s: %s as %s -> %s (%s mode%s)\n", a.user, a.primary, a.login,
               strcmp(a.deliver_to, "push") == 0 ? "push (the user's push store)" : a.deliver_to,
               a.mode == PL_MIRROR_MARK ? "mark" : "delete",
               a.adopt ? "; the ids listed now are adopted without fetching" : "");
    return exit_code(rc);
}

static int del_fn(pl_txn *t, void *ctx) { return pl_maccount_del(t, ctx); }

static int cmd_del(struct ctl *ctl, int argc, char **argv)
{
    pl_store *s;
    int rc;
    if (argc != 3)
        return usage();
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    rc = pl_store_run(s, PL_TXN_SYNC, del_fn, argv[2]);
    pl_store_close(s);
    if (rc == PL_NOTFOUND) {
        fprintf(stderr, "postlinkctl: %s has no mirror account\n", argv[2]);
        return CTL_FAIL;
    }
    return exit_code(rc);
}

/* ---- list / status ------------------------------------------------------ */

struct counts { unsigned long held, pending, seen, tomb; };

static int count_fn(void *ctx, const struct pl_mrec *r)
{
    struct counts *c = ctx;
    c->held += r->state == PL_MREC_HELD;
    c->pending += r->state == PL_MREC_PENDING;
    c->seen += r->state == PL_MREC_SEEN;
    c->tomb += r->state == PL_MREC_TOMB;
    return 0;
}

struct out {
    const char *only;               /* status of one user, or NULL */
    int status, json, found;
    json_t *rows;
    struct pl_strbuf text;
    pl_txn *t;
};

static const char *const num_fields[] = {
    "last", "next", "fails", "listed", "stat", "fetched", "withdrawn", "marked", "forgotten",
    "missing", "held_back", "hidden", "expired", "failed", "oversize", "adopted", "remapped",
    "bad_lines", "bytes", "total_fetched", "total_bytes", "withdraw_failed", "purged", "probes", "full_at", NULL};

static json_t *status_json(const char *st)
{
    json_t *j = json_object();
    char v[600];
    for (const char *const *f = num_fields; *f; f++) {
        pl_mstatus_field(st, *f, v, sizeof(v));
        json_object_set_new(j, *f, json_integer((json_int_t)strtoll(v, NULL, 10)));
    }
    pl_mstatus_field(st, "ok", v, sizeof(v));
    json_object_set_new(j, "ok", json_boolean(atoi(v)));
    pl_mstatus_field(st, "complete", v, sizeof(v));
    json_object_set_new(j, "complete", json_boolean(atoi(v)));
    pl_mstatus_field(st, "guard", v, sizeof(v));
    json_object_set_new(j, "guard", json_boolean(atoi(v)));
    pl_mstatus_field(st, "auth_failed", v, sizeof(v));
    json_object_set_new(j, "auth_failed", json_boolean(atoi(v)));
    pl_mstatus_field(st, "seconds", v, sizeof(v));
    json_object_set_new(j, "seconds", json_real(strtod(v, NULL)));
    pl_mstatus_field(st, "expire", v, sizeof(v));
    json_object_set_new(j, "expire_days", json_integer(strtol(v, NULL, 10)));
    pl_mstatus_field(st, "error", v, sizeof(v));
    json_object_set_new(j, "error", ctl_json_string(v));
    pl_mstatus_field(st, "warning", v, sizeof(v));
    json_object_set_new(j, "warning", ctl_json_string(v));
    pl_mstatus_field(st, "probed", v, sizeof(v));
    json_object_set_new(j, "probed", json_boolean(atoi(v)));
    pl_mstatus_field(st, "ordered", v, sizeof(v));
    json_object_set_new(j, "ids_grow", json_boolean(atoi(v)));
    pl_mstatus_field(st, "what", v, sizeof(v));
    json_object_set_new(j, "what", ctl_json_string(v));
    return j;
}

static void status_text(struct pl_strbuf *b, const char *st)
{
    char last[32], ok[8], err[600], v[64], next[32];
    time_t t;
    struct tm tm;
    pl_mstatus_field(st, "last", last, sizeof(last));
    pl_mstatus_field(st, "ok", ok, sizeof(ok));
    pl_mstatus_field(st, "error", err, sizeof(err));
    t = (time_t)strtoll(last, NULL, 10);
    localtime_r(&t, &tm);
    strftime(v, sizeof(v), "%Y-%m-%d %H:%M:%S", &tm);
    pl_strbuf_addf(b, "  last sync:  %s, %s%s%s\n", v, atoi(ok) ? "ok" : "FAILED",
                   err[0] ? ": " : "", err);
    pl_mstatus_field(st, "next", next, sizeof(next));
    t = (time_t)strtoll(next, NULL, 10);
    if (t > 0 && t < (time_t)4000000000LL) {
        localtime_r(&t, &tm);
        strftime(v, sizeof(v), "%Y-%m-%d %H:%M:%S", &tm);
        pl_strbuf_addf(b, "  next sync:  %s\n", v);
    } else {
        pl_strbuf_addf(b, "  next sync:  on demand\n");
    }
    pl_strbuf_adds(b, "  last:      ");
    for (const char *const *f = num_fields + 3; *f; f++) {
        if (strcmp(*f, "full_at") == 0)
            continue;               /* a time, not a count */
        pl_mstatus_field(st, *f, v, sizeof(v));
        if (strcmp(v, "0") != 0 && v[0])
            pl_strbuf_addf(b, " %s=%s", *f, v);
    }
    pl_mstatus_field(st, "complete", v, sizeof(v));
    if (strcmp(v, "0") == 0)
        pl_strbuf_adds(b, " (listing incomplete: nothing counted as read)");
    pl_strbuf_addc(b, '\n');
    pl_mstatus_field(st, "guard", v, sizeof(v));
    if (atoi(v)) {
        pl_mstatus_field(st, "held_back", v, sizeof(v));
        pl_strbuf_addf(b, "  ALERT:      %s ids vanished at once: their copies are kept "
                          "(a migrated or emptied primary?); if they were really read, "
                          "postlinkctl mirror release USER\n", v);
    }
    pl_mstatus_field(st, "warning", err, sizeof(err));
    if (err[0])
        pl_strbuf_addf(b, "  warning:    %s\n", err);
    pl_mstatus_field(st, "probed", v, sizeof(v));
    if (atoi(v)) {
        pl_mstatus_field(st, "probes", v, sizeof(v));
        pl_strbuf_addf(b, "  listing:    by %s UIDL n probes (the ids are UIDs that grow)\n", v);
    }
    pl_mstatus_field(st, "auth_failed", v, sizeof(v));
    if (atoi(v))
        pl_strbuf_adds(b, "  ALERT:      the primary refused the login: fix the secret file, "
                          "then postlinkctl mirror sync\n");
    pl_mstatus_field(st, "expire", v, sizeof(v));
    if (strtol(v, NULL, 10) >= 0)
        pl_strbuf_addf(b, "  note:       the primary announces EXPIRE %s: ids older than that "
                          "which vanish count as expired, not read\n", v);
}

static int list_one(void *ctx, const struct pl_maccount *a)
{
    struct out *o = ctx;
    struct counts c = {0};
    char *st = NULL;
    int rc;

    if (o->only) {
        char canon[256];
        if (pl_addr_canon(o->only, canon, sizeof(canon)) != 0 || strcmp(canon, a->user) != 0)
            return 0;
    }
    o->found++;
    if (o->status) {
        if ((rc = pl_mrec_list(o->t, a->user, count_fn, &c)) != PL_OK)
            return rc;
        if ((rc = pl_mstatus_get(o->t, a->user, &st)) != PL_OK && rc != PL_NOTFOUND)
            return rc;
    }
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "user", ctl_json_string(a->user));
        json_object_set_new(j, "primary", ctl_json_string(a->primary));
        json_object_set_new(j, "login", ctl_json_string(a->login));
        json_object_set_new(j, "secret_file", ctl_json_string(a->secret_file));
        json_object_set_new(j, "mode", json_string(a->mode == PL_MIRROR_MARK ? "mark" : "delete"));
        json_object_set_new(j, "deliver_to", ctl_json_string(a->deliver_to));
        json_object_set_new(j, "interval", json_integer(a->interval));
        json_object_set_new(j, "times", ctl_json_string(a->times));
        json_object_set_new(j, "adopt", json_boolean(a->adopt));
        json_object_set_new(j, "ca_file", ctl_json_string(a->ca_file));
        json_object_set_new(j, "tls_name", ctl_json_string(a->tls_name));
        json_object_set_new(j, "insecure", json_boolean(a->insecure));
        json_object_set_new(j, "plain", json_boolean(a->plain));
        json_object_set_new(j, "retr", json_boolean(a->use_retr));
        json_object_set_new(j, "created", json_integer((json_int_t)a->created));
        if (o->status) {
            json_t *ids = json_object();
            json_object_set_new(ids, "held", json_integer((json_int_t)c.held));
            json_object_set_new(ids, "pending", json_integer((json_int_t)c.pending));
            json_object_set_new(ids, "seen", json_integer((json_int_t)c.seen));
            json_object_set_new(ids, "tombstones", json_integer((json_int_t)c.tomb));
            json_object_set_new(j, "ids", ids);
            json_object_set_new(j, "sync", st ? status_json(st) : json_null());
        }
        free(st);
        return json_array_append_new(o->rows, j) < 0 ? PL_ERR : 0;
    }
    {
        char when[200], scheme[8] = "", host[8];
        unsigned port;
        int tls_url;
        if (a->interval && a->times[0])
            snprintf(when, sizeof(when), "every %u s and at %s", a->interval, a->times);
        else if (a->interval)
            snprintf(when, sizeof(when), "every %u s", a->interval);
        else if (a->times[0])
            snprintf(when, sizeof(when), "at %s", a->times);
        else
            snprintf(when, sizeof(when), "on demand only");
        pl_mirror_url(a->primary, scheme, sizeof(scheme), host, sizeof(host), &port);
        tls_url = strcmp(scheme, "pop3s") == 0 || strcmp(scheme, "imaps") == 0;
        pl_strbuf_addf(&o->text, "%s  %s as %s -> %s, %s mode, %s\n", a->user, a->primary,
                       a->login, a->deliver_to, a->mode == PL_MIRROR_MARK ? "mark" : "delete",
                       when);
        pl_strbuf_addf(&o->text, "  tls:        %s%s%s%s%s%s\n",
                       tls_url ? "from the first byte" : a->plain ? "none (--plain)" : "STARTTLS",
                       a->insecure ? ", any certificate (--insecure)" : "",
                       a->ca_file[0] ? ", CA " : "", a->ca_file,
                       a->tls_name[0] ? ", name " : "", a->tls_name);
        if (a->use_retr)
            pl_strbuf_adds(&o->text, "  fetch:      RETR (sets \\Seen on Dovecot)\n");
    }
    if (o->status) {
        pl_strbuf_addf(&o->text, "  ids:        %lu held, %lu pending, %lu seen, %lu tombstones\n",
                       c.held, c.pending, c.seen, c.tomb);
        if (st)
            status_text(&o->text, st);
        else
            pl_strbuf_adds(&o->text, "  last sync:  never\n");
    }
    free(st);
    return 0;
}

static int list_fn(pl_txn *t, void *ctx)
{
    struct out *o = ctx;
    json_array_clear(o->rows);
    pl_strbuf_free(&o->text);
    o->found = 0;
    o->t = t;
    return pl_maccount_list(t, list_one, o);
}

static int cmd_list(struct ctl *ctl, int argc, char **argv, int status)
{
    struct out o = {0};
    pl_store *s;
    int rc;
    o.status = status;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (status && o.only == NULL && argv[i][0] != '-')
            o.only = argv[i];
        else
            return usage();
    }
    o.json = ctl->json;
    o.rows = json_array();
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK) {
        json_decref(o.rows);
        return rc;
    }
    rc = pl_store_run(s, PL_TXN_SYNC, list_fn, &o);
    pl_store_close(s);
    if (rc == PL_OK && o.only && o.found == 0) {
        fprintf(stderr, "postlinkctl: %s has no mirror account\n", o.only);
        json_decref(o.rows);
        pl_strbuf_free(&o.text);
        return CTL_FAIL;
    }
    if (rc == PL_OK && o.only && o.json) {
        json_t *one = json_incref(json_array_get(o.rows, 0));
        json_decref(o.rows);
        pl_strbuf_free(&o.text);
        return ctl_json_print(one) == 0 ? CTL_OK : CTL_FAIL;
    }
    return exit_code(ctl_json_output(rc, o.json, o.rows, &o.text));
}

/* ---- sync / fetch -------------------------------------------------------- */

struct reqop { const char *user; char what[PL_UIDL_MAX + 16]; int64_t now; int have; char *st; };

static int req_fn(pl_txn *t, void *ctx)
{
    struct reqop *o = ctx;
    struct pl_maccount a;
    int rc = pl_maccount_get(t, o->user, &a);
    if (rc != PL_OK)
        return rc;
    return pl_mreq_put(t, o->user, o->what, o->now);
}

struct waitop { const char *user; const char *what; int pending; char *st; };

static int dummy_req(void *ctx, const char *user, const char *what, int64_t when)
{
    struct waitop *w = ctx;
    char canon[256];
    (void)when;
    if (pl_addr_canon(w->user, canon, sizeof(canon)) == 0 && strcmp(canon, user) == 0 &&
        strcmp(what, w->what) == 0)
        w->pending = 1;
    return 0;
}

static int wait_fn(pl_txn *t, void *ctx)
{
    struct waitop *w = ctx;
    int rc;
    w->pending = 0;
    free(w->st);
    w->st = NULL;
    if ((rc = pl_mreq_list(t, dummy_req, w)) != PL_OK)
        return rc;
    if (!w->pending && (rc = pl_mstatus_get(t, w->user, &w->st)) == PL_NOTFOUND)
        rc = PL_OK;
    return rc;
}

static int cmd_request(struct ctl *ctl, int argc, char **argv, int fetch)
{
    struct reqop op = {0};
    struct waitop w = {0};
    long wait_s = 0;
    pl_store *s;
    int rc, nargs = fetch ? 4 : 3;

    if (argc < nargs)
        return usage();
    for (int i = nargs; i < argc; i++) {
        char *end;
        if (strcmp(argv[i], "--wait") == 0 && i + 1 < argc) {
            wait_s = strtol(argv[++i], &end, 10);
            if (*end || wait_s < 0 || wait_s > 3600)
                return usage();
        } else {
            return usage();
        }
    }
    op.user = argv[2];
    op.now = (int64_t)time(NULL);
    if (fetch) {
        if (strlen(argv[3]) > PL_UIDL_MAX || argv[3][0] == '\0') {
            fprintf(stderr, "postlinkctl: a UIDL is 1-70 characters\n");
            return CTL_USAGE;
        }
        snprintf(op.what, sizeof(op.what), "fetch %s", argv[3]);
    } else {
        snprintf(op.what, sizeof(op.what), "%s", argv[1]);   /* sync, release */
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    rc = pl_store_run(s, PL_TXN_SYNC, req_fn, &op);
    if (rc == PL_NOTFOUND) {
        pl_store_close(s);
        fprintf(stderr, "postlinkctl: %s has no mirror account\n", argv[2]);
        return CTL_FAIL;
    }
    if (rc == PL_OK)   /* postlink-mirrord looks now, not at its next tick */
        (void)pl_doorbell_ring(pl_conf_str(ctl->conf, "db_home"), "mirrord");
    if (rc != PL_OK || wait_s == 0) {
        pl_store_close(s);
        if (rc == PL_OK)
            printf("mirror %s: %s asked for (postlink-mirrord does it within a second)\n",
                   argv[2], op.what);
        return exit_code(rc);
    }
    w.user = argv[2];
    w.what = op.what;
    /* a look every 10 ms for the first two seconds (a sync on demand is
     * often that quick), then every 100 ms */
    for (long ms = 0; ms <= wait_s * 1000;) {
        long step = ms < 2000 ? 10 : 100;
        if ((rc = pl_store_run(s, PL_TXN_SYNC, wait_fn, &w)) != PL_OK)
            break;
        if (!w.pending)
            break;
        usleep((useconds_t)step * 1000);
        ms += step;
    }
    pl_store_close(s);
    if (rc != PL_OK) {
        free(w.st);
        return exit_code(rc);
    }
    if (w.pending) {
        fprintf(stderr, "postlinkctl: %s: not done within %ld s (is postlink-mirrord running?)\n",
                op.what, wait_s);
        free(w.st);
        return CTL_TEMP;
    }
    {
        struct pl_strbuf b = {0};
        char ok[8];
        pl_mstatus_field(w.st ? w.st : "", "ok", ok, sizeof(ok));
        status_text(&b, w.st ? w.st : "");
        printf("mirror %s:\n%s", argv[2], b.s ? b.s : "");
        pl_strbuf_free(&b);
        free(w.st);
        return atoi(ok) ? CTL_OK : CTL_FAIL;
    }
}

int ctl_mirror(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "";
    if (strcmp(sub, "add") == 0)
        return cmd_add(ctl, argc, argv);
    if (strcmp(sub, "del") == 0)
        return cmd_del(ctl, argc, argv);
    if (strcmp(sub, "list") == 0)
        return cmd_list(ctl, argc, argv, 0);
    if (strcmp(sub, "status") == 0)
        return cmd_list(ctl, argc, argv, 1);
    if (strcmp(sub, "sync") == 0)
        return cmd_request(ctl, argc, argv, 0);
    if (strcmp(sub, "release") == 0)
        return cmd_request(ctl, argc, argv, 0);
    if (strcmp(sub, "fetch") == 0)
        return cmd_request(ctl, argc, argv, 1);
    return usage();
}
