/* lmtp_server.c -- the server side of LMTP (RFC 2033) for postlink's
 * delivery agents, and the unix listening socket they serve it on; see
 * lmtp_server.h.  Replies are written with send(MSG_NOSIGNAL | MSG_DONTWAIT)
 * (write(2) only when the fd is not a socket), so a client that goes away
 * gives EPIPE, not SIGPIPE, whatever the process does with that signal, and
 * one that stops reading is dropped after the idle timeout.  Replies are
 * buffered while pipelined input is waiting and flushed before blocking on
 * a read (RFC 2920).  Memory per connection is bounded: a fixed struct, the
 * recipient list (max_rcpts lines of at most LMTP_LINE_MAX bytes) and the
 * message (at most max_msg_bytes). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lmtp_server.h"
#include "log.h"
#include "smtp_dsn.h"
#include "strutil.h"

#define LMTP_LINE_MAX   2048               /* command bytes, line end not counted */
#define LMTP_INBUF      8192
#define LMTP_OUTBUF     4096
#define LMTP_REPLY_LINE 1024               /* one reply line we format */
#define LMTP_MAX_ERRORS 20                 /* protocol errors before 421 */
#define LMTP_MSG_FIRST  (64 * 1024)        /* first message buffer size */
#define LMTP_DEF_MSG    ((size_t)10 * 1024 * 1024)
#define LMTP_DEF_RCPTS  1000
#define LMTP_DEF_IDLE   300
#define LMTP_LISTEN_BACKLOG 64

enum { IO_OK = 1, IO_EOF = 0, IO_ERR = -1, IO_TIMEOUT = -2 };

struct lmtp_msg {
    char *s;
    size_t len, cap;
    int toobig;                            /* more than max_msg_bytes: s freed */
    int cut;                               /* keep_head_only: the rest was read, not kept */
    int nomem;                             /* allocation failed: s freed */
};

struct lmtp_conn {
    int fd;
    const struct pl_lmtp_server_opts *o;
    char host[256];
    size_t max_msg, max_rcpts;
    int keep_head;
    int timeout_ms;
    int dead;                              /* a write failed: stop */
    int errors;                            /* protocol errors so far */
    int lhlo;                              /* LHLO seen */
    int mail;                              /* MAIL accepted, transaction open */
    char *sender;
    char **rcpts;
    char **notify, **orcpt;                /* per recipient, NULL when absent */
    size_t nrcpts;
    unsigned long long size;               /* MAIL parameters */
    int body, smtputf8;
    char *ret, *envid;
    size_t ibeg, iend;
    size_t olen;
    char in[LMTP_INBUF];
    char out[LMTP_OUTBUF];
    char line[LMTP_LINE_MAX + 2];          /* the command, its CR, a NUL */
};

/* ---- low-level I/O ---------------------------------------------------- */

static long long elapsed_ms(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)(now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Waits until fd is ready for events, within the idle timeout, restarting
 * after signals with the time that is left. */
static int wait_fd(struct lmtp_conn *c, short events)
{
    struct timespec t0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct pollfd p = {.fd = c->fd, .events = events};
        long long left = c->timeout_ms - elapsed_ms(&t0);
        int n;
        if (left <= 0)
            return IO_TIMEOUT;
        n = poll(&p, 1, (int)left);
        if (n > 0)
            return IO_OK;                  /* also POLLHUP/POLLERR: read/send tell */
        if (n == 0)
            return IO_TIMEOUT;
        if (errno != EINTR)
            return IO_ERR;
    }
}

static int out_flush(struct lmtp_conn *c)
{
    size_t off = 0;

    while (off < c->olen && !c->dead) {
        /* MSG_DONTWAIT: a client that stops reading costs at most the
         * idle timeout, even on a blocking socket. */
        ssize_t n = send(c->fd, c->out + off, c->olen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == ENOTSOCK)
            n = write(c->fd, c->out + off, c->olen - off);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(c, POLLOUT) != IO_OK) {
                msg_warn("lmtp: timeout writing to the client; disconnecting");
                c->dead = 1;
            }
        } else {
            c->dead = 1;                   /* the client went away: nothing to log */
        }
    }
    c->olen = 0;
    return c->dead ? -1 : 0;
}

static void out_add(struct lmtp_conn *c, const char *s, size_t n)
{
    while (n > 0 && !c->dead) {
        size_t room = sizeof(c->out) - c->olen, k = n < room ? n : room;
        memcpy(c->out + c->olen, s, k);
        c->olen += k;
        s += k;
        n -= k;
        if (c->olen == sizeof(c->out))
            out_flush(c);
    }
}

/* Queues one reply line; CR, LF and other control bytes become spaces so a
 * reply can never turn into two. */
static void PL_PRINTF(2, 3) reply(struct lmtp_conn *c, const char *fmt, ...)
{
    char buf[LMTP_REPLY_LINE];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(buf))
        n = (int)sizeof(buf) - 1;
    for (int i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = ' ';
    out_add(c, buf, (size_t)n);
    out_add(c, "\r\n", 2);
}

/* Reads more input into an empty buffer, flushing queued replies first:
 * we are about to block, so the client must see them now (RFC 2920). */
static int in_fill(struct lmtp_conn *c)
{
    c->ibeg = c->iend = 0;
    if (c->olen > 0 && out_flush(c) < 0)
        return IO_ERR;
    for (;;) {
        ssize_t n;
        int w = wait_fd(c, POLLIN);
        if (w != IO_OK)
            return w;
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

/* Reads one command line into c->line, without its LF or CRLF.  A line of
 * more than LMTP_LINE_MAX bytes is read to its end and dropped (*toolong). */
static int read_line(struct lmtp_conn *c, size_t *lenp, int *toolong)
{
    size_t len = 0;

    *toolong = 0;
    for (;;) {
        const char *s, *nl;
        size_t avail, take;
        if (c->ibeg == c->iend) {
            int rc = in_fill(c);
            if (rc != IO_OK)
                return rc;
        }
        s = c->in + c->ibeg;
        avail = c->iend - c->ibeg;
        nl = memchr(s, '\n', avail);
        take = nl ? (size_t)(nl - s) : avail;
        if (!*toolong) {
            if (len + take > LMTP_LINE_MAX + 1) {
                *toolong = 1;
            } else {
                memcpy(c->line + len, s, take);
                len += take;
            }
        }
        c->ibeg += take + (nl != NULL);
        if (nl != NULL)
            break;
    }
    if (!*toolong && len > 0 && c->line[len - 1] == '\r')
        len--;
    if (len > LMTP_LINE_MAX)
        *toolong = 1;
    if (*toolong)
        return IO_OK;
    c->line[len] = '\0';
    *lenp = len;
    return IO_OK;
}

/* ---- the transaction -------------------------------------------------- */

static void msg_free(struct lmtp_msg *m)
{
    free(m->s);
    m->s = NULL;
    m->len = m->cap = 0;
}

/* Appends to the message unless it is already refused; never holds more
 * than max bytes. */
static void msg_add(struct lmtp_msg *m, const char *s, size_t n, size_t max, int keep_head)
{
    if (m->toobig || m->nomem || m->cut || n == 0)
        return;
    if (n > max - m->len) {
        if (keep_head) {               /* keep what fits, read and drop the rest */
            n = max - m->len;
            m->cut = 1;
        } else {
            m->toobig = 1;
            msg_free(m);
            return;
        }
    }
    if (n == 0)
        return;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : (LMTP_MSG_FIRST < max ? LMTP_MSG_FIRST : max);
        char *p;
        while (cap < m->len + n)
            cap = cap > max / 2 ? max : cap * 2;
        if ((p = realloc(m->s, cap)) == NULL) {
            m->nomem = 1;
            msg_free(m);
            return;
        }
        m->s = p;
        m->cap = cap;
    }
    memcpy(m->s + m->len, s, n);
    m->len += n;
}

/* Reads the message after 354 up to the line ".", dot-unstuffing and keeping
 * every other byte (line ends included) as sent. */
static int read_data(struct lmtp_conn *c, struct lmtp_msg *m)
{
    enum { D_BOL, D_MID, D_DOT, D_DOTCR } st = D_BOL;

    for (;;) {
        const char *s, *e;
        if (c->ibeg == c->iend) {
            int rc = in_fill(c);
            if (rc != IO_OK)
                return rc;
        }
        s = c->in + c->ibeg;
        e = c->in + c->iend;
        while (s < e) {
            const char *nl;
            switch (st) {
            case D_BOL:
                if (*s == '.') {
                    st = D_DOT;
                    s++;
                } else {
                    st = D_MID;
                }
                break;
            case D_MID:
                nl = memchr(s, '\n', (size_t)(e - s));
                msg_add(m, s, (size_t)((nl ? nl + 1 : e) - s), c->max_msg, c->keep_head);
                s = nl ? nl + 1 : e;
                if (nl != NULL)
                    st = D_BOL;
                break;
            case D_DOT:                    /* the line began with a dot */
                if (*s == '\n') {
                    c->ibeg = (size_t)(s + 1 - c->in);
                    return IO_OK;
                }
                if (*s == '\r')
                    st = D_DOTCR, s++;
                else
                    st = D_MID;            /* a stuffed dot: dropped */
                break;
            case D_DOTCR:                  /* ".\r" at the start of a line */
                if (*s == '\n') {
                    c->ibeg = (size_t)(s + 1 - c->in);
                    return IO_OK;
                }
                msg_add(m, "\r", 1, c->max_msg, c->keep_head);
                st = D_MID;
                break;
            }
        }
        c->ibeg = c->iend;
    }
}

static void tx_reset(struct lmtp_conn *c)
{
    free(c->sender);
    c->sender = NULL;
    for (size_t i = 0; i < c->nrcpts; i++) {
        free(c->rcpts[i]);
        free(c->notify[i]);
        free(c->orcpt[i]);
    }
    free(c->rcpts);
    free(c->notify);
    free(c->orcpt);
    c->rcpts = c->notify = c->orcpt = NULL;
    c->nrcpts = 0;
    free(c->ret);
    free(c->envid);
    c->ret = c->envid = NULL;
    c->size = 0;
    c->body = PL_LMTP_BODY_NONE;
    c->smtputf8 = 0;
    c->mail = 0;
}

/* A reply line the agent gave us is usable when it is one final line:
 * "2xx", "4xx" or "5xx", then the end or a space. */
static int reply_ok(const char *r, const char *first)
{
    return strchr(first, r[0]) != NULL && r[0] != '\0' && r[1] >= '0' && r[1] <= '9'
           && r[2] >= '0' && r[2] <= '9' && (r[3] == '\0' || r[3] == ' ');
}

static void do_data(struct lmtp_conn *c, int *fatal)
{
    struct lmtp_msg m = {0};
    int rc;

    reply(c, "354 2.0.0 End data with <CR><LF>.<CR><LF>");
    rc = read_data(c, &m);
    if (rc != IO_OK) {
        if (rc == IO_TIMEOUT) {
            msg_warn("lmtp: timeout after %ds reading message data", c->timeout_ms / 1000);
            reply(c, "421 4.4.2 %s Error: timeout exceeded", c->host);
        } else if (rc == IO_EOF) {
            msg_warn("lmtp: client disconnected during DATA; nothing delivered");
        }
        msg_free(&m);
        *fatal = 1;
        return;
    }
    if (m.toobig) {
        msg_warn("lmtp: message from <%s> larger than %zu bytes refused", c->sender, c->max_msg);
        for (size_t i = 0; i < c->nrcpts; i++)
            reply(c, "552 5.3.4 Message size exceeds fixed maximum message size");
    } else if (m.nomem) {
        msg_warn("lmtp: out of memory for a message from <%s>", c->sender);
        for (size_t i = 0; i < c->nrcpts; i++)
            reply(c, "452 4.3.1 Insufficient system storage");
    } else {
        char (*replies)[PL_LMTP_REPLY_MAX] = pl_xcalloc(c->nrcpts, sizeof(*replies));
        struct pl_lmtp_envelope env = {
            .sender = c->sender, .rcpts = (const char *const *)c->rcpts,
            .nrcpts = c->nrcpts, .msg = m.s ? m.s : "", .msglen = m.len, .truncated = m.cut,
            .size = c->size, .body = c->body, .smtputf8 = c->smtputf8, .ret = c->ret,
            .envid = c->envid, .notify = (const char *const *)c->notify,
            .orcpt = (const char *const *)c->orcpt,
        };
        for (size_t i = 0; i < c->nrcpts; i++)
            snprintf(replies[i], PL_LMTP_REPLY_MAX, "451 4.3.0 No reply from delivery agent");
        c->o->deliver(c->o->ctx, &env, replies);
        for (size_t i = 0; i < c->nrcpts; i++) {
            replies[i][PL_LMTP_REPLY_MAX - 1] = '\0';
            if (reply_ok(replies[i], "245")) {
                reply(c, "%s", replies[i]);
            } else {
                msg_warn("lmtp: bad reply from delivery agent for <%s>: %.60s", c->rcpts[i],
                         replies[i]);
                reply(c, "451 4.3.0 Internal error in delivery agent");
            }
        }
        free(replies);
    }
    msg_free(&m);
    tx_reset(c);
}

/* ---- commands --------------------------------------------------------- */

/* Matches the command verb (any case) followed by the end or a space, and
 * points *args past the spaces after it. */
static int is_cmd(const char *line, const char *verb, const char **args)
{
    size_t n = strlen(verb);
    if (strncasecmp(line, verb, n) != 0 || (line[n] != '\0' && line[n] != ' '))
        return 0;
    for (line += n; *line == ' '; line++)
        ;
    *args = line;
    return 1;
}

/* Parses "<path>" at *pp (spaces before it allowed), drops a source route
 * ("<@a,@b:user@c>"), stores the address without brackets and moves *pp past
 * the '>'.  Quoted local parts may hold '>' and spaces. */
static int parse_path(const char **pp, char **addr)
{
    const char *p = *pp, *start;
    int quoted = 0;

    while (*p == ' ')
        p++;
    if (*p++ != '<')
        return -1;
    if (*p == '@') {
        const char *colon = strchr(p, ':'), *gt = strchr(p, '>');
        if (colon == NULL || (gt != NULL && gt < colon))
            return -1;
        p = colon + 1;
    }
    for (start = p; *p != '\0'; p++) {
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return -1;
        if (quoted && *p == '\\' && p[1] != '\0')
            p++;
        else if (*p == '"')
            quoted = !quoted;
        else if (*p == '>' && !quoted)
            break;
        else if (*p == ' ' && !quoted)
            return -1;
    }
    if (*p != '>' || (p[1] != '\0' && p[1] != ' '))
        return -1;
    *addr = pl_xstrndup(start, (size_t)(p - start));
    *pp = p + 1;
    return 0;
}

/* A 5xx reply to a protocol error, logged; too many end the session. */
static void PL_PRINTF(3, 4) proto_error(struct lmtp_conn *c, const char *what, const char *fmt, ...)
{
    char buf[LMTP_REPLY_LINE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (c->line[0] != '\0')
        msg_warn("lmtp: %s: %.80s", what, c->line);
    else
        msg_warn("lmtp: %s", what);
    reply(c, "%s", buf);
    c->errors++;
}

/* Takes the value of a parameter "NAME=value" (n bytes at p, klen the
 * length of "NAME=") once; a second one is an error. */
static int take_once(char **slot, const char *p, size_t n, size_t klen)
{
    if (*slot != NULL)
        return -1;
    *slot = pl_xstrndup(p + klen, n - klen);
    return 0;
}

/* The next ESMTP parameter of a MAIL or RCPT line: its length (0 at the
 * end), *args moved to its start. */
static size_t next_param(const char **args)
{
    const char *end;
    while (**args == ' ')
        (*args)++;
    if (**args == '\0')
        return 0;
    end = strchr(*args, ' ');
    return end ? (size_t)(end - *args) : strlen(*args);
}

static void do_mail(struct lmtp_conn *c, const char *args)
{
    char *addr = NULL, *ret = NULL, *envid = NULL;
    unsigned long long size = 0;
    int body = PL_LMTP_BODY_NONE, smtputf8 = 0;
    const char *bad = NULL;

    if (!c->lhlo) {
        proto_error(c, "MAIL before LHLO", "503 5.5.1 Error: send LHLO first");
        return;
    }
    if (c->mail) {
        proto_error(c, "nested MAIL", "503 5.5.1 Error: nested MAIL command");
        return;
    }
    if (strncasecmp(args, "FROM:", 5) != 0 || (args += 5, parse_path(&args, &addr)) != 0) {
        proto_error(c, "bad MAIL syntax", "501 5.5.4 Syntax: MAIL FROM:<address>");
        return;
    }
    for (size_t n; (n = next_param(&args)) > 0;) {     /* ESMTP parameters */
        if (n >= 5 && strncasecmp(args, "SIZE=", 5) == 0) {
            unsigned long long v = 0;
            int big = 0;
            if (n == 5 || strspn(args + 5, "0123456789") != n - 5) {
                proto_error(c, "bad SIZE parameter", "501 5.5.4 Bad SIZE parameter");
                goto out;
            }
            for (size_t i = 5; i < n && !big; i++) {
                if (v > (ULLONG_MAX - 9) / 10)
                    big = 1;
                else
                    v = v * 10 + (unsigned)(args[i] - '0');
            }
            if (!c->keep_head && (big || v > c->max_msg)) {
                reply(c, "552 5.3.4 Message size exceeds fixed maximum message size");
                goto out;
            }
            size = big ? ULLONG_MAX : v;
        } else if (n > 5 && strncasecmp(args, "BODY=", 5) == 0) {
            if (n == 9 && strncasecmp(args + 5, "7BIT", 4) == 0) {
                body = PL_LMTP_BODY_7BIT;
            } else if (n == 13 && strncasecmp(args + 5, "8BITMIME", 8) == 0) {
                body = PL_LMTP_BODY_8BITMIME;
            } else {
                proto_error(c, "unsupported BODY", "501 5.5.4 Unsupported BODY parameter");
                goto out;
            }
        } else if (n == 8 && strncasecmp(args, "SMTPUTF8", 8) == 0) {
            smtputf8 = 1;
        } else if (c->o->dsn && n >= 4 && strncasecmp(args, "RET=", 4) == 0) {
            if (!pl_dsn_ret_ok(args + 4, n - 4) || take_once(&ret, args, n, 4) != 0)
                bad = "RET";
        } else if (c->o->dsn && n >= 6 && strncasecmp(args, "ENVID=", 6) == 0) {
            if (!pl_dsn_xtext_ok(args + 6, n - 6, PL_DSN_ENVID_MAX)
                || take_once(&envid, args, n, 6) != 0)
                bad = "ENVID";
        }                                  /* anything else: ignored */
        if (bad != NULL) {
            proto_error(c, "bad DSN parameter", "501 5.5.4 Bad %s parameter", bad);
            goto out;
        }
        args += n;
    }
    c->sender = addr;
    c->size = size;
    c->body = body;
    c->smtputf8 = smtputf8;
    c->ret = ret;
    c->envid = envid;
    c->mail = 1;
    reply(c, "250 2.1.0 Ok");
    return;
out:
    free(addr);
    free(ret);
    free(envid);
}

static void do_rcpt(struct lmtp_conn *c, const char *args)
{
    const char *refusal;
    char *addr = NULL, *notify = NULL, *orcpt = NULL;

    if (!c->mail) {
        proto_error(c, "RCPT before MAIL", "503 5.5.1 Error: need MAIL command");
        return;
    }
    if (strncasecmp(args, "TO:", 3) != 0 || (args += 3, parse_path(&args, &addr)) != 0) {
        proto_error(c, "bad RCPT syntax", "501 5.5.4 Syntax: RCPT TO:<address>");
        return;
    }
    if (*addr == '\0') {
        free(addr);
        proto_error(c, "empty recipient", "501 5.1.3 Bad recipient address syntax");
        return;
    }
    for (size_t n; c->o->dsn && (n = next_param(&args)) > 0;) {  /* only DSN's matter */
        const char *bad = NULL;
        if (n >= 7 && strncasecmp(args, "NOTIFY=", 7) == 0) {
            if (!pl_dsn_notify_ok(args + 7, n - 7) || take_once(&notify, args, n, 7) != 0)
                bad = "NOTIFY";
        } else if (n >= 6 && strncasecmp(args, "ORCPT=", 6) == 0) {
            if (!pl_dsn_orcpt_ok(args + 6, n - 6) || take_once(&orcpt, args, n, 6) != 0)
                bad = "ORCPT";
        }                                  /* anything else: ignored */
        if (bad != NULL) {
            proto_error(c, "bad DSN parameter", "501 5.5.4 Bad %s parameter", bad);
            goto out;
        }
        args += n;
    }
    if (c->nrcpts >= c->max_rcpts) {
        reply(c, "452 4.5.3 Error: too many recipients");
        goto out;
    }
    if (c->o->check_rcpt != NULL
        && (refusal = c->o->check_rcpt(c->o->ctx, addr)) != NULL) {
        /* A refusal must be 4xx or 5xx: a 2xx here would make the client
         * expect a DATA reply that we will never send. */
        if (reply_ok(refusal, "45"))
            reply(c, "%.*s", PL_LMTP_REPLY_MAX - 1, refusal);
        else
            reply(c, "550 5.1.1 Recipient address rejected");
        goto out;
    }
    c->rcpts = pl_xrealloc(c->rcpts, (c->nrcpts + 1) * sizeof(*c->rcpts));
    c->notify = pl_xrealloc(c->notify, (c->nrcpts + 1) * sizeof(*c->notify));
    c->orcpt = pl_xrealloc(c->orcpt, (c->nrcpts + 1) * sizeof(*c->orcpt));
    c->rcpts[c->nrcpts] = addr;
    c->notify[c->nrcpts] = notify;
    c->orcpt[c->nrcpts++] = orcpt;
    reply(c, "250 2.1.5 Ok");
    return;
out:
    free(addr);
    free(notify);
    free(orcpt);
}

/* Runs one command line; returns nonzero when the session is over. */
static int command(struct lmtp_conn *c, size_t len)
{
    const char *line = c->line, *args;
    int fatal = 0;

    if (strlen(line) != len) {
        proto_error(c, "NUL byte in command", "500 5.5.2 Error: NUL byte in command");
    } else if (is_cmd(line, "LHLO", &args)) {
        if (*args == '\0') {
            proto_error(c, "LHLO without a name", "501 5.5.4 Syntax: LHLO hostname");
        } else {
            tx_reset(c);
            c->lhlo = 1;
            reply(c, "250-%s", c->host);
            reply(c, "250-PIPELINING");
            reply(c, "250-ENHANCEDSTATUSCODES");
            reply(c, "250-8BITMIME");
            if (c->o->dsn)
                reply(c, "250-DSN");
            if (c->o->smtputf8)
                reply(c, "250-SMTPUTF8");
            if (c->keep_head)
                reply(c, "250 SIZE");  /* RFC 1870: no fixed maximum */
            else
                reply(c, "250 SIZE %zu", c->max_msg);
        }
    } else if (is_cmd(line, "MAIL", &args)) {
        do_mail(c, args);
    } else if (is_cmd(line, "RCPT", &args)) {
        do_rcpt(c, args);
    } else if (is_cmd(line, "DATA", &args)) {
        if (*args != '\0')
            proto_error(c, "DATA with arguments", "501 5.5.4 Syntax: DATA");
        else if (!c->mail)
            proto_error(c, "DATA before MAIL", "503 5.5.1 Error: need MAIL command");
        else if (c->nrcpts == 0)
            proto_error(c, "DATA without recipients", "503 5.5.1 Error: no valid recipients");
        else
            do_data(c, &fatal);
    } else if (is_cmd(line, "RSET", &args)) {
        if (*args != '\0') {
            proto_error(c, "RSET with arguments", "501 5.5.4 Syntax: RSET");
        } else {
            tx_reset(c);
            reply(c, "250 2.0.0 Ok");
        }
    } else if (is_cmd(line, "NOOP", &args)) {
        reply(c, "250 2.0.0 Ok");
    } else if (is_cmd(line, "VRFY", &args)) {
        if (*args == '\0')
            proto_error(c, "VRFY without an argument", "501 5.5.4 Syntax: VRFY address");
        else
            reply(c, "252 2.5.2 Cannot VRFY user, but will accept message and attempt delivery");
    } else if (is_cmd(line, "QUIT", &args)) {
        reply(c, "221 2.0.0 Bye");
        return 1;
    } else if (is_cmd(line, "HELO", &args) || is_cmd(line, "EHLO", &args)) {
        proto_error(c, "HELO/EHLO in LMTP", "500 5.5.2 Error: this is LMTP, use LHLO");
    } else {
        proto_error(c, "unknown command", "500 5.5.2 Error: command not recognized");
    }
    if (fatal)
        return 1;
    if (c->errors >= LMTP_MAX_ERRORS) {
        msg_warn("lmtp: too many protocol errors; disconnecting");
        reply(c, "421 4.7.0 %s Error: too many errors", c->host);
        return 1;
    }
    return 0;
}

void pl_lmtp_serve(int fd, const struct pl_lmtp_server_opts *o)
{
    struct lmtp_conn *c = pl_xcalloc(1, sizeof(*c));
    unsigned idle = o->idle_timeout_s ? o->idle_timeout_s : LMTP_DEF_IDLE;

    c->fd = fd;
    c->o = o;
    c->max_msg = o->max_msg_bytes ? o->max_msg_bytes : LMTP_DEF_MSG;
    c->keep_head = o->keep_head_only;
    c->max_rcpts = o->max_rcpts ? o->max_rcpts : LMTP_DEF_RCPTS;
    c->timeout_ms = idle > INT_MAX / 1000 ? INT_MAX : (int)idle * 1000;
    if (o->hostname != NULL && *o->hostname != '\0')
        snprintf(c->host, sizeof(c->host), "%s", o->hostname);
    else if (gethostname(c->host, sizeof(c->host) - 1) != 0 || c->host[0] == '\0')
        snprintf(c->host, sizeof(c->host), "localhost");

    reply(c, "220 %s LMTP postlink", c->host);
    while (!c->dead) {
        size_t len = 0;
        int toolong, rc = read_line(c, &len, &toolong);
        if (rc == IO_TIMEOUT) {
            msg_warn("lmtp: idle timeout after %us; disconnecting", idle);
            reply(c, "421 4.4.2 %s Error: timeout exceeded", c->host);
            break;
        }
        if (rc != IO_OK)
            break;
        if (toolong) {
            c->line[0] = '\0';
            proto_error(c, "command line longer than 2048 bytes",
                        "500 5.5.2 Error: line too long");
            if (c->errors >= LMTP_MAX_ERRORS) {
                reply(c, "421 4.7.0 %s Error: too many errors", c->host);
                break;
            }
            continue;
        }
        if (command(c, len) != 0)
            break;
    }
    out_flush(c);
    close(fd);
    tx_reset(c);
    free(c);
}

/* ---- the listening socket --------------------------------------------- */

static void PL_PRINTF(3, 4) set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int pl_unix_listen(const char *path, int world, char *err, size_t errlen)
{
    struct sockaddr_un sa;
    struct stat st;
    mode_t old_mask;
    int fd, e;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (path == NULL || *path == '\0' || strlen(path) >= sizeof(sa.sun_path)) {
        set_err(err, errlen, "unix socket path %s: empty or longer than %zu bytes",
                path ? path : "(null)", sizeof(sa.sun_path) - 1);
        return -1;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            set_err(err, errlen, "%s exists and is not a socket; not removing it", path);
            return -1;
        }
        if (unlink(path) != 0 && errno != ENOENT) {
            set_err(err, errlen, "cannot remove the old socket %s: %s", path, strerror(errno));
            return -1;
        }
    } else if (errno != ENOENT) {
        set_err(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        set_err(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* the mode from the umask at bind(), not a chmod by path afterwards
     * (which would follow a symlink put there meanwhile) */
    old_mask = umask(world ? 0111 : 0117);
    e = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old_mask);
    if (e != 0) {
        set_err(err, errlen, "bind %s: %s", path, strerror(errno));
        goto fail;
    }
    if (listen(fd, LMTP_LISTEN_BACKLOG) != 0) {
        set_err(err, errlen, "listen %s: %s", path, strerror(errno));
        goto fail_unlink;
    }
    return fd;

fail_unlink:
    unlink(path);
fail:
    e = errno;
    close(fd);
    errno = e;
    return -1;
}
