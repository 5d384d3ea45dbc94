/* mirror_guard.c -- the postlink-mirror guard (mirror_guard.h).
 * postlink-mirrord records a hand-over token durably before it sends a
 * copy and the copy as held after Postfix's 250; a crash between the two
 * makes it send the copy again under the same token.  Here, at the end of
 * the message, the token is taken in the store (state/mirror.c mguard):
 * taken before means this copy is a repeat, and it is discarded (Postfix
 * answers 250, so the mirror records it as held).  A copy Postfix then
 * fails to queue gets a 4xx, and postlink-mirrord hands it over again
 * under a new token. */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <time.h>

#include "log.h"
#include "mirror.h"
#include "mirror_guard.h"
#include "strutil.h"

#define HEADER "X-Postlink-Mirror"

static pl_store *store;
static char daemon_name[256];
static pthread_mutex_t name_lock = PTHREAD_MUTEX_INITIALIZER;

struct gmsg {
    int mirror_conn;                    /* the mirror's own listener */
    unsigned n;                         /* X-Postlink-Mirror fields */
    char token[PL_MTOKEN_LEN + 1];      /* the first one's token, if valid */
};

static struct gmsg *get_msg(pl_mctx *ctx)
{
    struct gmsg *m = pl_mf_getpriv(ctx);
    if (m == NULL) {
        m = pl_xcalloc(1, sizeof(*m));
        pl_mf_setpriv(ctx, m);
    }
    return m;
}

static sfsistat on_connect(pl_mctx *ctx, const char *host, const struct sockaddr *sa)
{
    struct gmsg *m = get_msg(ctx);
    const char *d = pl_mf_getsymval(ctx, "{daemon_name}");
    (void)host, (void)sa;
    pthread_mutex_lock(&name_lock);
    m->mirror_conn = d && daemon_name[0] && strcmp(d, daemon_name) == 0;
    pthread_mutex_unlock(&name_lock);
    return SMFIS_CONTINUE;
}

static sfsistat on_header(pl_mctx *ctx, const char *name, const char *value)
{
    struct gmsg *m = get_msg(ctx);
    if (strcasecmp(name, HEADER) != 0)
        return SMFIS_CONTINUE;
    if (m->n++ == 0) {
        size_t n = strlen(value);
        while (n && (value[n - 1] == ' ' || value[n - 1] == '\t'))
            n--;
        while (*value == ' ' || *value == '\t')
            value++, n--;
        if (n == PL_MTOKEN_LEN + 2 && value[0] == '<' && value[n - 1] == '>') {
            memcpy(m->token, value + 1, PL_MTOKEN_LEN);
            m->token[PL_MTOKEN_LEN] = '\0';
            if (!pl_mtoken_ok(m->token))
                m->token[0] = '\0';
        }
    }
    return SMFIS_CONTINUE;
}

struct take { const char *token; int taken; };

static int take_fn(pl_txn *t, void *ctx)
{
    struct take *k = ctx;
    int rc = pl_mguard_take(t, k->token, (int64_t)time(NULL));
    if (rc < 0)
        return rc;
    k->taken = rc;
    return PL_OK;
}

static sfsistat on_eom(pl_mctx *ctx)
{
    struct gmsg *m = get_msg(ctx);
    const char *qid = pl_mf_getsymval(ctx, "i");
    sfsistat ret = SMFIS_CONTINUE;

    if (!m->mirror_conn) {
        /* a sender wrote it: never let a stranger's field look like ours */
        for (unsigned i = m->n; i > 0; i--)
            if (pl_mf_chgheader(ctx, HEADER, (int)i, NULL) != 0)
                ret = SMFIS_TEMPFAIL;
        if (m->n)
            msg_qid(LOG_INFO, qid, "postlink-mirror: removed %u %s field(s) the sender wrote", m->n,
                    HEADER);
    } else if (m->n == 1 && m->token[0]) {
        struct take k = {m->token, 0};
        int rc = pl_store_run(store, PL_TXN_SYNC, take_fn, &k);
        if (rc != PL_OK) {
            pl_mf_setreply(ctx, "451", "4.3.0", "postlink mirror guard store busy, try again later");
            ret = SMFIS_TEMPFAIL;
        } else if (k.taken) {
            msg_qid(LOG_INFO, qid, "postlink-mirror: copy <%s> was handed over before: this "
                    "repeat is discarded", m->token);
            ret = SMFIS_DISCARD;
        }
    }
    m->n = 0;
    m->token[0] = '\0';
    return ret;
}

static void on_abort(pl_mctx *ctx)
{
    struct gmsg *m = pl_mf_getpriv(ctx);
    if (m) {
        m->n = 0;
        m->token[0] = '\0';
    }
}

static void on_close(pl_mctx *ctx)
{
    free(pl_mf_getpriv(ctx));
    pl_mf_setpriv(ctx, NULL);
}

const struct pl_filter mirror_guard_filter = {
    .name = "postlink-mirror",
    .actions = SMFIF_CHGHDRS,
    .stages = PL_MF_BIT(PL_MF_CONNECT) | PL_MF_BIT(PL_MF_HEADER),
    .replies = 0,
    .macros = {[PL_MF_CONNECT] = "{daemon_name}", [PL_MF_EOM] = "i"},
    .connect = on_connect,
    .header = on_header,
    .eom = on_eom,
    .abort = on_abort,
    .close = on_close,
};

int mirror_module_configure(const pl_conf *conf, const struct pl_cfg *cfg, int reload, char *err,
                            size_t errlen)
{
    (void)conf, (void)reload, (void)err, (void)errlen;
    pthread_mutex_lock(&name_lock);
    snprintf(daemon_name, sizeof(daemon_name), "%s", cfg->mirror_guard_daemon_name);
    pthread_mutex_unlock(&name_lock);
    return 0;
}

void mirror_module_start(pl_store *s)
{
    store = s;
    msg_info("postlink-mirror guard: copies from listener \"%s\" are checked for repeats",
             daemon_name);
}

void mirror_module_finish(void) {}
