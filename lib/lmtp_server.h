/* lmtp_server.h -- the server side of LMTP (RFC 2033) for postlink's
 * delivery agents: Postfix's lmtp(8) client connects over a unix socket,
 * sends one or more transactions, and gets one reply per recipient after
 * DATA.  The agent supplies a deliver callback; this file speaks the
 * protocol (LHLO with PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE,
 * optionally DSN and SMTPUTF8; MAIL, RCPT, DATA, RSET, NOOP, QUIT;
 * dot-unstuffing; line and size limits) and nothing else.  The ESMTP
 * parameters an agent may pass on (SIZE, BODY, SMTPUTF8, and with the dsn
 * option RET, ENVID, NOTIFY, ORCPT) are checked and handed over in the
 * envelope; other parameters are ignored. */
#ifndef PL_LMTP_SERVER_H
#define PL_LMTP_SERVER_H

#include <stddef.h>

struct pl_lmtp_envelope {
    const char *sender;          /* MAIL FROM address without <>, "" for null */
    const char *const *rcpts;    /* RCPT TO addresses without <> */
    size_t nrcpts;
    const char *msg;             /* the message, dot-unstuffed, CRLF kept as sent */
    size_t msglen;
    int truncated;               /* keep_head_only: msg is the first msglen bytes */
    /* ESMTP parameters as the client sent them; NULL or 0 when absent.
     * RET, ENVID, NOTIFY and ORCPT only with opts.dsn (else ignored). */
    unsigned long long size;     /* MAIL SIZE= (RFC 1870) */
    int body;                    /* MAIL BODY= (RFC 6152): PL_LMTP_BODY_* */
    int smtputf8;                /* MAIL SMTPUTF8 (RFC 6531) */
    const char *ret;             /* MAIL RET=FULL|HDRS (RFC 3461), case as sent */
    const char *envid;           /* MAIL ENVID= xtext, as sent */
    const char *const *notify;   /* [nrcpts]: RCPT NOTIFY= value or NULL */
    const char *const *orcpt;    /* [nrcpts]: RCPT ORCPT= "type;xtext" or NULL */
};
enum { PL_LMTP_BODY_NONE, PL_LMTP_BODY_7BIT, PL_LMTP_BODY_8BITMIME };

/* Called once per DATA.  Fill replies[i] (for rcpts[i]) with a complete
 * reply line without CRLF, e.g. "250 2.0.0 applied" or "451 4.3.0 store
 * busy"; each buffer holds PL_LMTP_REPLY_MAX bytes. */
#define PL_LMTP_REPLY_MAX 512
typedef void (*pl_lmtp_deliver_fn)(void *ctx, const struct pl_lmtp_envelope *env,
                                   char (*replies)[PL_LMTP_REPLY_MAX]);
/* Optional: called per RCPT; return NULL to accept or a full reply line
 * (e.g. "550 5.1.1 not a postlink sync address") to refuse it. */
typedef const char *(*pl_lmtp_rcpt_fn)(void *ctx, const char *rcpt);

struct pl_lmtp_server_opts {
    const char *hostname;        /* for the greeting and LHLO reply */
    size_t max_msg_bytes;        /* 0 = 10 MB; larger DATA gets 552 */
    int keep_head_only;          /* instead: accept any size, hand over the first
                                    max_msg_bytes (env->truncated set) -- for
                                    agents that read only the header */
    size_t max_rcpts;            /* 0 = 1000 */
    unsigned idle_timeout_s;     /* 0 = 300: close an idle connection */
    int dsn;                     /* announce DSN (RFC 3461); check and pass on
                                    RET, ENVID, NOTIFY, ORCPT (bad: 501 5.5.4) */
    int smtputf8;                /* announce SMTPUTF8 (the parameter is passed
                                    on either way) */
    pl_lmtp_deliver_fn deliver;
    pl_lmtp_rcpt_fn check_rcpt;  /* may be NULL */
    void *ctx;
};

/* Serve one accepted connection until QUIT, EOF, timeout or error; closes
 * fd.  Thread-safe (no globals): call it from one thread per connection. */
void pl_lmtp_serve(int fd, const struct pl_lmtp_server_opts *o);

/* Create a listening unix socket at path (an existing socket file there is
 * replaced), mode 0660 (0666 when world is set).  Returns the fd or -1 with
 * a message in err. */
int pl_unix_listen(const char *path, int world, char *err, size_t errlen);

#endif
