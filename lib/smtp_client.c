/* smtp_client.c -- the I/O half of lib/smtp_client.h: greeting, EHLO/HELO,
 * XCLIENT, one transaction with per-recipient replies and DSN parameters,
 * RSET, QUIT, and a TCP connect with a timeout.  Writes use
 * send(MSG_NOSIGNAL | MSG_DONTWAIT) (write(2) when the fd is not a socket),
 * so a peer that goes away gives EPIPE, not SIGPIPE, and a peer that stops
 * reading costs at most the timeout; reads wait with poll first.  Every
 * reply must be complete before its command's deadline. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "monotime.h"
#include "smtp_client.h"
#include "smtp_dsn.h"

#define DEF_MS      30000u
#define DEF_DOT_MS  120000u
#define DEF_BODY_MS 180000u
#define QUIT_MS     2000u
#define CMD_MAX     4096                   /* one command line we build */

enum { IO_OK = 0, IO_ERR = -1, IO_TIMEOUT = -2, IO_EOF = -3, IO_PROTO = -4 };

const char *pl_smtpc_stage_name(enum pl_smtpc_stage s)
{
    static const char *const names[] = {
        "connect", "greeting", "ehlo", "mail", "rcpt", "data", "body-sending", "after-dot", "done",
    };
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

/* ---- low-level I/O ---------------------------------------------------- */


static void __attribute__((format(printf, 2, 3))) fail(struct pl_smtpc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof(c->err), fmt, ap);
    va_end(ap);
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        long long left = deadline - pl_now_ms();
        int n;
        if (left <= 0)
            return IO_TIMEOUT;
        n = poll(&p, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return IO_OK;                  /* POLLHUP/POLLERR too: the call tells */
        if (n < 0 && errno != EINTR)
            return IO_ERR;
    }
}

/* Marks the session broken after an I/O failure rc, saying what we did. */
static int io_fail(struct pl_smtpc *c, int rc, const char *doing)
{
    c->broken = 1;
    c->timedout = rc == IO_TIMEOUT;
    if (rc == IO_TIMEOUT)
        fail(c, "timeout %s", doing);
    else if (rc == IO_EOF)
        fail(c, "connection closed by the server %s", doing);
    else if (rc == IO_PROTO)
        fail(c, "malformed reply %s", doing);
    else
        fail(c, "%s %s", strerror(errno), doing);
    return -1;
}

/* Writes c->out[0..olen) completely; each write must make progress within
 * timeout_ms.  On failure, *left says how many bytes were not written. */
static int out_flush(struct pl_smtpc *c, unsigned timeout_ms, size_t *left)
{
    size_t off = 0;
    long long deadline = pl_now_ms() + timeout_ms;
    int rc = IO_OK;

    while (off < c->olen) {
        ssize_t n = send(c->fd, c->out + off, c->olen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
            n = write(c->fd, c->out + off, c->olen - off);
        if (n > 0) {
            off += (size_t)n;
            deadline = pl_now_ms() + timeout_ms;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if ((rc = wait_fd(c->fd, POLLOUT, deadline)) != IO_OK)
                break;
        } else {
            rc = IO_ERR;
            if (n == 0)
                errno = EPIPE;
            break;
        }
    }
    if (left != NULL)
        *left = c->olen - off;
    c->olen = 0;
    return rc;
}

/* Appends to the output buffer, flushing it when full. */
static int out_add(struct pl_smtpc *c, const char *s, size_t n, unsigned timeout_ms)
{
    while (n > 0) {
        size_t room = sizeof(c->out) - c->olen, k = n < room ? n : room;
        memcpy(c->out + c->olen, s, k);
        c->olen += k;
        s += k;
        n -= k;
        if (c->olen == sizeof(c->out)) {
            int rc = out_flush(c, timeout_ms, NULL);
            if (rc != IO_OK)
                return rc;
        }
    }
    return IO_OK;
}

static int in_fill(struct pl_smtpc *c, long long deadline)
{
    c->ibeg = c->iend = 0;
    for (;;) {
        ssize_t n;
        int rc = wait_fd(c->fd, POLLIN, deadline);
        if (rc != IO_OK)
            return rc;
        n = read(c->fd, c->in, sizeof(c->in));
        if (n > 0) {
            c->iend = (size_t)n;
            return IO_OK;
        }
        if (n == 0)
            return IO_EOF;
        if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK)
            return IO_ERR;
    }
}

/* Reads one complete reply into *r before timeout_ms passes.  A line longer
 * than PL_SMTP_LINE_MAX or not a reply line is IO_PROTO. */
static int read_reply_io(struct pl_smtpc *c, struct pl_smtp_reply *r, unsigned timeout_ms)
{
    long long deadline = pl_now_ms() + timeout_ms;

    memset(r, 0, sizeof(*r));
    for (;;) {
        size_t len = 0;
        int rc;
        for (;;) {                         /* one line into c->line */
            const char *s, *nl;
            size_t avail, take;
            if (c->ibeg == c->iend && (rc = in_fill(c, deadline)) != IO_OK)
                return rc;
            s = c->in + c->ibeg;
            avail = c->iend - c->ibeg;
            nl = memchr(s, '\n', avail);
            take = nl ? (size_t)(nl - s) : avail;
            if (len + take > PL_SMTP_LINE_MAX + 1)
                return IO_PROTO;
            memcpy(c->line + len, s, take);
            len += take;
            c->ibeg += take + (nl != NULL);
            if (nl != NULL)
                break;
        }
        if (len > 0 && c->line[len - 1] == '\r')
            len--;
        if (len > PL_SMTP_LINE_MAX)
            return IO_PROTO;
        rc = pl_smtp_reply_line(r, c->line, len);
        if (rc < 0)
            return IO_PROTO;
        if (rc == 1)
            return IO_OK;
        if (pl_now_ms() >= deadline)
            return IO_TIMEOUT;             /* an endless multiline reply */
    }
}

/* Reads a reply; a 421 also breaks the session (the server is closing). */
static int get_reply(struct pl_smtpc *c, struct pl_smtp_reply *r, unsigned timeout_ms,
                     const char *doing)
{
    int rc = read_reply_io(c, r, timeout_ms);
    if (rc != IO_OK)
        return io_fail(c, rc, doing);
    if (r->code == 421) {
        c->broken = 1;
        fail(c, "server closing %s: %d %s", doing, r->code, r->text);
    }
    return 0;
}

/* Queues one command line (CRLF added) without flushing unless full. */
static int __attribute__((format(printf, 3, 4))) cmd(struct pl_smtpc *c, unsigned timeout_ms,
                                                     const char *fmt, ...)
{
    char buf[CMD_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf) - 2) {
        fail(c, "command longer than %d bytes", CMD_MAX - 3);
        return IO_PROTO;
    }
    memcpy(buf + n, "\r\n", 2);
    return out_add(c, buf, (size_t)n + 2, timeout_ms);
}

/* ---- connect, greeting, EHLO ------------------------------------------ */

/* A numeric address and port as a sockaddr; 0 or -1. */
static int numeric_sockaddr(const char *host, unsigned port, struct sockaddr_storage *ss,
                            socklen_t *sl)
{
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
        ((struct sockaddr_in *)ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)ss)->sin_port = htons((unsigned short)port);
        *sl = sizeof(struct sockaddr_in);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
        ((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((unsigned short)port);
        *sl = sizeof(struct sockaddr_in6);
        return 0;
    }
    return -1;
}

int pl_smtpc_connect_tcp(const char *host, unsigned port, unsigned timeout_ms, char *err,
                         size_t errlen)
{
    return pl_smtpc_connect_tcp_from(host, port, NULL, timeout_ms, err, errlen);
}

int pl_smtpc_connect_tcp_from(const char *host, unsigned port, const char *src,
                              unsigned timeout_ms, char *err, size_t errlen)
{
    struct sockaddr_storage ss, from;
    socklen_t sl, fl;
    int fd, e = 0, flags;
    socklen_t el = sizeof(e);

    if (port == 0 || port > 65535) {
        snprintf(err, errlen, "bad port %u", port);
        return -1;
    }
    if (numeric_sockaddr(host, port, &ss, &sl) != 0) {
        snprintf(err, errlen, "%s: not a numeric IP address", host);
        return -1;
    }
    if (src && (numeric_sockaddr(src, 0, &from, &fl) != 0 || from.ss_family != ss.ss_family)) {
        snprintf(err, errlen, "%s: not a numeric address of %s's family", src, host);
        return -1;
    }
    if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    {
        /* the final dot is a small write after the body: without this,
         * Nagle holds it for the peer's delayed ACK (40 ms a message) */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (src && bind(fd, (struct sockaddr *)&from, fl) != 0) {
        snprintf(err, errlen, "bind to %s: %s", src, strerror(errno));
        goto fail;
    }
    if (connect(fd, (struct sockaddr *)&ss, sl) != 0) {
        int rc;
        if (errno != EINPROGRESS) {
            snprintf(err, errlen, "connect to %s:%u: %s", host, port, strerror(errno));
            goto fail;
        }
        rc = wait_fd(fd, POLLOUT, pl_now_ms() + (timeout_ms ? timeout_ms : DEF_MS));
        if (rc != IO_OK) {
            snprintf(err, errlen, "connect to %s:%u: %s", host, port,
                     rc == IO_TIMEOUT ? "timed out" : strerror(errno));
            goto fail;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
            snprintf(err, errlen, "connect to %s:%u: %s", host, port, strerror(e ? e : errno));
            goto fail;
        }
    }
    if ((flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        snprintf(err, errlen, "fcntl: %s", strerror(errno));
        goto fail;
    }
    return fd;
fail:
    close(fd);
    return -1;
}

void pl_smtpc_init(struct pl_smtpc *c, int fd, const struct pl_smtpc_timeouts *to)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    if (to != NULL)
        c->to = *to;
    if (!c->to.greeting_ms) c->to.greeting_ms = DEF_MS;
    if (!c->to.ehlo_ms) c->to.ehlo_ms = DEF_MS;
    if (!c->to.mail_ms) c->to.mail_ms = DEF_MS;
    if (!c->to.rcpt_ms) c->to.rcpt_ms = DEF_MS;
    if (!c->to.data_ms) c->to.data_ms = DEF_MS;
    if (!c->to.dot_ms) c->to.dot_ms = DEF_DOT_MS;
    if (!c->to.body_ms) c->to.body_ms = DEF_BODY_MS;
    c->stage = PL_SMTPC_GREETING;
}

static int name_ok(const char *s)
{
    if (s == NULL || *s == '\0')
        return 0;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return 0;
    return 1;
}

int pl_smtpc_ehlo(struct pl_smtpc *c, const char *helo_name)
{
    int rc;

    c->stage = PL_SMTPC_EHLO;
    if (c->broken)
        return -1;
    if (!name_ok(helo_name) || strlen(helo_name) >= sizeof(c->helo_name)) {
        fail(c, "bad EHLO name");
        return -1;
    }
    memmove(c->helo_name, helo_name, strlen(helo_name) + 1);
    memset(&c->caps, 0, sizeof(c->caps));
    c->esmtp = 0;
    if ((rc = cmd(c, c->to.ehlo_ms, "EHLO %s", c->helo_name)) != IO_OK
        || (rc = out_flush(c, c->to.ehlo_ms, NULL)) != IO_OK)
        return io_fail(c, rc, "sending EHLO");
    if (get_reply(c, &c->ehlo, c->to.ehlo_ms, "after EHLO") != 0)
        return -1;
    if (c->ehlo.code / 100 == 2) {
        c->esmtp = 1;
        pl_smtp_caps_parse(&c->ehlo, &c->caps);
        return 0;
    }
    if (c->ehlo.code / 100 != 5 || c->broken) {
        fail(c, "EHLO refused: %d %.200s", c->ehlo.code, c->ehlo.text);
        return -1;
    }
    if ((rc = cmd(c, c->to.ehlo_ms, "HELO %s", c->helo_name)) != IO_OK
        || (rc = out_flush(c, c->to.ehlo_ms, NULL)) != IO_OK)
        return io_fail(c, rc, "sending HELO");
    if (get_reply(c, &c->ehlo, c->to.ehlo_ms, "after HELO") != 0)
        return -1;
    if (c->ehlo.code / 100 != 2) {
        fail(c, "EHLO and HELO refused: %d %.200s", c->ehlo.code, c->ehlo.text);
        return -1;
    }
    return 0;
}

int pl_smtpc_open(struct pl_smtpc *c, const char *first_line, const char *helo_name)
{
    int rc;

    c->stage = PL_SMTPC_GREETING;
    if (c->broken)
        return -1;
    if (first_line != NULL && *first_line != '\0') {
        if ((rc = out_add(c, first_line, strlen(first_line), c->to.greeting_ms)) != IO_OK
            || (rc = out_flush(c, c->to.greeting_ms, NULL)) != IO_OK)
            return io_fail(c, rc, "sending the first line");
    }
    if (get_reply(c, &c->greeting, c->to.greeting_ms, "waiting for the greeting") != 0)
        return -1;
    if (c->greeting.code / 100 != 2) {
        c->broken = 1;                     /* 554: the server only waits for QUIT */
        fail(c, "greeting refused: %d %.200s", c->greeting.code, c->greeting.text);
        return -1;
    }
    return pl_smtpc_ehlo(c, helo_name);
}

int pl_smtpc_xclient(struct pl_smtpc *c, const struct pl_smtpc_xclient *x)
{
    static const struct { unsigned bit; const char *name; size_t off; } attrs[] = {
        {PL_SMTP_XCLIENT_ADDR, "ADDR", offsetof(struct pl_smtpc_xclient, addr)},
        {PL_SMTP_XCLIENT_NAME, "NAME", offsetof(struct pl_smtpc_xclient, name)},
        {PL_SMTP_XCLIENT_PROTO, "PROTO", offsetof(struct pl_smtpc_xclient, proto)},
        {PL_SMTP_XCLIENT_HELO, "HELO", offsetof(struct pl_smtpc_xclient, helo)},
    };
    char line[1100];
    size_t o;
    int rc, any = 0;

    c->stage = PL_SMTPC_GREETING;
    if (c->broken)
        return -1;
    if (!c->caps.xclient)
        return 1;
    o = (size_t)snprintf(line, sizeof(line), "XCLIENT");
    for (size_t i = 0; i < sizeof(attrs) / sizeof(attrs[0]); i++) {
        const char *v = *(const char *const *)((const char *)x + attrs[i].off);
        char enc[256];
        int k;
        if (v == NULL || !(c->caps.xclient_attrs & attrs[i].bit))
            continue;
        if (pl_xtext_encode(v, enc, sizeof(enc)) == (size_t)-1) {
            fail(c, "XCLIENT %s value too long", attrs[i].name);
            return -1;
        }
        k = snprintf(line + o, sizeof(line) - o, " %s=%s", attrs[i].name, enc);
        if (k < 0 || (size_t)k >= sizeof(line) - o) {
            fail(c, "XCLIENT command too long");
            return -1;
        }
        o += (size_t)k;
        any = 1;
    }
    if (!any)
        return 1;
    if ((rc = cmd(c, c->to.ehlo_ms, "%s", line)) != IO_OK
        || (rc = out_flush(c, c->to.ehlo_ms, NULL)) != IO_OK)
        return io_fail(c, rc, "sending XCLIENT");
    if (get_reply(c, &c->greeting, c->to.greeting_ms, "after XCLIENT") != 0)
        return -1;
    if (c->greeting.code / 100 != 2) {
        fail(c, "XCLIENT refused: %d %.200s", c->greeting.code, c->greeting.text);
        return -1;
    }
    memset(&c->caps, 0, sizeof(c->caps)); /* a new session: EHLO again */
    c->esmtp = 0;
    return 0;
}

/* ---- the transaction -------------------------------------------------- */

static int path_ok(const char *s)
{
    if (s == NULL)
        return 0;
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < ' ' || *s == 0x7f || *s == '<' || *s == '>')
            return 0;
    return 1;
}

/* Checks what we were asked to send; 0 ok, else -1 with res->err. */
static int msg_check(const struct pl_smtpc *c, const struct pl_smtpc_msg *m,
                     struct pl_smtpc_result *res)
{
    const char *what = NULL;

    if (m->nrcpts == 0)
        what = "no recipients";
    else if (!path_ok(m->sender))
        what = "bad sender address";
    else if (m->ret != NULL && !pl_dsn_ret_ok(m->ret, strlen(m->ret)))
        what = "bad RET value";
    else if (m->envid != NULL && !pl_dsn_xtext_ok(m->envid, strlen(m->envid), PL_DSN_ENVID_MAX))
        what = "bad ENVID value";
    else if (m->body == PL_SMTPC_BODY_8BITMIME && !c->caps.eightbitmime)
        what = "8-bit message, but the server does not announce 8BITMIME";
    else if (m->smtputf8 && !c->caps.smtputf8)
        what = "the message needs SMTPUTF8, but the server does not announce it";
    for (size_t i = 0; what == NULL && i < m->nrcpts; i++) {
        const struct pl_smtpc_rcpt *r = &m->rcpts[i];
        if (!path_ok(r->addr) || r->addr[0] == '\0')
            what = "bad recipient address";
        else if (r->notify != NULL && !pl_dsn_notify_ok(r->notify, strlen(r->notify)))
            what = "bad NOTIFY value";
        else if (r->orcpt != NULL && !pl_dsn_orcpt_ok(r->orcpt, strlen(r->orcpt)))
            what = "bad ORCPT value";
    }
    if (what == NULL)
        return 0;
    snprintf(res->err, sizeof(res->err), "%s", what);
    res->local = PL_SMTPC_LOCAL_PERM;
    res->stage = PL_SMTPC_MAIL;
    return -1;
}

/* Replies are numbered in command order: 0 MAIL, 1..n RCPT, n+1 DATA. */
struct txn {
    struct pl_smtpc *c;
    struct pl_smtpc_msg *m;
    struct pl_smtpc_result *res;
    size_t sent, got;                      /* commands queued / replies read */
};

static struct pl_smtp_reply *reply_slot(struct txn *t, size_t i, unsigned *ms,
                                        enum pl_smtpc_stage *st)
{
    if (i == 0) {
        *ms = t->c->to.mail_ms, *st = PL_SMTPC_MAIL;
        return &t->res->mail;
    }
    if (i <= t->m->nrcpts) {
        *ms = t->c->to.rcpt_ms, *st = PL_SMTPC_RCPT;
        return &t->m->rcpts[i - 1].reply;
    }
    *ms = t->c->to.data_ms, *st = PL_SMTPC_DATA;
    return &t->res->data;
}

/* Flushes the queued commands and reads every reply still due. */
static int txn_sync(struct txn *t)
{
    struct pl_smtpc *c = t->c;
    unsigned ms;
    enum pl_smtpc_stage st;
    int rc;

    reply_slot(t, t->got, &ms, &st);
    if (c->olen > 0 && (rc = out_flush(c, ms, NULL)) != IO_OK) {
        t->res->stage = st;
        return io_fail(c, rc, "sending commands");
    }
    while (t->got < t->sent) {
        struct pl_smtp_reply *r = reply_slot(t, t->got, &ms, &st);
        static const char *const doing[] = {"", "", "", "after MAIL", "after RCPT", "after DATA"};
        if (get_reply(c, r, ms, doing[st]) != 0) {
            r->code = 0;                   /* half a reply is no reply */
            t->res->stage = st;
            if (st != PL_SMTPC_MAIL && t->res->mail.code / 100 != 2)
                t->res->stage = PL_SMTPC_MAIL;
            return -1;
        }
        if (st == PL_SMTPC_RCPT && r->code / 100 == 2)
            t->res->accepted++;
        t->got++;
    }
    return 0;
}

/* Queues a command of reply number t->sent; with pipelining, syncs first
 * when the output buffer could not take it (so the replies we leave unread
 * always fit in the socket buffers), without it after each command. */
static int __attribute__((format(printf, 2, 3))) txn_cmd(struct txn *t, const char *fmt, ...)
{
    struct pl_smtpc *c = t->c;
    char buf[CMD_MAX];
    va_list ap;
    int n, rc;
    unsigned ms;
    enum pl_smtpc_stage st;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    reply_slot(t, t->sent, &ms, &st);
    if (n < 0 || (size_t)n >= sizeof(buf) - 2) {
        t->res->stage = st;
        t->res->local = PL_SMTPC_LOCAL_PERM;
        snprintf(t->res->err, sizeof(t->res->err), "command longer than %d bytes", CMD_MAX - 3);
        return -1;
    }
    memcpy(buf + n, "\r\n", 2);
    if (c->olen + (size_t)n + 2 > sizeof(c->out) && txn_sync(t) != 0)
        return -1;
    if ((rc = out_add(c, buf, (size_t)n + 2, ms)) != IO_OK) {
        t->res->stage = st;
        return io_fail(c, rc, "sending commands");
    }
    t->sent++;
    if (!c->caps.pipelining)
        return txn_sync(t);
    return 0;
}

/* Streams the message dot-stuffed with CRLF line ends, then ".\r\n".
 * Returns 0 when all of it, the final dot included, was written. */
static int send_body(struct pl_smtpc *c, const struct pl_smtpc_msg *m,
                     struct pl_smtpc_result *res)
{
    char chunk[8192], out[2 * sizeof(chunk)];  /* a byte becomes at most two */
    size_t pos = 0, left = 0;
    int bol = 1, cr = 0, rc;
    unsigned ms = c->to.body_ms;

    for (;;) {
        const char *s;
        size_t n, o = 0;
        if (m->read_body != NULL) {
            ssize_t k = m->read_body(m->body_ctx, chunk, sizeof(chunk));
            if (k < 0 || (size_t)k > sizeof(chunk)) {
                res->local = PL_SMTPC_LOCAL_TEMP;
                c->broken = 1;             /* half a message sent: only closing is safe */
                fail(c, "cannot read the message");
                return -1;
            }
            s = chunk;
            n = (size_t)k;
        } else {
            s = m->data != NULL ? m->data + pos : "";
            n = m->data == NULL ? 0 : m->len - pos < sizeof(chunk) ? m->len - pos : sizeof(chunk);
            pos += n;
        }
        if (n == 0)
            break;
        for (size_t i = 0; i < n; i++) {
            char ch = s[i];
            if (cr) {                      /* the CR before ch */
                cr = 0;
                if (ch == '\n') {
                    out[o++] = '\r', out[o++] = '\n', bol = 1;
                    continue;
                }
                out[o++] = '\r';           /* bare CR: sent as is */
                bol = 0;
            }
            if (ch == '\r') {
                cr = 1;
                continue;
            }
            if (ch == '\n') {
                out[o++] = '\r', out[o++] = '\n', bol = 1;
                continue;
            }
            if (bol && ch == '.')
                out[o++] = '.';
            out[o++] = ch;
            bol = 0;
        }
        if ((rc = out_add(c, out, o, ms)) != IO_OK)
            goto broken;
    }
    if (cr || !bol) {                      /* the last line had no line end */
        if ((rc = out_add(c, "\r\n", 2, ms)) != IO_OK)
            goto broken;
    }
    if ((rc = out_add(c, ".\r\n", 3, ms)) != IO_OK)
        goto broken;
    /* Everything up to and including the final dot is in c->out now or
     * already written: "fully written" is this flush completing. */
    if ((rc = out_flush(c, ms, &left)) != IO_OK)
        goto broken;
    return 0;
broken:
    res->stage = PL_SMTPC_BODY_SENDING;
    io_fail(c, rc, "sending the message");
    if (left > 0) {
        size_t n = strlen(c->err);
        snprintf(c->err + n, sizeof(c->err) - n, " (the last %zu bytes unwritten)", left);
    }
    return -1;
}

int pl_smtpc_send(struct pl_smtpc *c, struct pl_smtpc_msg *m, struct pl_smtpc_result *res)
{
    struct txn t = {.c = c, .m = m, .res = res};
    char params[1024];
    size_t p = 0;
    int dsn_given = m->ret != NULL || m->envid != NULL, rc;

    for (size_t i = 0; i < m->nrcpts; i++)
        dsn_given |= m->rcpts[i].notify != NULL || m->rcpts[i].orcpt != NULL;

    memset(res, 0, sizeof(*res));
    res->stage = PL_SMTPC_MAIL;
    for (size_t i = 0; i < m->nrcpts; i++)
        memset(&m->rcpts[i].reply, 0, sizeof(m->rcpts[i].reply));
    if (c->broken) {
        snprintf(res->err, sizeof(res->err), "session unusable: %.200s", c->err);
        return -1;
    }
    if (msg_check(c, m, res) != 0)
        return -1;
    c->timedout = 0;
    c->err[0] = '\0';

#define ADDP(...) (p += (size_t)snprintf(params + p, sizeof(params) - p, __VA_ARGS__))
    params[0] = '\0';
    if (m->size > 0 && c->caps.size)
        ADDP(" SIZE=%llu", m->size);
    if (m->body != PL_SMTPC_BODY_NONE && c->caps.eightbitmime)
        ADDP(" BODY=%s", m->body == PL_SMTPC_BODY_8BITMIME ? "8BITMIME" : "7BIT");
    if (m->smtputf8)
        ADDP(" SMTPUTF8");
    if (c->caps.dsn && m->ret != NULL)
        ADDP(" RET=%s", m->ret);
    if (c->caps.dsn && m->envid != NULL)
        ADDP(" ENVID=%s", m->envid);
#undef ADDP
    if (txn_cmd(&t, "MAIL FROM:<%s>%s", m->sender, params) != 0)
        goto out;
    if (!c->caps.pipelining && res->mail.code / 100 != 2)
        goto out;
    for (size_t i = 0; i < m->nrcpts; i++) {
        const struct pl_smtpc_rcpt *r = &m->rcpts[i];
        int dsn = c->caps.dsn;
        if (txn_cmd(&t, "RCPT TO:<%s>%s%s%s%s", r->addr,
                    dsn && r->notify ? " NOTIFY=" : "", dsn && r->notify ? r->notify : "",
                    dsn && r->orcpt ? " ORCPT=" : "", dsn && r->orcpt ? r->orcpt : "") != 0)
            goto out;
    }
    if (!c->caps.pipelining && res->accepted == 0) {
        res->stage = PL_SMTPC_RCPT;
        goto out;
    }
    if (txn_cmd(&t, "DATA") != 0 || txn_sync(&t) != 0)
        goto out;
    if (res->mail.code / 100 != 2 || res->accepted == 0) {
        res->stage = res->mail.code / 100 != 2 ? PL_SMTPC_MAIL : PL_SMTPC_RCPT;
        if (res->data.code / 100 == 3) {   /* a server that says 354 anyway */
            if ((rc = cmd(c, c->to.data_ms, ".")) != IO_OK
                || (rc = out_flush(c, c->to.data_ms, NULL)) != IO_OK)
                io_fail(c, rc, "ending an empty DATA");
            else
                get_reply(c, &res->dot, c->to.dot_ms, "after an empty DATA");
        }
        goto out;
    }
    if (res->data.code / 100 != 3) {
        res->stage = PL_SMTPC_DATA;
        goto out;
    }
    res->stage = PL_SMTPC_BODY_SENDING;
    if (send_body(c, m, res) != 0)
        goto out;
    res->stage = PL_SMTPC_AFTER_DOT;
    if (get_reply(c, &res->dot, c->to.dot_ms, "after the end of the message") != 0)
        goto out;
    res->stage = PL_SMTPC_DONE;
out:
    res->dsn_dropped = dsn_given && !c->caps.dsn;
    if (res->stage != PL_SMTPC_DONE) {
        c->stage = res->stage;
        if (res->err[0] == '\0') {
            const struct pl_smtp_reply *r = res->stage == PL_SMTPC_MAIL ? &res->mail
                                            : res->stage == PL_SMTPC_DATA ? &res->data : NULL;
            if (c->err[0] != '\0')
                snprintf(res->err, sizeof(res->err), "%s", c->err);
            else if (r != NULL && r->code != 0)
                snprintf(res->err, sizeof(res->err), "%s refused: %d %.200s",
                         res->stage == PL_SMTPC_MAIL ? "MAIL" : "DATA", r->code, r->text);
            else if (res->stage == PL_SMTPC_RCPT)
                snprintf(res->err, sizeof(res->err), "every recipient refused");
        }
    }
    res->timedout = c->timedout;
    return res->stage == PL_SMTPC_DONE ? 0 : -1;
}

int pl_smtpc_rset(struct pl_smtpc *c)
{
    struct pl_smtp_reply r;
    int rc;

    if (c->broken)
        return -1;
    if ((rc = cmd(c, c->to.mail_ms, "RSET")) != IO_OK
        || (rc = out_flush(c, c->to.mail_ms, NULL)) != IO_OK)
        return io_fail(c, rc, "sending RSET");
    if (get_reply(c, &r, c->to.mail_ms, "after RSET") != 0)
        return -1;
    return r.code == 250 ? 0 : -1;
}

void pl_smtpc_quit(struct pl_smtpc *c)
{
    struct pl_smtp_reply r;

    if (c->broken)
        return;
    c->olen = 0;
    if (cmd(c, QUIT_MS, "QUIT") == IO_OK && out_flush(c, QUIT_MS, NULL) == IO_OK)
        read_reply_io(c, &r, QUIT_MS);
    c->broken = 1;                         /* nothing more on this session */
}
