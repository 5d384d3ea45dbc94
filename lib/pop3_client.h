/* pop3_client.h -- a small blocking POP3 client (RFC 1939, CAPA RFC 2449,
 * STLS RFC 2595, AUTH PLAIN RFC 5034) for postlink-mirrord, over TCP with
 * optional TLS (OpenSSL: implicit "pop3s" or STLS).
 *
 * Why not libcurl: libcurl runs one command per transfer and cannot
 * pipeline (RFC 2449 PIPELINING), which a first sync of thousands of TOP
 * commands needs to be as fast as mpop; it hides the single-line replies
 * (STAT, UIDL n, LIST n) a mirror compares, and it cannot stream a TOP
 * while checking its size against LIST.  This codec is small, its pure
 * parsers have a fuzz target (fuzz/fuzz_pop3.c) and the session has unit
 * tests against a scripted server.
 *
 * The mirror never modifies the primary: there is no DELE here at all.
 * Every read and write is bounded by a timeout (poll).  After an I/O
 * error, a timeout or a protocol error the session is "broken" and every
 * further call fails at once with the first error in p->err. */
#ifndef PL_POP3_CLIENT_H
#define PL_POP3_CLIENT_H

#include <stddef.h>

#define PL_POP3_LINE_MAX 1024       /* one response line, CRLF not counted */
#define PL_POP3_ID_MAX 70           /* RFC 1939 unique-id: 1-70 chars 0x21-0x7e */

/* ---- pure parsers (no I/O; what fuzz/fuzz_pop3.c drives) ------------- */

/* A status line ("+OK text" / "-ERR [CODE] text", without CRLF): 1 for
 * +OK, 0 for -ERR, -1 when it is neither.  *code gets the RFC 2449/3206
 * response code between brackets ("AUTH", "IN-USE", "SYS/TEMP",
 * "SYS/PERM", "LOGIN-DELAY"), "" when none (codelen bytes, truncated);
 * *text points into line after the status and code. */
int pl_pop3_status_parse(const char *line, size_t len, char *code, size_t codelen,
                         const char **text);

/* What CAPA announced. */
struct pl_pop3_caps {
    int known;                      /* CAPA answered +OK */
    int top, uidl, user, pipelining, stls, sasl_plain, resp_codes, auth_resp_code;
    long expire;                    /* EXPIRE days; -1 not announced; -2 NEVER */
    int expire_per_user;            /* "EXPIRE n USER" */
    long login_delay;               /* -1 not announced */
    char implementation[128];
};
/* Adds one CAPA line (without CRLF, after the +OK, before ".") to *c. */
void pl_pop3_caps_line(struct pl_pop3_caps *c, const char *line, size_t len);

/* "n size" of a LIST listing or a LIST n reply's text: 0 or -1. */
int pl_pop3_list_parse(const char *line, size_t len, unsigned long *msgno,
                       unsigned long long *size);

/* A multi-line response's body, fed in arbitrary chunks: removes the
 * dot-stuffing, turns every line end into CRLF and finds the terminating
 * ".CRLF" (a bare LF is accepted as a line end).  out gets the unstuffed
 * bytes; returns the bytes of in consumed (all of them unless the end was
 * found: then *done = 1 and the rest belongs to the next response). */
struct pl_pop3_ml {
    int state;                      /* internal */
    int done;
};
void pl_pop3_ml_init(struct pl_pop3_ml *m);
/* out must hold 2 * inlen + 2 bytes; *outlen is set. */
size_t pl_pop3_ml_feed(struct pl_pop3_ml *m, const char *in, size_t inlen, char *out,
                       size_t *outlen);

/* A UIDL listing line or a "UIDL n" reply's text: "n id" (n > 0, a single
 * space, id 1-70 chars 0x21-0x7e, nothing after it).  0 with id set
 * (PL_POP3_ID_MAX + 1 bytes), or -1 with *why saying what is wrong. */
int pl_pop3_uidl_parse(const char *line, size_t len, unsigned long *msgno, char *id,
                       const char **why);

/* ---- the session ------------------------------------------------------ */

enum pl_pop3_tls_mode { PL_POP3_PLAIN, PL_POP3_IMPLICIT_TLS, PL_POP3_STLS };

struct pl_pop3_opts {
    enum pl_pop3_tls_mode tls;
    const char *servername;         /* SNI and the name the certificate must match
                                     * (NULL: the host given to pl_pop3_connect) */
    const char *ca_file;            /* NULL: the system's default CA paths */
    int insecure;                   /* 1: accept any certificate (explicitly configured) */
    unsigned connect_ms, cmd_ms;    /* 0 = 30 s each */
    unsigned data_ms;               /* each read of a multi-line body; 0 = 60 s */
};

/* Result codes of the session calls. */
enum {
    PL_POP3_OK = 0,
    PL_POP3_NO = 1,                 /* -ERR: the command was refused; session usable */
    PL_POP3_AUTH = 2,               /* login refused (wrong password: do not retry soon) */
    PL_POP3_BAD = 3,                /* a one-line +OK reply that does not parse (UIDL n,
                                       LIST n): p->err says why; session usable */
    PL_POP3_BROKEN = -1,            /* connection, TLS, timeout or protocol error */
};

struct pl_pop3 {
    int fd;
    void *ssl;                      /* SSL *, or NULL */
    void *ssl_ctx;
    struct pl_pop3_opts o;
    struct pl_pop3_caps caps;
    int broken;
    char err[256];                  /* what went wrong; never contains a password */
    char last[PL_POP3_LINE_MAX + 1];/* the last status line's text (for the log) */
    char last_code[32];             /* its response code */
    unsigned long long bytes_in;    /* bytes read from the server (after TLS) */
    size_t ibeg, iend;
    char in[16384];
};

/* Connects to host (numeric IPv4/IPv6 or a name) port, does TLS as asked,
 * reads the greeting and asks CAPA (then STLS, and CAPA again).  Returns
 * PL_POP3_OK or PL_POP3_BROKEN with p->err (e.g. "certificate verify
 * failed: certificate has expired"). */
int pl_pop3_connect(struct pl_pop3 *p, const char *host, unsigned port,
                    const struct pl_pop3_opts *o);
/* AUTH PLAIN when announced, else USER/PASS.  PL_POP3_AUTH when refused
 * (p->last_code says why: "AUTH", "IN-USE", "SYS/TEMP", ...).  After a
 * successful login CAPA is asked again (EXPIRE and LOGIN-DELAY may be per
 * user); p->caps keeps the old answer if that CAPA is refused. */
int pl_pop3_login(struct pl_pop3 *p, const char *user, const char *password);
int pl_pop3_stat(struct pl_pop3 *p, unsigned long *count, unsigned long long *octets);

/* UIDL / LIST listings: fn(ctx, msgno, id or size) per line.  A line that
 * does not parse calls bad(ctx, line, why) (may be NULL) and the listing
 * goes on; fn returning nonzero stops the calls (the listing is still
 * read to its end).  PL_POP3_NO when the command is refused. */
typedef int (*pl_pop3_uidl_fn)(void *ctx, unsigned long msgno, const char *id);
typedef int (*pl_pop3_list_fn)(void *ctx, unsigned long msgno, unsigned long long size);
typedef void (*pl_pop3_bad_fn)(void *ctx, const char *line, const char *why);
int pl_pop3_uidl(struct pl_pop3 *p, pl_pop3_uidl_fn fn, pl_pop3_bad_fn bad, void *ctx);
int pl_pop3_list(struct pl_pop3 *p, pl_pop3_list_fn fn, pl_pop3_bad_fn bad, void *ctx);
/* "UIDL n" / "LIST n": PL_POP3_NO when there is no message n, PL_POP3_BAD
 * when the +OK line does not parse (or names another message). */
int pl_pop3_uidl_one(struct pl_pop3 *p, unsigned long msgno, char id[PL_POP3_ID_MAX + 1]);
int pl_pop3_list_one(struct pl_pop3 *p, unsigned long msgno, unsigned long long *size);

/* Fetching: TOP msgno lines (RETR when lines < 0).  Per message: begin(ctx,
 * i) before its body, data(ctx, i, bytes, len) with the unstuffed CRLF
 * bytes (any number of calls), end(ctx, i, status) after it (status
 * PL_POP3_OK, or PL_POP3_NO with p->last for that message); i indexes
 * msgnos[].  A message refused with -ERR gets end(ctx, i, PL_POP3_NO)
 * only (no begin); one whose body the connection broke off gets
 * end(ctx, i, PL_POP3_BROKEN), so a partial body can be thrown away.
 * When CAPA announced PIPELINING up to `window` commands are outstanding
 * (0 = 16, at most PL_POP3_WINDOW_MAX), else one at a time.  A callback
 * returning nonzero stops the run (no further callbacks): the session is
 * then broken (the rest cannot be skipped cleanly), and that value is
 * returned.  Otherwise PL_POP3_OK (also when some messages got -ERR) or
 * PL_POP3_BROKEN. */
#define PL_POP3_WINDOW_MAX 64
struct pl_pop3_fetch_cb {
    int (*begin)(void *ctx, size_t i);
    int (*data)(void *ctx, size_t i, const char *bytes, size_t len);
    int (*end)(void *ctx, size_t i, int status);
    void *ctx;
};
int pl_pop3_fetch(struct pl_pop3 *p, const unsigned long *msgnos, size_t n, long lines,
                  unsigned window, const struct pl_pop3_fetch_cb *cb);

/* QUIT (reply read for at most 2 s) and close; also after a break. */
void pl_pop3_close(struct pl_pop3 *p);

#endif
