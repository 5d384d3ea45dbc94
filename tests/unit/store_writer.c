/* store_writer.c -- a store client for crash and concurrency tests and the
 * store benchmark.  Each transaction increments the shared key "total",
 * writes "w<id>/<seq>" and then "w<id>/last"; only after the commit returns
 * does it append "<seq>\n" to the report file, so the report lists exactly
 * what the store promised to keep.  A retry of a transaction whose commit
 * said PL_TEMP but landed finds w<id>/last at seq already and does nothing.  Resumes from w<id>/last when restarted.
 *
 * usage: store_writer -h HOME -i ID [-n MAX] [-t SECONDS] [-s USEC_IN_TXN]
 *                     [-r REPORT] [-T LOCK_TIMEOUT_MS] [-G STUCK_SECS]
 *                     [-m sync|write_nosync|nosync]
 *                     [-q]   (prints "<committed> <seconds>" at the end)
 *                     [-S]   (supervise: restart the writer when it exits 75,
 *                             as systemd's Restart=on-failure would) */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

struct job { const char *id; long seq; useconds_t nap; };

static int one(pl_txn *t, void *ctx)
{
    struct job *j = ctx;
    char key[64], val[32];
    void *v = NULL;
    long total = 0;
    int rc;

    if ((rc = pl_store_get(t, "probe", "total", 5, &v, NULL, 1)) == PL_OK)
        total = atol(v);
    free(v);
    if (rc < 0)
        return rc;
    /* A commit that overlapped a recovery is reported PL_TEMP although it
     * may have landed: then this retry finds it and changes nothing. */
    snprintf(key, sizeof(key), "w%s/last", j->id);
    v = NULL;
    rc = pl_store_get(t, "probe", key, strlen(key), &v, NULL, 1);
    if (rc == PL_OK && atol(v) >= j->seq) {
        free(v);
        return PL_OK;
    }
    free(v);
    if (rc < 0)
        return rc;
    snprintf(val, sizeof(val), "%ld", total + 1);
    if ((rc = pl_store_put(t, "probe", "total", 5, val, strlen(val))) != PL_OK)
        return rc;
    snprintf(key, sizeof(key), "w%s/%08ld", j->id, j->seq);
    snprintf(val, sizeof(val), "%ld", j->seq);
    if ((rc = pl_store_put(t, "probe", key, strlen(key), val, strlen(val))) != PL_OK)
        return rc;
    if (j->nap)
        usleep(j->nap);
    snprintf(key, sizeof(key), "w%s/last", j->id);
    return pl_store_put(t, "probe", key, strlen(key), val, strlen(val));
}

static int read_last(pl_txn *t, void *ctx)
{
    struct job *j = ctx;
    char key[64];
    void *v = NULL;
    int rc;
    snprintf(key, sizeof(key), "w%s/last", j->id);
    rc = pl_store_get(t, "probe", key, strlen(key), &v, NULL, 0);
    if (rc == PL_OK)
        j->seq = atol(v);
    free(v);
    return rc == PL_NOTFOUND ? PL_OK : rc;
}

static volatile sig_atomic_t stop;
static volatile pid_t child;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
    if (child > 0)
        kill(child, SIGTERM);
}

/* Returns in the child; the parent restarts it while it exits with 75. */
static void supervise(void)
{
    signal(SIGTERM, on_term);
    for (;;) {
        int status;
        pid_t pid = fork();
        if (pid < 0)
            msg_fatal("fork: %m");
        if (pid == 0) {
            signal(SIGTERM, SIG_DFL);
            return;
        }
        child = pid;
        while (waitpid(pid, &status, 0) < 0)
            ;
        child = 0;
        if (stop || !WIFEXITED(status) || WEXITSTATUS(status) != 75)
            _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
        msg_warn("writer exited with status 75; restarting it");
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct pl_store_opts o = {0};
    struct job j = {"0", 0, 0};
    const char *report = NULL;
    long max = -1, done = 0;
    double secs = -1, t0;
    unsigned mode = PL_TXN_SYNC;
    int ch, fd = -1, quiet = 0, sup = 0;
    char err[512];
    pl_store *s;

    pl_log_open("store_writer", PL_LOG_STDERR, -1);
    while ((ch = getopt(argc, argv, "h:i:n:t:s:r:T:G:m:qS")) != -1) {
        switch (ch) {
        case 'h': o.home = optarg; break;
        case 'i': j.id = optarg; break;
        case 'n': max = atol(optarg); break;
        case 't': secs = atof(optarg); break;
        case 's': j.nap = (useconds_t)atol(optarg); break;
        case 'r': report = optarg; break;
        case 'T': o.lock_timeout_ms = (unsigned)atoi(optarg); break;
        case 'G': o.stuck_secs = (unsigned)atoi(optarg); break;
        case 'm':
            mode = strcmp(optarg, "nosync") == 0 ? PL_TXN_NOSYNC
                 : strcmp(optarg, "write_nosync") == 0 ? PL_TXN_WRITE_NOSYNC : PL_TXN_SYNC;
            break;
        case 'q': quiet = 1; break;
        case 'S': sup = 1; break;
        default:
            fprintf(stderr, "usage: store_writer -h HOME -i ID [-n MAX] [-t SECS] [-s USEC] "
                            "[-r REPORT] [-T MS] [-m MODE] [-q]\n");
            return 2;
        }
    }
    if (o.home == NULL)
        msg_fatal("-h HOME is required");
    if (sup)
        supervise();
    if (report && (fd = open(report, O_WRONLY | O_CREAT | O_APPEND, 0644)) < 0)
        msg_fatal("open %s: %m", report);
    while (pl_store_open(&s, &o, err, sizeof(err)) != PL_OK) {
        msg_warn("%s (retrying)", err);
        usleep(100000);
    }
    if (pl_store_run(s, PL_TXN_SYNC, read_last, &j) != PL_OK)
        msg_fatal("cannot read w%s/last", j.id);
    t0 = now();
    signal(SIGTERM, on_term);
    while (!stop && (max < 0 || done < max) && (secs < 0 || now() - t0 < secs)) {
        int rc;
        j.seq++;
        rc = pl_store_run(s, mode, one, &j);
        if (rc != PL_OK) {
            j.seq--;                    /* not committed: try the same seq again */
            if (rc != PL_TEMP)
                msg_fatal("transaction failed");
            continue;
        }
        done++;
        if (fd >= 0) {
            char line[32];
            int n = snprintf(line, sizeof(line), "%ld\n", j.seq);
            if (write(fd, line, (size_t)n) != n)
                msg_fatal("write report: %m");
        }
    }
    if (quiet)
        printf("%ld %.3f\n", done, now() - t0);
    pl_store_close(s);
    return 0;
}
