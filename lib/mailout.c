/* mailout.c -- postlink's outgoing side (mailout.h) on libcurl's easy
 * interface: hand a message to Postfix over SMTP, and add or remove IMAP
 * flags on the messages of an INBOX that carry a given Message-ID.
 *
 * Everything that ends up in a protocol line (addresses, Message-ID, flags,
 * HELO name, login) is checked before any connection is made; malformed
 * input is PL_OUT_PERM.  Trouble on the way (no connection, timeout, 4xx,
 * NO/BAD, a failed login) is PL_OUT_TEMP; only an SMTP 5xx reply is
 * PL_OUT_PERM.  err gets curl's error, the reply code and the server's last
 * reply line.  The curl handle set-up is lib/curl_easy.c. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "curl_easy.h"
#include "mailout.h"
#include "strutil.h"

#define DEFAULT_TIMEOUT_S 30
#define MAX_CAPTURE (1024 * 1024)   /* untagged IMAP replies we keep */
#define MAX_MSGID 998

/* "scheme://authority" of url plus suffix, or NULL if url has no "://", or
 * holds characters that have no place in a URL. */
static char *url_with_path(const char *url, const char *suffix)
{
    const char *p = strstr(url, "://");
    struct pl_strbuf b = {0};

    if (p == NULL || p == url)
        return NULL;
    for (const char *s = url; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return NULL;
    p += 3;
    p += strcspn(p, "/?#");
    pl_strbuf_addn(&b, url, (size_t)(p - url));
    pl_strbuf_adds(&b, suffix);
    return pl_strbuf_take(&b);
}

static int has_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* ---- SMTP ----------------------------------------------------------------- */

/* An envelope address curl may put between "<" and ">": no controls (CR,
 * LF), no angle brackets, no blanks. */
static int addr_ok(const char *a)
{
    return !has_ctl(a) && strpbrk(a, "<> ") == NULL;
}

/* A HELO name that can go into the URL path as it is. */
static int helo_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 255)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' || *s == '_'))
            return 0;
    return 1;
}

struct upload {
    const char *msg;
    size_t len, pos;
    int cr_sent;               /* CR of a bare LF's CRLF already sent */
};

/* Feed the message to curl, a bare LF sent as CRLF.  curl adds the dot
 * stuffing and the final ".". */
static size_t read_cb(char *buf, size_t size, size_t nitems, void *ctx)
{
    struct upload *u = ctx;
    size_t room = size * nitems, n = 0;

    while (n < room && u->pos < u->len) {
        char c = u->msg[u->pos];
        if (c == '\n' && !u->cr_sent && (u->pos == 0 || u->msg[u->pos - 1] != '\r')) {
            buf[n++] = '\r';
            u->cr_sent = 1;
            continue;
        }
        buf[n++] = c;
        u->pos++;
        u->cr_sent = 0;
    }
    return n;
}

int pl_smtp_send(const char *url, const char *helo, const char *sender,
                 const char *const *rcpts, size_t nrcpts,
                 const char *msg, size_t msglen, unsigned timeout_s,
                 char *err, size_t errlen)
{
    struct upload up = {msg, msglen, 0, 0};
    struct curl_slist *rl = NULL;
    struct pl_curl_xfer x;
    char *u = NULL;
    CURL *h = NULL;
    CURLcode rc;
    long code = 0;
    int ret;

    if (errlen > 0)
        err[0] = '\0';
    if (nrcpts == 0) {
        snprintf(err, errlen, "no recipients");
        return PL_OUT_PERM;
    }
    for (size_t i = 0; i < nrcpts; i++)
        if (rcpts[i] == NULL || rcpts[i][0] == '\0' || !addr_ok(rcpts[i])) {
            snprintf(err, errlen, "bad recipient address (empty, or CR, LF, blank, < or >)");
            return PL_OUT_PERM;
        }
    if (sender == NULL)
        sender = "";
    if (!addr_ok(sender)) {
        snprintf(err, errlen, "bad sender address (CR, LF, blank, < or >)");
        return PL_OUT_PERM;
    }
    if (helo != NULL && helo[0] != '\0' && !helo_ok(helo)) {
        snprintf(err, errlen, "bad HELO name");
        return PL_OUT_PERM;
    }
    {
        struct pl_strbuf path = {0};
        pl_strbuf_addc(&path, '/');
        if (helo != NULL)
            pl_strbuf_adds(&path, helo);
        u = url_with_path(url, path.s);
        pl_strbuf_free(&path);
    }
    if (u == NULL) {
        snprintf(err, errlen, "bad SMTP URL");
        return PL_OUT_PERM;
    }
    if ((h = pl_curl_new(&x, "smtp,smtps", timeout_s, err, errlen)) == NULL) {
        free(u);
        return PL_OUT_TEMP;
    }
    for (size_t i = 0; i < nrcpts; i++) {
        struct curl_slist *t = curl_slist_append(rl, rcpts[i]);
        if (t == NULL) {
            snprintf(err, errlen, "out of memory");
            ret = PL_OUT_TEMP;
            goto out;
        }
        rl = t;
    }
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_MAIL_FROM, sender);   /* "" is the null sender <> */
    curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rl);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(h, CURLOPT_READDATA, &up);

    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    if (rc == CURLE_OK) {
        ret = PL_OUT_OK;
    } else {
        /* A 5xx is final; everything else (4xx, no connection, timeout,
         * a broken exchange) may work later. */
        ret = code >= 500 && code < 600 ? PL_OUT_PERM : PL_OUT_TEMP;
        pl_curl_err(err, errlen, rc, code, &x);
    }
out:
    curl_slist_free_all(rl);
    curl_easy_cleanup(h);
    free(u);
    return ret;
}

/* ---- IMAP ----------------------------------------------------------------- */

/* "<...>" of printable ASCII without blanks, quotes, backslashes or more
 * angle brackets: safe inside a quoted IMAP string, and as the searched
 * substring it matches only the whole Message-ID. */
static int msgid_ok(const char *s)
{
    size_t n = strlen(s);

    if (n < 3 || n > MAX_MSGID || s[0] != '<' || s[n - 1] != '>')
        return 0;
    for (size_t i = 1; i < n - 1; i++)
        if (s[i] <= 0x20 || s[i] >= 0x7f || strchr("\"\\<>", s[i]) != NULL)
            return 0;
    return 1;
}

/* Flags: one or more, single blanks between; each a keyword atom or
 * "\" + atom (RFC 3501 flag; atom-specials and "\*" excluded). */
static int flags_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 1000)
        return 0;
    for (;;) {
        const char *a = *s == '\\' ? s + 1 : s, *e = a;
        while (*e > 0x20 && *e < 0x7f && strchr("(){%*\"\\]", *e) == NULL)
            e++;
        if (e == a)
            return 0;
        if (*e == '\0')
            return 1;
        if (*e != ' ')
            return 0;
        s = e + 1;
    }
}

/* curl URL-decodes CURLOPT_CUSTOMREQUEST: a literal "%" must go as "%25". */
static void add_pct_escaped(struct pl_strbuf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '%')
            pl_strbuf_adds(b, "%25");
        else
            pl_strbuf_addc(b, *s);
    }
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *ctx)
{
    struct pl_strbuf *b = ctx;
    size_t n = size * nmemb;

    if (b->len + n > MAX_CAPTURE)
        return 0;   /* curl fails the transfer: CURLE_WRITE_ERROR */
    pl_strbuf_addn(b, data, n);
    return n;
}

/* UIDs of the "* SEARCH n n ..." lines in text, as an IMAP set "n,n,..."
 * into set; returns how many. */
static int search_uids(const char *text, struct pl_strbuf *set)
{
    int count = 0;

    for (const char *l = text, *nl; *l; l = nl ? nl + 1 : l + strlen(l)) {
        const char *p;
        nl = strchr(l, '\n');
        if (strncasecmp(l, "* SEARCH", 8) != 0)
            continue;
        p = l + 8;
        while (*p == ' ') {
            char *end;
            unsigned long long uid;
            p++;
            if (*p < '0' || *p > '9')
                break;
            errno = 0;
            uid = strtoull(p, &end, 10);
            if (errno != 0 || uid == 0 || uid > 0xffffffffULL)
                break;
            pl_strbuf_addf(set, "%s%llu", count ? "," : "", uid);
            count++;
            p = end;
        }
    }
    return count;
}

/* One command on h (SELECTs INBOX first if need be, logs in if need be);
 * its untagged replies into out. */
static int imap_run(CURL *h, struct pl_curl_xfer *x, const char *cmd, struct pl_strbuf *out,
                    char *err, size_t errlen)
{
    CURLcode rc;

    out->len = 0;
    if (out->s)
        out->s[0] = '\0';
    x->errbuf[0] = '\0';
    x->last[0] = '\0';
    x->bad[0] = '\0';
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, cmd);
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        /* Refused login, NO/BAD, no connection, timeout: all may pass. */
        pl_curl_err(err, errlen, rc, 0, x);
        return PL_OUT_TEMP;
    }
    return PL_OUT_OK;
}

/* Values per UID SEARCH: an OR of this many HEADER keys stays well inside
 * a server's command line limit (Dovecot's imap_max_line_length, 64 KB). */
#define VALUES_PER_SEARCH 50

/* The messages whose header field `field` is one of vals[0..nvals): flags
 * added/removed, and with expunge, \Deleted added and those messages
 * expunged (UID EXPUNGE, RFC 4315).  One login for all of them; each
 * SEARCH covers up to VALUES_PER_SEARCH values ("OR OR a b c"), and each
 * such round has timeout_s. */
static int imap_by_header(const struct pl_imap_login *l, const char *field,
                          const char *const *vals, size_t nvals, const char *flags, int add,
                          int expunge, unsigned timeout_s, int *matched, char *err, size_t errlen)
{
    struct pl_strbuf cmd = {0}, out = {0}, set = {0};
    struct pl_curl_xfer x;
    char *u;
    CURL *h;
    int ret = PL_OUT_OK, n;
    long budget = (long)(timeout_s ? timeout_s : DEFAULT_TIMEOUT_S) * 1000, rounds = 0;

    *matched = 0;
    if (errlen > 0)
        err[0] = '\0';
    for (size_t i = 0; i < nvals; i++)
        if (vals[i] == NULL || !msgid_ok(vals[i])) {
            snprintf(err, errlen, "bad Message-ID (want <...> of printable ASCII, no blanks, quotes or backslashes)");
            return PL_OUT_PERM;
        }
    if (flags == NULL || !flags_ok(flags)) {
        snprintf(err, errlen, "bad IMAP flag list");
        return PL_OUT_PERM;
    }
    if (l->user == NULL || l->password == NULL || l->user[0] == '\0' ||
        has_ctl(l->user) || has_ctl(l->password)) {
        snprintf(err, errlen, "bad IMAP login (empty user, or control characters)");
        return PL_OUT_PERM;
    }
    if (nvals == 0)
        return PL_OUT_OK;
    if (l->url == NULL || (u = url_with_path(l->url, "/INBOX")) == NULL) {
        snprintf(err, errlen, "bad IMAP URL");
        return PL_OUT_PERM;
    }
    if ((h = pl_curl_new(&x, "imap,imaps", timeout_s, err, errlen)) == NULL) {
        free(u);
        return PL_OUT_TEMP;
    }
    curl_easy_setopt(h, CURLOPT_URL, u);
    curl_easy_setopt(h, CURLOPT_USERNAME, l->user);
    curl_easy_setopt(h, CURLOPT_PASSWORD, l->password);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);

    for (size_t i = 0; i < nvals && ret == PL_OUT_OK; i += VALUES_PER_SEARCH) {
        size_t k = nvals - i < VALUES_PER_SEARCH ? nvals - i : VALUES_PER_SEARCH;
        /* Same handle, same connection: one login and SELECT for all the
         * commands; the time limit grows by timeout_s per round. */
        curl_off_t used = 0;
        curl_easy_getinfo(h, CURLINFO_TOTAL_TIME_T, &used);
        rounds++;
        long left = budget * rounds - (long)(used / 1000);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left > 1000 ? left : 1000L);
        cmd.len = 0;
        pl_strbuf_adds(&cmd, "UID SEARCH");
        for (size_t j = 1; j < k; j++)
            pl_strbuf_adds(&cmd, " OR");
        for (size_t j = 0; j < k; j++) {
            pl_strbuf_addf(&cmd, " HEADER %s \"", field);
            add_pct_escaped(&cmd, vals[i + j]);
            pl_strbuf_addc(&cmd, '"');
        }
        ret = imap_run(h, &x, cmd.s, &out, err, errlen);
        set.len = 0;
        if (ret != PL_OUT_OK || (n = search_uids(out.s ? out.s : "", &set)) == 0)
            continue;
        cmd.len = 0;
        pl_strbuf_addf(&cmd, "UID STORE %s %cFLAGS.SILENT (", set.s, add ? '+' : '-');
        add_pct_escaped(&cmd, flags);
        pl_strbuf_addc(&cmd, ')');
        ret = imap_run(h, &x, cmd.s, &out, err, errlen);
        if (ret == PL_OUT_OK && expunge) {
            cmd.len = 0;
            pl_strbuf_addf(&cmd, "UID EXPUNGE %s", set.s);
            ret = imap_run(h, &x, cmd.s, &out, err, errlen);
        }
        if (ret == PL_OUT_OK)
            *matched += n;
    }
    curl_easy_cleanup(h);
    pl_strbuf_free(&cmd);
    pl_strbuf_free(&out);
    pl_strbuf_free(&set);
    free(u);
    return ret;
}

int pl_imap_set_flags(const struct pl_imap_login *l, const char *msgid,
                      const char *flags, int add, unsigned timeout_s,
                      int *matched, char *err, size_t errlen)
{
    const char *v[1] = {msgid};
    if (msgid == NULL) {
        snprintf(err, errlen, "bad Message-ID (want <...> of printable ASCII, no blanks, quotes or backslashes)");
        return PL_OUT_PERM;
    }
    return imap_by_header(l, "Message-ID", v, 1, flags, add, 0, timeout_s, matched, err, errlen);
}

static int field_ok(const char *field, char *err, size_t errlen)
{
    for (const char *c = field; *c; c++)
        if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-')) {
            snprintf(err, errlen, "bad header field name");
            return 0;
        }
    if (*field == '\0')
        snprintf(err, errlen, "bad header field name");
    return *field != '\0';
}

int pl_imap_by_tokens(const struct pl_imap_login *l, const char *field,
                      const char *const *tokens, size_t n, const char *flags, int expunge,
                      unsigned timeout_s, int *matched, char *err, size_t errlen)
{
    *matched = 0;
    if (!field_ok(field, err, errlen))
        return PL_OUT_PERM;
    return imap_by_header(l, field, tokens, n, expunge ? "\\Deleted" : flags, 1, expunge,
                          timeout_s, matched, err, errlen);
}
