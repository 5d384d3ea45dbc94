/* store_stats.c -- read-only figures about the store for "postlinkctl
 * status": transactions, locks, cache, log files, record counts. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "store_bdb_int.h"

int pl_store_stats(pl_store *s, struct pl_store_stats *st)
{
    DB_TXN_STAT *ts = NULL;
    DB_LOCK_STAT *ls = NULL;
    DB_MPOOL_STAT *ms = NULL;
    char **logs = NULL;
    int rc = PL_OK;

    memset(st, 0, sizeof(*st));
    st->schema_version = s->schema_version;
    st->reopens = atomic_load(&s->reopens);
    pthread_rwlock_rdlock(&s->use);
    if (s->env == NULL) {
        pthread_rwlock_unlock(&s->use);
        return PL_TEMP;
    }
    pl_bdb_op_enter(s);
    if ((rc = pl_bdb_map(s, s->env->txn_stat(s->env, &ts, 0), "txn_stat")) == PL_OK) {
        st->txn_active = ts->st_nactive;
        st->txn_commits = ts->st_ncommits;
        st->txn_aborts = ts->st_naborts;
        st->last_checkpoint = (int64_t)ts->st_time_ckp;
        free(ts);
    }
    if (rc == PL_OK && (rc = pl_bdb_map(s, s->env->lock_stat(s->env, &ls, 0), "lock_stat")) == PL_OK) {
        st->deadlocks = ls->st_ndeadlocks;
        st->lock_timeouts = ls->st_nlocktimeouts;
        free(ls);
    }
    if (rc == PL_OK &&
        (rc = pl_bdb_map(s, s->env->memp_stat(s->env, &ms, NULL, 0), "memp_stat")) == PL_OK) {
        uint64_t hit = ms->st_cache_hit, miss = ms->st_cache_miss;
        st->cache_hit_pct = hit + miss ? hit * 100 / (hit + miss) : 100;
        free(ms);
    }
    if (rc == PL_OK &&
        (rc = pl_bdb_map(s, s->env->log_archive(s->env, &logs, DB_ARCH_LOG | DB_ARCH_ABS),
                         "log_archive")) == PL_OK && logs != NULL) {
        for (char **p = logs; *p; p++) {
            struct stat sb;
            st->log_files++;
            if (stat(*p, &sb) == 0)
                st->log_bytes += (uint64_t)sb.st_size;
        }
        free(logs);
    }
    pl_bdb_op_leave(s);
    pthread_rwlock_unlock(&s->use);
    return rc;
}

int pl_store_count(pl_store *s, const char *table, uint64_t *n)
{
    DB_BTREE_STAT *bs = NULL;
    DB *db = NULL;
    int rc;

    *n = 0;
    pthread_rwlock_rdlock(&s->use);
    for (size_t i = 0; i < s->ntables; i++)
        if (strcmp(s->names[i], table) == 0)
            db = s->db[i];
    if (s->env == NULL || db == NULL) {
        pthread_rwlock_unlock(&s->use);
        return PL_ERR;
    }
    pl_bdb_op_enter(s);
    if ((rc = pl_bdb_map(s, db->stat(db, NULL, &bs, DB_READ_COMMITTED), "stat")) == PL_OK) {
        *n = bs->bt_nkeys;
        free(bs);
    }
    pl_bdb_op_leave(s);
    pthread_rwlock_unlock(&s->use);
    return rc;
}
