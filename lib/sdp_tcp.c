/* sdp_tcp.c -- the SDP codec of postlink-sipd's SMTP-over-TCP channel and
 * its POSTLINK token line (sdp_tcp.h).  The parser reads a peer's bytes: it
 * works on (pointer, length) spans of the caller's buffer, never past
 * sdp + len, and copies out only values it has checked. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "sdp_tcp.h"

struct span { const char *p; size_t n; };

/* What one level (session, or our media section) said. */
struct level {
    int c_seen, family;
    char addr[INET6_ADDRSTRLEN];
    int setup_seen;
    enum pl_sdp_setup setup;
    int conn_seen, conn_new;
    int token_seen;
    char token[PL_SDP_TOKEN_LEN + 1];
};

static const char *const setup_names[] = {
    [PL_SETUP_ACTIVE] = "active", [PL_SETUP_PASSIVE] = "passive",
    [PL_SETUP_ACTPASS] = "actpass", [PL_SETUP_HOLDCONN] = "holdconn",
};

__attribute__((format(printf, 3, 4)))
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (err && errlen) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* The next space-separated field of [*p, end); 0 when there is none. */
static int next_field(const char **p, const char *end, struct span *f)
{
    const char *s = *p;
    while (s < end && *s == ' ')
        s++;
    f->p = s;
    while (s < end && *s != ' ')
        s++;
    f->n = (size_t)(s - f->p);
    *p = s;
    return f->n > 0;
}

static int span_ieq(struct span f, const char *lit)
{
    size_t n = strlen(lit);
    return f.n == n && strncasecmp(f.p, lit, n) == 0;
}

static int ct_eq(const char *a, const char *b, size_t n)
{
    volatile unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(a[i] ^ b[i]);
    return d == 0;
}

static int token_span_ok(const char *t, size_t n)
{
    if (n != PL_SDP_TOKEN_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((t[i] >= '0' && t[i] <= '9') || (t[i] >= 'a' && t[i] <= 'f')))
            return 0;
    return 1;
}

int pl_sdp_token_ok(const char *token)
{
    return token && token_span_ok(token, strnlen(token, PL_SDP_TOKEN_LEN + 1));
}

/* Check the numeric address s of family fam for a TCP peer and write its
 * canonical form to out[INET6_ADDRSTRLEN].  Returns NULL or the reason. */
static const char *addr_check(int fam, const char *s, char *out)
{
    unsigned char bin[sizeof(struct in6_addr)];
    int other = fam == AF_INET ? AF_INET6 : AF_INET;

    if (inet_pton(fam, s, bin) != 1)
        return inet_pton(other, s, bin) == 1 ? "does not match its address type"
                                             : "is not numeric";
    if (fam == AF_INET) {
        struct in_addr a;
        memcpy(&a, bin, sizeof(a));
        if (a.s_addr == htonl(INADDR_ANY))
            return "is unspecified";
        if (IN_MULTICAST(ntohl(a.s_addr)))
            return "is multicast";
    } else {
        struct in6_addr a;
        memcpy(&a, bin, sizeof(a));
        if (IN6_IS_ADDR_UNSPECIFIED(&a))
            return "is unspecified";
        if (IN6_IS_ADDR_MULTICAST(&a))
            return "is multicast";
    }
    if (out && !inet_ntop(fam, bin, out, INET6_ADDRSTRLEN))
        return "cannot be printed";
    return NULL;
}

/* ---- building ------------------------------------------------------------ */

int pl_sdp_build(char *out, size_t outlen, uint64_t sess_id, uint64_t sess_version,
                 const struct pl_sdp_tcp *m)
{
    const char *ipv, *fmt;
    int n;

    if (out && outlen)
        out[0] = '\0';
    if (!out || !m || (m->family != AF_INET && m->family != AF_INET6) ||
        strnlen(m->addr, sizeof(m->addr)) == sizeof(m->addr) ||
        addr_check(m->family, m->addr, NULL) || m->port < 1 || m->port > 65535 ||
        m->setup <= PL_SETUP_NONE || m->setup > PL_SETUP_HOLDCONN ||
        !pl_sdp_token_ok(m->token))
        return -1;
    if (strnlen(m->fmt, sizeof(m->fmt)) == sizeof(m->fmt) ||
        (m->fmt[0] && strcasecmp(m->fmt, "smtp") != 0))
        return -1;
    fmt = m->fmt[0] ? m->fmt : "smtp";
    ipv = m->family == AF_INET ? "IP4" : "IP6";
    n = snprintf(out, outlen,
                 "v=0\r\n"
                 "o=postlink %" PRIu64 " %" PRIu64 " IN %s %s\r\n"
                 "s=postlink\r\n"
                 "c=IN %s %s\r\n"
                 "t=0 0\r\n"
                 "m=application %u TCP %s\r\n"
                 "a=setup:%s\r\n"
                 "a=connection:new\r\n"
                 "a=postlink-token:%s\r\n",
                 sess_id, sess_version, ipv, m->addr, ipv, m->addr, m->port, fmt,
                 setup_names[m->setup], m->token);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen)
            out[0] = '\0';
        return -1;
    }
    return n;
}

/* ---- parsing ------------------------------------------------------------- */

/* m= value: 1 if it is our media line (port checked into *port, the
 * matching fmt into fmt[33]), 0 if it is another one, -1 on error. */
static int parse_m(struct span v, unsigned *port, char *fmt, unsigned line, char *err,
                   size_t errlen)
{
    const char *p = v.p, *end = v.p + v.n;
    struct span media, pt, proto, f;
    unsigned long val = 0;
    int ours = 0;

    if (!next_field(&p, end, &media) || !next_field(&p, end, &pt) ||
        !next_field(&p, end, &proto) || !span_ieq(media, "application") ||
        !span_ieq(proto, "TCP"))
        return 0;
    while (!ours && next_field(&p, end, &f))
        if (span_ieq(f, "smtp")) {
            memcpy(fmt, f.p, f.n);
            fmt[f.n] = '\0';
            ours = 1;
        }
    if (!ours)
        return 0;
    if (memchr(pt.p, '/', pt.n))
        return fail(err, errlen, "line %u: m= port with a port count", line);
    if (pt.n > 5)
        return fail(err, errlen, "line %u: m= port out of range", line);
    for (size_t i = 0; i < pt.n; i++) {
        if (pt.p[i] < '0' || pt.p[i] > '9')
            return fail(err, errlen, "line %u: m= port is not a number", line);
        val = val * 10 + (unsigned long)(pt.p[i] - '0');
    }
    if (val == 0)
        return fail(err, errlen, "port 0: media rejected");
    if (val > 65535)
        return fail(err, errlen, "line %u: m= port %lu out of range", line, val);
    *port = (unsigned)val;
    return 1;
}

static int parse_c(struct span v, struct level *l, unsigned line, char *err, size_t errlen)
{
    const char *p = v.p, *end = v.p + v.n, *why;
    struct span net, type, addr, extra;
    char buf[INET6_ADDRSTRLEN];
    int fam;

    if (l->c_seen)
        return fail(err, errlen, "line %u: second c= line", line);
    if (!next_field(&p, end, &net) || !next_field(&p, end, &type) ||
        !next_field(&p, end, &addr) || next_field(&p, end, &extra))
        return fail(err, errlen, "line %u: c= is not \"IN IP4|IP6 <address>\"", line);
    if (!span_ieq(net, "IN"))
        return fail(err, errlen, "line %u: c= network type is not IN", line);
    if (span_ieq(type, "IP4"))
        fam = AF_INET;
    else if (span_ieq(type, "IP6"))
        fam = AF_INET6;
    else
        return fail(err, errlen, "line %u: c= address type is not IP4 or IP6", line);
    if (addr.n >= sizeof(buf))
        return fail(err, errlen, "line %u: c= address is not numeric", line);
    memcpy(buf, addr.p, addr.n);
    buf[addr.n] = '\0';
    if ((why = addr_check(fam, buf, l->addr)))
        return fail(err, errlen, "line %u: c= address %s", line, why);
    l->family = fam;
    l->c_seen = 1;
    return 0;
}

/* a= value at level l; media says whether a=postlink-token counts here. */
static int parse_a(struct span v, struct level *l, int media, unsigned line, char *err,
                   size_t errlen)
{
    const char *colon = memchr(v.p, ':', v.n);
    struct span name = {v.p, colon ? (size_t)(colon - v.p) : v.n};
    struct span val = {colon ? colon + 1 : v.p + v.n, colon ? v.n - name.n - 1 : 0};

    if (span_ieq(name, "setup")) {
        enum pl_sdp_setup s = PL_SETUP_NONE;
        for (int i = PL_SETUP_ACTIVE; i <= PL_SETUP_HOLDCONN; i++)
            if (span_ieq(val, setup_names[i]))
                s = (enum pl_sdp_setup)i;
        if (s == PL_SETUP_NONE)
            return fail(err, errlen, "line %u: unknown a=setup value", line);
        if (l->setup_seen)
            return fail(err, errlen, "line %u: second a=setup line", line);
        l->setup_seen = 1;
        l->setup = s;
    } else if (span_ieq(name, "connection")) {
        if (!span_ieq(val, "new") && !span_ieq(val, "existing"))
            return fail(err, errlen, "line %u: unknown a=connection value", line);
        if (l->conn_seen)
            return fail(err, errlen, "line %u: second a=connection line", line);
        l->conn_seen = 1;
        l->conn_new = span_ieq(val, "new");
    } else if (media && span_ieq(name, "postlink-token")) {
        if (!token_span_ok(val.p, val.n))
            return fail(err, errlen,
                        "line %u: a=postlink-token is not 64 lowercase hex digits", line);
        if (l->token_seen)
            return fail(err, errlen, "line %u: second a=postlink-token line", line);
        l->token_seen = 1;
        memcpy(l->token, val.p, val.n);
        l->token[val.n] = '\0';
    }
    return 0;
}

enum where { AT_SESSION, AT_OTHER, AT_OURS, AFTER_OURS };

static int parse_lines(const char *sdp, size_t len, struct pl_sdp_tcp *m, char *err,
                       size_t errlen)
{
    struct level sess = {0}, med = {0}, *l;
    const char *p = sdp, *end = sdp + len;
    enum where at = AT_SESSION;
    unsigned line = 0;

    if (len == 0)
        return fail(err, errlen, "empty SDP");
    if (len > PL_SDP_MAX)
        return fail(err, errlen, "SDP longer than %d bytes", PL_SDP_MAX);
    if (memchr(sdp, '\0', len))
        return fail(err, errlen, "NUL byte in SDP");
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t n = lf ? (size_t)(lf - p) : (size_t)(end - p);
        struct span v;

        line++;
        if (n && p[n - 1] == '\r')
            n--;
        if (n > PL_SDP_LINE_MAX)
            return fail(err, errlen, "line %u longer than %d bytes", line, PL_SDP_LINE_MAX);
        if (!lf)
            return fail(err, errlen, "line %u has no line end (truncated SDP?)", line);
        if (line == 1 && !(n == 3 && memcmp(p, "v=0", 3) == 0))
            return fail(err, errlen, "SDP does not start with v=0");
        if (n == 0) {
            p = lf + 1;
            continue;
        }
        if (n < 2 || p[1] != '=' || p[0] < 'a' || p[0] > 'z')
            return fail(err, errlen, "line %u is not <type>=<value>", line);
        v.p = p + 2;
        v.n = n - 2;
        l = at == AT_SESSION ? &sess : at == AT_OURS ? &med : NULL;
        switch (p[0]) {
        case 'm':
            if (at == AT_OURS)
                at = AFTER_OURS;
            else if (at != AFTER_OURS) {
                int r = parse_m(v, &m->port, m->fmt, line, err, errlen);
                if (r < 0)
                    return -1;
                at = r ? AT_OURS : AT_OTHER;
            }
            break;
        case 'c':
            if (l && parse_c(v, l, line, err, errlen) != 0)
                return -1;
            break;
        case 'a':
            if (l && parse_a(v, l, at == AT_OURS, line, err, errlen) != 0)
                return -1;
            break;
        default:
            break;
        }
        p = lf + 1;
    }
    if (at != AT_OURS && at != AFTER_OURS)
        return fail(err, errlen, "no m=application TCP smtp line");
    l = med.c_seen ? &med : &sess;
    if (!l->c_seen)
        return fail(err, errlen, "no c= line for the m=application TCP smtp line");
    memcpy(m->addr, l->addr, sizeof(m->addr));
    m->family = l->family;
    l = med.setup_seen ? &med : &sess;
    m->setup = l->setup_seen ? l->setup : PL_SETUP_NONE;
    l = med.conn_seen ? &med : &sess;
    m->connection_new = l->conn_seen && l->conn_new;
    memcpy(m->token, med.token, sizeof(m->token));
    return 0;
}

int pl_sdp_parse(const char *sdp, size_t len, struct pl_sdp_tcp *m, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!m)
        return fail(err, errlen, "no result buffer");
    memset(m, 0, sizeof(*m));
    if (!sdp)
        return fail(err, errlen, "empty SDP");
    if (parse_lines(sdp, len, m, err, errlen) != 0) {
        memset(m, 0, sizeof(*m));
        return -1;
    }
    return 0;
}

/* ---- roles --------------------------------------------------------------- */

int pl_sdp_answer_setup(enum pl_sdp_setup offer, enum pl_sdp_setup preferred,
                        enum pl_sdp_setup *answer)
{
    if (!answer || (preferred != PL_SETUP_NONE && preferred != PL_SETUP_ACTIVE &&
                    preferred != PL_SETUP_PASSIVE))
        return -1;
    switch (offer) {
    case PL_SETUP_ACTPASS:
        *answer = preferred == PL_SETUP_ACTIVE ? PL_SETUP_ACTIVE : PL_SETUP_PASSIVE;
        return 0;
    case PL_SETUP_NONE:                   /* RFC 4145 4.1: absent in an offer = active */
    case PL_SETUP_ACTIVE:
        *answer = PL_SETUP_PASSIVE;
        return 0;
    case PL_SETUP_PASSIVE:
        *answer = PL_SETUP_ACTIVE;
        return 0;
    default:
        return -1;
    }
}

int pl_sdp_offer_setup(enum pl_sdp_setup answer, enum pl_sdp_setup *mine)
{
    if (!mine)
        return -1;
    switch (answer) {
    case PL_SETUP_ACTIVE:
        *mine = PL_SETUP_PASSIVE;
        return 0;
    case PL_SETUP_NONE:                   /* RFC 4145 4.1: absent in an answer = passive */
    case PL_SETUP_PASSIVE:
        *mine = PL_SETUP_ACTIVE;
        return 0;
    default:
        return -1;
    }
}

int pl_sdp_i_connect(enum pl_sdp_setup mine)
{
    return mine == PL_SETUP_ACTIVE ? 1 : mine == PL_SETUP_PASSIVE ? 0 : -1;
}

const char *pl_sdp_setup_name(enum pl_sdp_setup s)
{
    return s > PL_SETUP_NONE && s <= PL_SETUP_HOLDCONN ? setup_names[s] : NULL;
}

/* ---- tokens -------------------------------------------------------------- */

int pl_sdp_token_new(char out[PL_SDP_TOKEN_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[PL_SDP_TOKEN_LEN / 2];
    size_t got = 0;

    for (int tries = 0; got < sizeof(r) && tries < 100; tries++) {
        ssize_t k = getrandom(r + got, sizeof(r) - got, 0);
        if (k < 0 && errno != EINTR)
            break;
        if (k > 0)
            got += (size_t)k;
    }
    if (got < sizeof(r)) {
        out[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < sizeof(r); i++) {
        out[2 * i] = hex[r[i] >> 4];
        out[2 * i + 1] = hex[r[i] & 15];
    }
    out[PL_SDP_TOKEN_LEN] = '\0';
    explicit_bzero(r, sizeof(r));
    return 0;
}

int pl_sdp_token_eq(const char *a, const char *b)
{
    if (!a || !b || strnlen(a, PL_SDP_TOKEN_LEN + 1) != PL_SDP_TOKEN_LEN ||
        strnlen(b, PL_SDP_TOKEN_LEN + 1) != PL_SDP_TOKEN_LEN)
        return 0;
    return ct_eq(a, b, PL_SDP_TOKEN_LEN);
}

int pl_sdp_token_line(char *out, size_t outlen, const char *token)
{
    int n;
    if (out && outlen)
        out[0] = '\0';
    if (!out || !pl_sdp_token_ok(token))
        return -1;
    n = snprintf(out, outlen, "POSTLINK %s\r\n", token);
    if (n < 0 || (size_t)n >= outlen) {
        if (outlen)
            out[0] = '\0';
        return -1;
    }
    return n;
}

int pl_sdp_token_line_check(const char *line, size_t len, const char *token)
{
    const size_t body = 9 + PL_SDP_TOKEN_LEN;   /* "POSTLINK " + token */

    if (!line || !pl_sdp_token_ok(token))
        return 0;
    if (len == body + 2) {
        if (line[body] != '\r' || line[body + 1] != '\n')
            return 0;
    } else if (len != body + 1 || line[body] != '\n') {
        return 0;
    }
    if (memcmp(line, "POSTLINK ", 9) != 0)
        return 0;
    return ct_eq(line + 9, token, PL_SDP_TOKEN_LEN);
}
