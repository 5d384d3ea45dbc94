/* mirror_probe.h -- the primary's id list from a few "UIDL n" probes
 * instead of the whole UIDL listing, for a primary whose ids grow in order
 * (Dovecot's default "%08Xu%08Xv": a later message has a larger id, and
 * the listing is sorted).  Pure: the caller supplies the probe.
 *
 * known[0..m) are the ids listed at the last sync, sorted (which, on such
 * a primary, is their message-number order); count is STAT's count now.
 * Since messages only vanish from anywhere or arrive at the end, the
 * listing now is a subsequence of known (the survivors, in order) followed
 * by new ids, each larger than known[m-1].  The survivors are found by
 * bisection: a stretch of message numbers whose ends are known ids with as
 * many known ids between them as numbers needs no further probe; so a
 * sync with d vanished and k new ids costs about (d + 1) log2(m) + k
 * probes.  Any probe that disagrees with this model (an id that is not
 * where it must be, unsorted or too small, a refused or malformed answer)
 * makes the whole result invalid: the caller falls back to the full
 * listing, so nothing is ever missed. */
#ifndef PL_MIRROR_PROBE_H
#define PL_MIRROR_PROBE_H

#include <stddef.h>

#include "mirror_diff.h"

/* "UIDL msgno": 0 with id filled (PL_UIDL_MAX + 1 bytes), 1 when the
 * primary refused or answered something unusable, -1 when the session
 * broke. */
typedef int (*pl_probe_fn)(void *ctx, unsigned long msgno, char *id);

/* The inferred listing: ids[i] for message number i + 1 (count entries;
 * each points into known[] or into the caller-owned news[]). */
struct pl_probe_out {
    const char **ids;
    char (*news)[PL_UIDL_MAX + 1];   /* the new ids, in order */
    size_t nnew;
    unsigned long probes;
};

/* 0: out filled (the caller frees out->ids and out->news); 1: the model
 * does not hold (fall back to the full listing); -1: the session broke. */
int pl_mirror_probe(const char *const *known, size_t m, unsigned long count, pl_probe_fn probe,
                    void *ctx, struct pl_probe_out *out);

/* Whether listed[0..n) (in message-number order) has ids that grow: each
 * larger than the one before (strcmp). */
int pl_ids_grow(const char *const *listed, size_t n);

#endif
