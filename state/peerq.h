/* peerq.h -- mail from sync peers trusted by their TLS client certificate.
 * A milter cannot see the client certificate; Postfix hands its
 * fingerprints only to a policy server.  So postlink-policyd, asked at
 * DATA (smtpd_data_restrictions), records the queue id of a message whose
 * client presented a certificate listed in sync_peers, and the sync milter
 * takes that record at end-of-message.  Table "peerq" (schema v6): key
 * queue id, value "<created> <client address> <client port> <fingerprint>":
 * the client's address and port tie the record to one SMTP connection, so
 * a queue id Postfix reuses later cannot inherit it. */
#ifndef PL_PEERQ_H
#define PL_PEERQ_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* How long a record may wait for its message's end (Postfix's own
 * timeouts end any SMTP transaction long before). */
#define PL_PEERQ_MAX_AGE 3600

int pl_peerq_mark(pl_txn *t, const char *qid, const char *client, unsigned port,
                  const char *fprint, int64_t now);
/* Take (delete) qid's record, if any.  *trusted is 1 (and fprint gets the
 * fingerprint) only if it was made for this client address and port less
 * than PL_PEERQ_MAX_AGE ago.  PL_OK unless the store fails. */
int pl_peerq_take(pl_txn *t, const char *qid, const char *client, unsigned port, int64_t now,
                  int *trusted, char *fprint, size_t flen);
int pl_peerq_purge(pl_txn *t, int64_t before, unsigned *purged);

#endif
