/* privs.c -- implementation of privs.h. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "privs.h"

static int become(uid_t uid, gid_t gid, const char *name, const char *user, char *err,
                  size_t errlen)
{
    /* the account's supplementary groups too (e.g. one that may read TLS keys) */
    int groups = user ? initgroups(user, gid) : setgroups(1, &gid);
    if (groups < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
        snprintf(err, errlen, "cannot switch to %s (uid %ld): %s", name, (long)uid, strerror(errno));
        return -1;
    }
    if (uid != 0 && setuid(0) == 0) {
        snprintf(err, errlen, "privileges were not dropped for %s", name);
        return -1;
    }
    return 0;
}

int pl_privs_drop(const char *user, char *err, size_t errlen)
{
    struct passwd *pw;

    if (geteuid() != 0)
        return 0;
    if ((pw = getpwnam(user)) == NULL) {
        snprintf(err, errlen, "unknown account \"%s\" (postlink_user)", user);
        return -1;
    }
    return become(pw->pw_uid, pw->pw_gid, user, user, err, errlen);
}

int pl_privs_drop_to_owner(const char *path, char *err, size_t errlen)
{
    struct stat st;

    if (geteuid() != 0 || stat(path, &st) < 0 || st.st_uid == 0)
        return 0;
    return become(st.st_uid, st.st_gid, path, NULL, err, errlen);
}

int pl_socket_for_postfix(const char *sock, const char *user, char *err, size_t errlen)
{
    struct stat st;
    struct group *gr = getgrnam("postfix");
    struct passwd *pw = geteuid() == 0 && user && *user ? getpwnam(user) : NULL;
    uid_t uid = pw ? pw->pw_uid : (uid_t)-1;
    gid_t gid = gr ? gr->gr_gid : (gid_t)-1;

    /* Never follow a symlink as root: whoever can write the directory could
     * otherwise hand any file to postlink_user.  The mode comes from the
     * umask at bind() (pl_unix_listen, pl_milter_open), not from chmod. */
    if (lstat(sock, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        snprintf(err, errlen, "%s is not the socket just made (replaced?): not touching it", sock);
        return -1;
    }
    if ((uid != (uid_t)-1 || gid != (gid_t)-1) && lchown(sock, uid, gid) != 0) {
        snprintf(err, errlen, "chown %s: %s", sock, strerror(errno));
        return -1;
    }
    return 0;
}
