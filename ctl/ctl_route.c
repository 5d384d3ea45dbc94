/* ctl_route.c -- "postlinkctl route prefix|map|keyword add|del|list" and
 * "postlinkctl route test": the tables by which postlink-route finds the
 * IP phone number of a relayed recipient (state/siproute.h), and a dry run
 * of its decision for an address and, optionally, a message. */
#include "config.h"

#include <errno.h>
#include <gmime/gmime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "address.h"
#include "ctl.h"
#include "ctl_json.h"
#include "route_decide.h"
#include "siproute.h"
#include "strutil.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: postlinkctl route prefix add PREFIX [--digits N]\n"
            "       postlinkctl route map add ADDRESS|DOMAIN|*.DOMAIN NUMBER\n"
            "       postlinkctl route keyword add KEYWORD NUMBER\n"
            "       postlinkctl route prefix|map|keyword del KEY\n"
            "       postlinkctl route prefix|map|keyword list [--json]\n"
            "       postlinkctl route test ADDRESS [--message FILE] [--stranger] [--json]\n");
    return CTL_USAGE;
}

struct op {
    const char *table, *key, *number;
    struct pl_phone_prefix prefix;
};

static int add_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    int64_t now = (int64_t)time(NULL);
    if (strcmp(op->table, PL_T_RPREFIX) == 0)
        return pl_rprefix_add(t, &op->prefix, now);
    if (strcmp(op->table, PL_T_RMAP) == 0)
        return pl_rmap_add(t, op->key, op->number, now);
    return pl_rkeyword_add(t, op->key, op->number, now);
}

static int del_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    if (strcmp(op->table, PL_T_RPREFIX) == 0)
        return pl_rprefix_del(t, op->key);
    if (strcmp(op->table, PL_T_RMAP) == 0)
        return pl_rmap_del(t, op->key);
    return pl_rkeyword_del(t, op->key);
}

struct out { const char *table; int json; json_t *list; struct pl_strbuf text; };

static int print_row(void *ctx, const struct pl_rrow *r)
{
    struct out *o = ctx;
    int prefix = strcmp(o->table, PL_T_RPREFIX) == 0;
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, prefix ? "prefix" : strcmp(o->table, PL_T_RMAP) == 0 ? "key" : "keyword",
                            ctl_json_string(r->key));
        if (prefix)
            json_object_set_new(j, "digits", json_integer(r->after));
        else
            json_object_set_new(j, "number", ctl_json_string(r->number));
        json_object_set_new(j, "created", json_integer((json_int_t)r->created));
        return json_array_append_new(o->list, j) < 0 ? PL_ERR : 0;
    }
    if (prefix)
        pl_strbuf_addf(&o->text, "%-16s %u digits after it\n", r->key, r->after);
    else
        pl_strbuf_addf(&o->text, "%-40s %s\n", r->key, r->number);
    return 0;
}

static int list_fn(pl_txn *t, void *ctx)
{
    struct out *o = ctx;
    json_array_clear(o->list);
    pl_strbuf_free(&o->text);
    return pl_rtable_list(t, o->table, print_row, o);
}

static int exit_code(int rc)
{
    return rc == PL_OK ? CTL_OK : rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
}

static int number_arg(struct ctl *ctl, const char *in, char *out, size_t outlen)
{
    const char *why;
    if (pl_phone_norm(in, pl_conf_str(ctl->conf, "route_country_code"), out, outlen, &why) != 0) {
        fprintf(stderr, "postlinkctl: NUMBER \"%s\": %s\n", in, why);
        return -1;
    }
    return 0;
}

static int table_cmd(struct ctl *ctl, const char *table, int argc, char **argv)
{
    const char *sub = argc > 2 ? argv[2] : "", *args[2] = {NULL, NULL}, *why;
    const char *cc = pl_conf_str(ctl->conf, "route_country_code");
    int nargs = 0, rc, prefix = strcmp(table, PL_T_RPREFIX) == 0;
    long digits = 0;
    char key[PL_RMAP_KEY_MAX + 2], number[PL_PHONE_MAX];
    struct op op = {table, NULL, NULL, {{0}, 0}};
    pl_store *s;

    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (strcmp(argv[i], "--digits") == 0 && prefix && i + 1 < argc) {
            char *end;
            errno = 0;
            digits = strtol(argv[++i], &end, 10);
            if (errno || *end || digits < 1 || digits > 14) {
                fprintf(stderr, "postlinkctl: --digits must be 1-14\n");
                return CTL_USAGE;
            }
        } else if (nargs < 2)
            args[nargs++] = argv[i];
        else
            return usage();
    }
    if (strcmp(sub, "list") == 0) {
        if (nargs != 0)
            return usage();
    } else if (strcmp(sub, "add") == 0) {
        if (nargs != (prefix ? 1 : 2))
            return usage();
    } else if (strcmp(sub, "del") == 0) {
        if (nargs != 1)
            return usage();
    } else
        return usage();

    if (strcmp(sub, "list") != 0) {
        if (prefix) {
            if (pl_phone_prefix_parse(args[0], (unsigned)digits, cc, &op.prefix, &why) != 0) {
                fprintf(stderr, "postlinkctl: PREFIX \"%s\": %s\n", args[0], why);
                return CTL_USAGE;
            }
            op.key = op.prefix.digits;
        } else if (strcmp(table, PL_T_RMAP) == 0) {
            if ((why = pl_rmap_key_check(args[0], key, sizeof(key))) != NULL) {
                fprintf(stderr, "postlinkctl: \"%s\": %s\n", args[0], why);
                return CTL_USAGE;
            }
            op.key = key;
        } else {
            if ((why = pl_rkeyword_check(args[0])) != NULL) {
                fprintf(stderr, "postlinkctl: KEYWORD \"%s\": %s\n", args[0], why);
                return CTL_USAGE;
            }
            op.key = args[0];
        }
        if (strcmp(sub, "add") == 0 && !prefix) {
            if (number_arg(ctl, args[1], number, sizeof(number)) != 0)
                return CTL_USAGE;
            op.number = number;
        }
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    if (strcmp(sub, "add") == 0) {
        rc = pl_store_run(s, PL_TXN_SYNC, add_fn, &op);
        if (rc == PL_OK && prefix)
            printf("prefix %s: numbers %s followed by %u digits are IP phone numbers\n",
                   args[0], op.prefix.digits, op.prefix.after);
        else if (rc == PL_OK)
            printf("%s -> %s\n", op.key, op.number);
    } else if (strcmp(sub, "del") == 0) {
        rc = pl_store_run(s, PL_TXN_SYNC, del_fn, &op);
        if (rc == PL_NOTFOUND)
            fprintf(stderr, "postlinkctl: no such row: %s\n", op.key);
        else if (rc == PL_OK)
            printf("%s: removed\n", op.key);
    } else {
        struct out o = {table, ctl->json, json_array(), {0}};
        rc = o.list ? pl_store_run(s, PL_TXN_SYNC, list_fn, &o) : PL_ERR;
        rc = ctl_json_output(rc, o.json, o.list, &o.text);
    }
    pl_store_close(s);
    return exit_code(rc);
}

/* ---- route test ---------------------------------------------------------- */

struct test_op {
    const char *addr;
    const struct route_opts *opts;
    const struct route_text *text;
    int trusted, found;
    struct route_tables rt;
    struct route_hit hit;
};

static int test_fn(pl_txn *t, void *ctx)
{
    struct test_op *op = ctx;
    int rc = route_tables_load(t, &op->rt);
    if (rc != PL_OK)
        return rc;
    op->found = route_decide(t, &op->rt, op->opts, op->addr, op->text, op->trusted, &op->hit);
    return op->found < 0 ? op->found : PL_OK;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct pl_strbuf b = {0};
    char buf[65536];
    size_t n;
    if (f == NULL)
        return NULL;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        pl_strbuf_addn(&b, buf, n);
    fclose(f);
    *len = b.len;
    return b.s ? b.s : pl_xstrdup("");
}

static int test_cmd(struct ctl *ctl, int argc, char **argv)
{
    const char *addr = NULL, *file = NULL, *why;
    char canon[PL_ADDR_SIZE], err[256];
    struct route_opts opts;
    struct route_text text = {0};
    struct test_op op;
    int stranger = 0, rc;
    pl_store *s;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (strcmp(argv[i], "--stranger") == 0)
            stranger = 1;
        else if (strcmp(argv[i], "--message") == 0 && i + 1 < argc)
            file = argv[++i];
        else if (addr == NULL)
            addr = argv[i];
        else
            return usage();
    }
    if (addr == NULL)
        return usage();
    if ((why = pl_addr_check(addr)) != NULL) {
        fprintf(stderr, "postlinkctl: ADDRESS \"%s\": %s\n", addr, why);
        return CTL_USAGE;
    }
    pl_addr_canon(addr, canon, sizeof(canon));
    if (route_order_parse(pl_conf_list(ctl->conf, "route_order"), &opts, err, sizeof(err)) != 0) {
        fprintf(stderr, "postlinkctl: route_order: %s\n", err);
        return CTL_CONFIG;
    }
    opts.country_code = pl_conf_str(ctl->conf, "route_country_code");
    if (file) {
        size_t len;
        char *msg = read_file(file, &len);
        if (msg == NULL) {
            fprintf(stderr, "postlinkctl: %s: %s\n", file, strerror(errno));
            return CTL_NOINPUT;
        }
        g_mime_init();
        rc = route_text_from_message(msg, len, (size_t)pl_conf_int(ctl->conf, "route_scan_max"), &text);
        free(msg);
        if (rc != 0) {
            fprintf(stderr, "postlinkctl: %s: not a message GMime can parse\n", file);
            return CTL_DATAERR;
        }
    }
    memset(&op, 0, sizeof(op));
    op.addr = canon;
    op.opts = &opts;
    op.text = file ? &text : NULL;
    op.trusted = !stranger;
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK) {
        route_text_free(&text);
        return rc;
    }
    rc = pl_store_run(s, PL_TXN_SYNC, test_fn, &op);
    pl_store_close(s);
    if (rc == PL_OK && ctl->json) {
        json_t *j = json_object();
        json_object_set_new(j, "address", ctl_json_string(canon));
        json_object_set_new(j, "number", op.found ? ctl_json_string(op.hit.number) : json_null());
        json_object_set_new(j, "rule", op.found ? ctl_json_string(op.hit.rule) : json_null());
        json_object_set_new(j, "detail", op.found ? ctl_json_string(op.hit.detail) : json_null());
        json_object_set_new(j, "body_cut", json_boolean(text.body_cut));
        if (ctl_json_print(j) < 0)
            rc = PL_ERR;
    } else if (rc == PL_OK && op.found)
        printf("%s: number %s by rule %s (%s)\n", canon, op.hit.number, op.hit.rule, op.hit.detail);
    else if (rc == PL_OK)
        printf("%s: no number%s: normal delivery\n", canon,
               file ? "" : " from the address rules (give --message FILE for the content rules)");
    route_tables_free(&op.rt);
    route_text_free(&text);
    if (rc != PL_OK)
        return exit_code(rc);
    return op.found ? CTL_OK : CTL_FAIL;
}

int ctl_route(struct ctl *ctl, int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    if (strcmp(what, "prefix") == 0)
        return table_cmd(ctl, PL_T_RPREFIX, argc, argv);
    if (strcmp(what, "map") == 0)
        return table_cmd(ctl, PL_T_RMAP, argc, argv);
    if (strcmp(what, "keyword") == 0)
        return table_cmd(ctl, PL_T_RKEYWORD, argc, argv);
    if (strcmp(what, "test") == 0)
        return test_cmd(ctl, argc, argv);
    return usage();
}
