/* policyd_decide.c -- postlink-policyd's decisions.  Today one: mail from a
 * client whose TLS certificate (or public key) fingerprint is listed in
 * sync_peers is a sync peer's, so its queue id is recorded for the sync
 * milter (state/peerq.h).  postlink-policyd never rejects mail: the
 * answer is DUNNO, or a temporary failure when the record cannot be
 * written (the peer retries; nothing is lost). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "peerq.h"
#include "policyd.h"

struct mark { const char *qid, *client, *fprint; unsigned port; };

static int mark_fn(pl_txn *t, void *ctx)
{
    struct mark *m = ctx;
    return pl_peerq_mark(t, m->qid, m->client, m->port, m->fprint, (int64_t)time(NULL));
}

void policyd_decide(const struct pl_policy_req *q, char *action, size_t len)
{
    const char *request = pl_policy_get(q, "request");
    const char *fp = pl_policy_get(q, "ccert_fingerprint");
    const char *pkfp = pl_policy_get(q, "ccert_pubkey_fingerprint");
    const char *client = pl_policy_get(q, "client_address");
    const char *qid = pl_policy_get(q, "queue_id");
    const char *stage = pl_policy_get(q, "protocol_state");
    const char *port = pl_policy_get(q, "client_port");
    struct mark m = {qid, client, NULL, (unsigned)strtoul(port, NULL, 10)};

    snprintf(action, len, "DUNNO");
    if (strcmp(request, "smtpd_access_policy") != 0) {
        msg_warn("postlink-policyd: unknown request type \"%.60s\": DUNNO", request);
        return;
    }
    if (*fp && pl_peers_match_fprint(&pd.peers, fp))
        m.fprint = fp;
    else if (*pkfp && pl_peers_match_fprint(&pd.peers, pkfp))
        m.fprint = pkfp;
    if (m.fprint == NULL) {
        if (pd.verbose && (*fp || *pkfp))
            msg_info("postlink-policyd: client=%s certificate %s (public key %s) is not a sync peer",
                     client, *fp ? fp : "-", *pkfp ? pkfp : "-");
        return;
    }
    if (*qid == '\0' || *client == '\0' || *port == '\0' ||
        !(strcmp(stage, "DATA") == 0 || strcmp(stage, "END-OF-MESSAGE") == 0)) {
        msg_warn("postlink-policyd: client=%s presented sync peer certificate %s at %s, but the "
                 "request is not at DATA with a queue id and client port: call check_policy_service "
                 "from smtpd_data_restrictions (Postfix 3.0 or later, no smtpd_proxy_filter)",
                 *client ? client : "-", m.fprint, *stage ? stage : "-");
        return;
    }
    if (pl_store_run(pd.store, PL_TXN_SYNC, mark_fn, &m) != PL_OK) {
        msg_qid(LOG_WARNING, qid, "postlink-policyd: cannot record sync peer mail from %s: tempfail", client);
        snprintf(action, len, "DEFER_IF_PERMIT 4.3.0 postlink state store busy, try again later");
        return;
    }
    msg_qid(LOG_INFO, qid, "postlink-policyd: client=%s is a sync peer by certificate fingerprint %s",
            client, m.fprint);
}
