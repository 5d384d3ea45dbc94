/* pushd_main.c -- postlink-pushd, capability 5: push delivery.  Postfix's
 * lmtp(8) client hands it push users' mail (pushd_lmtp.c), which it keeps
 * in the push store until each of the user's devices acknowledged it; the
 * devices fetch it over HTTP, the acknowledgement of one message riding on
 * the request for the next (pushd_http.c, pushd_fetch.c); a device with a
 * Web Push subscription is sent a notice when mail waits (pushd_notify.c).
 * Its life
 * (options, signals, listeners, shutdown) is the server skeleton's
 * (server/).  See postlink-pushd(8). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "listener.h"
#include "log.h"
#include "push_intake.h"
#include "pushd.h"
#include "server.h"

#define LMTP_CONNS 100                 /* Postfix's default process limit */
#define RECEIPT_TTL (30 * 86400)       /* a repeated ack is recognised this long */

struct pushd pd;
static atomic_int retain_due = 1;       /* a round at start, then every minute or sooner */

void pushd_retain_soon(void)
{
    atomic_store(&retain_due, 1);
}

static struct pl_lmtp_server_opts lmtp_opts;
static pthread_t retain_th;
static int retain_running;
static pl_listener *lmtp_listener;

static void serve_lmtp(int fd, void *ctx)
{
    (void)ctx;
    pl_lmtp_serve(fd, &lmtp_opts);
}

/* inet:port@host with host a loopback address (or unix:, which is local) */
static int listen_is_local(const char *ep)
{
    const char *host = strchr(ep, '@');
    if (strncmp(ep, "unix:", 5) == 0)
        return 1;
    if (host == NULL)
        return 0;
    host++;
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "[::1]") == 0 || strcasecmp(host, "localhost") == 0;
}

/* push_vapid_subject: a mailto: or https: URL, printable ASCII without
 * quotes or backslashes (it goes into the VAPID token) */
static int vapid_subject_ok(const char *v)
{
    if (strncmp(v, "mailto:", 7) != 0 && strncmp(v, "https://", 8) != 0)
        return 0;
    if (strlen(v) <= (v[0] == 'm' ? 7u : 8u) || strlen(v) > 256)
        return 0;
    for (; *v; v++)
        if (*v <= ' ' || *v > '~' || *v == '"' || *v == '\\')
            return 0;
    return 1;
}

static int pushd_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                           size_t errlen)
{
    (void)conf;
    if (cfg->push_vapid_key_file[0] && !vapid_subject_ok(cfg->push_vapid_subject)) {
        snprintf(err, errlen, "push_vapid_key_file is set: push_vapid_subject must be a mailto: "
                 "or https: URL (the contact a push service may reach the operator at), not "
                 "\"%.100s\"", cfg->push_vapid_subject);
        return -1;
    }
    if (cfg->push_vapid_key_file[0] && cfg->push_vapid_key_file[0] != '/') {
        snprintf(err, errlen, "push_vapid_key_file must be an absolute path");
        return -1;
    }
    if (cfg->push_webpush_ca_file[0] && cfg->push_webpush_ca_file[0] != '/') {
        snprintf(err, errlen, "push_webpush_ca_file must be an absolute path");
        return -1;
    }
    if (!reload) {
        if (strncmp(cfg->push_http_listen, "inet:", 5) != 0) {
            snprintf(err, errlen, "push_http_listen must be inet:port@host");
            return -1;
        }
        if (!cfg->push_tls_cert_file[0] != !cfg->push_tls_key_file[0]) {
            snprintf(err, errlen, "push_tls_cert_file and push_tls_key_file go together");
            return -1;
        }
        if (!cfg->push_tls_cert_file[0] && !listen_is_local(cfg->push_http_listen)) {
            snprintf(err, errlen, "push_http_listen = %s is not a loopback address: device "
                     "tokens would cross the network in clear; set push_tls_cert_file and "
                     "push_tls_key_file", cfg->push_http_listen);
            return -1;
        }
        if (cfg->push_wait_timeout + 5 > 3600 || cfg->push_request_timeout < 1) {
            snprintf(err, errlen, "push_wait_timeout is too long");
            return -1;
        }
        pd.hostname = pl_server_hostname(cfg);
    }
    atomic_store(&pd.cfg, cfg);
    return 0;
}

static int pushd_open(void)
{
    char err[512];
    const struct pl_cfg *cfg = pl_server_cfg();
    if ((lmtp_listener = pl_listener_open(cfg->push_lmtp_socket, cfg->postlink_user, err,
                                          sizeof(err))) == NULL) {
        msg_error("push_lmtp_socket: %s", err);
        return -1;
    }
    pl_server_adopt(lmtp_listener);
    if (pushd_notify_open() != 0)
        return -1;
    return pushd_http_open();
}

static int purge_fn(pl_txn *t, void *ctx)
{
    unsigned *n = ctx, m = 0;
    int rc = pl_pack_purge(t, time(NULL) - RECEIPT_TTL, n);
    if (rc == PL_OK && (rc = pl_pin_purge(t, time(NULL) - RECEIPT_TTL, &m)) == PL_OK)
        *n += m;
    return rc;
}

/* The retention rule: a round at start, every minute, and within a second
 * of new mail (pushd_retain_soon). */
static void *retain_main(void *arg)
{
    time_t last = 0;
    (void)arg;
    while (!pl_server_stopping()) {
        time_t now = time(NULL);
        if (atomic_exchange(&retain_due, 0) || now - last >= 60) {
            pushd_retain();
            last = now;
        }
        pl_server_sleep_ms(1000);
    }
    return NULL;
}

static int pushd_run(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    time_t last_purge = 0;
    pd.store = pl_server_store();
    lmtp_opts.hostname = pd.hostname;
    lmtp_opts.max_msg_bytes = (size_t)cfg->push_max_message;
    lmtp_opts.deliver = pushd_deliver;
    lmtp_opts.check_rcpt = pushd_check_rcpt;
    if (pushd_notify_start() != 0)
        return 71;
    if (pushd_http_start() != 0)
        return 71;
    if (pthread_create(&retain_th, NULL, retain_main, NULL) != 0) {
        msg_error("cannot start the retention thread");
        return 71;
    }
    retain_running = 1;
    if (pl_listener_start(lmtp_listener, "postlink-pushd lmtp", LMTP_CONNS, serve_lmtp,
                          NULL) != 0)
        return 71;
    msg_info("postlink-pushd %s listening on %s (lmtp) and %s (devices, %s)", PACKAGE_VERSION,
             cfg->push_lmtp_socket, cfg->push_http_listen,
             cfg->push_tls_cert_file[0] ? "https" : "http");
    do {
        time_t now = time(NULL);
        if (now - last_purge >= 3600) {
            unsigned n = 0;
            if (pl_store_run(pd.store, PL_TXN_SYNC, purge_fn, &n) == PL_OK && n)
                msg_info("forgot %u old receipt(s) of acknowledgements and deliveries", n);
            last_purge = now;
        }
        pl_store_maintain(pd.store, 0);
    } while (!pl_server_sleep_ms(1000));
    return 0;
}

static void pushd_wake(void)
{
    pushd_http_quiesce();
}

static void pushd_finish(void)
{
    if (retain_running)
        pthread_join(retain_th, NULL);
    retain_running = 0;
    pushd_http_stop();
    pushd_notify_stop();
}

static const struct pl_service pushd_service = {
    .name = "postlink-pushd",
    .needs_store = 1,
    .configure = pushd_configure,
    .open = pushd_open,
    .run = pushd_run,
    .wake = pushd_wake,
    .finish = pushd_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&pushd_service, argc, argv);
}
