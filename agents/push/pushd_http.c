/* pushd_http.c -- the device API's HTTP side, on libmicrohttpd: the
 * listening socket comes from the server skeleton's listener (opened as
 * root, before privileges are dropped) and is handed to the library, which
 * runs one thread per connection (a held /v1/wait blocks only its own).
 * Each request is parsed (push_req.c), its token checked, a fetch holds
 * its device (one at a time), and what it leaves to do is done only when
 * the library reports the response sent in full.  Only POST
 * /v1/subscription keeps its body (at most PL_PSUB_JSON_MAX bytes; more is
 * read, dropped and answered 413); other bodies are dropped.  TLS (GnuTLS inside
 * libmicrohttpd) when push_tls_cert_file is set; without it only a
 * loopback address may be listened on (pushd_main.c checks). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>
#include <openssl/crypto.h>

#include "listener.h"
#include "log.h"
#include "monotime.h"
#include "push_sub.h"
#include "pushd.h"
#include "pushd_sync.h"
#include "server.h"
#include "strutil.h"

static pl_listener *listener;
static struct MHD_Daemon *daemon_;
static char *tls_cert, *tls_key;
static atomic_int active;              /* requests between their start and their end */

struct req {
    struct pushd_after after;
    int started;
    int keep_body;                  /* POST /v1/subscription: the body is kept */
    char *body;                     /* at most PL_PSUB_JSON_MAX bytes, NUL-terminated */
    size_t blen;
    int too_large;
};

struct args { struct pl_preq_arg a[PL_PREQ_MAX_ARGS + 1]; size_t n; };

static enum MHD_Result arg_visit(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *value)
{
    struct args *x = cls;
    (void)kind;
    if (x->n < PL_PREQ_MAX_ARGS + 1) {
        x->a[x->n].name = key;
        x->a[x->n].value = value;
    }
    x->n++;
    return MHD_YES;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct pushd_reply *r)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    resp = MHD_create_response_from_buffer(r->len, r->body ? r->body : (void *)"",
                                           r->body ? MHD_RESPMEM_MUST_FREE
                                                   : MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) {
        free(r->body);
        return MHD_NO;
    }
    r->body = NULL;
    if (r->type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->type);
    if (r->error)
        MHD_add_response_header(resp, "Postlink-Error", r->error);
    if (r->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"postlink\"");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (size_t i = 0; i < r->nhdr; i++)
        MHD_add_response_header(resp, r->hdr[i].name, r->hdr[i].value);
    ret = MHD_queue_response(c, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void peer_name(struct MHD_Connection *c, char *out, size_t len)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const struct sockaddr *sa = ci ? ci->client_addr : NULL;
    snprintf(out, len, "?");
    if (sa && sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out,
                  (socklen_t)len);
    else if (sa && sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
                  (socklen_t)len);
}

static void handle(struct MHD_Connection *c, const char *url, const char *method, struct req *rq,
                   struct pushd_reply *r)
{
    const struct pl_cfg *cfg = atomic_load(&pd.cfg);
    struct args x = {.n = 0};
    struct pl_preq q;
    const char *why, *authz;
    int status, rc;

    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, arg_visit, &x);
    authz = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if ((status = pl_preq_parse(method, url, x.a, x.n > PL_PREQ_MAX_ARGS ? PL_PREQ_MAX_ARGS + 1
                                                                           : x.n,
                                authz, &q, &why)) != 0) {
        pushd_reply_text(r, (unsigned)status, status == 401 ? "unauthorized" : "bad-request",
                         "%s", why);
        return;
    }
    rc = pushd_auth(q.token, &rq->after.dev);
    if (rc == PL_NOTFOUND) {
        char peer[64];
        peer_name(c, peer, sizeof(peer));
        msg_warn("refused a request from %s: unknown device token (selector %.16s)", peer,
                 q.token);
        pushd_reply_text(r, 401, "unauthorized", "unknown device token");
        return;
    }
    if (rc != PL_OK) {
        pushd_reply_text(r, 503, "store", "the store is busy; try again");
        pushd_reply_header(r, "Retry-After", "5");
        return;
    }
    rq->after.have_dev = 1;
    switch (q.kind) {
    case PL_PREQ_FETCH:
        if (pushd_dev_acquire(rq->after.dev.sel, (unsigned)cfg->push_busy_wait * 1000) != 0) {
            if (pl_server_stopping()) {
                pushd_reply_text(r, 503, "stopping", "postlink-pushd is stopping");
                pushd_reply_header(r, "Retry-After", "2");
            } else {
                pushd_reply_text(r, 429, "busy", "another request of this device is being "
                                 "served");
                pushd_reply_header(r, "Retry-After", "1");
            }
            return;
        }
        rq->after.busy = 1;
        pushd_notify_fetched(rq->after.dev.sel);
        pushd_fetch(&q, &rq->after.dev, r, &rq->after);
        return;
    case PL_PREQ_WAIT:
        pushd_wait(&q, &rq->after.dev, r);
        return;
    case PL_PREQ_SYNC:
        pushd_sync(&rq->after.dev, r);
        return;
    case PL_PREQ_SUBSCRIBE:
    case PL_PREQ_UNSUBSCRIBE:
        pushd_subscription(&q, &rq->after.dev, rq->body, rq->blen, rq->too_large, r);
        return;
    default:
        pushd_reply_text(r, 501, "not-implemented", "not available on this server yet");
        return;
    }
}

/* Before any of a body is read: a request that must have none, or one
 * declared larger than a subscription may be, is answered at once (the
 * body is never read).  MHD_YES to go on. */
static enum MHD_Result body_refused(struct MHD_Connection *c, struct req *rq)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_TRANSFER_ENCODING);
    struct pushd_reply r;
    int has_body = (cl && strspn(cl, "0") != strlen(cl)) || te != NULL;
    memset(&r, 0, sizeof(r));
    if (!rq->keep_body && has_body)
        pushd_reply_text(&r, 400, "bad-request", "this request takes no body");
    else if (rq->keep_body && cl && (strlen(cl) > 9 || strtoul(cl, NULL, 10) > PL_PSUB_JSON_MAX))
        pushd_reply_text(&r, 413, "too-large", "a subscription is at most %d bytes",
                         PL_PSUB_JSON_MAX);
    else
        return MHD_YES;
    return send_reply(c, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct req *rq = *con_cls;
    struct pushd_reply r;
    (void)cls, (void)version;
    if (rq == NULL) {
        rq = pl_xcalloc(1, sizeof(*rq));
        rq->after.rep_bytes = rq->after.rep_count = -1;     /* no room reported */
        *con_cls = rq;
        atomic_fetch_add(&active, 1);
        rq->started = 1;
        rq->keep_body = strcmp(method, "POST") == 0 && strcmp(url, "/v1/subscription") == 0;
        return body_refused(c, rq);
    }
    if (*upload_data_size != 0) {      /* only a subscription has a body, a small one */
        size_t n = *upload_data_size;
        if (rq->too_large)
            return MHD_NO;             /* a chunked body past the limit: cut */
        if (rq->keep_body) {
            if (rq->blen + n > PL_PSUB_JSON_MAX) {
                rq->too_large = 1;     /* 413 at the end */
            } else {
                if (rq->body == NULL)
                    rq->body = pl_xmalloc(PL_PSUB_JSON_MAX + 1);
                memcpy(rq->body + rq->blen, upload_data, n);
                rq->blen += n;
                rq->body[rq->blen] = '\0';
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    memset(&r, 0, sizeof(r));
    if (pl_server_stopping()) {
        pushd_reply_text(&r, 503, "stopping", "postlink-pushd is stopping");
        pushd_reply_header(&r, "Retry-After", "2");
    } else {
        handle(c, url, method, rq, &r);
    }
    if (r.status == 0)
        r.status = 500;
    return send_reply(c, &r);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct req *rq = *con_cls;
    (void)cls, (void)c;
    if (rq == NULL)
        return;
    pushd_after(&rq->after, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (rq->started)
        atomic_fetch_sub(&active, 1);
    free(rq->body);
    free(rq);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[512];
    size_t n;
    (void)cls;
    vsnprintf(buf, sizeof(buf), fmt, ap);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    msg_info("http: %s", buf);      /* a stranger's bad request: not an alarm */
}

static char *slurp(const char *param, const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf;
    long n;
    if (fp == NULL) {
        msg_error("%s %s: %s", param, path, strerror(errno));
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || n > 1024 * 1024 ||
        fseek(fp, 0, SEEK_SET) != 0) {
        msg_error("%s %s: cannot read it (or larger than 1 MB)", param, path);
        fclose(fp);
        return NULL;
    }
    buf = pl_xmalloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        msg_error("%s %s: short read", param, path);
        fclose(fp);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

static int bound_to_loopback(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) ||
               (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

int pushd_http_open(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    char err[512];
    if (cfg->push_tls_cert_file[0]) {
        if ((tls_cert = slurp("push_tls_cert_file", cfg->push_tls_cert_file)) == NULL ||
            (tls_key = slurp("push_tls_key_file", cfg->push_tls_key_file)) == NULL)
            return -1;
    }
    if ((listener = pl_listener_open(cfg->push_http_listen, cfg->postlink_user, err,
                                     sizeof(err))) == NULL) {
        msg_error("push_http_listen: %s", err);
        return -1;
    }
    if (tls_cert == NULL && !bound_to_loopback(pl_listener_fd(listener))) {
        /* the configuration named a loopback host, but the name resolved
         * elsewhere: the address bound is what counts */
        msg_error("push_http_listen = %s is bound to an address that is not loopback: device "
                  "tokens would cross the network in clear; set push_tls_cert_file and "
                  "push_tls_key_file", cfg->push_http_listen);
        pl_listener_stop(listener);
        pl_listener_free(listener);
        listener = NULL;
        return -1;
    }
    return 0;
}

int pushd_http_start(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_POLL | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    if (tls_cert)
        flags |= MHD_USE_TLS;
    else
        tls[0].option = MHD_OPTION_END;
    daemon_ = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTEN_SOCKET, pl_listener_fd(listener),
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->push_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->push_max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->push_request_timeout,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32 * 1024,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_ARRAY, tls,
        MHD_OPTION_END);
    if (daemon_ == NULL) {
        msg_error("cannot start the HTTP server on %s (libmicrohttpd %s)",
                  cfg->push_http_listen, MHD_get_version());
        return -1;
    }
    return 0;
}

/* Stop accepting (at SIGTERM): the listening socket goes back to the
 * listener, which closes it. */
void pushd_http_quiesce(void)
{
    if (daemon_)
        MHD_quiesce_daemon(daemon_);
    pushd_dev_wake_all();
}

/* Let the requests in hand finish (shutdown_timeout), then stop. */
void pushd_http_stop(void)
{
    const struct pl_cfg *cfg = pl_server_cfg();
    int64_t end = pl_now_ms() + cfg->shutdown_timeout * 1000;
    if (daemon_) {
        MHD_quiesce_daemon(daemon_);       /* the socket stays the listener's to close */
        while (atomic_load(&active) > 0 && pl_now_ms() < end) {
            pushd_dev_wake_all();
            usleep(20 * 1000);
        }
        if (atomic_load(&active) > 0)
            msg_warn("%d device request(s) still running after shutdown_timeout: cut",
                     atomic_load(&active));
        MHD_stop_daemon(daemon_);
        daemon_ = NULL;
    }
    if (listener) {
        pl_listener_stop(listener);
        pl_listener_free(listener);
        listener = NULL;
    }
    if (tls_key)
        OPENSSL_cleanse(tls_key, strlen(tls_key));
    free(tls_cert);
    free(tls_key);
    tls_cert = tls_key = NULL;
}
