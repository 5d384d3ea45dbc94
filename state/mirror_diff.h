/* mirror_diff.h -- the heart of capability 2 (the POP3 mirror, seed 001
 * Fig. 2): compare the primary's id list now with the one saved at the
 * last sync and say, per id, what to do.  Pure: no I/O, no store; the
 * caller (postlink-mirrord) records the outcome.
 *
 * The saved list is the primary's whole list at the last sync: each id the
 * mirror still holds a copy of (HELD), ids whose copy is gone or was never
 * made (SEEN: handed over and withdrawn, adopted with --adopt), and
 * tombstones (ids that vanished; one that reappears is not copied again).
 *   - an id listed now and not saved: FETCH;
 *   - a saved HELD id no longer listed: WITHDRAW (delete mode: the copy
 *     goes; mark mode: marked read) -- once it has been missing for
 *     missing_syncs complete listings in a row (MISSING before that);
 *   - a saved SEEN id no longer listed: FORGET (it becomes a tombstone);
 *   - nothing counts as gone when the listing is incomplete, nor when more
 *     than hold_share of the saved ids (and at least hold_min) would go at
 *     once: then they are HELD_BACK and the sync reports it;
 *   - everything else: KEEP (a listed tombstone stays one: REVIVED).
 * The seed's worked example: saved {id2 SEEN, id3 id4 id5 HELD}, listed
 * {id3 id5 id6 id7} -> id4 WITHDRAW, id2 FORGET, id6 id7 FETCH, id3 id5
 * KEEP. */
#ifndef PL_MIRROR_DIFF_H
#define PL_MIRROR_DIFF_H

#include <stddef.h>

#define PL_UIDL_MAX 70                     /* RFC 1939: 1-70 printable characters */

/* One line of a UIDL listing, "n id" (without CRLF): 0 with *msgno and the
 * id (PL_UIDL_MAX + 1 bytes), or -1 with *why. */
int pl_uidl_parse_line(const char *line, size_t len, unsigned long *msgno, char *id, const char **why);

enum pl_mid_state { PL_MID_HELD, PL_MID_SEEN, PL_MID_TOMBSTONE };

struct pl_mid {
    const char *id;
    enum pl_mid_state state;
    unsigned missing;                      /* complete listings in a row without it */
};

enum pl_mact {
    PL_MACT_KEEP, PL_MACT_FETCH, PL_MACT_WITHDRAW, PL_MACT_FORGET, PL_MACT_MISSING,
    PL_MACT_HELD_BACK, PL_MACT_REVIVED
};
const char *pl_mact_name(enum pl_mact a);

struct pl_mdiff_opts {
    int complete;                          /* the listing is complete (UIDL count = STAT count) */
    unsigned missing_syncs;                /* 0 = 1 */
    double hold_share;                     /* 0 = 0.5 */
    size_t hold_min;                       /* 0 = 10 */
};

struct pl_mdiff_sum {
    size_t fetch, withdraw, forget, missing, held_back, keep, revived;
    int held;                              /* the mass-vanish guard held withdrawals back */
};

/* Calls fn(ctx, id, action) once per saved id and once per new listed id
 * (ids compare exactly).  listed must not repeat an id: -1 (and no call)
 * if it does, or if an id is not a valid UIDL; 0 otherwise, with the
 * counts in *sum.  fn returning nonzero stops the walk (returned as is). */
typedef int (*pl_mdiff_fn)(void *ctx, const char *id, enum pl_mact action);
int pl_mirror_diff(const struct pl_mid *saved, size_t nsaved, const char *const *listed,
                   size_t nlisted, const struct pl_mdiff_opts *opts, pl_mdiff_fn fn, void *ctx,
                   struct pl_mdiff_sum *sum);

#endif
