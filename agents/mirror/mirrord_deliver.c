/* mirrord_deliver.c -- postlink-mirrord's destination side: a mirrored
 * copy is handed to Postfix (mirror_inject_url, else reinject_url: the
 * listener without milters) over one SMTP session per sync, with
 * "X-Postlink-Mirror: <token>" in front so that the copy can be found
 * again; a copy whose original was read on the primary is expunged from,
 * or marked in, the user's mailbox over IMAP (imap_url of its domain). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "address.h"
#include "header.h"
#include "log.h"
#include "mailout.h"
#include "mirrord.h"
#include "netmatch.h"
#include "strutil.h"

static int inject_addr(const struct pl_cfg *cfg, char *host, size_t hlen, unsigned *port)
{
    const char *u = cfg->mirror_inject_url[0] ? cfg->mirror_inject_url : cfg->reinject_url;
    if (strncmp(u, "smtp://", 7) != 0)
        return -1;
    char hp[300];
    snprintf(hp, sizeof(hp), "%s", u + 7);
    size_t n = strlen(hp);
    if (n && hp[n - 1] == '/')
        hp[n - 1] = '\0';
    return pl_hostport_split(hp, host, hlen, port) == 0 ? 0 : -1;
}

static int out_open(struct mout *o, const struct pl_cfg *cfg, char *why, size_t whylen)
{
    char host[256], err[256];
    unsigned port;
    int fd;
    struct pl_smtpc_timeouts to = {0};
    if (o->open)
        return 0;
    if (inject_addr(cfg, host, sizeof(host), &port) != 0) {
        snprintf(why, whylen, "mirror_inject_url/reinject_url is not smtp://IP:PORT");
        return -1;
    }
    if ((fd = pl_smtpc_connect_tcp(host, port, 10000, err, sizeof(err))) < 0) {
        snprintf(why, whylen, "cannot reach Postfix at %s:%u: %s", host, port, err);
        return -1;
    }
    to.greeting_ms = to.ehlo_ms = to.mail_ms = to.rcpt_ms = to.data_ms =
        (unsigned)cfg->mirror_timeout * 1000u;
    to.dot_ms = to.body_ms = 2u * (unsigned)cfg->mirror_timeout * 1000u;
    pl_smtpc_init(&o->c, fd, &to);
    if (pl_smtpc_open(&o->c, NULL, md.hostname) != 0) {
        snprintf(why, whylen, "Postfix at %s:%u: %s", host, port, o->c.err);
        close(fd);
        return -1;
    }
    o->open = 1;
    return 0;
}

void mirrord_out_close(struct mout *o)
{
    if (!o->open)
        return;
    pl_smtpc_quit(&o->c);
    close(o->c.fd);
    o->open = 0;
}

static int has_8bit(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] & 0x80)
            return 1;
    return 0;
}

/* The message into b without any X-Postlink-Mirror field of its own
 * header (with their continuation lines): the copy carries one field
 * only, the mirror's, so that the guard always sees the token. */
static void add_without_ours(struct pl_strbuf *b, const char *msg, size_t len)
{
    const char *p = msg, *end = msg + len;
    size_t nl = strlen(MIRROR_HEADER);
    int skipping = 0;
    while (p < end) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        size_t ll = e ? (size_t)(e - p) + 1 : (size_t)(end - p);
        if (ll == 1 || (ll == 2 && p[0] == '\r'))
            break;                  /* the end of the header */
        if (*p == ' ' || *p == '\t') {
            if (!skipping)
                pl_strbuf_addn(b, p, ll);
        } else {
            skipping = ll > nl && strncasecmp(p, MIRROR_HEADER, nl) == 0 &&
                       (p[nl] == ':' || p[nl] == ' ' || p[nl] == '\t');
            if (!skipping)
                pl_strbuf_addn(b, p, ll);
        }
        p += ll;
    }
    pl_strbuf_addn(b, p, (size_t)(end - p));
}

int mirrord_handover(struct mout *o, const struct pl_maccount *a, const char *token,
                     const char *msg, size_t len, char *qid, size_t qidlen, char *why,
                     size_t whylen)
{
    const struct pl_cfg *cfg = atomic_load(&md.cfg);
    struct pl_smtpc_rcpt rc = {0};
    struct pl_smtpc_msg m = {0};
    struct pl_smtpc_result res;
    struct pl_strbuf b = {0};
    int ret;

    qid[0] = '\0';
    if (out_open(o, cfg, why, whylen) != 0)
        return -1;
    pl_strbuf_addf(&b, "%s: <%s>\r\n", MIRROR_HEADER, token);
    add_without_ours(&b, msg, len);
    rc.addr = a->deliver_to;
    m.sender = cfg->mirror_sender;
    m.body = has_8bit(msg, len) ? PL_SMTPC_BODY_8BITMIME : PL_SMTPC_BODY_NONE;
    m.size = b.len;
    m.rcpts = &rc;
    m.nrcpts = 1;
    m.data = b.s;
    m.len = b.len;
    if (pl_smtpc_send(&o->c, &m, &res) == 0 && res.dot.code >= 200 && res.dot.code < 300) {
        const char *q = strstr(res.dot.text, "queued as ");
        if (q)
            snprintf(qid, qidlen, "%.*s", (int)strcspn(q + 10, " \n"), q + 10);
        ret = 0;
    } else if (res.stage == PL_SMTPC_AFTER_DOT) {
        snprintf(why, whylen, "no reply from Postfix after the message (%s)", res.err);
        ret = -2;
    } else {
        /* the first refusal is the reason (a refused MAIL makes DATA's 503) */
        const struct pl_smtp_reply *r = res.mail.code >= 400 ? &res.mail
                                        : rc.reply.code == 0 || rc.reply.code >= 400 ? &rc.reply
                                        : res.data.code == 0 || res.data.code >= 400 ? &res.data
                                                                                     : &res.dot;
        /* For good only what this message can never pass: its size (552 or
         * 5.3.x at MAIL or after the data) or its form (5.6.x after the
         * data).  Another 5xx after the data (a filter, a milter) refuses
         * this copy now: it stays pending and is tried again next sync
         * (a broken filter must not turn every new message into "seen").
         * A 5xx at MAIL, RCPT or DATA otherwise, or a refusal here (no
         * 8BITMIME), refuses every copy: the sync fails. */
        int sized = r->code == 552 || strncmp(r->enh, "5.3.", 4) == 0;
        int final = (r == &res.mail && sized) ||
                    (r == &res.dot && (sized || strncmp(r->enh, "5.6.", 4) == 0));
        if (r->code >= 500 && final) {
            snprintf(why, whylen, "Postfix refused the copy for %s: %d %s", a->deliver_to, r->code,
                     r->text);
            ret = 1;
        } else if (r->code >= 500 && r == &res.dot) {
            snprintf(why, whylen, "Postfix refused this copy for %s (tried again next sync): %d %s",
                     a->deliver_to, r->code, r->text);
            ret = -3;
        } else if (r->code >= 500 || res.local == PL_SMTPC_LOCAL_PERM) {
            snprintf(why, whylen, "Postfix refuses copies for %s: %d %s", a->deliver_to,
                     r->code, r->code ? r->text : res.err);
            ret = -1;
        } else {
            snprintf(why, whylen, "Postfix did not take the copy for %s now: %s", a->deliver_to,
                     r->code ? r->text : res.err);
            ret = -1;
        }
        if (o->c.broken)
            mirrord_out_close(o);
        else if (pl_smtpc_rset(&o->c) != 0)
            mirrord_out_close(o);
    }
    if (ret == -2)
        mirrord_out_close(o);
    pl_strbuf_free(&b);
    return ret;
}

int mirrord_withdraw(const struct pl_maccount *a, const char *const *tokens, size_t n,
                     int expunge, int *found, char *why, size_t whylen)
{
    const struct pl_cfg *cfg = atomic_load(&md.cfg);
    struct pl_strbuf login = {0}, vals = {0};
    struct pl_imap_login l;
    const char **v;
    size_t nv = 0;
    int rc;

    *found = 0;
    l.url = pl_cfg_list_map(cfg->imap_url_list, pl_addr_domain(a->deliver_to));
    if (l.url == NULL || md.imap_password == NULL)
        return 1;
    for (const char *p = cfg->imap_login; *p; p++) {
        if (p[0] == '%' && p[1] == 'u') {
            pl_strbuf_adds(&login, a->deliver_to);
            p++;
        } else {
            pl_strbuf_addc(&login, *p);
        }
    }
    l.user = login.s;
    l.password = md.imap_password;
    /* the header holds "<token>": the values side by side in one buffer */
    for (size_t i = 0; i < n; i++)
        if (tokens[i][0]) {
            pl_strbuf_addf(&vals, "<%s>", tokens[i]);
            pl_strbuf_addn(&vals, "", 1);
        }
    v = pl_xmalloc((n ? n : 1) * sizeof(*v));
    for (size_t off = 0; off < vals.len; off += strlen(vals.s + off) + 1)
        v[nv++] = vals.s + off;
    rc = pl_imap_by_tokens(&l, MIRROR_HEADER, v, nv, "\\Seen $PostlinkPrimaryRead", expunge,
                           (unsigned)cfg->mirror_timeout, found, why, whylen);
    free(v);
    pl_strbuf_free(&vals);
    pl_strbuf_free(&login);
    return rc == PL_OUT_OK ? 0 : -1;
}

void mirrord_msgid(const char *msg, size_t len, char *out, size_t outlen)
{
    const char *p = msg, *end = msg + len;
    out[0] = '\0';
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t ll = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (ll == 0 || (ll == 1 && p[0] == '\r'))
            return;                 /* the end of the header */
        if (ll > 11 && strncasecmp(p, "Message-ID:", 11) == 0) {
            /* the field with its folded continuation lines, unfolded */
            char v[1024];
            size_t n = 0;
            const char *q = p + 11;
            for (;;) {
                const char *e = nl ? nl : end;
                while (q < e && n + 1 < sizeof(v))
                    v[n++] = *q == '\r' || *q == '\t' ? ' ' : *q, q++;
                if (nl == NULL || nl + 1 >= end || (nl[1] != ' ' && nl[1] != '\t'))
                    break;
                q = nl + 1;
                nl = memchr(q, '\n', (size_t)(end - q));
            }
            v[n] = '\0';
            if (pl_msgid_parse(v, out, outlen, NULL) != 0)
                out[0] = '\0';
            return;
        }
        p = nl ? nl + 1 : end;
    }
}
