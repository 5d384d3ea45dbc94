/* ctl_status.c -- "postlinkctl status [--json]": what an administrator
 * checks first: the store's schema, sizes, log files, checkpoint age,
 * deadlocks, and a synchronous write probe that proves commits work. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_json.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int probe_fn(pl_txn *t, void *ctx)
{
    const char *key = ctx;
    int rc = pl_store_put(t, "probe", key, strlen(key), "x", 1);
    return rc == PL_OK ? pl_store_del(t, "probe", key, strlen(key)) : rc;
}

int ctl_status(struct ctl *ctl, int argc, char **argv)
{
    struct pl_store_stats st;
    json_t *out = NULL, *tables = NULL;
    pl_store *s;
    char key[64];
    double t0, probe_ms;
    int rc, probe_rc, out_rc = CTL_OK;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            ctl->json = 1;
        } else {
            fprintf(stderr, "usage: postlinkctl status [--json]\n");
            return CTL_USAGE;
        }
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    snprintf(key, sizeof(key), "postlinkctl/%ld", (long)getpid());
    t0 = now_ms();
    probe_rc = pl_store_run(s, PL_TXN_SYNC, probe_fn, key);
    probe_ms = now_ms() - t0;
    if ((rc = pl_store_stats(s, &st)) != PL_OK) {
        fprintf(stderr, "postlinkctl: cannot read store statistics\n");
        pl_store_close(s);
        return CTL_TEMP;
    }

    if (ctl->json) {
        out = json_object();
        tables = json_object();
        json_object_set_new(out, "db_home", ctl_json_string(pl_store_home(s)));
        json_object_set_new(out, "schema_version", json_integer(st.schema_version));
        json_object_set_new(out, "schema_current", json_integer(pl_store_schema_current()));
        json_object_set_new(out, "tables", tables);
    } else {
        printf("db_home:          %s\n", pl_store_home(s));
        printf("schema version:   %d (this postlink: %d)\n", st.schema_version,
               pl_store_schema_current());
        printf("tables:          ");
    }
    for (const char *const *t = pl_store_tables(s); *t; t++) {
        uint64_t n = 0;
        pl_store_count(s, *t, &n);
        if (ctl->json)
            json_object_set_new(tables, *t, json_integer((json_int_t)n));
        else
            printf(" %s=%llu", *t, (unsigned long long)n);
    }
    if (ctl->json) {
        json_t *domains = json_array(), *probe = json_object();
        json_object_set_new(out, "log_files", json_integer((json_int_t)st.log_files));
        json_object_set_new(out, "log_bytes", json_integer((json_int_t)st.log_bytes));
        json_object_set_new(out, "last_checkpoint", json_integer((json_int_t)st.last_checkpoint));
        json_object_set_new(out, "txn_active", json_integer((json_int_t)st.txn_active));
        json_object_set_new(out, "txn_commits", json_integer((json_int_t)st.txn_commits));
        json_object_set_new(out, "txn_aborts", json_integer((json_int_t)st.txn_aborts));
        json_object_set_new(out, "deadlocks", json_integer((json_int_t)st.deadlocks));
        json_object_set_new(out, "lock_timeouts", json_integer((json_int_t)st.lock_timeouts));
        json_object_set_new(out, "cache_hit_pct", json_integer((json_int_t)st.cache_hit_pct));
        json_object_set_new(probe, "ok", json_boolean(probe_rc == PL_OK));
        json_object_set_new(probe, "ms", json_real((double)(long long)(probe_ms * 100 + 0.5) / 100));
        json_object_set_new(out, "write_probe", probe);
        for (const char *const *d = pl_conf_list(ctl->conf, "enabled_domains"); *d; d++)
            json_array_append_new(domains, ctl_json_string(*d));
        json_object_set_new(out, "enabled_domains", domains);
        if (ctl_json_print(out) < 0)
            out_rc = CTL_FAIL;
    } else {
        char when[64] = "never";
        if (st.last_checkpoint > 0) {
            time_t t = (time_t)st.last_checkpoint;
            struct tm tm;
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", localtime_r(&t, &tm));
        }
        printf("\nlog files:        %llu (%llu bytes)\n", (unsigned long long)st.log_files,
               (unsigned long long)st.log_bytes);
        printf("last checkpoint:  %s\n", when);
        printf("transactions:     %llu active, %llu committed, %llu aborted (since the "
               "environment was created)\n", (unsigned long long)st.txn_active,
               (unsigned long long)st.txn_commits, (unsigned long long)st.txn_aborts);
        printf("deadlocks:        %llu, lock timeouts: %llu\n",
               (unsigned long long)st.deadlocks, (unsigned long long)st.lock_timeouts);
        printf("cache hits:       %llu%%\n", (unsigned long long)st.cache_hit_pct);
        printf("write probe:      %s (%.2f ms, synchronous commit)\n",
               probe_rc == PL_OK ? "ok" : "FAILED", probe_ms);
        printf("enabled_domains: ");
        for (const char *const *d = pl_conf_list(ctl->conf, "enabled_domains"); *d; d++)
            printf(" %s", *d);
        printf("\n");
    }
    pl_store_close(s);
    return probe_rc == PL_OK ? out_rc : CTL_FAIL;
}
