/* privs.h -- dropping root privileges: to a named account (daemons) or to
 * the owner of the state directory (postlinkctl, so that files it creates
 * stay usable by the daemons). */
#ifndef PL_PRIVS_H
#define PL_PRIVS_H

/* Become `user` (setgroups, setgid, setuid, each checked). No-op unless
 * running as root. Returns 0, or -1 with a message in err. */
int pl_privs_drop(const char *user, char *err, size_t errlen);

/* If running as root and `path` belongs to another account, become it. */
int pl_privs_drop_to_owner(const char *path, char *err, size_t errlen);

/* Make a unix socket Postfix can use: owner `user` (when root), group
 * "postfix" if that group exists; never through a symlink.  The socket
 * must have been made with mode 0660 already.  Returns 0 or -1. */
int pl_socket_for_postfix(const char *sock, const char *user, char *err, size_t errlen);

#endif
