/* policyd_main.c -- postlink-policyd, postlink's Postfix SMTPD policy
 * server: start-up, the listening socket, one thread per Postfix
 * connection, and hourly housekeeping.  The decisions are in
 * policyd_decide.c.  See postlink-policyd(8). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "peerq.h"
#include "policyd.h"
#include "privs.h"
#include "strutil.h"

struct policyd pd;
static atomic_int active;

/* Postfix closes an idle policy connection after 300 s
 * (smtpd_policy_service_max_idle); wait a little longer than that. */
#define IDLE_S 330

static void *conn_thread(void *arg)
{
    struct pl_policy_conn *c = pl_xcalloc(1, sizeof(*c));
    struct pl_policy_req *q = pl_xcalloc(1, sizeof(*q));
    char err[256], action[512];
    int rc;

    c->fd = (int)(intptr_t)arg;
    while ((rc = pl_policy_read(c, q, IDLE_S, &pl_daemon_stop, err, sizeof(err))) == 1) {
        policyd_decide(q, action, sizeof(action));
        if (pl_policy_reply(c, action) != 0)
            break;
    }
    if (rc < 0)
        msg_warn("postlink-policyd: closing a Postfix connection: %s", err);
    close(c->fd);
    free(q);
    free(c);
    atomic_fetch_sub(&active, 1);
    return NULL;
}

static int purge_fn(pl_txn *t, void *ctx)
{
    return pl_peerq_purge(t, (int64_t)time(NULL) - PL_PEERQ_MAX_AGE, ctx);
}

/* Records of messages that never reached the milter (aborted, rejected,
 * or without a control) are forgotten after an hour. */
static void purge(void)
{
    unsigned n = 0;
    if (pl_store_run(pd.store, PL_TXN_SYNC, purge_fn, &n) != PL_OK)
        msg_warn("postlink-policyd: cannot purge old sync peer records (will retry)");
    else if (n)
        msg_info("postlink-policyd: forgot %u sync peer record(s) older than an hour", n);
}

int main(int argc, char **argv)
{
    struct pl_daemon d = {"postlink-policyd", NULL, 0, 0, NULL};
    const char *path;
    pthread_attr_t attr;
    time_t last_purge = 0;
    char err[512];
    int lfd;

    pl_daemon_start(&d, argc, argv, NULL, NULL);
    pd.conf = d.conf;
    pd.verbose = d.verbose;
    if (pl_peers_parse(&pd.peers, pl_conf_str(d.conf, "sync_peers"), err, sizeof(err)) != 0) {
        msg_error("sync_peers: %s", err);
        return 78;
    }
    if (pd.peers.nfp == 0)
        msg_warn("sync_peers lists no certificate fingerprints: postlink-policyd has nothing to do");
    pl_daemon_signals();
    path = pl_conf_str(d.conf, "policy_socket");
    if ((lfd = pl_listen_for_postfix(path, pl_conf_str(d.conf, "db_home"), err, sizeof(err))) < 0) {
        msg_error("%s", err);
        return 71;
    }
    pl_daemon_open_store(&d, &pd.store);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    msg_info("postlink-policyd %s listening on %s (%zu sync peer certificate(s))", PACKAGE_VERSION,
             path, pd.peers.nfp);
    while (!pl_daemon_stop) {
        struct pollfd p = {lfd, POLLIN, 0};
        pthread_t th;
        int fd;
        if (time(NULL) - last_purge >= 3600) {
            purge();
            last_purge = time(NULL);
        }
        if (poll(&p, 1, 500) <= 0)
            continue;
        if ((fd = accept(lfd, NULL, NULL)) < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
                usleep(100000);                /* out of descriptors: do not spin */
            continue;
        }
        atomic_fetch_add(&active, 1);
        if (pthread_create(&th, &attr, conn_thread, (void *)(intptr_t)fd) != 0) {
            msg_warn("cannot start a connection thread: closing the connection");
            atomic_fetch_sub(&active, 1);
            close(fd);
        }
    }
    msg_info("postlink-policyd stopping");
    close(lfd);
    unlink(path);
    /* connection threads notice the stop flag within a second, once the
     * request in hand is answered (a store retry can take a while) */
    for (int i = 0; i < 300 && atomic_load(&active) > 0; i++)
        usleep(100000);
    if (atomic_load(&active) > 0) {
        msg_warn("%d connection(s) still busy after 30 s: exiting without closing the store",
                 atomic_load(&active));
        _exit(0);                              /* the store's failchk cleans up after us */
    }
    pl_store_close(pd.store);
    pl_peers_free(&pd.peers);
    pl_conf_free(d.conf);
    return 0;
}
