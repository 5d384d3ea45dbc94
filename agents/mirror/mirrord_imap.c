/* mirrord_imap.c -- an IMAP primary (not yet: the sync says so). */
#include "config.h"

#include "mirrord_sync_int.h"

static int imap_open(struct sync *s, const char *scheme, const char *host, unsigned port,
                     const char *pw)
{
    (void)scheme, (void)host, (void)port, (void)pw;
    mirrord_fail(s, "IMAP primaries are not supported yet");
    return -1;
}

const struct mprimary mirrord_imap_primary = {.open = imap_open};
