/* smtp_client.h -- a small blocking ESMTP client (RFC 5321) over a file
 * descriptor that is already connected: a TCP connection negotiated through
 * SIP (postlink-sipd), or one to Postfix's re-injection listener
 * (pl_smtpc_connect_tcp).  We write our own instead of using libcurl because
 * libcurl gives one result per transfer, not the reply to each RCPT, and
 * cannot pass the DSN parameters (NOTIFY, ORCPT, RET, ENVID) through; both
 * are needed to turn remote replies into exact per-recipient LMTP replies.
 *
 * Every read and write is bounded by a timeout (poll); a reply must be
 * complete within its command's timeout.  The client never owns the fd:
 * the caller closes it.  After any I/O error, timeout, protocol error or a
 * 421 reply the session is "broken" and every further call fails at once.
 *
 * Bare CR in the message: a CR not followed by LF is sent unchanged, inside
 * its line, as Postfix's own smtp client does; LF and CRLF both end a line
 * and are sent as CRLF; a CR just before the end of the message ends the
 * last line. */
#ifndef PL_SMTP_CLIENT_H
#define PL_SMTP_CLIENT_H

#include <stddef.h>
#include <sys/types.h>

/* ---- replies (pure, no I/O; also what fuzz/fuzz_smtp_reply.c drives) ---- */

#define PL_SMTP_LINE_MAX 2048       /* bytes of one reply line, CRLF not counted */
#define PL_SMTP_TEXT_MAX 4096       /* reply text kept; the rest is read and dropped */

struct pl_smtp_reply {
    int code;                       /* 200..599; 0 = no reply */
    char enh[16];                   /* enhanced status code "5.1.1" (RFC 3463), or "" */
    size_t nlines;
    int truncated;                  /* text longer than PL_SMTP_TEXT_MAX: cut */
    size_t textlen;
    /* The text of the lines after "NNN-" / "NNN ", joined by '\n',
     * NUL-terminated.  The enhanced code is removed from the start of
     * every line that repeats the first line's; control bytes (and NUL)
     * become spaces. */
    char text[PL_SMTP_TEXT_MAX + 1];
};

/* Parses one reply at the start of buf[0..len).  Lines end with CRLF (a
 * bare LF is accepted).  Returns 1 when a complete reply was parsed (*r
 * filled, *consumed = its bytes), 0 when more input is needed, -1 when
 * malformed: a line that is not "NNN", "NNN text" or "NNN-text" with NNN in
 * 200..599, a code differing from the first line's, or a line longer than
 * PL_SMTP_LINE_MAX.  *consumed is 0 unless 1 is returned. */
int pl_smtp_reply_parse(const char *buf, size_t len, struct pl_smtp_reply *r, size_t *consumed);
/* The same one line at a time (line without its CRLF, len <= LINE_MAX), r
 * zeroed before the first: 1 last line, 0 more lines follow, -1 malformed. */
int pl_smtp_reply_line(struct pl_smtp_reply *r, const char *line, size_t len);
/* Writes r back as reply lines ("NNN-enh text\r\n" ... "NNN enh text\r\n")
 * into buf; returns the length, or 0 when it does not fit or r has no code. */
size_t pl_smtp_reply_format(const struct pl_smtp_reply *r, char *buf, size_t len);

/* What an EHLO reply announces (RFC 1870, 2920, 3461, 6152, 6531, 2034,
 * Postfix XCLIENT).  CHUNKING and everything else are ignored. */
#define PL_SMTP_XCLIENT_ADDR  0x01u
#define PL_SMTP_XCLIENT_NAME  0x02u
#define PL_SMTP_XCLIENT_PROTO 0x04u
#define PL_SMTP_XCLIENT_HELO  0x08u
struct pl_smtp_caps {
    int pipelining, size, eightbitmime, smtputf8, dsn, enhancedstatuscodes, xclient;
    unsigned long long size_max;    /* SIZE n; 0 = no limit announced */
    unsigned xclient_attrs;         /* PL_SMTP_XCLIENT_*: the ones we use that it lists */
};
/* Fills *caps from a 250 reply to EHLO (first line: the server's name). */
void pl_smtp_caps_parse(const struct pl_smtp_reply *r, struct pl_smtp_caps *caps);

/* ---- the session ------------------------------------------------------- */

/* Milliseconds; 0 = the default: 30 s each, dot 120 s, body 180 s. */
struct pl_smtpc_timeouts {
    unsigned greeting_ms, ehlo_ms, mail_ms, rcpt_ms, data_ms, dot_ms;
    unsigned body_ms;               /* each write of the message must progress within it */
};

/* Where a session or a transaction stopped. */
enum pl_smtpc_stage {
    PL_SMTPC_CONNECT,               /* set by the caller when the connect failed */
    PL_SMTPC_GREETING,              /* no 2xx greeting (or XCLIENT's new greeting) */
    PL_SMTPC_EHLO,                  /* EHLO and HELO refused, or no reply */
    PL_SMTPC_MAIL,                  /* MAIL refused / no reply, or refused locally */
    PL_SMTPC_RCPT,                  /* every recipient refused (or no RCPT reply) */
    PL_SMTPC_DATA,                  /* DATA not answered with 3xx */
    PL_SMTPC_BODY_SENDING,          /* broken before the final ".\r\n" was fully
                                       written: nothing was delivered */
    PL_SMTPC_AFTER_DOT,             /* ".\r\n" fully written, no reply: outcome
                                       unknown -- defer, never send it elsewhere */
    PL_SMTPC_DONE                   /* the final reply was read (res->dot.code) */
};
const char *pl_smtpc_stage_name(enum pl_smtpc_stage s);

struct pl_smtpc {
    int fd;
    struct pl_smtpc_timeouts to;    /* defaults filled in */
    struct pl_smtp_caps caps;       /* from the last EHLO */
    int esmtp;                      /* EHLO accepted (else HELO) */
    int broken;                     /* the session is unusable */
    enum pl_smtpc_stage stage;      /* of the last failure */
    int timedout;                   /* the last failure was a timeout */
    char err[256];                  /* what went wrong, for the log */
    char helo_name[256];
    struct pl_smtp_reply greeting;  /* the last 220 (also after XCLIENT) */
    struct pl_smtp_reply ehlo;
    size_t ibeg, iend, olen;
    char in[4096];
    char out[8192];
    char line[PL_SMTP_LINE_MAX + 2];
};

/* Connects a TCP socket to a numeric IPv4 or IPv6 address within
 * timeout_ms; returns the (blocking, close-on-exec) fd or -1 with err. */
int pl_smtpc_connect_tcp(const char *host, unsigned port, unsigned timeout_ms, char *err,
                         size_t errlen);
/* The same from the local address src (numeric, same family; NULL: any). */
int pl_smtpc_connect_tcp_from(const char *host, unsigned port, const char *src,
                              unsigned timeout_ms, char *err, size_t errlen);

/* Prepares c for fd (to may be NULL: defaults). */
void pl_smtpc_init(struct pl_smtpc *c, int fd, const struct pl_smtpc_timeouts *to);
/* Writes first_line (may be NULL; e.g. "POSTLINK <token>\r\n", sent as is)
 * before reading the greeting, then EHLO helo_name, HELO when EHLO gets a
 * 5xx.  0 ok; -1: c->stage (GREETING or EHLO), c->err, and c->greeting /
 * c->ehlo hold the refusal if there was one. */
int pl_smtpc_open(struct pl_smtpc *c, const char *first_line, const char *helo_name);
/* EHLO (HELO fallback) alone, e.g. again after pl_smtpc_xclient. */
int pl_smtpc_ehlo(struct pl_smtpc *c, const char *helo_name);

/* XCLIENT (Postfix): sends those of addr, name, proto, helo that are not
 * NULL and that the server lists, xtext-encoded, and reads the new 220
 * greeting into c->greeting (then EHLO again, or splice the connection and
 * hand c->greeting on with pl_smtp_reply_format; nothing else is buffered).
 * Returns 0 done, 1 not announced (nothing sent), -1 refused or failed. */
struct pl_smtpc_xclient { const char *addr, *name, *proto, *helo; };
int pl_smtpc_xclient(struct pl_smtpc *c, const struct pl_smtpc_xclient *x);

/* ---- a transaction ----------------------------------------------------- */

enum { PL_SMTPC_BODY_NONE, PL_SMTPC_BODY_7BIT, PL_SMTPC_BODY_8BITMIME };

struct pl_smtpc_rcpt {
    const char *addr;               /* without <> */
    const char *notify;             /* "SUCCESS,FAILURE", "NEVER", ... or NULL */
    const char *orcpt;              /* "rfc822;bob@x" (xtext as given) or NULL */
    struct pl_smtp_reply reply;     /* out: code 0 = not sent / no reply */
};

/* The message: either body[0..bodylen) or, when read_body is set, what it
 * returns (bytes read, 0 at the end, -1 on error) -- streamed in chunks, never
 * copied whole.  LF or CRLF line ends; sent dot-stuffed with CRLF. */
struct pl_smtpc_msg {
    const char *sender;             /* without <>, "" for the null sender */
    const char *ret;                /* "FULL" / "HDRS" or NULL */
    const char *envid;              /* xtext or NULL */
    int body;                       /* PL_SMTPC_BODY_* as the message is */
    int smtputf8;                   /* needs SMTPUTF8 */
    unsigned long long size;        /* SIZE= estimate; 0 = not sent */
    struct pl_smtpc_rcpt *rcpts;
    size_t nrcpts;
    const char *data;
    size_t len;
    ssize_t (*read_body)(void *ctx, char *buf, size_t n);
    void *body_ctx;
};

enum { PL_SMTPC_LOCAL_NONE, PL_SMTPC_LOCAL_PERM, PL_SMTPC_LOCAL_TEMP };

struct pl_smtpc_result {
    enum pl_smtpc_stage stage;
    int local;                      /* PL_SMTPC_LOCAL_PERM: refused here before MAIL
                                       (8-bit body without 8BITMIME, SMTPUTF8 not
                                       announced, bad parameter syntax);
                                       PL_SMTPC_LOCAL_TEMP: read_body failed */
    int timedout;
    int dsn_dropped;                /* DSN parameters given, server lacks DSN */
    size_t accepted;                /* recipients with a 2xx reply */
    struct pl_smtp_reply mail, data, dot;   /* code 0: none */
    char err[256];
};

/* Runs MAIL, RCPT..., DATA, the message and the final dot (pipelined when
 * announced).  Returns 0 when the final reply was read (stage DONE; accepted
 * when res->dot.code is 2xx), else -1 with res->stage.  After a refusal at
 * MAIL/RCPT/DATA the session stays usable (pl_smtpc_rset). */
int pl_smtpc_send(struct pl_smtpc *c, struct pl_smtpc_msg *m, struct pl_smtpc_result *res);

/* RSET: 0 on 250, else -1. */
int pl_smtpc_rset(struct pl_smtpc *c);
/* QUIT, reading the reply for at most 2 s; never blocks longer. */
void pl_smtpc_quit(struct pl_smtpc *c);

#endif
