/* schema.h -- the store's versioned schema: which tables exist at each
 * version and how a store is brought from one version to the next. */
#ifndef PL_SCHEMA_H
#define PL_SCHEMA_H

#include <stddef.h>

#include "store.h"

struct pl_schema_step {
    int version;                   /* the version this step produces */
    const char *const *tables;     /* tables new in this version */
    int (*migrate)(pl_txn *t);     /* data changes, may be NULL */
};

extern const struct pl_schema_step pl_schema_steps[];
extern const int pl_schema_nsteps;

/* Tables of schema `version` into out[] (NULL-terminated); returns count. */
size_t pl_schema_tables(int version, const char **out, size_t max);

#endif
