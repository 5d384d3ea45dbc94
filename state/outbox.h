/* outbox.h -- work that must happen after a state change commits: copies of
 * a control to fan out over SMTP, and IMAP flag changes.  Entries are
 * written in the same transaction as the change that causes them and
 * deleted only after they were carried out, so a crash between the two
 * repeats the work (at least once) and never loses it. */
#ifndef PL_OUTBOX_H
#define PL_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

enum pl_outbox_kind { PL_OB_SMTP = 1, PL_OB_IMAP = 2 };

struct pl_outbox_entry {
    uint64_t id;
    enum pl_outbox_kind kind;
    unsigned attempts;
    int64_t next_try;          /* Unix time; 0 = now */
    const char *tag;           /* what caused it: "<user> <control msgid>" */
    /* SMTP: envelope and message */
    const char *from;
    const char *const *rcpts;
    size_t nrcpts;
    const char *msg;
    size_t msglen;
    /* IMAP: user, message, flags to add or remove */
    const char *user, *msgid, *flags;
    int add;
};

int pl_outbox_add_smtp(pl_txn *t, const char *tag, const char *from,
                       const char *const *rcpts, size_t nrcpts,
                       const char *msg, size_t msglen, uint64_t *id);
int pl_outbox_add_imap(pl_txn *t, const char *tag, const char *user,
                       const char *msgid, int add, const char *flags, uint64_t *id);

/* Visit entries with first <= id <= last (last 0 = no upper bound). */
typedef int (*pl_outbox_fn)(void *ctx, const struct pl_outbox_entry *e);
int pl_outbox_scan(pl_txn *t, uint64_t first, uint64_t last, pl_outbox_fn fn, void *ctx);
int pl_outbox_del(pl_txn *t, uint64_t id);
/* Count a failed attempt and set when to try again. */
int pl_outbox_retry_later(pl_txn *t, uint64_t id, int64_t next_try);

#endif
