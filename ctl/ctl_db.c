/* ctl_db.c -- "postlinkctl init" and "postlinkctl db check|backup|recover":
 * create, verify, copy and recover the shared store while daemons run. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_json.h"
#include "privs.h"
#include "store_conf.h"

int ctl_open_store(struct ctl *ctl, pl_store **sp)
{
    const char *home = pl_conf_str(ctl->conf, "db_home");
    char err[512];
    int rc;

    if (access(home, F_OK) < 0) {
        fprintf(stderr, "postlinkctl: db_home %s does not exist: run \"postlinkctl init\"\n", home);
        return CTL_FAIL;
    }
    if (pl_privs_drop_to_owner(home, err, sizeof(err)) < 0) {
        fprintf(stderr, "postlinkctl: %s\n", err);
        return CTL_FAIL;
    }
    if (geteuid() == 0) {
        /* Files made as root (by a recovery, say) would lock the daemons,
         * which run as postlink_user, out of the store. */
        fprintf(stderr, "postlinkctl: db_home %s belongs to root: give it to postlink_user "
                "(chown -R %s %s, or \"postlinkctl init\" on a new directory)\n", home,
                pl_conf_str(ctl->conf, "postlink_user"), home);
        return CTL_FAIL;
    }
    if (access(home, R_OK | W_OK | X_OK) < 0) {
        int saved = errno;
        struct passwd *pw = getpwuid(geteuid());
        errno = saved;
        fprintf(stderr, "postlinkctl: as user %s, cannot use db_home %s: %s (every parent "
                "directory must be searchable by that user)\n",
                pw ? pw->pw_name : "?", home, strerror(errno));
        return CTL_FAIL;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        rc = pl_store_open_conf(sp, ctl->conf, err, sizeof(err));
        if (rc != PL_TEMP)
            break;
        sleep(1);
    }
    if (rc != PL_OK) {
        fprintf(stderr, "postlinkctl: %s\n", err);
        return rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
    }
    return CTL_OK;
}

/* Nonzero when the directory has no entries but . and .. */
static int dir_is_empty(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int empty = 1;

    if (d == NULL)
        return 0;
    while (empty && (e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            empty = 0;
    closedir(d);
    return empty;
}

int ctl_init(struct ctl *ctl, int argc, char **argv)
{
    const char *home = pl_conf_str(ctl->conf, "db_home");
    const char *user = pl_conf_str(ctl->conf, "postlink_user");
    struct passwd *pw = NULL;
    struct stat st;
    pl_store *s;
    int rc, created = 0;

    (void)argv;
    if (argc > 1) {
        fprintf(stderr, "postlinkctl: init takes no arguments\n");
        return CTL_USAGE;
    }
    if (geteuid() == 0 && (pw = getpwnam(user)) == NULL) {
        fprintf(stderr, "postlinkctl: postlink_user \"%s\" does not exist: create it "
                "(useradd --system %s) or set postlink_user\n", user, user);
        return CTL_FAIL;
    }
    if (mkdir(home, 0750) == 0)
        created = 1;
    else if (errno != EEXIST) {
        fprintf(stderr, "postlinkctl: cannot create %s: %s\n", home, strerror(errno));
        return CTL_FAIL;
    }
    if (stat(home, &st) < 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "postlinkctl: db_home %s is not a directory\n", home);
        return CTL_FAIL;
    }
    if (pw != NULL && st.st_uid != pw->pw_uid) {
        /* Only a directory made here or an empty one is given away: a
         * mistyped db_home must not hand a system directory to postlink. */
        if (!created && !dir_is_empty(home)) {
            struct passwd *owner = getpwuid(st.st_uid);
            fprintf(stderr, "postlinkctl: db_home %s already holds files and belongs to %s, "
                    "not postlink_user %s: not changing its owner (check db_home, or chown "
                    "it yourself)\n", home, owner ? owner->pw_name : "another user", user);
            return CTL_FAIL;
        }
        if (chown(home, pw->pw_uid, pw->pw_gid) < 0) {
            fprintf(stderr, "postlinkctl: cannot chown %s to %s: %s\n", home, user, strerror(errno));
            return CTL_FAIL;
        }
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    printf("store ready in %s: schema version %d\n", home, pl_store_schema_version(s));
    pl_store_close(s);
    return CTL_OK;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct report { int problems; int json; json_t *msgs; };

static void report_problem(void *ctx, const char *msg)
{
    struct report *r = ctx;
    r->problems++;
    if (r->json)
        json_array_append_new(r->msgs, ctl_json_string(msg));
    else
        fprintf(stderr, "postlinkctl: %s\n", msg);
}

static size_t count_tables(pl_store *s)
{
    size_t n = 0;
    for (const char *const *t = pl_store_tables(s); *t; t++)
        n++;
    return n;
}

/* Back up into dir and verify the copy. */
static int backup_and_verify(pl_store *s, const char *dir, int json, const char *what)
{
    struct report r = {0, json, json ? json_array() : NULL};
    char err[512];
    int rc;

    /* Created here, after dropping to the store's owner, so that a target
     * that account cannot write is reported as such. */
    if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
        snprintf(err, sizeof(err), "cannot create %s as %s: %s", dir,
                 getpwuid(geteuid()) ? getpwuid(geteuid())->pw_name : "this user", strerror(errno));
        rc = PL_ERR;
    } else {
        rc = pl_store_backup(s, dir, err, sizeof(err));
    }

    if (rc != PL_OK) {
        if (json) {
            json_t *out = json_object();
            json_decref(r.msgs);
            fprintf(stderr, "postlinkctl: %s\n", err);
            json_object_set_new(out, "ok", json_false());
            json_object_set_new(out, "error", ctl_json_string(err));
            ctl_json_print(out);
        } else {
            report_problem(&r, err);
        }
        return rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
    }
    rc = pl_store_verify_offline(dir, report_problem, &r);
    if (json) {
        json_t *out = json_object();
        json_object_set_new(out, "ok", json_boolean(rc == PL_OK));
        json_object_set_new(out, "schema_version", json_integer(pl_store_schema_version(s)));
        json_object_set_new(out, "tables", json_integer((json_int_t)count_tables(s)));
        json_object_set_new(out, "problems", r.msgs);
        if (ctl_json_print(out) < 0)
            rc = PL_ERR;
    } else if (rc == PL_OK) {
        printf("%s: OK, every table of a hot backup taken now verified\n", what);
    } else {
        printf("%s: FAILED, %d problem(s)\n", what, r.problems);
    }
    return rc == PL_OK ? CTL_OK : CTL_FAIL;
}

static int db_check(struct ctl *ctl, pl_store *s)
{
    char tmpl[] = "/tmp/postlink-check.XXXXXX", dir[64];
    int rc;

    if (mkdtemp(tmpl) == NULL) {
        fprintf(stderr, "postlinkctl: cannot create a temporary directory: %s\n", strerror(errno));
        return CTL_FAIL;
    }
    snprintf(dir, sizeof(dir), "%s/copy", tmpl);
    rc = backup_and_verify(s, dir, ctl->json, pl_store_home(s));
    nftw(tmpl, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}

static int db_recover(struct ctl *ctl, pl_store *s)
{
    struct pl_store_stats st;
    int rc = pl_store_maintain(s, 1);

    if (rc == PL_OK)
        rc = pl_store_stats(s, &st);
    if (rc != PL_OK) {
        fprintf(stderr, "postlinkctl: recovery did not complete; try again\n");
        return CTL_TEMP;
    }
    if (ctl->json) {
        json_t *out = json_object();
        json_object_set_new(out, "ok", json_true());
        json_object_set_new(out, "log_files", json_integer((json_int_t)st.log_files));
        json_object_set_new(out, "last_checkpoint", json_integer((json_int_t)st.last_checkpoint));
        if (ctl_json_print(out) < 0)
            return CTL_FAIL;
    } else
        printf("%s: recovered (dead processes cleaned up), checkpointed, %llu log file(s) kept\n",
               pl_store_home(s), (unsigned long long)st.log_files);
    return CTL_OK;
}

int ctl_db(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = NULL, *dir = NULL;
    pl_store *s;
    int rc;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (sub == NULL)
            sub = argv[i];
        else if (dir == NULL)
            dir = argv[i];
        else
            sub = "";
    }
    if (sub == NULL || (strcmp(sub, "check") && strcmp(sub, "backup") && strcmp(sub, "recover")) ||
        (strcmp(sub, "backup") == 0) != (dir != NULL)) {
        fprintf(stderr, "usage: postlinkctl db check|recover [--json] | db backup DIR [--json]\n");
        return CTL_USAGE;
    }
    if (dir != NULL && dir[0] != '/') {
        fprintf(stderr, "postlinkctl: db backup: %s: give an absolute path\n", dir);
        return CTL_USAGE;
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    if (strcmp(sub, "check") == 0)
        rc = db_check(ctl, s);
    else if (strcmp(sub, "backup") == 0)
        rc = backup_and_verify(s, dir, ctl->json, dir);
    else
        rc = db_recover(ctl, s);
    pl_store_close(s);
    return rc;
}
