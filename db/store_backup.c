/* store_backup.c -- hot backup of the live store and verification of a
 * copy.  Berkeley DB's verify is only valid on files nobody writes, so
 * "postlinkctl db check" verifies a fresh hot backup, never the live files. */
#include "config.h"

#include <db.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "store.h"
#include "store_bdb_int.h"

int pl_store_backup(pl_store *s, const char *dir, char *err, size_t errlen)
{
    DB_ENV *env, *copy;
    DIR *d;
    struct dirent *de;
    int ret;

    if ((d = opendir(dir)) != NULL) {
        while ((de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                closedir(d);
                snprintf(err, errlen, "backup directory %s is not empty", dir);
                return PL_ERR;
            }
        closedir(d);
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read %s: %s", dir, strerror(errno));
        return PL_ERR;
    }
    /* Not marked as a library call for the guard: a big copy takes time. */
    pthread_rwlock_rdlock(&s->use);
    if ((env = s->env) == NULL || atomic_load(&s->need_reset)) {
        pthread_rwlock_unlock(&s->use);
        snprintf(err, errlen, "store is being recovered; try again");
        return PL_TEMP;
    }
    ret = env->backup(env, dir, DB_CREATE);
    pthread_rwlock_unlock(&s->use);
    if (ret != 0) {
        snprintf(err, errlen, "hot backup to %s failed: %s", dir, db_strerror(ret));
        return PL_ERR;
    }
    /* Run recovery on the copy so it is consistent on its own. */
    if ((ret = db_env_create(&copy, 0)) != 0) {
        snprintf(err, errlen, "db_env_create: %s", db_strerror(ret));
        return PL_ERR;
    }
    ret = copy->open(copy, dir, DB_CREATE | DB_INIT_TXN | DB_INIT_LOCK | DB_INIT_LOG |
                     DB_INIT_MPOOL | DB_RECOVER | DB_PRIVATE, 0600);
    if (ret == 0)
        ret = copy->txn_checkpoint(copy, 0, 0, DB_FORCE);
    copy->close(copy, 0);
    if (ret != 0) {
        snprintf(err, errlen, "recovery of the backup in %s failed: %s", dir, db_strerror(ret));
        return PL_ERR;
    }
    return PL_OK;
}

static void (*verify_report)(void *, const char *);
static void *verify_ctx;

static void verify_errcall(const DB_ENV *env, const char *pfx, const char *msg)
{
    (void)env;
    (void)pfx;
    if (verify_report != NULL)
        verify_report(verify_ctx, msg);
}

int pl_store_verify_offline(const char *dir, void (*report)(void *, const char *), void *ctx)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = PL_OK, nfiles = 0;
    char msg[512];

    if (d == NULL) {
        snprintf(msg, sizeof(msg), "cannot read %s: %s", dir, strerror(errno));
        report(ctx, msg);
        return PL_ERR;
    }
    verify_report = report;
    verify_ctx = ctx;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        char path[4096];
        DB *db;
        int ret;

        if (len < 4 || strcmp(de->d_name + len - 3, ".db") != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        nfiles++;
        if ((ret = db_create(&db, NULL, 0)) != 0) {
            snprintf(msg, sizeof(msg), "%s: db_create: %s", de->d_name, db_strerror(ret));
            report(ctx, msg);
            rc = PL_ERR;
            continue;
        }
        db->set_errcall(db, verify_errcall);
        /* verify() discards the handle whatever it returns. */
        if ((ret = db->verify(db, path, NULL, NULL, 0)) != 0) {
            snprintf(msg, sizeof(msg), "%s: verification failed: %s", de->d_name, db_strerror(ret));
            report(ctx, msg);
            rc = PL_ERR;
        }
    }
    closedir(d);
    verify_report = NULL;
    if (nfiles == 0) {
        snprintf(msg, sizeof(msg), "%s holds no table files", dir);
        report(ctx, msg);
        rc = PL_ERR;
    }
    return rc;
}
