/* milter_listen.h -- what every postlink milter does to start serving
 * Postfix: register with libmilter, open its socket, and give a unix
 * socket to the owner of db_home, group postfix, mode 0660 (before the
 * milter drops root).  Used by postlink-sync and postlink-tag. */
#ifndef PL_MILTER_LISTEN_H
#define PL_MILTER_LISTEN_H

#include <libmilter/mfapi.h>

/* 0, or the exit status (71) after logging why. */
int pl_milter_listen(struct smfiDesc *desc, const char *sock, const char *db_home);

#endif
