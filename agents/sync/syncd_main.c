/* syncd_main.c -- postlink-syncd, the delivery agent of capability 1:
 * Postfix's lmtp(8) client hands it the control messages the postlink-sync
 * milter routed to sync_transport_domain; it applies them, fans them out,
 * and runs the housekeeping of the sync state (outbox retries, expiry of
 * held controls, purging of old dedupe marks).  Its life (options,
 * signals, listener, shutdown) is the server skeleton's (server/).  See
 * postlink-syncd(8). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "listener.h"
#include "log.h"
#include "route.h"
#include "server.h"
#include "sync.h"
#include "syncd.h"

#define MAX_CONNS 100          /* Postfix's lmtp clients; default process limit is 100 */

struct syncd sd;

static struct pl_lmtp_server_opts lmtp_opts;
static pl_listener *lmtp_listener;
static pthread_t house;
static int house_running;

static void serve_lmtp(int fd, void *ctx)
{
    (void)ctx;
    pl_lmtp_serve(fd, &lmtp_opts);
}

struct house { int64_t now; unsigned expired, purged; int purge; };

static int house_fn(pl_txn *t, void *ctx)
{
    struct house *h = ctx;
    int rc = pl_sync_expire(t, h->now, 1000, &h->expired);
    if (rc == PL_OK && h->purge) {
        unsigned routes = 0;
        rc = pl_sync_purge_dedupe(t, h->now, sd.dedupe_ttl, &h->purged);
        if (rc == PL_OK)
            rc = pl_route_purge(t, h->now - sd.dedupe_ttl, &routes);
        h->purged += routes;
        if (rc == PL_OK)
            rc = pl_sync_purge_idle(t, h->now, sd.seen_ttl, &routes);
        h->purged += routes;
    }
    return rc;
}

/* Every second: carry out due outbox entries, expire held controls; every
 * hour: forget old dedupe marks.  Expired controls stay listed until an
 * administrator purges them (postlinkctl pending purge). */
static void *housekeeping(void *arg)
{
    time_t last_purge = time(NULL);
    (void)arg;
    while (!pl_server_stopping()) {
        struct house h = {time(NULL), 0, 0, 0};
        syncd_flush(NULL);
        h.purge = h.now - last_purge >= 3600;
        if (pl_store_run(sd.store, PL_TXN_SYNC, house_fn, &h) == PL_OK) {
            if (h.expired)
                msg_info("%u pending control(s) expired", h.expired);
            if (h.purge) {
                last_purge = h.now;
                if (h.purged)
                    msg_info("forgot %u old dedupe mark(s), route token(s) and unchanged message(s)", h.purged);
            }
        }
        pl_store_maintain(sd.store, 0);
        pl_server_sleep_ms(1000);
    }
    return NULL;
}

static int syncd_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                           size_t errlen)
{
    (void)conf;
    if (!reload) {
        if (pl_server_read_secret("imap_password_file", cfg->imap_password_file,
                                  &sd.imap_password, err, errlen) != 0)
            return -1;
        sd.hostname = pl_server_hostname(cfg);
        sd.transport_domain = cfg->sync_transport_domain;
    }
    sd.cfg = cfg;
    sd.reinject_url = cfg->reinject_url;
    sd.imap_login = cfg->imap_login;
    sd.max_targets = (size_t)cfg->control_max_targets;
    sd.pending_ttl = cfg->pending_ttl;
    sd.dedupe_ttl = cfg->control_dedupe_ttl;
    sd.seen_ttl = cfg->seen_ttl;
    sd.retry_time = cfg->outbox_retry_time;
    sd.max_age = cfg->outbox_max_age;
    return 0;
}

static int syncd_open(void)
{
    char err[512];
    const struct pl_cfg *cfg = pl_server_cfg();
    if ((lmtp_listener = pl_listener_open(cfg->sync_lmtp_socket, cfg->postlink_user, err,
                                          sizeof(err))) == NULL) {
        msg_error("%s", err);
        return -1;
    }
    pl_server_adopt(lmtp_listener);
    return 0;
}

static int syncd_run(void)
{
    sd.store = pl_server_store();
    lmtp_opts.hostname = sd.hostname;
    /* A control is applied from its header alone: accept any size that
     * Postfix accepted (else a control with a large body would be
     * acknowledged at SMTP time and bounced here) and keep the first MB. */
    lmtp_opts.max_msg_bytes = 1024 * 1024;
    lmtp_opts.keep_head_only = 1;
    lmtp_opts.deliver = syncd_deliver;
    lmtp_opts.check_rcpt = syncd_check_rcpt;
    if (pthread_create(&house, NULL, housekeeping, NULL) != 0) {
        msg_error("cannot start the housekeeping thread");
        return 71;
    }
    house_running = 1;
    if (pl_listener_start(lmtp_listener, "postlink-syncd lmtp", MAX_CONNS, serve_lmtp, NULL) != 0)
        return 71;
    msg_info("postlink-syncd %s listening on %s (re-injection %s)", PACKAGE_VERSION,
             pl_server_cfg()->sync_lmtp_socket, sd.reinject_url);
    while (!pl_server_sleep_ms(60 * 1000))
        ;
    return 0;
}

static void syncd_finish(void)
{
    if (house_running)
        pthread_join(house, NULL);
    house_running = 0;
    free(sd.imap_password);
}

static const struct pl_service syncd_service = {
    .name = "postlink-syncd",
    .needs_store = 1,
    .configure = syncd_configure,
    .open = syncd_open,
    .run = syncd_run,
    .finish = syncd_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&syncd_service, argc, argv);
}
