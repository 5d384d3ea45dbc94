/* pushd.h -- postlink-pushd's pieces: the service (pushd_main.c), mail in
 * from Postfix over LMTP (pushd_lmtp.c), the device API over HTTP
 * (pushd_http.c, the HTTP library's glue; pushd_fetch.c, what a fetch and
 * a wait do with the store) and the per-device serialisation and wake-ups
 * (pushd_dev.c), the Web Push subscriptions (pushd_sub.c) and notices
 * (pushd_notify.c). */
#ifndef PL_PUSHD_H
#define PL_PUSHD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "conf_params.h"
#include "lmtp_server.h"
#include "push.h"
#include "push_req.h"
#include "store.h"

struct pushd {
    _Atomic(const struct pl_cfg *) cfg;
    pl_store *store;
    const char *hostname;
};
extern struct pushd pd;

/* ---- pushd_lmtp.c ---- */
const char *pushd_check_rcpt(void *ctx, const char *rcpt);
void pushd_deliver(void *ctx, const struct pl_lmtp_envelope *env,
                   char (*replies)[PL_LMTP_REPLY_MAX]);
/* Test hook (POSTLINK_PUSHD_CRASH_FILE): SIGKILL itself at step. */
void pushd_crash_point(const char *step);

/* ---- pushd_dev.c ---- */
/* pl_store_run, and again while it reports the store busy (PL_TEMP), for
 * up to budget_ms: for the transactions whose failure costs something (a
 * redelivery, a 451). */
int pushd_store_run(unsigned flags, pl_store_txn_fn fn, void *ctx, int64_t budget_ms);
/* Serialise one device's fetches: wait up to ms for its earlier fetch to
 * end; 0 when the caller holds the device, -1 on timeout or stop. */
int pushd_dev_acquire(const char *sel, unsigned ms);
void pushd_dev_release(const char *sel);
/* Mail was committed: wake every held wait. */
void pushd_mail_arrived(void);
/* Wait up to ms for pushd_mail_arrived (or a stop); returns early then. */
void pushd_mail_wait(unsigned ms);
/* One held wait per device: a newer wait supersedes the older, which
 * then answers 204 (a device cannot pile up held requests). */
unsigned long pushd_wait_begin(const char *sel);
int pushd_wait_superseded(const char *sel, unsigned long gen);
void pushd_wait_end(const char *sel, unsigned long gen);
/* The bytes of message bodies held for responses, bounded by
 * push_memory_limit: 0 and reserved, or -1 (answer 503, retry). */
int pushd_mem_try(uint64_t bytes, uint64_t limit);
void pushd_mem_release(uint64_t bytes);
/* At a stop: wake everyone. */
void pushd_dev_wake_all(void);

/* ---- pushd_fetch.c ---- */
#define PUSHD_HDR_MAX 8
struct pushd_reply {
    unsigned status;
    const char *error;              /* Postlink-Error code, or NULL */
    char *body;                     /* malloc'd, or NULL */
    size_t len;
    const char *type;               /* Content-Type of body (static, or type_buf) */
    char type_buf[128];
    struct { char name[32]; char value[160]; } hdr[PUSHD_HDR_MAX];
    size_t nhdr;
};
void pushd_reply_header(struct pushd_reply *r, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* a text/plain reply with a reason */
void pushd_reply_text(struct pushd_reply *r, unsigned status, const char *error,
                      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* What a request leaves to do once its response went out in full. */
struct pushd_after {
    int have_dev;
    struct pl_pdev dev;
    int busy;                       /* the device is held (pushd_dev_acquire) */
    int ack;                        /* apply the ack of ack_id */
    char ack_id[PL_PID_LEN + 1];
    int move;
    int sent;                       /* mark sent_id sent */
    char sent_id[PL_PID_LEN + 1];
    uint64_t sent_size;
    int64_t rep_bytes, rep_count;   /* room the request reported; -1: none */
    uint64_t mem;                   /* bytes reserved by pushd_mem_try */
};

/* The device a token names: PL_OK, PL_NOTFOUND, or a store error. */
int pushd_auth(const char *token, struct pl_pdev *d);
/* A fetch for device d (held by the caller). */
void pushd_fetch(const struct pl_preq *q, const struct pl_pdev *d, struct pushd_reply *r,
                 struct pushd_after *a);
/* A wait (the device is not held). */
void pushd_wait(const struct pl_preq *q, const struct pl_pdev *d, struct pushd_reply *r);
/* After the response went out in full (ok) or not: apply what a holds. */
void pushd_after(struct pushd_after *a, int ok);

/* ---- pushd_retain.c ---- */
/* One round of the retention rule (push_max_*, push_over_action). */
void pushd_retain(void);
/* Mail was stored: run a round within a second (count and bytes limits
 * apply at once, not a minute later). */
void pushd_retain_soon(void);

/* ---- pushd_sub.c ---- */
/* POST (body: len bytes, too_large when it was over PL_PSUB_JSON_MAX) or
 * DELETE /v1/subscription for device d. */
void pushd_subscription(const struct pl_preq *q, const struct pl_pdev *d, const char *body,
                        size_t len, int too_large, struct pushd_reply *r);

/* ---- pushd_notify.c ---- */
/* Loads the VAPID key (at open, as root): 0, or -1 logged. */
int pushd_notify_open(void);
/* 1 when Web Push is on (push_vapid_key_file set and loaded). */
int pushd_notify_enabled(void);
int pushd_notify_start(void);
void pushd_notify_stop(void);
/* Mail was committed for user: its subscribed devices get a notice (the
 * caller never waits for the sending). */
void pushd_notify_user(const char *user);
/* The device with selector sel made a fetch: no more notices until new mail. */
void pushd_notify_fetched(const char *sel);

/* ---- pushd_http.c ---- */
int pushd_http_open(void);
int pushd_http_start(void);
void pushd_http_quiesce(void);
void pushd_http_stop(void);

#endif
