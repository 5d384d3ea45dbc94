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
#include "strutil.h"

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
    struct pl_strbuf out = {0};
    pl_store *s;
    char key[64];
    double t0, probe_ms;
    int rc, probe_rc;

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
        pl_strbuf_adds(&out, "{\"db_home\":");
        pl_strbuf_json(&out, pl_store_home(s));
        pl_strbuf_addf(&out, ",\"schema_version\":%d,\"schema_current\":%d,\"tables\":{",
                       st.schema_version, pl_store_schema_current());
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
            pl_strbuf_addf(&out, "%s\"%s\":%llu", t == pl_store_tables(s) ? "" : ",", *t,
                           (unsigned long long)n);
        else
            printf(" %s=%llu", *t, (unsigned long long)n);
    }
    if (ctl->json) {
        pl_strbuf_addf(&out, "},\"log_files\":%llu,\"log_bytes\":%llu,\"last_checkpoint\":%lld,"
                       "\"txn_active\":%llu,\"txn_commits\":%llu,\"txn_aborts\":%llu,"
                       "\"deadlocks\":%llu,\"lock_timeouts\":%llu,\"cache_hit_pct\":%llu,"
                       "\"write_probe\":{\"ok\":%s,\"ms\":%.2f},\"enabled_domains\":[",
                       (unsigned long long)st.log_files, (unsigned long long)st.log_bytes,
                       (long long)st.last_checkpoint, (unsigned long long)st.txn_active,
                       (unsigned long long)st.txn_commits, (unsigned long long)st.txn_aborts,
                       (unsigned long long)st.deadlocks, (unsigned long long)st.lock_timeouts,
                       (unsigned long long)st.cache_hit_pct, probe_rc == PL_OK ? "true" : "false",
                       probe_ms);
        for (const char *const *d = pl_conf_list(ctl->conf, "enabled_domains"); *d; d++) {
            if (d != pl_conf_list(ctl->conf, "enabled_domains"))
                pl_strbuf_addc(&out, ',');
            pl_strbuf_json(&out, *d);
        }
        pl_strbuf_adds(&out, "]}");
        puts(out.s);
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
    pl_strbuf_free(&out);
    pl_store_close(s);
    return probe_rc == PL_OK ? CTL_OK : CTL_FAIL;
}
