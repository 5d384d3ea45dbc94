/* push_intake.h -- capability 5: receipts of mail taken in from Postfix, so
 * that a delivery Postfix repeats (postlink-pushd committed the message
 * but died before its 250 went out, or the answer was lost) is recognised
 * and not stored twice.  Postfix repeats a delivery with the same bytes
 * (its own Received field, with the queue id, included), so the key is a
 * digest of the user, the envelope sender and the bytes.
 *   pin  key "<user>\n<64 hex: SHA-256>" -> "<message id> <time>"
 * A receipt outlives the message (the device may have acknowledged the
 * first copy before Postfix tries again): purge it by age, after Postfix's
 * maximal_queue_lifetime. */
#ifndef PL_PUSH_INTAKE_H
#define PL_PUSH_INTAKE_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define PL_T_PIN "pin"
#define PL_PIN_DIGEST_LEN 64

/* The digest (PL_PIN_DIGEST_LEN + 1 bytes) of one delivery: 0, -1. */
int pl_pin_digest(const char *user, const char *sender, const void *bytes, size_t len,
                  char *digest);
/* The message id (PL_PID_LEN + 1 bytes) a receipt names: PL_OK,
 * PL_NOTFOUND (none, or older than `since`). */
int pl_pin_get(pl_txn *t, const char *user, const char *digest, int64_t since, char *id,
               size_t idlen);
int pl_pin_put(pl_txn *t, const char *user, const char *digest, const char *id, int64_t now);
/* Forgets receipts older than before; *n counts them. */
int pl_pin_purge(pl_txn *t, int64_t before, unsigned *n);

#endif
