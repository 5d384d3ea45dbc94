/* ctl_push.c -- "postlinkctl push device add|list|del", "push queue" and
 * "push vapid-key generate|show": the devices of capability 5 (push
 * delivery, state/push.h), the mail waiting for them, and the VAPID key
 * postlink-pushd signs Web Push notices with (lib/webpush.h).  A device's token is printed once, by "device add":
 * the store keeps only its hash, and no other command shows more than its
 * public half (the selector). */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "address.h"
#include "ctl.h"
#include "ctl_json.h"
#include "push.h"
#include "push_sub.h"
#include "strutil.h"
#include "webpush.h"

static int usage(void)
{
    fprintf(stderr, "usage: postlinkctl push device add USER NAME [--json]\n"
                    "       postlinkctl push device list [USER] [--json]\n"
                    "       postlinkctl push device del USER NAME\n"
                    "       postlinkctl push queue USER [--json]\n"
                    "       postlinkctl push vapid-key generate|show FILE [--json]\n");
    return CTL_USAGE;
}

static int exit_code(int rc)
{
    return rc == PL_OK ? CTL_OK : rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
}

/* the arguments after "push device add" (etc.): up to max positional ones,
 * and --json; anything else is a usage error (-1) */
static int parse_args(struct ctl *ctl, int argc, char **argv, int from, const char **args,
                      int max)
{
    int n = 0;
    for (int i = from; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (argv[i][0] == '-' || n == max)
            return -1;
        else
            args[n++] = argv[i];
    }
    return n;
}

/* USER as the store keys it (lower case) into out, or a message and -1 */
static int user_arg(const char *user, char *out, size_t outlen)
{
    const char *why = pl_addr_check(user);
    if (why == NULL && pl_addr_canon(user, out, outlen) != 0)
        why = "too long";
    if (why != NULL) {
        fprintf(stderr, "postlinkctl: USER \"%s\": %s\n", user, why);
        return -1;
    }
    return 0;
}

static int name_arg(const char *name)
{
    const char *why = pl_pdev_name_check(name);
    if (why != NULL) {
        fprintf(stderr, "postlinkctl: device name \"%s\": %s\n", name, why);
        return -1;
    }
    return 0;
}

/* a unix time as ISO 8601 in UTC, "-" for 0 */
static const char *iso_time(int64_t when, char *buf, size_t len)
{
    time_t t = (time_t)when;
    struct tm tm;
    if (when <= 0 || gmtime_r(&t, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "-");
    return buf;
}

/* text from the store for the terminal: control characters and the
 * backslash as \xNN (bytes above 0x7f as they are, like "device list") */
static void add_text(struct pl_strbuf *b, const char *s)
{
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c < 0x20 || *c == 0x7f || *c == '\\')
            pl_strbuf_addf(b, "\\x%02x", *c);
        else
            pl_strbuf_addc(b, (char)*c);
    }
}

/* ---- device add ---------------------------------------------------------- */

struct addop {
    const char *user, *name;
    int64_t now;
    char token[PL_PTOKEN_LEN + 1];
    const char *why;
};

static int add_fn(pl_txn *t, void *ctx)
{
    struct addop *o = ctx;
    return pl_pdev_add(t, o->user, o->name, o->now, o->token, sizeof(o->token), &o->why);
}

static int print_token(struct ctl *ctl, const struct addop *o)
{
    if (ctl->json) {
        json_t *j = json_object();
        json_object_set_new(j, "user", ctl_json_string(o->user));
        json_object_set_new(j, "device", ctl_json_string(o->name));
        json_object_set_new(j, "token", json_string(o->token));
        /* jansson's copy of the token is freed without being cleared: the
         * document lives for one print only */
        return ctl_json_print(j) == 0 ? CTL_OK : CTL_FAIL;
    }
    if (printf("token: %s\n", o->token) < 0 || fflush(stdout) == EOF) {
        fprintf(stderr, "postlinkctl: cannot write the token: remove the device and add it again\n");
        return CTL_FAIL;
    }
    return CTL_OK;
}

static int cmd_add(struct ctl *ctl, int argc, char **argv)
{
    const char *args[2];
    char user[PL_ADDR_SIZE];
    struct addop o;
    pl_store *s;
    int rc;

    memset(&o, 0, sizeof(o));
    if (parse_args(ctl, argc, argv, 3, args, 2) != 2)
        return usage();
    if (user_arg(args[0], user, sizeof(user)) < 0 || name_arg(args[1]) < 0)
        return CTL_USAGE;
    o.user = user;
    o.name = args[1];
    o.now = (int64_t)time(NULL);
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    rc = pl_store_run(s, PL_TXN_SYNC, add_fn, &o);
    pl_store_close(s);
    if (rc == PL_ERR && o.why != NULL) {
        if (strcmp(o.why, "exists") == 0)
            fprintf(stderr, "postlinkctl: %s has a push device %s already\n", user, o.name);
        else if (strcmp(o.why, "too many devices") == 0)
            fprintf(stderr, "postlinkctl: %s has %d push devices, the most there can be: "
                            "remove one first\n", user, PL_PDEV_MAX);
        else
            fprintf(stderr, "postlinkctl: push device add %s %s: %s\n", user, o.name, o.why);
        return CTL_FAIL;
    }
    if (rc != PL_OK)
        return exit_code(rc);
    rc = print_token(ctl, &o);
    OPENSSL_cleanse(o.token, sizeof(o.token));
    if (rc == CTL_OK)
        fprintf(stderr, "postlinkctl: push device %s of %s added; its token is shown only this "
                        "once (postlink keeps only its hash): give it to the device now\n",
                o.name, user);
    return rc;
}

/* ---- device del ---------------------------------------------------------- */

struct delop { const char *user, *name; };

static int del_fn(pl_txn *t, void *ctx)
{
    struct delop *o = ctx;
    return pl_pdev_del(t, o->user, o->name);
}

static int cmd_del(struct ctl *ctl, int argc, char **argv)
{
    const char *args[2];
    char user[PL_ADDR_SIZE];
    struct delop o;
    pl_store *s;
    int rc;

    if (parse_args(ctl, argc, argv, 3, args, 2) != 2 || ctl->json)
        return usage();
    if (user_arg(args[0], user, sizeof(user)) < 0 || name_arg(args[1]) < 0)
        return CTL_USAGE;
    o.user = user;
    o.name = args[1];
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    rc = pl_store_run(s, PL_TXN_SYNC, del_fn, &o);
    pl_store_close(s);
    if (rc == PL_NOTFOUND) {
        fprintf(stderr, "postlinkctl: %s has no push device %s\n", user, o.name);
        return CTL_FAIL;
    }
    if (rc == PL_OK)
        printf("push %s: removed device %s (its queue and processed store with it)\n", user, o.name);
    return exit_code(rc);
}

/* ---- device list ----------------------------------------------------------- */

/* one device and what its queue and processed store hold */
struct devrow { struct pl_pdev d; unsigned waiting, sent, processed; int webpush; };

struct listop {
    const char *user;               /* canonical, or NULL: every user */
    struct devrow *rows;
    size_t n, cap;
    const char *counting;           /* the user pl_pmsg_list is reading */
};

static int list_dev(void *ctx, const struct pl_pdev *d)
{
    struct listop *o = ctx;
    if (o->n == o->cap) {
        o->cap = o->cap ? 2 * o->cap : 16;
        o->rows = pl_xrealloc(o->rows, o->cap * sizeof(*o->rows));
    }
    memset(&o->rows[o->n], 0, sizeof(o->rows[o->n]));
    o->rows[o->n++].d = *d;
    return 0;
}

static int count_msg(void *ctx, const struct pl_pmsg *m, const struct pl_pdstate *st, size_t n)
{
    struct listop *o = ctx;
    (void)m;
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < o->n; r++) {
            struct devrow *row = &o->rows[r];
            if (strcmp(row->d.user, o->counting) != 0 || strcmp(row->d.name, st[i].name) != 0)
                continue;
            row->waiting += st[i].state == PL_PST_WAIT;
            row->sent += st[i].state == PL_PST_SENT;
            row->processed += st[i].state == PL_PST_MOVED;
        }
    }
    return 0;
}

static int list_fn(pl_txn *t, void *ctx)
{
    struct listop *o = ctx;
    int rc;
    o->n = 0;
    if ((rc = pl_pdev_list(t, o->user, list_dev, o)) != PL_OK)
        return rc;
    /* the counts, by one pl_pmsg_list for each user */
    for (size_t r = 0; r < o->n; r++) {
        struct pl_psub sub;
        int seen = 0;
        if ((rc = pl_psub_get(t, o->rows[r].d.sel, &sub, 0)) != PL_OK && rc != PL_NOTFOUND)
            return rc;
        o->rows[r].webpush = rc == PL_OK;
        for (size_t e = 0; e < r && !seen; e++)
            seen = strcmp(o->rows[e].d.user, o->rows[r].d.user) == 0;
        if (seen)
            continue;
        o->counting = o->rows[r].d.user;
        if ((rc = pl_pmsg_list(t, o->counting, count_msg, o)) != PL_OK)
            return rc;
    }
    return PL_OK;
}

static int cmd_list(struct ctl *ctl, int argc, char **argv)
{
    const char *args[1] = {NULL};
    char user[PL_ADDR_SIZE];
    struct listop o;
    json_t *rows;
    struct pl_strbuf text = {0};
    pl_store *s;
    int rc;

    memset(&o, 0, sizeof(o));
    if (parse_args(ctl, argc, argv, 3, args, 1) < 0)
        return usage();
    if (args[0] != NULL) {
        if (user_arg(args[0], user, sizeof(user)) < 0)
            return CTL_USAGE;
        o.user = user;
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    rc = pl_store_run(s, PL_TXN_NOSYNC, list_fn, &o);
    pl_store_close(s);
    if ((rows = json_array()) == NULL)
        rc = PL_ERR;
    for (size_t r = 0; rc == PL_OK && r < o.n; r++) {
        const struct devrow *row = &o.rows[r];
        if (ctl->json) {
            json_t *j = json_object();
            json_object_set_new(j, "user", ctl_json_string(row->d.user));
            json_object_set_new(j, "device", ctl_json_string(row->d.name));
            json_object_set_new(j, "selector", ctl_json_string(row->d.sel));
            json_object_set_new(j, "created", json_integer((json_int_t)row->d.created));
            json_object_set_new(j, "waiting", json_integer((json_int_t)row->waiting));
            json_object_set_new(j, "sent", json_integer((json_int_t)row->sent));
            json_object_set_new(j, "processed", json_integer((json_int_t)row->processed));
            json_object_set_new(j, "webpush", json_boolean(row->webpush));
            if (json_array_append_new(rows, j) < 0)
                rc = PL_ERR;
        } else {
            char when[32];
            pl_strbuf_addf(&text, "%-32s %-20s %s  %s  waiting %u, sent %u, processed %u%s\n",
                           row->d.user, row->d.name, row->d.sel,
                           iso_time(row->d.created, when, sizeof(when)), row->waiting, row->sent,
                           row->processed, row->webpush ? ", web push" : "");
        }
    }
    free(o.rows);
    return exit_code(ctl_json_output(rc, ctl->json, rows, &text));
}

/* ---- queue ----------------------------------------------------------------- */

static const char *state_name(char st)
{
    switch (st) {
    case PL_PST_WAIT: return "waiting";
    case PL_PST_SENT: return "sent";
    case PL_PST_MOVED: return "moved";
    case PL_PST_ACKED: return "acked";
    default: return "none";
    }
}

struct queueop {
    const char *user;
    int json;
    json_t *msgs;
    struct pl_strbuf text;
    unsigned count;
    struct pl_push_usage u;
};

static int queue_msg(void *ctx, const struct pl_pmsg *m, const struct pl_pdstate *st, size_t n)
{
    struct queueop *o = ctx;
    char when[32];

    o->count++;
    if (o->json) {
        json_t *j = json_object(), *devs = json_array();
        json_object_set_new(j, "id", json_string(m->id));
        json_object_set_new(j, "seq", json_integer((json_int_t)m->seq));
        json_object_set_new(j, "size", json_integer((json_int_t)m->size));
        json_object_set_new(j, "type", ctl_json_string(m->type));
        json_object_set_new(j, "date", json_integer((json_int_t)m->date));
        json_object_set_new(j, "arrived", json_integer((json_int_t)m->arrived));
        json_object_set_new(j, "sender", ctl_json_string(m->sender));
        json_object_set_new(j, "ref", ctl_json_string(m->ref));
        for (size_t i = 0; i < n; i++) {
            json_t *d = json_object();
            json_object_set_new(d, "device", ctl_json_string(st[i].name));
            json_object_set_new(d, "state", json_string(state_name(st[i].state)));
            json_object_set_new(d, "time", st[i].when > 0 ? json_integer((json_int_t)st[i].when)
                                                          : json_null());
            json_array_append_new(devs, d);
        }
        json_object_set_new(j, "devices", devs);
        return json_array_append_new(o->msgs, j) < 0 ? PL_ERR : 0;
    }
    pl_strbuf_addf(&o->text, "%s  seq %" PRIu64 "  %" PRIu64 " bytes  ", m->id, m->seq, m->size);
    add_text(&o->text, m->type);
    pl_strbuf_addf(&o->text, "  arrived %s  from <", iso_time(m->arrived, when, sizeof(when)));
    add_text(&o->text, m->sender);
    pl_strbuf_adds(&o->text, ">");
    if (m->ref[0]) {
        pl_strbuf_adds(&o->text, "  ref ");
        add_text(&o->text, m->ref);
    }
    pl_strbuf_addc(&o->text, '\n');
    for (size_t i = 0; i < n; i++) {
        pl_strbuf_addf(&o->text, "    %-20s %s", st[i].name, state_name(st[i].state));
        if (st[i].when > 0)
            pl_strbuf_addf(&o->text, " %s", iso_time(st[i].when, when, sizeof(when)));
        pl_strbuf_addc(&o->text, '\n');
    }
    return 0;
}

static int queue_fn(pl_txn *t, void *ctx)
{
    struct queueop *o = ctx;
    int rc;
    json_array_clear(o->msgs);
    pl_strbuf_free(&o->text);
    o->count = 0;
    if ((rc = pl_pmsg_list(t, o->user, queue_msg, o)) != PL_OK)
        return rc;
    return pl_push_usage(t, o->user, &o->u);
}

static json_t *usage_json(unsigned count, uint64_t bytes, int64_t oldest)
{
    json_t *j = json_object();
    json_object_set_new(j, "count", json_integer((json_int_t)count));
    json_object_set_new(j, "bytes", json_integer((json_int_t)bytes));
    json_object_set_new(j, "oldest", oldest > 0 ? json_integer((json_int_t)oldest) : json_null());
    return j;
}

static int cmd_queue(struct ctl *ctl, int argc, char **argv)
{
    const char *args[1] = {NULL};
    char user[PL_ADDR_SIZE], w1[32], w2[32];
    struct queueop o;
    pl_store *s;
    int rc;

    memset(&o, 0, sizeof(o));
    if (parse_args(ctl, argc, argv, 2, args, 1) != 1)
        return usage();
    if (user_arg(args[0], user, sizeof(user)) < 0)
        return CTL_USAGE;
    o.user = user;
    o.json = ctl->json;
    if ((o.msgs = json_array()) == NULL)
        return CTL_FAIL;
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK) {
        json_decref(o.msgs);
        return rc;
    }
    rc = pl_store_run(s, PL_TXN_NOSYNC, queue_fn, &o);
    pl_store_close(s);
    if (rc != PL_OK) {
        json_decref(o.msgs);
        pl_strbuf_free(&o.text);
        return exit_code(rc);
    }
    if (o.json) {
        json_t *j = json_object();
        json_object_set_new(j, "user", ctl_json_string(user));
        json_object_set_new(j, "messages", o.msgs);
        json_object_set_new(j, "queued", usage_json(o.u.q_count, o.u.q_bytes, o.u.q_oldest));
        json_object_set_new(j, "processed", usage_json(o.u.p_count, o.u.p_bytes, o.u.p_oldest));
        return ctl_json_print(j) == 0 ? CTL_OK : CTL_FAIL;
    }
    json_decref(o.msgs);
    printf("%s: %u message%s\n%s", user, o.count, o.count == 1 ? "" : "s", o.text.s ? o.text.s : "");
    printf("queued:    %u message%s still to receive, %" PRIu64 " bytes, oldest arrived %s\n"
           "processed: %u entr%s, %" PRIu64 " bytes kept only as processed, oldest moved %s\n",
           o.u.q_count, o.u.q_count == 1 ? "" : "s", o.u.q_bytes,
           iso_time(o.u.q_oldest, w1, sizeof(w1)), o.u.p_count, o.u.p_count == 1 ? "y" : "ies",
           o.u.p_bytes, iso_time(o.u.p_oldest, w2, sizeof(w2)));
    pl_strbuf_free(&o.text);
    return fflush(stdout) == EOF ? CTL_FAIL : CTL_OK;
}

/* ---- vapid-key ------------------------------------------------------------- */

/* "push vapid-key generate FILE" writes a new key (never over an old one);
 * both it and "show" print the public key, the applicationServerKey that
 * device apps subscribe with. */
static int cmd_vapid(struct ctl *ctl, int argc, char **argv, int generate)
{
    const char *args[1] = {NULL};
    char err[256];
    pl_vapid_key *k;
    if (parse_args(ctl, argc, argv, 3, args, 1) != 1)
        return usage();
    if (generate && pl_vapid_generate(args[0], err, sizeof(err)) != 0) {
        fprintf(stderr, "postlinkctl: %s\n", err);
        return CTL_FAIL;
    }
    if ((k = pl_vapid_load(args[0], err, sizeof(err))) == NULL) {
        fprintf(stderr, "postlinkctl: %s\n", err);
        return CTL_NOINPUT;
    }
    if (ctl->json) {
        json_t *j = json_object();
        json_object_set_new(j, "file", ctl_json_string(args[0]));
        json_object_set_new(j, "public_key", json_string(pl_vapid_public(k)));
        pl_vapid_free(k);
        return ctl_json_print(j) == 0 ? CTL_OK : CTL_FAIL;
    }
    printf("%s\n", pl_vapid_public(k));
    pl_vapid_free(k);
    return fflush(stdout) == EOF ? CTL_FAIL : CTL_OK;
}

int ctl_push(struct ctl *ctl, int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "", *sub = argc > 2 ? argv[2] : "";
    if (strcmp(what, "queue") == 0)
        return cmd_queue(ctl, argc, argv);
    if (strcmp(what, "vapid-key") == 0 && strcmp(sub, "generate") == 0)
        return cmd_vapid(ctl, argc, argv, 1);
    if (strcmp(what, "vapid-key") == 0 && strcmp(sub, "show") == 0)
        return cmd_vapid(ctl, argc, argv, 0);
    if (strcmp(what, "device") != 0)
        return usage();
    if (strcmp(sub, "add") == 0)
        return cmd_add(ctl, argc, argv);
    if (strcmp(sub, "del") == 0)
        return cmd_del(ctl, argc, argv);
    if (strcmp(sub, "list") == 0)
        return cmd_list(ctl, argc, argv);
    return usage();
}
