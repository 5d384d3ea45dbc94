/* pl-store-lock.c -- a test tool that keeps one record of the store
 * write-locked: it begins a transaction, reads the record with for_update
 * and writes it back (a missing record is written as VALUE, so that the
 * lock exists either way), prints "locked" on stdout, holds the lock for
 * SECONDS and then aborts the transaction, so the store is left as it was.
 * Tests use it to make the store stay busy for longer than a daemon's
 * retries (e.g. postlink-syncd must then answer 4xx, never 250).
 *
 * usage: pl-store-lock -h DB_HOME -t TABLE -k KEY [-v VALUE] [-s SECONDS]
 *                      [-T LOCK_TIMEOUT_MS]
 *   (-s 10 by default; ends early, still aborting, on SIGTERM or SIGINT)
 * -T is this tool's own lock timeout (each process's transactions carry
 * their own; default 2000 ms, the store's default too). */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "privs.h"
#include "store.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: pl-store-lock -h DB_HOME -t TABLE -k KEY [-v VALUE] [-s SECONDS] "
            "[-T LOCK_TIMEOUT_MS]\n");
    return 64;
}

int main(int argc, char **argv)
{
    const char *home = NULL, *table = NULL, *key = NULL, *value = "0 0";
    struct pl_store_opts o = {0};
    struct sigaction sa;
    char err[256];
    long secs = 10;
    pl_store *s;
    pl_txn *t;
    void *v = NULL;
    size_t vl = 0;
    int c, rc;

    while ((c = getopt(argc, argv, "h:t:k:v:s:T:")) != -1) {
        switch (c) {
        case 'h': home = optarg; break;
        case 't': table = optarg; break;
        case 'k': key = optarg; break;
        case 'v': value = optarg; break;
        case 's': secs = atol(optarg); break;
        case 'T': o.lock_timeout_ms = (unsigned)atol(optarg); break;
        default: return usage();
        }
    }
    if (home == NULL || table == NULL || key == NULL || secs < 0)
        return usage();
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (pl_privs_drop_to_owner(home, err, sizeof(err)) != 0) {
        fprintf(stderr, "pl-store-lock: %s\n", err);
        return 1;
    }
    o.home = home;
    if (pl_store_open(&s, &o, err, sizeof(err)) != PL_OK) {
        fprintf(stderr, "pl-store-lock: %s\n", err);
        return 1;
    }
    if ((rc = pl_store_begin(s, &t, PL_TXN_NOSYNC)) != PL_OK) {
        fprintf(stderr, "pl-store-lock: cannot begin a transaction (%d)\n", rc);
        pl_store_close(s);
        return 1;
    }
    rc = pl_store_get(t, table, key, strlen(key), &v, &vl, 1);
    if (rc == PL_OK)
        rc = pl_store_put(t, table, key, strlen(key), v, vl);
    else if (rc == PL_NOTFOUND)
        rc = pl_store_put(t, table, key, strlen(key), value, strlen(value));
    free(v);
    if (rc != PL_OK) {
        fprintf(stderr, "pl-store-lock: cannot lock %s/%s (%d)\n", table, key, rc);
        pl_txn_abort(t);
        pl_store_close(s);
        return 1;
    }
    printf("locked\n");
    fflush(stdout);
    for (time_t end = time(NULL) + secs; !stop && time(NULL) < end;)
        usleep(50000);
    pl_txn_abort(t);
    pl_store_close(s);
    printf("released\n");
    fflush(stdout);
    return 0;
}
