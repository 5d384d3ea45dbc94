/* sipd_main.c -- postlink-sipd, the delivery agent of capability 3:
 * Postfix's lmtp(8) client hands it the mail postlink-route gave a number
 * (sipd_deliver.c), which it delivers over SIP-established connections
 * (sipd_call.c) or the normal way; registered under this site's number it
 * also answers other sites' calls and hands their SMTP to this site's
 * Postfix (sipd_answer.c).  Its life (options, signals, listener,
 * shutdown) is the server skeleton's (server/).  See postlink-sipd(8). */
#include "config.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "listener.h"
#include "log.h"
#include "phone.h"
#include "server.h"
#include "siproute.h"
#include "sipd.h"

#define MAX_CONNS 100          /* Postfix's lmtp clients */

struct sipd sipd;
static struct pl_lmtp_server_opts lmtp_opts;
static pl_listener *lmtp_listener;
static char *sip_password;
static char sip_domain[256];

static void serve_lmtp(int fd, void *ctx)
{
    (void)ctx;
    pl_lmtp_serve(fd, &lmtp_opts);
}

static int sipd_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                          size_t errlen)
{
    (void)conf;
    if (!reload) {
        const char *why;
        unsigned char buf[16];
        sipd.number[0] = '\0';
        if (cfg->sip_number[0] &&
            pl_phone_norm(cfg->sip_number, cfg->route_country_code, sipd.number, sizeof(sipd.number), &why) != 0) {
            snprintf(err, errlen, "sip_number \"%s\": %s", cfg->sip_number, why);
            return -1;
        }
        if (cfg->sip_server[0] == '\0') {
            snprintf(err, errlen, "sip_server is empty: postlink-sipd needs the SIP server it calls through");
            return -1;
        }
        if (pl_server_read_secret("sip_password_file", cfg->sip_password_file, &sip_password, err,
                                  errlen) != 0)
            return -1;
        snprintf(sipd.media_addr, sizeof(sipd.media_addr), "%s", cfg->sip_media_address);
        sipd.media_family = inet_pton(AF_INET, sipd.media_addr, buf) == 1 ? AF_INET : AF_INET6;
        sipd.hostname = pl_server_hostname(cfg);
        if (cfg->sip_domain[0])
            snprintf(sip_domain, sizeof(sip_domain), "%s", cfg->sip_domain);
        else {
            /* the host of sip:HOST[:PORT][;params] */
            const char *h = cfg->sip_server + 4;
            size_t n = h[0] == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":;");
            snprintf(sip_domain, sizeof(sip_domain), "%.*s", (int)n, h);
        }
    }
    atomic_store(&sipd.cfg, cfg);
    return 0;
}

static int sipd_open(void)
{
    char err[512];
    const struct pl_cfg *cfg = pl_server_cfg();
    if ((lmtp_listener = pl_listener_open(cfg->sip_lmtp_socket, cfg->postlink_user, err,
                                          sizeof(err))) == NULL) {
        msg_error("%s", err);
        return -1;
    }
    pl_server_adopt(lmtp_listener);
    return 0;
}

struct purge { int64_t before; unsigned n; };

static int purge_fn(pl_txn *t, void *ctx)
{
    struct purge *p = ctx;
    return pl_route_purge_decisions(t, p->before, &p->n);
}

static int sipd_run(void)
{
    const struct pl_cfg *cfg = atomic_load(&sipd.cfg);
    struct pl_sip_ua_conf uc = {0};
    struct pl_sip_ua_callbacks cb = {sipd_on_invite, sipd_on_call_end};
    char err[512];
    int status = 0;
    time_t last_purge = 0;

    sipd.store = pl_server_store();
    uc.proxy = cfg->sip_server;
    uc.bind = cfg->sip_bind;
    uc.domain = sip_domain;
    uc.number = sipd.number[0] ? sipd.number : NULL;
    uc.auth_user = sip_password ? (cfg->sip_auth_user[0] ? cfg->sip_auth_user : sipd.number) : NULL;
    uc.auth_password = sip_password;
    uc.invite_timeout_ms = (unsigned)cfg->sip_invite_timeout * 1000u;
    uc.max_incoming = (unsigned)cfg->sip_max_incoming;
    uc.verbose = 0;
    if ((sipd.ua = pl_sip_ua_start(&uc, &cb, NULL, err, sizeof(err))) == NULL) {
        msg_error("SIP: %s", err);
        return 71;
    }
    if (uc.number) {
        if (pl_sip_ua_wait_registered(sipd.ua, 5000, &status) == 0)
            msg_info("registered %s@%s at %s", sipd.number, sip_domain, cfg->sip_server);
        else
            msg_warn("not registered at %s yet (status %d): other sites' calls do not reach us "
                     "until it succeeds (retried every 30 s)", cfg->sip_server, status);
    }
    lmtp_opts.hostname = sipd.hostname;
    lmtp_opts.max_msg_bytes = (size_t)cfg->sip_max_message;
    lmtp_opts.dsn = 1;
    lmtp_opts.smtputf8 = 1;
    lmtp_opts.deliver = sipd_deliver;
    if (pl_listener_start(lmtp_listener, "postlink-sipd lmtp", MAX_CONNS, serve_lmtp, NULL) != 0)
        return 71;
    msg_info("postlink-sipd %s listening on %s, SIP %s via %s, number %s", PACKAGE_VERSION,
             cfg->sip_lmtp_socket, cfg->sip_bind, cfg->sip_server, sipd.number[0] ? sipd.number : "none (calls out only)");
    while (!pl_server_sleep_ms(1000)) {
        time_t now = time(NULL);
        if (now - last_purge >= 3600) {
            struct purge p = {(int64_t)now - atomic_load(&sipd.cfg)->sip_decision_ttl, 0};
            if (pl_store_run(sipd.store, PL_TXN_SYNC, purge_fn, &p) == PL_OK && p.n)
                msg_info("forgot %u old routing decision(s) and result(s)", p.n);
            last_purge = now;
        }
        pl_store_maintain(sipd.store, 0);
    }
    return 0;
}

static void sipd_finish(void)
{
    /* an answered call's thread may still end its call through the user
     * agent: stop it only when none is left (else the process exits with it) */
    if (sipd_answer_drain(5000) && sipd.ua)
        pl_sip_ua_stop(sipd.ua);
    sipd.ua = NULL;
    free(sip_password);
    sip_password = NULL;
}

static const struct pl_service sipd_service = {
    .name = "postlink-sipd",
    .needs_store = 1,
    .configure = sipd_configure,
    .open = sipd_open,
    .run = sipd_run,
    .finish = sipd_finish,
};

int main(int argc, char **argv)
{
    return pl_server_main(&sipd_service, argc, argv);
}
