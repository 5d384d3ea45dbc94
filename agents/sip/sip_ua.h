/* sip_ua.h -- postlink-sipd's SIP user agent: a thin layer over sofia-sip's
 * nua that registers one number at the SIP server, places calls through it
 * and answers calls that come from it, carrying the caller's own SDP both
 * ways (sofia's media engine is off).
 *
 * Thread model: pl_sip_ua_start() starts one SIP thread that owns the
 * sofia-sip root and every nua object; nothing else ever calls sofia.
 * The functions below may be called from any other thread (several at
 * once): each puts a command on a mutex-protected queue, wakes the SIP
 * thread through a pipe registered with its su_root, and (where it says
 * "blocks") waits on a condition variable for the result.  The callbacks
 * run in the SIP thread: they must not block for long and must not call
 * the blocking functions (pl_sip_hangup_incoming is allowed there; it then
 * acts at once and does not wait). */
#ifndef PL_SIP_UA_H
#define PL_SIP_UA_H

#include <stddef.h>
#include <sys/socket.h>

struct pl_sip_ua_conf {
    const char *proxy;          /* SIP server URI, outbound proxy and registrar,
                                   e.g. "sip:127.0.0.1:5060;transport=tcp" */
    const char *bind;           /* local contact/listen URI, e.g.
                                   "sip:127.0.0.1:5070;transport=udp" (port 0: any) */
    const char *domain;         /* domain of the AOR: sip:NUMBER@DOMAIN */
    const char *number;         /* user part to register; NULL: do not
                                   register (calls out only, answers nothing) */
    const char *auth_user;      /* digest credentials for 401/407; NULL: none */
    const char *auth_password;
    unsigned register_expires_s;    /* 0: 600 */
    unsigned invite_timeout_ms;     /* no final answer within it: CANCEL,
                                       result "timeout" (0: 30000) */
    unsigned max_incoming;          /* concurrent incoming calls (0: 16);
                                       more are refused with 486 */
    int verbose;                    /* sofia's own log (0 off .. 9) to msg_debug */
};

/* What the caller's INVITE said, for on_invite. */
struct pl_sip_incoming {
    const char *call_id;
    const char *from;           /* the From header as text */
    const char *ruri_user;      /* user part of the Request-URI */
    const char *offer_sdp;      /* the INVITE's body ("" if none) */
    const char *src;            /* transport source, "ADDR:PORT" */
    const char *transport;      /* "udp", "tcp" ... */
};

struct pl_sip_ua_callbacks {
    /* An INVITE that came from the SIP server for our number (the UA has
     * answered 403 / 404 / 486 itself to the others, and sent 180
     * Ringing).  Return 200 with answer_sdp (a C string, < len bytes)
     * filled in, or a final status >= 300 to refuse (488, 403, 486 ...).
     * NULL: every call is refused with 480. */
    int (*on_invite)(void *ctx, const struct pl_sip_incoming *in,
                     char *answer_sdp, size_t len);
    /* An established call ended: by_peer 1 when the other side sent BYE
     * (or the dialog died: no ACK, transport error), 0 after our own
     * pl_sip_hangup / pl_sip_hangup_incoming.  Called for incoming calls
     * and for outgoing ones.  May be NULL. */
    void (*on_call_end)(void *ctx, const char *call_id, int by_peer);
};

/* One outgoing call: filled in by pl_sip_call, ended by pl_sip_hangup. */
struct pl_sip_call {
    int status;                 /* final status: 200, 404, 486 ...; 0 for a
                                   local timeout or transport error */
    char reason[128];           /* its phrase, or "timeout" / the local error */
    char call_id[256];
    char *answer_sdp;           /* malloc'd body of the 200 (NULL otherwise) */
    int ringing;                /* a 180 was seen */
    long ms_180, ms_final;      /* ms from sending INVITE to the first 180 /
                                   to the final answer (-1: not seen) */
    int bye_status;             /* pl_sip_hangup: status of our BYE (0: none
                                   or timed out; -1: the peer hung up first) */
    long ms_bye;                /* BYE round trip in ms (-1: none) */
    void *leg;                  /* internal; NULL once hung up / failed */
};

struct pl_sip_ua;

/* Start the SIP thread with a copy of conf; when conf->number is set,
 * send the first REGISTER (see pl_sip_ua_wait_registered); nua refreshes
 * it before it expires, and after a failed one (refused password, no SIP
 * server) the UA registers afresh every 30 s.  NULL with a message in err
 * on failure (bad URI, cannot bind...). */
struct pl_sip_ua *pl_sip_ua_start(const struct pl_sip_ua_conf *conf,
                                  const struct pl_sip_ua_callbacks *cb, void *ctx,
                                  char *err, size_t errlen);

/* Blocks until the registrar answers the REGISTER (after any digest
 * challenge) or timeout_ms pass: 0 once it said 200; -1 otherwise, with
 * *status (if not NULL) the last final status (0: none yet / timeout). */
int pl_sip_ua_wait_registered(struct pl_sip_ua *ua, unsigned timeout_ms, int *status);

/* Unregister (expires 0), shut sofia down (bounded: a few seconds at
 * most), join the thread, free everything.  Calls still up are ended. */
void pl_sip_ua_stop(struct pl_sip_ua *ua);

/* Blocks: INVITE sip:NUMBER@DOMAIN through the proxy with offer_sdp as
 * body, until a final answer or invite_timeout_ms (then CANCEL).  The
 * result is in *out (always filled); returns 0 when the call is up
 * (status 200: ACK sent, out->leg set; call pl_sip_hangup later), -1
 * otherwise (nothing to hang up; out->answer_sdp NULL). */
int pl_sip_call(struct pl_sip_ua *ua, const char *number, const char *offer_sdp,
                struct pl_sip_call *out);

/* Blocks (bounded, ~5 s): BYE an established outgoing call and wait for
 * the answer (out->bye_status, out->ms_bye); frees out->answer_sdp and
 * the internal state.  Safe on a failed call or twice. */
void pl_sip_hangup(struct pl_sip_ua *ua, struct pl_sip_call *call);

/* Callee side: BYE the incoming call with this Call-ID.  From another
 * thread it blocks (bounded) for the BYE's answer and returns its status;
 * from the SIP thread (inside a callback) it sends the BYE and returns 0.
 * -1: no such established call. */
int pl_sip_hangup_incoming(struct pl_sip_ua *ua, const char *call_id);

#endif
