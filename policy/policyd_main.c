/* policyd_main.c -- postlink-policyd, postlink's Postfix SMTPD policy
 * server: its settings, one served Postfix connection, and hourly
 * housekeeping; the server skeleton (server/) runs the listener, signals
 * and shutdown.  The decisions are in policyd_decide.c.  See
 * postlink-policyd(8). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "listener.h"
#include "log.h"
#include "peerq.h"
#include "policyd.h"
#include "server.h"
#include "strutil.h"

/* Postfix closes an idle policy connection after 300 s
 * (smtpd_policy_service_max_idle); wait a little longer than that. */
#define IDLE_S 330
#define MAX_CONNS 1000         /* one per smtpd process that asks (each may idle 300 s) */

struct policyd pd;
static pl_listener *policy_listener;

static void serve_policy(int fd, void *ctx)
{
    struct pl_policy_conn *c = pl_xcalloc(1, sizeof(*c));
    struct pl_policy_req *q = pl_xcalloc(1, sizeof(*q));
    char err[256], action[512];
    int rc;

    (void)ctx;
    c->fd = fd;
    while ((rc = pl_policy_read(c, q, IDLE_S, NULL, err, sizeof(err))) == 1) {
        policyd_decide(q, action, sizeof(action));
        if (pl_policy_reply(c, action) != 0)
            break;
    }
    if (rc < 0)
        msg_warn("postlink-policyd: closing a Postfix connection: %s", err);
    close(c->fd);
    free(q);
    free(c);
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

static int policyd_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload,
                             char *err, size_t errlen)
{
    (void)conf;
    if (!reload) {
        char why[256];
        if (pl_peers_parse(&pd.peers, cfg->sync_peers, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "sync_peers: %s", why);
            return -1;
        }
        if (pd.peers.nfp == 0)
            msg_warn("sync_peers lists no certificate fingerprints: postlink-policyd has "
                     "nothing to do");
    }
    pd.cfg = cfg;
    return 0;
}

static int policyd_open(void)
{
    char err[512];
    const struct pl_cfg *cfg = pl_server_cfg();
    if ((policy_listener = pl_listener_open(cfg->policy_socket, cfg->postlink_user, err,
                                            sizeof(err))) == NULL) {
        msg_error("%s", err);
        return -1;
    }
    pl_server_adopt(policy_listener);
    return 0;
}

static int policyd_run(void)
{
    pd.store = pl_server_store();
    pd.verbose = pl_server_verbose();
    if (pl_listener_start(policy_listener, "postlink-policyd", MAX_CONNS, serve_policy, NULL) != 0)
        return 71;
    msg_info("postlink-policyd %s listening on %s (%zu sync peer certificate(s))", PACKAGE_VERSION,
             pl_server_cfg()->policy_socket, pd.peers.nfp);
    do
        purge();
    while (!pl_server_sleep_ms(3600 * 1000));
    return 0;
}

static void policyd_finish(void)
{
    pl_peers_free(&pd.peers);
}

static const struct pl_service policyd_service = {
    .name = "postlink-policyd",
    .needs_store = 1,
    .configure = policyd_configure,
    .open = policyd_open,
    .run = policyd_run,
    .finish = policyd_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&policyd_service, argc, argv);
}
