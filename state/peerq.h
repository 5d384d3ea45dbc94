/* peerq.h -- mail from sync peers trusted by their TLS client certificate.
 * A milter cannot see the client certificate; Postfix hands its
 * fingerprints only to a policy server.  So postlink-policyd, asked at
 * DATA (smtpd_data_restrictions), records the queue id of a message whose
 * client presented a certificate listed in sync_peers, and the sync milter
 * takes that record at end-of-message.  Table "peerq" (schema v6): key
 * queue id, value "<created> <client address> <fingerprint>". */
#ifndef PL_PEERQ_H
#define PL_PEERQ_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* How long a record may wait for its message's end (Postfix's own
 * timeouts end any SMTP transaction long before). */
#define PL_PEERQ_MAX_AGE 3600

int pl_peerq_mark(pl_txn *t, const char *qid, const char *client, const char *fprint, int64_t now);
/* PL_OK and the record deleted if qid was marked for this client address
 * less than PL_PEERQ_MAX_AGE ago (fprint gets the fingerprint); PL_NOTFOUND
 * otherwise (a stale or foreign record is deleted too). */
int pl_peerq_take(pl_txn *t, const char *qid, const char *client, int64_t now,
                  char *fprint, size_t flen);
int pl_peerq_purge(pl_txn *t, int64_t before, unsigned *purged);

#endif
