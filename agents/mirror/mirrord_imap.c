/* mirrord_imap.c -- an IMAP primary for a sync (mirrord_sync_int.h, struct
 * mprimary).  The mailbox is INBOX, opened read-only: EXAMINE, never
 * SELECT; messages are read with BODY.PEEK[] (headers with
 * BODY.PEEK[HEADER]), which set no \Seen; there is no STORE, no EXPUNGE,
 * no COPY here.  A message's number is its UID, its id
 * "<UIDVALIDITY>.<UID>": when the server's UIDVALIDITY changes, no listed
 * id is one the mirror knows and mirrord_remap re-keys the saved ids by
 * Message-ID and size.  stat_count is the EXISTS count, the listing
 * "UID FETCH 1:* (UID RFC822.SIZE)".
 *
 * libcurl makes the connection (imaps: TLS from the first byte; imap:
 * STARTTLS, required, unless the account says --plain),
 * checks the certificate and logs in (AUTHENTICATE PLAIN or LOGIN, as the
 * server offers), in CONNECT_ONLY mode; then the commands go over
 * curl_easy_send and the responses are read with lib/imap_resp.c, because
 * libcurl's own custom requests lose literals (see lib/imap_resp.h). */
#include "config.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <strings.h>
#include <time.h>

#include "monotime.h"
#include "curl_easy.h"
#include "imap_resp.h"
#include "log.h"
#include "mirrord_sync_int.h"

#define CHUNK 64                     /* UIDs per UID FETCH */
#define LOGOUT_MS 2000

struct imap {
    CURL *h;
    struct pl_curl_xfer x;
    curl_socket_t fd;
    struct pl_imap_rd rd;
    char in[16384];
    size_t ibeg, iend;
    unsigned tagn;
    char tag[16];
    int broken;
    unsigned ms;                     /* each wait for the server */
    unsigned long exists, uidvalidity;
    int got_exists, examined;
    unsigned long long bytes_in;
    char err[300], last[300];
};

static struct imap *I(struct sync *s) { return s->pctx; }


static int __attribute__((format(printf, 2, 3))) broke(struct imap *m, const char *fmt, ...)
{
    va_list ap;
    if (!m->broken) {
        va_start(ap, fmt);
        vsnprintf(m->err, sizeof(m->err), fmt, ap);
        va_end(ap);
    }
    m->broken = 1;
    return PL_POP3_BROKEN;
}

static int wait_fd(struct imap *m, short ev, unsigned ms)
{
    struct pollfd p = {.fd = m->fd, .events = ev};
    long long end = pl_now_ms() + ms;
    for (;;) {
        long long left = end - pl_now_ms();
        int n;
        if (left <= 0)
            return -1;
        n = poll(&p, 1, (int)left);
        if (n > 0)
            return 0;
    }
}

static int send_line(struct imap *m, const char *cmd)
{
    struct pl_strbuf b = {0};
    size_t off = 0;
    int rc = PL_POP3_OK;

    snprintf(m->tag, sizeof(m->tag), "pl%u", ++m->tagn);
    pl_strbuf_addf(&b, "%s %s\r\n", m->tag, cmd);
    while (off < b.len) {
        size_t n = 0;
        CURLcode c = curl_easy_send(m->h, b.s + off, b.len - off, &n);
        if (c == CURLE_AGAIN) {
            if (wait_fd(m, POLLOUT, m->ms) != 0) {
                rc = broke(m, "timeout sending %s", cmd);
                break;
            }
            continue;
        }
        if (c != CURLE_OK) {
            rc = broke(m, "sending a command: %s", curl_easy_strerror(c));
            break;
        }
        off += n;
    }
    pl_strbuf_free(&b);
    return rc;
}

/* The next whole response into m->rd. */
static int read_resp(struct imap *m, unsigned ms)
{
    for (;;) {
        if (m->ibeg < m->iend) {
            size_t used = 0;
            int rc = pl_imap_rd_feed(&m->rd, m->in + m->ibeg, m->iend - m->ibeg, &used);
            m->ibeg += used;
            if (rc == 1)
                return PL_POP3_OK;
            if (rc < 0)
                return broke(m, "malformed response from the primary: %s", m->rd.err);
            continue;
        }
        size_t n = 0;
        CURLcode c = curl_easy_recv(m->h, m->in, sizeof(m->in), &n);
        if (c == CURLE_AGAIN) {
            if (wait_fd(m, POLLIN, ms) != 0)
                return broke(m, "timeout waiting for the primary (after %s)", m->tag);
            continue;
        }
        if (c != CURLE_OK)
            return broke(m, "reading from the primary: %s", curl_easy_strerror(c));
        if (n == 0)
            return broke(m, "connection closed by the primary (after %s)", m->tag);
        m->ibeg = 0;
        m->iend = n;
        m->bytes_in += n;
    }
}

/* Printable copy of s into dst. */
static void printable(char *dst, size_t len, const char *s)
{
    size_t k = 0;
    for (; *s && k + 1 < len; s++)
        dst[k++] = (unsigned char)*s < 0x20 || *s == 0x7f ? '?' : *s;
    dst[k] = '\0';
}

/* Sends cmd and reads to its tagged status: PL_IMAP_OK/NO/BAD (m->last
 * has the text), or PL_POP3_BROKEN.  Every untagged response goes to fn
 * (EXISTS and EXPUNGE are counted here too). */
static int run(struct imap *m, const char *cmd, unsigned ms,
               int (*fn)(void *ctx, struct pl_imap_rd *rd), void *ctx)
{
    if (m->broken)
        return PL_POP3_BROKEN;
    if (send_line(m, cmd) != PL_POP3_OK)
        return PL_POP3_BROKEN;
    for (;;) {
        const char *rest;
        unsigned long n;
        int st;
        if (read_resp(m, ms) != PL_POP3_OK)
            return PL_POP3_BROKEN;
        if ((st = pl_imap_tagged(m->rd.text, m->tag, &rest)) >= 0) {
            printable(m->last, sizeof(m->last), rest);
            return st;
        }
        if (strncmp(m->rd.text, "* ", 2) != 0)
            continue;               /* "+ ..." or another tag: not ours to answer */
        if (pl_imap_untagged_num(m->rd.text, "EXISTS", &n) == 0) {
            m->exists = n;
            m->got_exists = 1;
        } else if (pl_imap_untagged_num(m->rd.text, "EXPUNGE", &n) == 0 && m->exists)
            m->exists--;
        else if (pl_imap_code_num(m->rd.text, "UIDVALIDITY", &n) == 0) {
            if (m->examined && n != m->uidvalidity)
                return broke(m, "UIDVALIDITY changed during the session (%lu, now %lu)",
                             m->uidvalidity, n);
            m->uidvalidity = n;
        }
        else if (strncasecmp(m->rd.text, "* BYE", 5) == 0)
            printable(m->last, sizeof(m->last), m->rd.text);
        if (fn && fn(ctx, &m->rd) != 0) {
            m->broken = 1;          /* the rest cannot be skipped cleanly */
            snprintf(m->err, sizeof(m->err), "stopped in the middle of %s", m->tag);
            return PL_POP3_BROKEN;
        }
    }
}

/* ---- open ------------------------------------------------------------- */

static int imap_open(struct sync *s, const char *scheme, const char *host, unsigned port,
                     const char *pw)
{
    struct imap *m = pl_xcalloc(1, sizeof(*m));
    const char *name = s->a->tls_name[0] ? s->a->tls_name : host;
    struct pl_strbuf url = {0}, to = {0};
    struct curl_slist *ct = NULL;
    char err[CURL_ERROR_SIZE + 300];
    CURLcode c;
    int v6 = strchr(name, ':') != NULL, rc;

    s->pctx = m;
    m->broken = 1;                   /* until logged in */
    m->fd = CURL_SOCKET_BAD;
    m->ms = (unsigned)s->cfg->mirror_timeout * 1000u;
    pl_imap_rd_init(&m->rd, (size_t)s->cfg->mirror_max_message + 1);
    snprintf(m->err, sizeof(m->err), "not connected");
    if ((m->h = pl_curl_new(&m->x, "imap,imaps", (unsigned)s->cfg->mirror_timeout, err,
                            sizeof(err))) == NULL) {
        mirrord_fail(s, "%s", err);
        return -1;
    }
    /* the URL names what the certificate must show; CONNECT_TO the host */
    pl_strbuf_addf(&url, "%s://%s%s%s:%u/", scheme, v6 ? "[" : "", name, v6 ? "]" : "", port);
    if (strcmp(name, host) != 0) {
        pl_strbuf_addf(&to, "%s:%u:%s%s%s:%u", name, port, strchr(host, ':') ? "[" : "", host,
                       strchr(host, ':') ? "]" : "", port);
        ct = curl_slist_append(NULL, to.s);
        curl_easy_setopt(m->h, CURLOPT_CONNECT_TO, ct);
    }
    curl_easy_setopt(m->h, CURLOPT_URL, url.s);
    curl_easy_setopt(m->h, CURLOPT_USERNAME, s->a->login);
    curl_easy_setopt(m->h, CURLOPT_PASSWORD, pw);
    curl_easy_setopt(m->h, CURLOPT_CONNECT_ONLY, 1L);
    if (strcmp(scheme, "imap") == 0 && !s->a->plain)
        curl_easy_setopt(m->h, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);   /* STARTTLS, required */
    if (s->a->ca_file[0])
        curl_easy_setopt(m->h, CURLOPT_CAINFO, s->a->ca_file);
    if (s->a->insecure) {
        curl_easy_setopt(m->h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(m->h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    c = curl_easy_perform(m->h);
    curl_easy_setopt(m->h, CURLOPT_PASSWORD, "");   /* curl keeps its own copy no longer */
    curl_slist_free_all(ct);
    pl_strbuf_free(&url);
    pl_strbuf_free(&to);
    if (c == CURLE_LOGIN_DENIED) {
        const char *b = m->x.bad;
        s->r->auth_failed = strstr(b, "[UNAVAILABLE]") == NULL && strstr(b, "[INUSE]") == NULL &&
                            strstr(b, "[LIMIT]") == NULL;
        b += strcspn(b, " ");
        mirrord_fail(s, "the primary refused the login of %s: %s", s->a->login,
                     *b ? b + 1 : "login denied");
        return -1;
    }
    if (c == CURLE_USE_SSL_FAILED) {
        mirrord_fail(s, "%s:%u does not offer STARTTLS: use imaps://, or --plain to send the "
                     "password in the clear", host, port);
        return -1;
    }
    if (c != CURLE_OK) {
        pl_curl_err(err, sizeof(err), c, 0, &m->x);
        mirrord_fail(s, "cannot connect to %s:%u: %s", host, port, err);
        return -1;
    }
    if (curl_easy_getinfo(m->h, CURLINFO_ACTIVESOCKET, &m->fd) != CURLE_OK ||
        m->fd == CURL_SOCKET_BAD) {
        mirrord_fail(s, "cannot connect to %s:%u: no socket after the login", host, port);
        return -1;
    }
    m->broken = 0;
    m->err[0] = '\0';
    rc = run(m, "EXAMINE INBOX", m->ms, NULL, NULL);
    if (rc != PL_IMAP_OK) {
        mirrord_fail(s, "EXAMINE INBOX %s: %s", rc < 0 ? "failed" : "refused",
                     rc < 0 ? m->err : m->last);
        return -1;
    }
    if (m->uidvalidity == 0 || !m->got_exists) {
        mirrord_fail(s, "the primary's EXAMINE INBOX gave no %s",
                     m->uidvalidity == 0 ? "UIDVALIDITY" : "EXISTS");
        return -1;
    }
    m->examined = 1;                 /* from now on UIDVALIDITY may not change */
    return 0;
}

/* ---- listing ------------------------------------------------------------ */

static void bad_line(struct sync *s, const char *text, const char *why)
{
    if (s->r->bad_lines++ < 3)
        msg_warn("mirror %s: the primary's listing has a bad line (%s): \"%.80s\"", s->a->user,
                 why, text);
}

static int on_listed(void *ctx, struct pl_imap_rd *rd)
{
    struct sync *s = ctx;
    struct pl_imap_fetch f;
    struct lid *l;
    char id[32];
    int rc = pl_imap_fetch_parse(rd->text, &f);

    if (rc == 1)
        return 0;
    if (rc < 0 || rd->cut) {
        bad_line(s, rd->text, "malformed FETCH");
        return 0;
    }
    if (f.uid == 0 && !f.has_size)
        return 0;                    /* FLAGS news from another session */
    if (f.uid == 0 || !f.has_size) {
        bad_line(s, rd->text, f.uid ? "no RFC822.SIZE" : "no UID");
        return 0;
    }
    if (s->nids > I(s)->exists + 1000) {
        bad_line(s, rd->text, "more FETCH responses than EXISTS said");
        return 1;                    /* an endless listing: stop */
    }
    snprintf(id, sizeof(id), "%lu.%lu", I(s)->uidvalidity, f.uid);
    l = mirrord_add_id(s, f.uid, id);
    l->size = f.size;
    l->sized = 1;
    return 0;
}

static int imap_listing(struct sync *s)
{
    struct imap *m = I(s);
    int rc = m->exists ? run(m, "UID FETCH 1:* (UID RFC822.SIZE)", m->ms, on_listed, s)
                       : PL_IMAP_OK;
    if (rc != PL_IMAP_OK) {
        mirrord_fail(s, "UID FETCH (the listing) %s: %s", rc < 0 ? "failed" : "refused",
                     rc < 0 ? m->err : m->last);
        return -1;
    }
    s->r->stat_count = m->exists;
    s->sized_all = 1;                /* RFC822.SIZE came with every UID */
    qsort(s->ids, s->nids, sizeof(*s->ids), mirrord_by_msgno);
    return 0;
}

/* ---- fetch ---------------------------------------------------------------- */

struct fetchrun {
    struct sync *s;
    const unsigned long *uids;      /* this chunk's, from index off of the call */
    size_t off, n;
    char *done;
    const struct pl_pop3_fetch_cb *cb;
};

static int on_fetched(void *ctx, struct pl_imap_rd *rd)
{
    struct fetchrun *f = ctx;
    struct pl_imap_fetch x;
    size_t i;
    int rc;

    if (rd->cut || pl_imap_fetch_parse(rd->text, &x) != 0 || x.uid == 0 || x.body == 0)
        return 0;                    /* not a message of ours */
    for (i = 0; i < f->n && (f->uids[i] != x.uid || f->done[i]); i++)
        ;
    if (i == f->n)
        return 0;
    f->done[i] = 1;
    i += f->off;
    if ((rc = f->cb->begin(f->cb->ctx, i)) != 0)
        return rc;
    if (x.body == 1 && rd->body_len) {
        rc = f->cb->data(f->cb->ctx, i, rd->body, rd->body_len);
    } else if (x.body == 2) {
        char *q = pl_xmalloc(x.qlen + 1);
        rc = f->cb->data(f->cb->ctx, i, q, pl_imap_unquote(x.q, x.qlen, q));
        free(q);
    }
    return rc ? rc : f->cb->end(f->cb->ctx, i, PL_POP3_OK);
}

static int imap_fetch(struct sync *s, const unsigned long *msgnos, size_t n, long lines,
                      const struct pl_pop3_fetch_cb *cb)
{
    struct imap *m = I(s);
    struct pl_strbuf cmd = {0};
    char *done = pl_xcalloc(CHUNK, 1);
    int rc = PL_POP3_OK;

    for (size_t off = 0; off < n && rc == PL_POP3_OK; off += CHUNK) {
        size_t k = n - off < CHUNK ? n - off : CHUNK;
        struct fetchrun f = {s, msgnos + off, off, k, done, cb};
        int st;
        cmd.len = 0;
        pl_strbuf_adds(&cmd, "UID FETCH ");
        for (size_t i = 0; i < k; i++)
            pl_strbuf_addf(&cmd, "%s%lu", i ? "," : "", msgnos[off + i]);
        /* BODY.PEEK: the primary's \Seen stays as it is (never BODY[] or RFC822) */
        pl_strbuf_adds(&cmd, lines == 0 ? " (UID BODY.PEEK[HEADER])" : " (UID BODY.PEEK[])");
        memset(done, 0, CHUNK);
        st = run(m, cmd.s, m->ms, on_fetched, &f);
        if (st < 0) {
            rc = m->broken && strncmp(m->err, "stopped", 7) == 0 ? 1 : PL_POP3_BROKEN;
            break;
        }
        if (st != PL_IMAP_OK)
            msg_warn("mirror %s: the primary refused UID FETCH: %s", s->a->user, m->last);
        for (size_t i = 0; i < k && rc == PL_POP3_OK; i++)
            if (!done[i]) {
                if (st == PL_IMAP_OK)
                    snprintf(m->last, sizeof(m->last), "no message with UID %lu now",
                             msgnos[off + i]);
                if (cb->end(cb->ctx, off + i, PL_POP3_NO) != 0)
                    rc = 1;
            }
    }
    free(done);
    pl_strbuf_free(&cmd);
    return rc;
}

static const char *imap_error(struct sync *s) { return I(s)->err; }
static const char *imap_last(struct sync *s) { return I(s)->last; }

static void imap_close(struct sync *s)
{
    struct imap *m = I(s);
    if (m == NULL)
        return;
    if (m->h && !m->broken && m->fd != CURL_SOCKET_BAD)
        (void)run(m, "LOGOUT", LOGOUT_MS, NULL, NULL);
    s->r->bytes_in = m->bytes_in;
    if (m->h) {
        /* curl's own LOGOUT at cleanup must not wait on a broken stream */
        if (m->broken && m->fd != CURL_SOCKET_BAD)
            shutdown(m->fd, SHUT_RDWR);
        curl_easy_setopt(m->h, CURLOPT_SERVER_RESPONSE_TIMEOUT, 2L);
        curl_easy_cleanup(m->h);
    }
    pl_imap_rd_free(&m->rd);
    free(m);
    s->pctx = NULL;
}

/* no count/probe (always listed in full: one UID FETCH is cheap), no
 * sizes (the listing has them) */
const struct mprimary mirrord_imap_primary = {
    .open = imap_open, .listing = imap_listing, .fetch = imap_fetch,
    .error = imap_error, .last = imap_last, .close = imap_close, .exact_size = 1,
};
