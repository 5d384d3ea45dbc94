/* sip_ua_int.h -- internals shared by sip_ua.c (thread, command queue,
 * public API) and sip_ua_leg.c (nua events: registration, calls). */
#ifndef PL_SIP_UA_INT_H
#define PL_SIP_UA_INT_H

#include <pthread.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

struct pl_sip_ua;
struct sip_leg;

#define NUA_MAGIC_T struct pl_sip_ua
#define NUA_HMAGIC_T struct sip_leg
#define SU_ROOT_MAGIC_T struct pl_sip_ua
#define SU_WAKEUP_ARG_T struct pl_sip_ua
#define SU_TIMER_ARG_T void

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/su_wait.h>

#include "sip_ua.h"

/* A thread blocked in the API until the SIP thread says done. */
struct sip_waiter {
    pthread_cond_t cv;
    int done;
    int result;
};

enum leg_kind { LEG_OUT, LEG_IN };

struct sip_leg {
    struct pl_sip_ua *ua;
    enum leg_kind kind;
    nua_handle_t *nh;               /* NULL once nua ended the dialog */
    char call_id[256];
    struct timespec t0;             /* INVITE sent / received */
    /* outgoing */
    char *to;                       /* sip:NUMBER@DOMAIN */
    char *offer;
    struct pl_sip_call *res;        /* the caller's result (under ua->mu) */
    struct sip_waiter *waiter;      /* thread waiting (under ua->mu) */
    su_timer_t *timer;              /* invite timeout, then cancel grace */
    int auth_tries;
    int final;                      /* final answer handled */
    int cancelled;                  /* CANCEL sent on timeout */
    struct timespec t_bye;
    /* both */
    int up;                         /* 200 sent (in) / received (out) */
    int counted;                    /* in: counted in ua->n_in */
    int bye_sent;
    int ended;                      /* on_call_end done (or never due) */
    int terminated;                 /* nua said terminated; nh destroyed */
    int released;                   /* nobody outside the SIP thread holds it */
    char *answer;                   /* incoming: our answer, for re-INVITEs */
    struct sip_leg *next;
};

enum cmd_kind { CMD_CALL, CMD_HANGUP, CMD_HANGUP_IN, CMD_STOP };

struct sip_cmd {
    enum cmd_kind kind;
    struct sip_leg *leg;            /* CALL, HANGUP */
    char call_id[256];              /* HANGUP_IN */
    struct sip_waiter *waiter;      /* HANGUP_IN */
    struct sip_cmd *next;
};

#define SIP_MAX_PROXY_ADDRS 8

struct pl_sip_ua {
    /* configuration (copies) */
    char *proxy, *bind, *domain, *number, *auth_user, *auth_password;
    unsigned expires_s, invite_timeout_ms, max_incoming;
    int verbose;
    struct sockaddr_storage proxy_addr[SIP_MAX_PROXY_ADDRS];
    int n_proxy_addr;
    struct pl_sip_ua_callbacks cb;
    void *ctx;

    pthread_t thread;
    pthread_mutex_t mu;             /* queue, waiters, results, flags below */
    pthread_cond_t cv;              /* start-up, registration state */
    int wake[2];                    /* pipe: other threads -> SIP thread */
    struct sip_cmd *q_head, *q_tail;
    int started;                    /* 1 running, -1 failed to start */
    char start_err[256];
    int stopping;
    int reg_status;                 /* last final REGISTER status (0 none) */
    int reg_ok;

    /* SIP thread only */
    su_home_t home[1];
    su_root_t *root;
    nua_t *nua;
    nua_handle_t *reg_nh;
    int reg_auth_tries;
    su_timer_t *reg_timer;          /* REGISTER again after a failure */
    int unregistering;
    int shutting_down;
    su_timer_t *stop_timer;
    struct sip_leg *legs;
    unsigned n_in;                  /* incoming calls being set up or up */
    unsigned n_refused_busy;        /* refused since the last accepted one */
};

/* sip_ua_leg.c */
void sip_ua_event(nua_event_t ev, int status, char const *phrase, nua_t *nua,
                  struct pl_sip_ua *ua, nua_handle_t *nh, struct sip_leg *leg,
                  sip_t const *sip, tagi_t tags[]);
void sip_leg_start_call(struct pl_sip_ua *ua, struct sip_leg *leg);
void sip_leg_hangup(struct pl_sip_ua *ua, struct sip_leg *leg);
void sip_leg_hangup_incoming(struct pl_sip_ua *ua, const char *call_id,
                             struct sip_waiter *w);
void sip_leg_abort_all(struct pl_sip_ua *ua);
void sip_leg_free(struct sip_leg *leg);
void sip_ua_register(struct pl_sip_ua *ua);

/* sip_ua.c */
long sip_ms_since(const struct timespec *t0);
void sip_waiter_done(struct pl_sip_ua *ua, struct sip_waiter **wp, int result);
void sip_ua_shutdown(struct pl_sip_ua *ua);

#endif
