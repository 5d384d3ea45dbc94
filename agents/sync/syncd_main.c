/* syncd_main.c -- postlink-syncd, the delivery agent of capability 1:
 * Postfix's lmtp(8) client hands it the control messages the postlink-sync
 * milter routed to sync_transport_domain; it applies them, fans them out,
 * and runs the housekeeping of the sync state (outbox retries, expiry of
 * held controls, purging of old dedupe marks).  See postlink-syncd(8). */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "privs.h"
#include "route.h"
#include "strutil.h"
#include "sync.h"
#include "syncd.h"

struct syncd sd;

static struct pl_lmtp_server_opts lmtp_opts;

static void *conn_thread(void *arg)
{
    int fd = (int)(intptr_t)arg;
    pl_lmtp_serve(fd, &lmtp_opts);
    return NULL;
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
    while (!pl_daemon_stop) {
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
        for (int i = 0; i < 10 && !pl_daemon_stop; i++)
            usleep(100 * 1000);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    struct pl_daemon d = {"postlink-syncd", NULL, 0, 0, NULL};
    const char *path;
    pthread_t house;
    pthread_attr_t attr;
    char err[512];
    int lfd;

    pl_daemon_start(&d, argc, argv, NULL, NULL);
    sd.conf = d.conf;
    sd.hostname = pl_daemon_hostname(d.conf);
    sd.transport_domain = pl_conf_str(d.conf, "sync_transport_domain");
    sd.reinject_url = pl_conf_str(d.conf, "reinject_url");
    sd.imap_login = pl_conf_str(d.conf, "imap_login");
    sd.max_targets = (size_t)pl_conf_int(d.conf, "control_max_targets");
    sd.pending_ttl = pl_conf_int(d.conf, "pending_ttl");
    sd.dedupe_ttl = pl_conf_int(d.conf, "control_dedupe_ttl");
    sd.seen_ttl = pl_conf_int(d.conf, "seen_ttl");
    sd.retry_time = pl_conf_int(d.conf, "outbox_retry_time");
    sd.max_age = pl_conf_int(d.conf, "outbox_max_age");
    sd.imap_password = pl_daemon_read_secret(d.conf, "imap_password_file");
    pl_daemon_signals();

    path = pl_conf_str(d.conf, "sync_lmtp_socket");
    if ((lfd = pl_listen_for_postfix(path, pl_conf_str(d.conf, "db_home"), err, sizeof(err))) < 0) {
        msg_error("%s", err);
        return 71;
    }
    pl_daemon_open_store(&d, &sd.store);
    lmtp_opts.hostname = sd.hostname;
    lmtp_opts.max_msg_bytes = 1024 * 1024;
    lmtp_opts.deliver = syncd_deliver;
    lmtp_opts.check_rcpt = syncd_check_rcpt;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&house, NULL, housekeeping, NULL) != 0) {
        msg_error("cannot start the housekeeping thread");
        return 71;
    }
    msg_info("postlink-syncd %s listening on %s (re-injection %s)", PACKAGE_VERSION, path,
             sd.reinject_url);
    while (!pl_daemon_stop) {
        struct pollfd p = {lfd, POLLIN, 0};
        pthread_t th;
        int fd;
        if (poll(&p, 1, 500) <= 0)
            continue;
        if ((fd = accept(lfd, NULL, NULL)) < 0)
            continue;
        if (pthread_create(&th, &attr, conn_thread, (void *)(intptr_t)fd) != 0) {
            msg_warn("cannot start a connection thread: closing the connection");
            close(fd);
        }
    }
    msg_info("postlink-syncd stopping");
    close(lfd);
    unlink(path);
    pthread_join(house, NULL);
    pl_store_close(sd.store);
    free(sd.imap_password);
    pl_conf_free(d.conf);
    return 0;
}
