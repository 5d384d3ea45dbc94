/* xmppd_main.c -- postlink-xmppd: stays logged in to the site's XMPP
 * server as xmpp_jid, holds presence subscriptions to the linked accounts
 * and caches their presence (xmppd_roster.c), answers the milter's
 * presence lookups (xmppd_lookup.c), and carries "chat about this mail"
 * requests to the sender (xmppd_chat.c).  Pings the server every
 * xmpp_ping_interval (XEP-0199) and drops a session whose ping goes
 * unanswered for as long, so a server that vanished silently is noticed;
 * reconnects with backoff (1 s doubling to 60 s).  While it is not logged
 * in every lookup answers unknown, and mail keeps flowing.  See
 * postlink-xmppd(8). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <gmime/gmime.h>

#include "log.h"
#include "server.h"
#include "strutil.h"
#include "xmppd.h"

struct xmppd xd;

static int verbose, dead, ping_pending;
static char jid_canon[PL_JID_MAX];
static unsigned long ping_ms;
static char host[256];
static unsigned short port;
static long tls_flags;

static void strophe_log(void *ud, xmpp_log_level_t level, const char *area, const char *msg)
{
    (void)ud;
    if (level >= XMPP_LEVEL_ERROR)
        msg_warn("xmpp %s: %.300s", area, msg);
    else if (verbose && level >= XMPP_LEVEL_INFO)
        msg_info("xmpp %s: %.300s", area, msg);
}

static int on_pong(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
    (void)conn;
    (void)st;
    (void)ud;
    ping_pending = 0;                   /* a result or an error: the server is there */
    return 0;
}

static int on_ping_timer(xmpp_conn_t *conn, void *ud)
{
    xmpp_stanza_t *iq, *ping;
    char *domain;
    (void)ud;
    if (ping_pending) {
        msg_warn("the XMPP server did not answer a ping for %lu s: dropping the session", ping_ms / 1000);
        xmpp_disconnect(conn);
        return 0;
    }
    iq = xmpp_iq_new(xd.ctx, "get", "keepalive");
    ping = xmpp_stanza_new(xd.ctx);
    domain = xmpp_jid_domain(xd.ctx, xd.jid);
    xmpp_stanza_set_to(iq, domain);
    xmpp_free(xd.ctx, domain);
    xmpp_stanza_set_name(ping, "ping");
    xmpp_stanza_set_ns(ping, "urn:xmpp:ping");
    xmpp_stanza_add_child_ex(iq, ping, 0);
    xmpp_id_handler_add(conn, on_pong, "keepalive", NULL);
    xmpp_send(conn, iq);
    xmpp_stanza_release(iq);
    ping_pending = 1;
    return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                    xmpp_stream_error_t *se, void *ud)
{
    (void)ud;
    if (status == XMPP_CONN_CONNECT) {
        xmpp_handler_add(conn, chat_on_message, NULL, "message", NULL, NULL);
        ping_pending = 0;
        xmpp_timed_handler_add(conn, on_ping_timer, ping_ms, NULL);
        roster_start(conn);
        return;
    }
    msg_warn("XMPP session %s: %s%s%s", status == XMPP_CONN_FAIL ? "failed" : "ended",
             error ? strerror(error) : "closed", se && se->text ? ": " : "",
             se && se->text ? se->text : "");
    roster_disconnected();
    dead = 1;
}

static int connect_now(void)
{
    xd.conn = xmpp_conn_new(xd.ctx);
    xmpp_conn_set_flags(xd.conn, tls_flags);
    xmpp_conn_set_sockopt_callback(xd.conn, xmpp_sockopt_cb_keepalive);
    xmpp_conn_set_jid(xd.conn, xd.jid);
    xmpp_conn_set_pass(xd.conn, xd.password);
    dead = 0;
    if (xmpp_connect_client(xd.conn, *host ? host : NULL, port, on_conn, NULL) != XMPP_EOK) {
        msg_warn("cannot connect to the XMPP server %s", *host ? host : "(DNS SRV)");
        xmpp_conn_release(xd.conn);
        xd.conn = NULL;
        return -1;
    }
    return 0;
}

static int purge_fn(pl_txn *t, void *ctx)
{
    return pl_mailid_purge(t, (int64_t)time(NULL) - xd.tag_max_age, ctx);
}

static int xmppd_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                           size_t errlen)
{
    const char *server = cfg->xmpp_server, *tls = cfg->xmpp_tls;
    const char *why = NULL;
    (void)conf;

    if (!reload) {
        xd.jid = cfg->xmpp_jid;
        if (*xd.jid == '\0' || (why = pl_jid_check(xd.jid)) != NULL) {
            snprintf(err, errlen, "xmpp_jid \"%s\": %s", xd.jid, *xd.jid ? why : "not set");
            return -1;
        }
        pl_jid_canon(xd.jid, jid_canon, sizeof(jid_canon));
        xd.jid = jid_canon;
        ping_ms = (unsigned long)cfg->xmpp_ping_interval * 1000;
        if (*server && (sscanf(server, "%255[^:]:%hu", host, &port) != 2 || port == 0)) {
            snprintf(err, errlen, "xmpp_server \"%s\": must be host:port", server);
            return -1;
        }
        tls_flags = strcmp(tls, "required") == 0 ? XMPP_CONN_FLAG_MANDATORY_TLS :
                    strcmp(tls, "none") == 0 ? XMPP_CONN_FLAG_DISABLE_TLS : 0;
        xd.muc_service = cfg->xmpp_muc_service;
        if (pl_server_read_secret("xmpp_password_file", cfg->xmpp_password_file, &xd.password,
                                  err, errlen) != 0)
            return -1;
    }
    xd.cfg = cfg;
    xd.tag_max_age = cfg->tag_max_age;
    return 0;
}

static int xmppd_open(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    return lookup_listen(cfg->xmpp_lookup_socket, cfg->postlink_user);
}

static int xmppd_run(void)
{
    xmpp_log_t log = {strophe_log, NULL};
    time_t next_try = 0, last_reconcile = 0, last_purge = 0;
    unsigned backoff = 1;

    verbose = pl_server_verbose();
    xd.store = pl_server_store();
    if (lookup_run() != 0)
        return 71;
    g_mime_init();
    xmpp_initialize();
    xd.ctx = xmpp_ctx_new(NULL, &log);
    msg_info("postlink-xmppd %s: %s on %s, lookups on %s", PACKAGE_VERSION, xd.jid,
             *host ? pl_server_cfg()->xmpp_server : "(DNS SRV)",
             pl_server_cfg()->xmpp_lookup_socket);
    while (!pl_server_stopping()) {
        time_t now = time(NULL);
        if (xd.conn && dead) {                   /* released outside libstrophe's callback */
            xmpp_conn_release(xd.conn);
            xd.conn = NULL;
            next_try = now + backoff;
            msg_info("reconnecting in %u s", backoff);
            backoff = backoff >= 32 ? 60 : backoff * 2;
        }
        if (xd.conn == NULL && now >= next_try && connect_now() != 0) {
            next_try = now + backoff;
            backoff = backoff >= 32 ? 60 : backoff * 2;
        }
        if (xd.online)
            backoff = 1;
        if (xd.conn)
            xmpp_run_once(xd.ctx, 200);
        else
            pl_server_sleep_ms(200);
        if (now - last_reconcile >= 2) {
            roster_reconcile();
            last_reconcile = now;
        }
        if (now - last_purge >= 3600) {
            unsigned n = 0;
            if (pl_store_run(xd.store, PL_TXN_SYNC, purge_fn, &n) == PL_OK && n)
                msg_info("forgot %u mail-id(s) older than tag_max_age", n);
            last_purge = now;
        }
    }
    if (xd.conn && !dead) {
        xmpp_stanza_t *p = xmpp_presence_new(xd.ctx);
        xmpp_stanza_set_type(p, "unavailable");
        xmpp_send(xd.conn, p);
        xmpp_stanza_release(p);
        xmpp_disconnect(xd.conn);
        for (int i = 0; i < 10 && !dead; i++)
            xmpp_run_once(xd.ctx, 100);
    }
    return 0;
}

/* After the lookup connections drained: nothing asks the roster any more. */
static void xmppd_finish(void)
{
    roster_disconnected();
    if (xd.conn)
        xmpp_conn_release(xd.conn);
    if (xd.ctx) {
        xmpp_ctx_free(xd.ctx);
        xmpp_shutdown();
        g_mime_shutdown();
    }
    free(xd.password);
}

static const struct pl_service xmppd_service = {
    .name = "postlink-xmppd",
    .needs_store = 1,
    .configure = xmppd_configure,
    .open = xmppd_open,
    .run = xmppd_run,
    .finish = xmppd_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&xmppd_service, argc, argv);
}
