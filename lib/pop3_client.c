/* pop3_client.c -- the session half of lib/pop3_client.h (the parsers are
 * in lib/pop3_parse.c): a blocking POP3 client over TCP with optional TLS
 * (OpenSSL): greeting, CAPA, STLS, AUTH PLAIN or USER/PASS, STAT, UIDL,
 * LIST, and TOP/RETR pipelined with a window and streamed.
 * The socket is non-blocking; every read and write waits with poll() up to
 * its deadline, so a silent or stuck server costs at most the timeout.
 * SIGPIPE is blocked around each socket call that may write (OpenSSL
 * writes with write(2)), so a peer that went away gives EPIPE. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "monotime.h"
#include "pop3_client.h"

#define DEF_MS      30000u
#define DEF_DATA_MS 60000u
#define QUIT_MS     2000u
#define WINDOW_DEF  16u

enum { IO_OK = 0, IO_ERR = -1, IO_TIMEOUT = -2, IO_EOF = -3, IO_PROTO = -4, IO_TLS = -5,
       IO_LONG = -6 };

/* ---- errors ------------------------------------------------------------ */


/* Sets p->err unless an earlier error is already there. */
static void __attribute__((format(printf, 2, 3))) fail(struct pl_pop3 *p, const char *fmt, ...)
{
    va_list ap;
    if (p->broken && p->err[0] != '\0')
        return;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof(p->err), fmt, ap);
    va_end(ap);
}

/* Copies s[0..n) to dst (size dstlen) with control bytes as '?'. */
static void printable(char *dst, size_t dstlen, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < dstlen; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[k++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
    }
    if (dstlen > 0)
        dst[k] = '\0';
}

/* OpenSSL's first queued error as text (the queue is emptied). */
static void tls_errstr(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    if (e == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* Breaks the session after an I/O failure rc, saying what we were doing. */
static int io_fail(struct pl_pop3 *p, int rc, const char *doing)
{
    char t[160];
    switch (rc) {
    case IO_TIMEOUT:
        fail(p, "timeout %s", doing);
        break;
    case IO_EOF:
        fail(p, "connection closed by the server %s", doing);
        break;
    case IO_PROTO:
        fail(p, "malformed response %s", doing);
        break;
    case IO_LONG:
        fail(p, "response line longer than %d bytes %s", PL_POP3_LINE_MAX, doing);
        break;
    case IO_TLS:
        tls_errstr(t, sizeof(t));
        fail(p, "TLS error %s: %s", doing, t);
        break;
    default:
        fail(p, "%s %s", strerror(errno), doing);
        break;
    }
    p->broken = 1;
    return PL_POP3_BROKEN;
}

/* ---- low-level I/O ----------------------------------------------------- */

/* SIGPIPE blocked for one call that may write to the socket; a SIGPIPE it
 * raised is taken off the thread again, one that was pending stays. */
struct nopipe { sigset_t old; int pending; };

static void nopipe_on(struct nopipe *s)
{
    sigset_t pipe, pend;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    sigpending(&pend);
    s->pending = sigismember(&pend, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, &s->old);
}

static void nopipe_off(struct nopipe *s)
{
    int e = errno;
    if (!s->pending) {
        sigset_t pipe, pend;
        struct timespec zero = {0, 0};
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        sigpending(&pend);
        if (sigismember(&pend, SIGPIPE))
            while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
                ;
    }
    pthread_sigmask(SIG_SETMASK, &s->old, NULL);
    errno = e;
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        struct pollfd pf = {.fd = fd, .events = events};
        long long left = deadline - pl_now_ms();
        int n;
        if (left <= 0)
            return IO_TIMEOUT;
        n = poll(&pf, 1, left > 1000000 ? 1000000 : (int)left);
        if (n > 0)
            return IO_OK;                  /* POLLHUP/POLLERR too: the call tells */
        if (n < 0 && errno != EINTR)
            return IO_ERR;
    }
}

/* What an SSL call's failure asks for: IO_OK after waiting, or an error. */
static int ssl_wait(struct pl_pop3 *p, int ret, long long deadline)
{
    int e = SSL_get_error(p->ssl, ret);
    if (e == SSL_ERROR_WANT_READ)
        return wait_fd(p->fd, POLLIN, deadline);
    if (e == SSL_ERROR_WANT_WRITE)
        return wait_fd(p->fd, POLLOUT, deadline);
    if (e == SSL_ERROR_ZERO_RETURN)
        return IO_EOF;
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
        return errno == 0 || errno == ECONNRESET ? IO_EOF : IO_ERR;
    return IO_TLS;
}

/* Refills p->in (which must be empty) with what the server sent. */
static int in_fill(struct pl_pop3 *p, long long deadline)
{
    p->ibeg = p->iend = 0;
    for (;;) {
        ssize_t n;
        int rc;
        if (p->ssl != NULL) {
            struct nopipe np;
            int r;
            ERR_clear_error();
            errno = 0;
            nopipe_on(&np);
            r = SSL_read(p->ssl, p->in, (int)sizeof(p->in));
            nopipe_off(&np);
            if (r > 0) {
                n = r;
            } else {
                if ((rc = ssl_wait(p, r, deadline)) != IO_OK)
                    return rc;
                continue;
            }
        } else {
            n = read(p->fd, p->in, sizeof(p->in));
            if (n == 0)
                return IO_EOF;
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    return errno == ECONNRESET ? IO_EOF : IO_ERR;
                if ((rc = wait_fd(p->fd, POLLIN, deadline)) != IO_OK)
                    return rc;
                continue;
            }
        }
        p->iend = (size_t)n;
        p->bytes_in += (unsigned long long)n;
        return IO_OK;
    }
}

/* Writes buf[0..len) completely before the deadline. */
static int out_write(struct pl_pop3 *p, const char *buf, size_t len, long long deadline)
{
    size_t off = 0;
    while (off < len) {
        int rc;
        if (p->ssl != NULL) {
            struct nopipe np;
            size_t k = len - off > 65536 ? 65536 : len - off;
            int r;
            ERR_clear_error();
            errno = 0;
            nopipe_on(&np);
            r = SSL_write(p->ssl, buf + off, (int)k);
            nopipe_off(&np);
            if (r > 0) {
                off += (size_t)r;
                continue;
            }
            if ((rc = ssl_wait(p, r, deadline)) != IO_OK)
                return rc == IO_EOF ? IO_ERR : rc;
        } else {
            ssize_t n = send(p->fd, buf + off, len - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if ((rc = wait_fd(p->fd, POLLOUT, deadline)) != IO_OK)
                    return rc;
                continue;
            }
            return IO_ERR;
        }
    }
    return IO_OK;
}

/* One line (CRLF or LF stripped) into line[0..*len), at most
 * PL_POP3_LINE_MAX bytes; every refill must come before the deadline. */
static int read_line(struct pl_pop3 *p, char *line, size_t *len, long long deadline)
{
    size_t n = 0;
    for (;;) {
        const char *s, *nl;
        size_t avail, take;
        int rc;
        if (p->ibeg == p->iend && (rc = in_fill(p, deadline)) != IO_OK)
            return rc;
        s = p->in + p->ibeg;
        avail = p->iend - p->ibeg;
        nl = memchr(s, '\n', avail);
        take = nl ? (size_t)(nl - s) : avail;
        if (n + take > PL_POP3_LINE_MAX + 1)
            return IO_LONG;
        memcpy(line + n, s, take);
        n += take;
        p->ibeg += take + (nl != NULL);
        if (nl != NULL)
            break;
    }
    if (n > 0 && line[n - 1] == '\r')
        n--;
    if (n > PL_POP3_LINE_MAX)
        return IO_LONG;
    line[n] = '\0';
    *len = n;
    return IO_OK;
}

/* Sends one command line (CRLF added); `shown` is what an error names. */
static int send_cmd(struct pl_pop3 *p, const char *cmd, const char *shown)
{
    char buf[PL_POP3_LINE_MAX + 3], what[64];
    size_t n = strlen(cmd);
    int rc;
    if (n > PL_POP3_LINE_MAX) {
        fail(p, "command %s too long", shown);
        p->broken = 1;
        return PL_POP3_BROKEN;
    }
    memcpy(buf, cmd, n);
    memcpy(buf + n, "\r\n", 2);
    rc = out_write(p, buf, n + 2, pl_now_ms() + p->o.cmd_ms);
    OPENSSL_cleanse(buf, sizeof(buf));     /* it may hold a password */
    if (rc != IO_OK) {
        snprintf(what, sizeof(what), "sending %s", shown);
        return io_fail(p, rc, what);
    }
    return PL_POP3_OK;
}

/* Reads a status line: 1 +OK, 0 -ERR (p->last, p->last_code set), or
 * PL_POP3_BROKEN.  `after` names the command for an error. */
static int read_status(struct pl_pop3 *p, unsigned ms, const char *after)
{
    char line[PL_POP3_LINE_MAX + 2], what[64];
    const char *text;
    size_t len;
    int rc = read_line(p, line, &len, pl_now_ms() + ms);

    snprintf(what, sizeof(what), "after %s", after);
    if (rc != IO_OK)
        return io_fail(p, rc, what);
    rc = pl_pop3_status_parse(line, len, p->last_code, sizeof(p->last_code), &text);
    printable(p->last, sizeof(p->last), rc < 0 ? line : text,
              rc < 0 ? len : (size_t)(line + len - text));
    if (rc < 0) {
        char shown[64];
        printable(shown, sizeof(shown), line, len);
        fail(p, "not a status line %s: \"%s\"", what, shown);
        p->broken = 1;
        return PL_POP3_BROKEN;
    }
    return rc;
}

/* Reads one line of a multi-line response, unstuffed: 1 a line, 0 the
 * final ".", or PL_POP3_BROKEN. */
static int read_ml_line(struct pl_pop3 *p, char *line, const char **s, size_t *len,
                        const char *doing)
{
    int rc = read_line(p, line, len, pl_now_ms() + p->o.data_ms);
    if (rc != IO_OK)
        return io_fail(p, rc, doing);
    *s = line;
    if (*len > 0 && line[0] == '.') {
        if (*len == 1)
            return 0;
        (*s)++;
        (*len)--;
    }
    return 1;
}

/* Reads the rest of a multi-line response, calling line_fn per line. */
static int read_ml(struct pl_pop3 *p, const char *doing,
                   void (*line_fn)(void *arg, const char *s, size_t len), void *arg)
{
    char line[PL_POP3_LINE_MAX + 2];
    for (;;) {
        const char *s = line;
        size_t len;
        int rc = read_ml_line(p, line, &s, &len, doing);
        if (rc <= 0)
            return rc;
        if (line_fn != NULL)
            line_fn(arg, s, len);
    }
}

/* ---- TLS ---------------------------------------------------------------- */

static int tls_start(struct pl_pop3 *p, const char *name)
{
    SSL_CTX *ctx;
    SSL *ssl;
    long long deadline = pl_now_ms() + p->o.connect_ms;
    unsigned char tmp[16];
    int numeric = inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
    char t[160];

    ERR_clear_error();
    if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
        tls_errstr(t, sizeof(t));
        fail(p, "TLS: %s", t);
        return PL_POP3_BROKEN;
    }
    p->ssl_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);  /* a missing "." tells */
#endif
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (!p->o.insecure) {
        int ok = p->o.ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, p->o.ca_file, NULL)
                                      : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            tls_errstr(t, sizeof(t));
            fail(p, "cannot load the CA certificates%s%s: %s", p->o.ca_file ? " from " : "",
                 p->o.ca_file ? p->o.ca_file : "", t);
            return PL_POP3_BROKEN;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    if ((ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, p->fd) != 1) {
        SSL_free(ssl);
        tls_errstr(t, sizeof(t));
        fail(p, "TLS: %s", t);
        return PL_POP3_BROKEN;
    }
    p->ssl = ssl;
    if (!numeric && SSL_set_tlsext_host_name(ssl, name) != 1) {
        tls_errstr(t, sizeof(t));
        fail(p, "TLS: bad server name: %s", t);
        return PL_POP3_BROKEN;
    }
    if (!p->o.insecure) {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        int ok = numeric ? X509_VERIFY_PARAM_set1_ip_asc(vp, name)
                         : X509_VERIFY_PARAM_set1_host(vp, name, 0);
        if (ok != 1) {
            fail(p, "TLS: cannot check the certificate against \"%.100s\"", name);
            return PL_POP3_BROKEN;
        }
    }
    for (;;) {
        struct nopipe np;
        int r, rc;
        ERR_clear_error();
        errno = 0;
        nopipe_on(&np);
        r = SSL_connect(ssl);
        nopipe_off(&np);
        if (r == 1)
            break;
        rc = ssl_wait(p, r, deadline);
        if (rc == IO_OK)
            continue;
        if (SSL_get_verify_result(ssl) != X509_V_OK) {
            fail(p, "certificate verify failed: %s",
                 X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
            ERR_clear_error();
        } else if (rc == IO_TLS) {
            tls_errstr(t, sizeof(t));
            fail(p, "TLS handshake failed: %s", t);
        } else if (rc == IO_TIMEOUT) {
            fail(p, "timeout in the TLS handshake");
        } else if (rc == IO_EOF) {
            fail(p, "connection closed by the server in the TLS handshake");
        } else {
            fail(p, "TLS handshake: %s", strerror(errno));
        }
        return PL_POP3_BROKEN;
    }
    return PL_POP3_OK;
}

/* ---- connect, CAPA, login ---------------------------------------------- */

static int tcp_connect(struct pl_pop3 *p, const char *host, unsigned port)
{
    struct addrinfo hints, *res = NULL, *ai;
    char ports[16];
    long long deadline = pl_now_ms() + p->o.connect_ms;
    int rc, e = 0;

    if (port == 0 || port > 65535) {
        fail(p, "bad port %u", port);
        return -1;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(ports, sizeof(ports), "%u", port);
    if ((rc = getaddrinfo(host, ports, &hints, &res)) != 0) {
        fail(p, "%.100s: %s", host, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        socklen_t el = sizeof(e);
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                        ai->ai_protocol);
        if (fd < 0) {
            e = errno;
            continue;
        }
        {
            int one = 1;    /* pipelined commands go out at once (no Nagle wait) */
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            p->fd = fd;
            break;
        }
        if (errno != EINPROGRESS) {
            e = errno;
            close(fd);
            continue;
        }
        if ((rc = wait_fd(fd, POLLOUT, deadline)) != IO_OK) {
            e = rc == IO_TIMEOUT ? ETIMEDOUT : errno;
            close(fd);
            if (rc == IO_TIMEOUT)
                break;
            continue;
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) != 0 || e != 0) {
            if (e == 0)
                e = errno;
            close(fd);
            continue;
        }
        p->fd = fd;
        break;
    }
    freeaddrinfo(res);
    if (p->fd < 0) {
        fail(p, "connect to %.100s port %u: %s", host, port,
             e == ETIMEDOUT ? "timed out" : strerror(e ? e : ECONNREFUSED));
        return -1;
    }
    return 0;
}

static void caps_add(void *arg, const char *s, size_t len)
{
    pl_pop3_caps_line(arg, s, len);
}

/* CAPA: p->caps replaced on +OK, kept on -ERR. */
static int capa(struct pl_pop3 *p)
{
    struct pl_pop3_caps c;
    int rc;
    if (send_cmd(p, "CAPA", "CAPA") != PL_POP3_OK)
        return PL_POP3_BROKEN;
    if ((rc = read_status(p, p->o.cmd_ms, "CAPA")) < 0)
        return rc;
    if (rc == 0)
        return PL_POP3_NO;
    memset(&c, 0, sizeof(c));
    c.expire = -1;
    c.login_delay = -1;
    c.known = 1;
    if ((rc = read_ml(p, "reading the CAPA list", caps_add, &c)) < 0)
        return rc;
    p->caps = c;
    return PL_POP3_OK;
}

int pl_pop3_connect(struct pl_pop3 *p, const char *host, unsigned port,
                    const struct pl_pop3_opts *o)
{
    const char *name;
    int rc;

    memset(p, 0, sizeof(*p));
    p->fd = -1;
    p->caps.expire = -1;
    p->caps.login_delay = -1;
    if (o != NULL)
        p->o = *o;
    if (!p->o.connect_ms) p->o.connect_ms = DEF_MS;
    if (!p->o.cmd_ms) p->o.cmd_ms = DEF_MS;
    if (!p->o.data_ms) p->o.data_ms = DEF_DATA_MS;
    name = p->o.servername != NULL && *p->o.servername ? p->o.servername : host;
    p->broken = 1;                         /* until the greeting is in */
    if (host == NULL || tcp_connect(p, host, port) != 0)
        return PL_POP3_BROKEN;
    if (p->o.tls == PL_POP3_IMPLICIT_TLS && tls_start(p, name) != PL_POP3_OK)
        return PL_POP3_BROKEN;
    p->broken = 0;
    if ((rc = read_status(p, p->o.connect_ms, "connecting (the greeting)")) < 0)
        return rc;
    if (rc == 0) {
        fail(p, "the server refused the session: %s", p->last);
        p->broken = 1;
        return PL_POP3_BROKEN;
    }
    if (capa(p) < 0)
        return PL_POP3_BROKEN;
    if (p->o.tls == PL_POP3_STLS) {
        if (p->caps.known && !p->caps.stls) {
            fail(p, "the server does not announce STLS");
            p->broken = 1;
            return PL_POP3_BROKEN;
        }
        if (send_cmd(p, "STLS", "STLS") != PL_POP3_OK
            || (rc = read_status(p, p->o.cmd_ms, "STLS")) < 0)
            return PL_POP3_BROKEN;
        if (rc == 0) {
            fail(p, "STLS refused: %s", p->last);
            p->broken = 1;
            return PL_POP3_BROKEN;
        }
        if (p->ibeg != p->iend) {          /* sent before TLS: would pass as after it */
            fail(p, "the server sent data after its STLS reply, before TLS");
            p->broken = 1;
            return PL_POP3_BROKEN;
        }
        p->broken = 1;
        if (tls_start(p, name) != PL_POP3_OK)
            return PL_POP3_BROKEN;
        p->broken = 0;
        memset(&p->caps, 0, sizeof(p->caps));  /* what came before TLS counts no more */
        p->caps.expire = -1;
        p->caps.login_delay = -1;
        if (capa(p) < 0)
            return PL_POP3_BROKEN;
    }
    return PL_POP3_OK;
}

/* A user name or password must not end the command line early. */
static int has_ctl(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s == '\r' || *s == '\n')
            return 1;
    return 0;
}

/* After a login command: +OK -> CAPA again; -ERR -> PL_POP3_AUTH. */
static int login_result(struct pl_pop3 *p, int rc, const char *what)
{
    if (rc < 0)
        return PL_POP3_BROKEN;
    if (rc == 0) {
        fail(p, "%s refused: %s%s%s%s", what, p->last_code[0] ? "[" : "", p->last_code,
             p->last_code[0] ? "] " : "", p->last);
        return PL_POP3_AUTH;
    }
    p->err[0] = '\0';
    return capa(p) < 0 ? PL_POP3_BROKEN : PL_POP3_OK;
}

static int auth_plain(struct pl_pop3 *p, const char *user, const char *password)
{
    size_t ul = strlen(user), pl = strlen(password), rl = ul + pl + 2;
    unsigned char raw[2 * 256 + 2];
    char cmd[12 + 4 * ((sizeof(raw) + 2) / 3) + 1], line[PL_POP3_LINE_MAX + 2];
    char *b64 = cmd + 11;
    long long deadline;
    size_t len;
    int rc;

    raw[0] = '\0';
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, password, pl);
    memcpy(cmd, "AUTH PLAIN ", 11);
    EVP_EncodeBlock((unsigned char *)b64, raw, (int)rl);
    OPENSSL_cleanse(raw, sizeof(raw));
    rc = send_cmd(p, cmd, "AUTH PLAIN");
    if (rc != PL_POP3_OK) {
        OPENSSL_cleanse(cmd, sizeof(cmd));
        return rc;
    }
    /* "+ " is a continuation: a server that wants the response on its own. */
    deadline = pl_now_ms() + p->o.cmd_ms;
    if ((rc = read_line(p, line, &len, deadline)) != IO_OK) {
        OPENSSL_cleanse(cmd, sizeof(cmd));
        return io_fail(p, rc, "after AUTH PLAIN");
    }
    if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' ')) {
        rc = send_cmd(p, b64, "the AUTH PLAIN response");
        OPENSSL_cleanse(cmd, sizeof(cmd));
        if (rc != PL_POP3_OK)
            return rc;
        return login_result(p, read_status(p, p->o.cmd_ms, "AUTH PLAIN"), "AUTH PLAIN");
    }
    OPENSSL_cleanse(cmd, sizeof(cmd));
    {
        const char *text;
        rc = pl_pop3_status_parse(line, len, p->last_code, sizeof(p->last_code), &text);
        printable(p->last, sizeof(p->last), rc < 0 ? line : text,
                  rc < 0 ? len : (size_t)(line + len - text));
        if (rc < 0) {
            fail(p, "not a status line after AUTH PLAIN");
            p->broken = 1;
            return PL_POP3_BROKEN;
        }
    }
    return login_result(p, rc, "AUTH PLAIN");
}

int pl_pop3_login(struct pl_pop3 *p, const char *user, const char *password)
{
    char cmd[8 + 256];
    int rc;

    if (p->broken)
        return PL_POP3_BROKEN;
    if (user == NULL || password == NULL || *user == '\0' || has_ctl(user) || has_ctl(password)
        || strlen(user) > 255 || strlen(password) > 255) {
        fail(p, "bad user name or password (empty, too long or with a line break)");
        return PL_POP3_AUTH;
    }
    if (p->caps.sasl_plain)
        return auth_plain(p, user, password);
    snprintf(cmd, sizeof(cmd), "USER %s", user);
    if (send_cmd(p, cmd, "USER") != PL_POP3_OK)
        return PL_POP3_BROKEN;
    rc = read_status(p, p->o.cmd_ms, "USER");
    if (rc != 1)
        return login_result(p, rc, "USER");
    snprintf(cmd, sizeof(cmd), "PASS %s", password);
    rc = send_cmd(p, cmd, "PASS");
    OPENSSL_cleanse(cmd, sizeof(cmd));
    if (rc != PL_POP3_OK)
        return PL_POP3_BROKEN;
    return login_result(p, read_status(p, p->o.cmd_ms, "PASS"), "PASS");
}

/* ---- STAT, UIDL, LIST ---------------------------------------------------- */

/* Sends cmd and reads its status: PL_POP3_OK, PL_POP3_NO or BROKEN. */
static int simple(struct pl_pop3 *p, const char *cmd)
{
    int rc;
    if (p->broken)
        return PL_POP3_BROKEN;
    if (send_cmd(p, cmd, cmd) != PL_POP3_OK || (rc = read_status(p, p->o.cmd_ms, cmd)) < 0)
        return PL_POP3_BROKEN;
    return rc == 1 ? PL_POP3_OK : PL_POP3_NO;
}

static int proto_fail(struct pl_pop3 *p, const char *what)
{
    fail(p, "malformed %s reply: \"%.100s\"", what, p->last);
    p->broken = 1;
    return PL_POP3_BROKEN;
}

/* A whole one-line reply that does not parse: the session is still in
 * step (nothing more was sent), the answer just cannot be used. */
static int bad_line(struct pl_pop3 *p, const char *what)
{
    fail(p, "malformed %s reply: \"%.100s\"", what, p->last);
    return PL_POP3_BAD;
}

/* STAT's "count octets" (count may be 0; nothing may follow). */
static int stat_parse(const char *s, unsigned long *count, unsigned long long *octets)
{
    unsigned long long c = 0, o = 0;
    const char *q = s;
    for (; *q >= '0' && *q <= '9' && c <= 1000000000ULL; q++)
        c = c * 10 + (unsigned)(*q - '0');
    if (q == s || c > 1000000000ULL || *q++ != ' ')
        return -1;
    for (s = q; *q >= '0' && *q <= '9'; q++) {
        if (o > (~0ULL - 9) / 10)
            return -1;
        o = o * 10 + (unsigned)(*q - '0');
    }
    if (q == s || (*q != '\0' && *q != ' '))
        return -1;
    if (count != NULL)
        *count = (unsigned long)c;
    if (octets != NULL)
        *octets = o;
    return 0;
}

int pl_pop3_stat(struct pl_pop3 *p, unsigned long *count, unsigned long long *octets)
{
    int rc = simple(p, "STAT");
    if (rc != PL_POP3_OK)
        return rc;
    if (stat_parse(p->last, count, octets) != 0)
        return proto_fail(p, "STAT");
    return PL_POP3_OK;
}

struct listing {
    struct pl_pop3 *p;
    int uidl, stopped;
    pl_pop3_uidl_fn ufn;
    pl_pop3_list_fn lfn;
    pl_pop3_bad_fn bad;
    void *ctx;
};

static void listing_line(void *arg, const char *s, size_t len)
{
    struct listing *l = arg;
    unsigned long n;
    const char *why = "not \"n size\"";
    char id[PL_POP3_ID_MAX + 1], shown[PL_POP3_LINE_MAX + 1];
    unsigned long long size;
    int ok;

    if (l->uidl)
        ok = pl_pop3_uidl_parse(s, len, &n, id, &why) == 0;
    else
        ok = pl_pop3_list_parse(s, len, &n, &size) == 0;
    if (!ok) {
        if (l->bad != NULL) {
            printable(shown, sizeof(shown), s, len);
            l->bad(l->ctx, shown, why);
        }
        return;
    }
    if (l->stopped)
        return;
    l->stopped = l->uidl ? l->ufn(l->ctx, n, id) : l->lfn(l->ctx, n, size);
}

static int listing(struct pl_pop3 *p, struct listing *l)
{
    int rc = simple(p, l->uidl ? "UIDL" : "LIST");
    if (rc != PL_POP3_OK)
        return rc;
    l->p = p;
    return read_ml(p, l->uidl ? "reading the UIDL listing" : "reading the LIST listing",
                   listing_line, l) < 0 ? PL_POP3_BROKEN : PL_POP3_OK;
}

int pl_pop3_uidl(struct pl_pop3 *p, pl_pop3_uidl_fn fn, pl_pop3_bad_fn bad, void *ctx)
{
    struct listing l = {.uidl = 1, .ufn = fn, .bad = bad, .ctx = ctx};
    return listing(p, &l);
}

int pl_pop3_list(struct pl_pop3 *p, pl_pop3_list_fn fn, pl_pop3_bad_fn bad, void *ctx)
{
    struct listing l = {.uidl = 0, .lfn = fn, .bad = bad, .ctx = ctx};
    return listing(p, &l);
}

int pl_pop3_uidl_one(struct pl_pop3 *p, unsigned long msgno, char id[PL_POP3_ID_MAX + 1])
{
    char cmd[32];
    unsigned long n;
    const char *why;
    int rc;

    snprintf(cmd, sizeof(cmd), "UIDL %lu", msgno);
    if ((rc = simple(p, cmd)) != PL_POP3_OK)
        return rc;
    if (pl_pop3_uidl_parse(p->last, strlen(p->last), &n, id, &why) != 0 || n != msgno)
        return bad_line(p, "UIDL n");
    return PL_POP3_OK;
}

int pl_pop3_list_one(struct pl_pop3 *p, unsigned long msgno, unsigned long long *size)
{
    char cmd[32];
    unsigned long n;
    int rc;

    snprintf(cmd, sizeof(cmd), "LIST %lu", msgno);
    if ((rc = simple(p, cmd)) != PL_POP3_OK)
        return rc;
    if (pl_pop3_list_parse(p->last, strlen(p->last), &n, size) != 0 || n != msgno)
        return bad_line(p, "LIST n");
    return PL_POP3_OK;
}

/* ---- TOP / RETR ----------------------------------------------------------- */

/* Writes the fetch commands for msgnos[from..to) in one write. */
static int send_fetch(struct pl_pop3 *p, const unsigned long *msgnos, size_t from, size_t to,
                      long lines)
{
    char buf[PL_POP3_WINDOW_MAX * 48];
    size_t n = 0;
    int rc;
    for (size_t i = from; i < to; i++) {
        int k = lines < 0 ? snprintf(buf + n, sizeof(buf) - n, "RETR %lu\r\n", msgnos[i])
                          : snprintf(buf + n, sizeof(buf) - n, "TOP %lu %ld\r\n", msgnos[i], lines);
        n += (size_t)k;
    }
    if ((rc = out_write(p, buf, n, pl_now_ms() + p->o.cmd_ms)) != IO_OK)
        return io_fail(p, rc, lines < 0 ? "sending RETR" : "sending TOP");
    return PL_POP3_OK;
}

/* A callback stopped the run: the rest cannot be read cleanly. */
static int stopped(struct pl_pop3 *p, int r, size_t i)
{
    fail(p, "fetch stopped by the caller at message %zu", i);
    p->broken = 1;
    return r;
}

int pl_pop3_fetch(struct pl_pop3 *p, const unsigned long *msgnos, size_t n, long lines,
                  unsigned window, const struct pl_pop3_fetch_cb *cb)
{
    char out[2 * sizeof(p->in) + 2];
    const char *cmdname = lines < 0 ? "RETR" : "TOP";
    size_t sent;
    int r;

    if (p->broken)
        return PL_POP3_BROKEN;
    if (n == 0)
        return PL_POP3_OK;
    if (!p->caps.pipelining)
        window = 1;
    else if (window == 0)
        window = WINDOW_DEF;
    if (window > PL_POP3_WINDOW_MAX)
        window = PL_POP3_WINDOW_MAX;
    sent = n < window ? n : window;
    if (send_fetch(p, msgnos, 0, sent, lines) != PL_POP3_OK)
        return PL_POP3_BROKEN;
    for (size_t i = 0; i < n; i++) {
        int rc = read_status(p, p->o.cmd_ms, cmdname);
        if (rc < 0)
            return PL_POP3_BROKEN;
        if (rc == 0) {
            if (cb->end != NULL && (r = cb->end(cb->ctx, i, PL_POP3_NO)) != 0)
                return stopped(p, r, i);
        } else {
            struct pl_pop3_ml m;
            if (cb->begin != NULL && (r = cb->begin(cb->ctx, i)) != 0)
                return stopped(p, r, i);
            pl_pop3_ml_init(&m);
            while (!m.done) {
                size_t olen, used;
                if (p->ibeg == p->iend && (rc = in_fill(p, pl_now_ms() + p->o.data_ms)) != IO_OK) {
                    char what[64];
                    snprintf(what, sizeof(what), "in the body of message %lu", msgnos[i]);
                    io_fail(p, rc, what);
                    if (cb->end != NULL)
                        cb->end(cb->ctx, i, PL_POP3_BROKEN);
                    return PL_POP3_BROKEN;
                }
                used = pl_pop3_ml_feed(&m, p->in + p->ibeg, p->iend - p->ibeg, out, &olen);
                p->ibeg += used;
                if (olen > 0 && cb->data != NULL && (r = cb->data(cb->ctx, i, out, olen)) != 0)
                    return stopped(p, r, i);
            }
            if (cb->end != NULL && (r = cb->end(cb->ctx, i, PL_POP3_OK)) != 0)
                return stopped(p, r, i);
        }
        if (sent < n) {
            if (send_fetch(p, msgnos, sent, sent + 1, lines) != PL_POP3_OK)
                return PL_POP3_BROKEN;
            sent++;
        }
    }
    return PL_POP3_OK;
}

/* ---- QUIT ------------------------------------------------------------------ */

void pl_pop3_close(struct pl_pop3 *p)
{
    if (p->fd >= 0 && !p->broken) {
        unsigned saved = p->o.cmd_ms;
        p->o.cmd_ms = QUIT_MS;
        if (send_cmd(p, "QUIT", "QUIT") == PL_POP3_OK)
            (void)read_status(p, QUIT_MS, "QUIT");
        p->o.cmd_ms = saved;
    }
    if (p->ssl != NULL) {
        struct nopipe np;
        if (!p->broken) {
            nopipe_on(&np);
            (void)SSL_shutdown(p->ssl);    /* non-blocking: one try */
            nopipe_off(&np);
        }
        SSL_free(p->ssl);
        p->ssl = NULL;
    }
    if (p->ssl_ctx != NULL) {
        SSL_CTX_free(p->ssl_ctx);
        p->ssl_ctx = NULL;
    }
    ERR_clear_error();
    if (p->fd >= 0) {
        close(p->fd);
        p->fd = -1;
    }
    p->broken = 1;
    if (p->err[0] == '\0')
        snprintf(p->err, sizeof(p->err), "session closed");
}
