/* sipd.h -- what postlink-sipd's files share: its settings, the SIP user
 * agent, the store, and the two halves of a call: the calling side
 * (sipd_call.c: INVITE, the TCP connection the SDP negotiated, the token
 * line, an SMTP session over it) used by the LMTP delivery
 * (sipd_deliver.c), and the answering side (sipd_answer.c: a call from
 * another site handed to this site's Postfix). */
#ifndef PL_SIPD_H
#define PL_SIPD_H

#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "conf_params.h"
#include "lmtp_server.h"
#include "sdp_tcp.h"
#include "sip_ua.h"
#include "smtp_client.h"
#include "store.h"

struct sipd {
    const struct pl_cfg *_Atomic cfg;   /* replaced on SIGHUP */
    pl_store *store;
    struct pl_sip_ua *ua;
    const char *hostname;
    char number[24];                    /* canonical, "" when calls out only */
    char media_addr[64];
    int media_family;
};
extern struct sipd sipd;

/* ---- the calling side (sipd_call.c) ------------------------------------ */

/* What became of an attempt to open a session. */
enum sipd_fail {
    SIPD_OK,
    SIPD_F_REFUSED,      /* a final SIP answer other than 200 (404, 480, 486, 488 ...) */
    SIPD_F_TIMEOUT,      /* no final answer: CANCEL sent */
    SIPD_F_SDP,          /* 200 OK with an SDP we cannot use */
    SIPD_F_CONNECT,      /* the TCP connection, its token or the SMTP greeting failed */
    SIPD_F_LOCAL         /* our side: no socket, no UA */
};

struct sipd_session {
    struct pl_sip_call call;
    int fd;
    struct pl_smtpc smtp;
    enum sipd_fail fail;
    char why[300];                      /* for the log and the fallback record */
    long ms_invite, ms_connected;       /* from the INVITE: 200 OK, SMTP greeting */
};

/* Call number and set up the SMTP session over the negotiated connection
 * (greeting and EHLO read: the EHLO reply is where the peer says what it
 * supports).  SIPD_OK, or the failure with s->why.  Always end with
 * sipd_session_close. */
enum sipd_fail sipd_session_open(const char *number, struct sipd_session *s);
/* QUIT (when the session is still usable), close, BYE. */
void sipd_session_close(struct sipd_session *s);

/* ---- the answering side (sipd_answer.c) -------------------------------- */

int sipd_on_invite(void *ctx, const struct pl_sip_incoming *in, char *answer_sdp, size_t len);
void sipd_on_call_end(void *ctx, const char *call_id, int by_peer);
/* Refuse new calls and wait (bounded; then cut them) for answered calls
 * still handing SMTP over.  Nonzero when none is left. */
int sipd_answer_drain(unsigned ms);

/* ---- delivery (sipd_deliver.c) ----------------------------------------- */

void sipd_deliver(void *ctx, const struct pl_lmtp_envelope *env, char (*replies)[PL_LMTP_REPLY_MAX]);

/* ---- small shared helpers (sipd_net.c) --------------------------------- */

/* A listening TCP socket on addr, port 0 (any); its port in *port. */
int sipd_listen(const char *addr, unsigned *port, char *err, size_t errlen);
/* Accept one connection within ms; -1 on timeout or error. */
int sipd_accept(int lfd, unsigned ms, char *peer, size_t peerlen);
/* Connect to addr:port within ms (numeric addr), from src when it is given
 * and of the same scope (loopback or not); -1 with err. */
int sipd_connect(const char *addr, unsigned port, unsigned ms, const char *src, char *err,
                 size_t errlen);
/* Accept connections on lfd until one sends "POSTLINK <token>" as its
 * first line, within ms in all; others are closed (and logged with
 * call_id).  The fd, with the peer's address in peer, or -1. */
int sipd_accept_token(int lfd, unsigned ms, const char *token, const char *call_id, char *peer,
                      size_t peerlen);
/* Read one line (up to max bytes, LF-terminated) within ms; its length or -1. */
long sipd_read_line(int fd, char *buf, size_t max, unsigned ms);
long sipd_ms_since(const struct timespec *t0);
/* CLOCK_REALTIME now + ms, for pthread_cond_timedwait. */
void sipd_deadline(struct timespec *ts, unsigned ms);
/* A watchdog: shutdown(fd) if it is still armed after ms (a session's
 * absolute deadline, where the per-command timeouts restart on progress). */
struct sipd_watch {
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd, armed, fired, running;
    unsigned ms;
};
void sipd_watch_start(struct sipd_watch *w, int fd, unsigned ms);
/* Disarm and join; nonzero if it had fired. */
int sipd_watch_stop(struct sipd_watch *w);
/* Nonzero if we may connect to addr that a peer's SDP names: never a
 * loopback address unless the SIP server itself is on loopback. */
int sipd_peer_addr_ok(const char *addr);

#endif
