/* ref_milter.c -- the do-nothing reference milter of bench/run milters:
 * plain libmilter, it negotiates away every stage Postfix lets it skip
 * (connect, HELO, MAIL, RCPT, DATA, headers, end of headers, body, unknown
 * commands), asks for no actions and answers CONTINUE at the end of the
 * message.  What it costs is the floor a libmilter milter cannot go below.
 * usage: ref_milter unix:/path/to.sock */
#include <libmilter/mfapi.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static sfsistat ref_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
                              unsigned long f3, unsigned long *pf0, unsigned long *pf1,
                              unsigned long *pf2, unsigned long *pf3)
{
    const unsigned long skip = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
                               SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN |
                               SMFIP_NODATA;
    (void)ctx, (void)f0, (void)f2, (void)f3;
    *pf0 = 0;           /* no modifications */
    *pf1 = f1 & skip;   /* every stage the MTA offers to skip */
    *pf2 = *pf3 = 0;
    return SMFIS_CONTINUE;
}

static sfsistat ref_eom(SMFICTX *ctx)
{
    (void)ctx;
    return SMFIS_CONTINUE;
}

int main(int argc, char **argv)
{
    struct smfiDesc desc;
    if (argc != 2 || strncmp(argv[1], "unix:", 5) != 0) {
        fprintf(stderr, "usage: %s unix:/path/to.sock\n", argv[0]);
        return 64;
    }
    memset(&desc, 0, sizeof(desc));
    desc.xxfi_name = (char *)"postlink-bench-ref";
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = 0;
    desc.xxfi_eom = ref_eom;
    desc.xxfi_negotiate = ref_negotiate;
    unlink(argv[1] + 5);
    umask(0);   /* Postfix (user postfix) must be able to connect */
    if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS ||
        smfi_opensocket(1) != MI_SUCCESS) {
        fprintf(stderr, "%s: cannot listen on %s\n", argv[0], argv[1]);
        return 1;
    }
    return smfi_main() == MI_SUCCESS ? 0 : 1;
}
