/* sync_store_bench.c -- state updates per second in the store alone: each
 * update is one synchronous transaction of pl_sync_control (dedupe mark,
 * state record, version, change log, one outbox copy for two devices), the
 * same work postlink-syncd does per control, without Postfix or LMTP.  A
 * bare read-modify-write transaction runs alongside as the baseline.
 * usage: sync_store_bench [-n UPDATES] [-m sync|write_nosync|nosync] */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "device.h"
#include "log.h"
#include "sync.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int baseline_fn(pl_txn *t, void *ctx)
{
    char key[32], val[32];
    void *v = NULL;
    int n = *(int *)ctx, rc;
    snprintf(key, sizeof(key), "bench/%d", n % 64);
    rc = pl_store_get(t, "probe", key, strlen(key), &v, NULL, 1);
    free(v);
    if (rc != PL_OK && rc != PL_NOTFOUND)
        return rc;
    snprintf(val, sizeof(val), "%d", n);
    return pl_store_put(t, "probe", key, strlen(key), val, strlen(val));
}

struct op { struct pl_control c; struct pl_sync_opts o; struct pl_sync_result r; };

static int control_fn(pl_txn *t, void *ctx)
{
    struct op *op = ctx;
    return pl_sync_control(t, &op->o, "alice@bench.example", "phone@dev.example", &op->c,
                           NULL, 0, &op->r);
}

int main(int argc, char **argv)
{
    struct pl_store_opts so = {0};
    char dir[] = "/tmp/postlink-syncbench.XXXXXX", err[256], target[64], cmd[128];
    char *targets[1] = {target};
    int n = 2000, ch;
    unsigned flags = PL_TXN_SYNC;
    const char *mode = "sync";
    pl_store *s;
    struct op op;
    double t0, base, upd;

    while ((ch = getopt(argc, argv, "n:m:")) != -1) {
        if (ch == 'n')
            n = atoi(optarg);
        else if (ch == 'm')
            mode = optarg;
        else
            return 64;
    }
    flags = strcmp(mode, "nosync") == 0 ? PL_TXN_NOSYNC
          : strcmp(mode, "write_nosync") == 0 ? PL_TXN_WRITE_NOSYNC : PL_TXN_SYNC;
    pl_log_open("sync_store_bench", PL_LOG_STDERR, -1);
    if (mkdtemp(dir) == NULL)
        return 1;
    so.home = dir;
    if (pl_store_open(&s, &so, err, sizeof(err)) != PL_OK) {
        fprintf(stderr, "open: %s\n", err);
        return 1;
    }
    pl_device_add(s, "alice@bench.example", "phone@dev.example", "");
    pl_device_add(s, "alice@bench.example", "desk@dev.example", "");
    pl_device_add(s, "alice@bench.example", "pager@gw.example", "");
    memset(&op, 0, sizeof(op));
    op.o.pending_ttl = 3600;
    op.o.hostname = "bench.example";
    for (int i = 0; i < 64; i++) {     /* 64 target messages, seen */
        pl_txn *t;
        unsigned f, r;
        snprintf(target, sizeof(target), "<m%d@bench.example>", i);
        op.o.now = time(NULL);
        pl_store_begin(s, &t, PL_TXN_SYNC);
        pl_sync_seen(t, &op.o, "alice@bench.example", target, &f, &r);
        pl_txn_commit(t);
    }
    t0 = now_s();
    for (int i = 0; i < n; i++)
        if (pl_store_run(s, flags, baseline_fn, &i) != PL_OK)
            return 1;
    base = n / (now_s() - t0);
    op.c.targets = targets;
    op.c.ntargets = 1;
    op.c.version = -1;
    op.c.since = -1;
    t0 = now_s();
    for (int i = 0; i < n; i++) {
        snprintf(target, sizeof(target), "<m%d@bench.example>", i % 64);
        snprintf(op.c.msgid, sizeof(op.c.msgid), "<c%d@bench.example>", i);
        op.c.word = (i / 64) % 2 ? PL_CW_UNREAD : PL_CW_READ;   /* every one changes state */
        op.c.date = 0;
        op.o.now = time(NULL);
        if (pl_store_run(s, flags, control_fn, &op) != PL_OK || op.r.applied != 1)
            return 1;
    }
    upd = n / (now_s() - t0);
    printf("%-14s %8s %12s %8s\n", "work", "mode", "txn/s", "ratio");
    printf("%-14s %8s %12.0f %8.2f\n", "read+put", mode, base, 1.0);
    printf("%-14s %8s %12.0f %8.2f\n", "state_update", mode, upd, upd / base);
    pl_store_close(s);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
