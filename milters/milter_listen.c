/* milter_listen.c -- register a milter and open its socket (milter_listen.h). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "milter_listen.h"
#include "privs.h"

int pl_milter_listen(struct smfiDesc *desc, const char *sock, const char *db_home)
{
    char err[512];

    umask(007);
    if (smfi_setconn((char *)sock) != MI_SUCCESS || smfi_register(*desc) != MI_SUCCESS) {
        msg_error("cannot set up the milter on %s", sock);
        return 71;
    }
    if (smfi_opensocket(1) != MI_SUCCESS) {
        msg_error("cannot listen on %s: %s", sock, strerror(errno));
        return 71;
    }
    if (strncmp(sock, "unix:", 5) == 0 && pl_socket_for_postfix(sock + 5, db_home, err, sizeof(err)) != 0) {
        msg_error("%s", err);
        return 71;
    }
    return 0;
}
