/* pl-push-put.c -- a test tool that does to the push store (state/push.h)
 * what postlink-pushd does, so that the tests of "postlinkctl push" have
 * messages to show in every state:
 *   pl-push-put -h DB_HOME -u USER [-t TYPE] [-s SENDER] [-r REF] [-d DATE] FILE
 *       stores FILE's bytes for USER's devices (pl_pmsg_put, committed with
 *       PL_TXN_SYNC) and prints "<id> <seq>"; exit 2 when USER has no device
 *   pl-push-put -h DB_HOME -S TOKEN ID
 *       records that message ID was sent to the token's device (pl_pq_sent)
 *   pl-push-put -h DB_HOME -A TOKEN ID move|delete
 *       the device's acknowledgement of ID (pl_pq_ack); prints its code
 * Run as root, it reads FILE first and then becomes the owner of DB_HOME. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "privs.h"
#include "push.h"
#include "store.h"
#include "strutil.h"

struct op {
    struct pl_pmsg_in in;
    const char *token, *id;
    int ack;                        /* -A: 1 move, 2 delete */
    struct pl_pmsg m;
    int code;                       /* pl_pq_ack's result */
};

static int usage(void)
{
    fprintf(stderr, "usage: pl-push-put -h DB_HOME -u USER [-t TYPE] [-s SENDER] [-r REF] "
                    "[-d DATE] FILE\n"
                    "       pl-push-put -h DB_HOME -S TOKEN ID\n"
                    "       pl-push-put -h DB_HOME -A TOKEN ID move|delete\n");
    return 64;
}

static int put_fn(pl_txn *t, void *ctx)
{
    struct op *o = ctx;
    return pl_pmsg_put(t, &o->in, (int64_t)time(NULL), &o->m);
}

static int dev_fn(pl_txn *t, void *ctx)
{
    struct op *o = ctx;
    struct pl_pdev d;
    int rc = pl_pdev_auth(t, o->token, &d);
    if (rc != PL_OK)
        return rc;
    if (!o->ack)
        return pl_pq_sent(t, &d, o->id, (int64_t)time(NULL));
    o->code = pl_pq_ack(t, &d, o->id, o->ack == 1 ? PL_PDISP_MOVE : PL_PDISP_DELETE,
                        (int64_t)time(NULL));
    return o->code < 0 ? o->code : PL_OK;
}

/* FILE's bytes (malloc'd) */
static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    struct pl_strbuf b = {0};
    char buf[8192];
    size_t n;
    if (fp == NULL)
        return NULL;
    while ((n = fread(buf, 1, sizeof(buf), fp)) > 0)
        pl_strbuf_addn(&b, buf, n);
    fclose(fp);
    *len = b.len;
    return b.s ? b.s : pl_xmalloc(1);
}

int main(int argc, char **argv)
{
    const char *home = NULL, *sent = NULL, *acked = NULL;
    struct pl_store_opts so = {0};
    struct op o;
    char err[256], *bytes = NULL;
    pl_store *s;
    int c, rc;

    memset(&o, 0, sizeof(o));
    while ((c = getopt(argc, argv, "h:u:t:s:r:d:S:A:")) != -1) {
        switch (c) {
        case 'h': home = optarg; break;
        case 'u': o.in.user = optarg; break;
        case 't': o.in.type = optarg; break;
        case 's': o.in.sender = optarg; break;
        case 'r': o.in.ref = optarg; break;
        case 'd': o.in.date = strtoll(optarg, NULL, 10); break;
        case 'S': sent = optarg; break;
        case 'A': acked = optarg; break;
        default: return usage();
        }
    }
    if (home == NULL)
        return usage();
    if (sent || acked) {
        if (optind >= argc || (acked && optind + 2 != argc) || (sent && optind + 1 != argc))
            return usage();
        o.token = sent ? sent : acked;
        o.id = argv[optind];
        if (acked && strcmp(argv[optind + 1], "move") != 0 && strcmp(argv[optind + 1], "delete") != 0)
            return usage();
        o.ack = acked ? (strcmp(argv[optind + 1], "move") == 0 ? 1 : 2) : 0;
    } else {
        size_t len = 0;
        if (o.in.user == NULL || optind + 1 != argc)
            return usage();
        if ((bytes = slurp(argv[optind], &len)) == NULL) {
            perror(argv[optind]);
            return 66;
        }
        o.in.bytes = bytes;
        o.in.len = len;
    }
    if (pl_privs_drop_to_owner(home, err, sizeof(err)) != 0) {
        fprintf(stderr, "pl-push-put: %s\n", err);
        free(bytes);
        return 1;
    }
    so.home = home;
    if (pl_store_open(&s, &so, err, sizeof(err)) != PL_OK) {
        fprintf(stderr, "pl-push-put: %s\n", err);
        free(bytes);
        return 1;
    }
    rc = pl_store_run(s, PL_TXN_SYNC, bytes ? put_fn : dev_fn, &o);
    pl_store_close(s);
    free(bytes);
    if (rc == PL_NOTFOUND) {
        fprintf(stderr, "pl-push-put: %s\n", o.ack || o.token ? "no such device or message"
                                                              : "the user has no device");
        return 2;
    }
    if (rc != PL_OK) {
        fprintf(stderr, "pl-push-put: store error %d\n", rc);
        return 1;
    }
    if (o.token == NULL)
        printf("%s %llu\n", o.m.id, (unsigned long long)o.m.seq);
    else if (o.ack)
        printf("%d\n", o.code);
    return 0;
}
