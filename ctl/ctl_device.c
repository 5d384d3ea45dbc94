/* ctl_device.c -- "postlinkctl device add|del|list": the registry of each
 * user's devices for message-state sync (see state/device.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "ctl.h"
#include "ctl_json.h"
#include "device.h"
#include "strutil.h"

static int usage(void)
{
    fprintf(stderr, "usage: postlinkctl device add USER ADDRESS [--name NAME]\n"
                    "       postlinkctl device del USER ADDRESS\n"
                    "       postlinkctl device list [USER] [--json]\n");
    return CTL_USAGE;
}

static int check_addr(const char *what, const char *addr)
{
    const char *why = pl_addr_check(addr);
    if (why != NULL) {
        fprintf(stderr, "postlinkctl: %s \"%s\": %s\n", what, addr, why);
        return -1;
    }
    return 0;
}

/* device list: the rows of one transaction (it may be retried, so the
 * output is collected and printed only after it committed). */
struct out { const char *user; int json; json_t *list; struct pl_strbuf text; };

static int add_device(void *ctx, const struct pl_device *d)
{
    struct out *o = ctx;
    if (o->json) {
        json_t *j = json_object();
        json_object_set_new(j, "user", ctl_json_string(d->user));
        json_object_set_new(j, "address", ctl_json_string(d->address));
        json_object_set_new(j, "name", ctl_json_string(d->name));
        json_object_set_new(j, "created", json_integer((json_int_t)d->created));
        if (json_array_append_new(o->list, j) < 0)
            return PL_ERR;
    } else {
        char when[32];
        time_t t = (time_t)d->created;
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
        /* a name is free text: control characters are shown as \xNN, never
         * sent raw to the administrator's terminal */
        pl_strbuf_addf(&o->text, "%-32s %-32s %s  ", d->user, d->address, when);
        for (const unsigned char *c = (const unsigned char *)d->name; *c; c++) {
            if (*c < 0x20 || *c == 0x7f || *c == '\\')
                pl_strbuf_addf(&o->text, "\\x%02x", *c);
            else
                pl_strbuf_addc(&o->text, (char)*c);
        }
        pl_strbuf_addc(&o->text, '\n');
    }
    return 0;
}

static int list_fn(pl_txn *t, void *ctx)
{
    struct out *o = ctx;
    json_array_clear(o->list);
    pl_strbuf_free(&o->text);
    return pl_device_list_txn(t, o->user, add_device, o);
}

static int list_devices(struct ctl *ctl, pl_store *s, const char *user)
{
    struct out o = {user, ctl->json, json_array(), {0}};
    int rc;

    if (o.list == NULL)
        return PL_ERR;
    rc = pl_store_run(s, PL_TXN_NOSYNC, list_fn, &o);
    if (rc > 0)
        rc = PL_OK;
    return ctl_json_output(rc, o.json, o.list, &o.text);
}

int ctl_device(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "", *args[2] = {NULL, NULL}, *name = "";
    int nargs = 0, rc;
    pl_store *s;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (nargs < 2)
            args[nargs++] = argv[i];
        else
            return usage();
    }
    if ((strcmp(sub, "add") == 0 || strcmp(sub, "del") == 0) && nargs == 2) {
        if (check_addr("USER", args[0]) < 0 || check_addr("device address", args[1]) < 0)
            return CTL_USAGE;
        if (strcmp(sub, "add") == 0 && strcasecmp(args[0], args[1]) == 0) {
            fprintf(stderr, "postlinkctl: a device needs an address of its own, not USER's\n");
            return CTL_USAGE;
        }
        if (!pl_conf_domain_enabled(ctl->conf, pl_addr_domain(args[0]))) {
            fprintf(stderr, "postlinkctl: the domain of %s is not in enabled_domains (%s)\n",
                    args[0], ctl->conf_path);
            return CTL_FAIL;
        }
        if (strlen(name) > 200 || strpbrk(name, "\r\n") != NULL) {
            fprintf(stderr, "postlinkctl: --name: one line of at most 200 characters\n");
            return CTL_USAGE;
        }
    } else if (!(strcmp(sub, "list") == 0 && nargs <= 1)) {
        return usage();
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    if (strcmp(sub, "add") == 0) {
        rc = pl_device_add(s, args[0], args[1], name);
        if (rc == PL_DEVICE_EXISTS)
            printf("%s: %s was already registered\n", args[0], args[1]);
        else if (rc == PL_OK)
            printf("%s: registered device %s\n", args[0], args[1]);
    } else if (strcmp(sub, "del") == 0) {
        rc = pl_device_del(s, args[0], args[1]);
        if (rc == PL_NOTFOUND)
            fprintf(stderr, "postlinkctl: %s has no device %s\n", args[0], args[1]);
        else if (rc == PL_OK)
            printf("%s: removed device %s\n", args[0], args[1]);
    } else {
        if (args[0] != NULL && check_addr("USER", args[0]) < 0) {
            pl_store_close(s);
            return CTL_USAGE;
        }
        rc = list_devices(ctl, s, args[0]);
    }
    pl_store_close(s);
    if (rc == PL_DEVICE_EXISTS)
        return CTL_OK;
    return rc == PL_OK ? CTL_OK : rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
}
