/* fuzz_conf.c -- libFuzzer target: postlink.conf text (lib/conf.c) against
 * the real parameter table (lib/conf_params.c, validators included), then
 * every typed accessor on every parameter, as the daemons use them. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sum;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    pl_conf *c = pl_conf_new(pl_conf_params);
    int nerr = pl_conf_load_text(c, "fuzz.conf", text);

    if (nerr < 0)
        abort();
    for (size_t i = 0; i < pl_conf_nerrors(c); i++)
        sum += strlen(pl_conf_error(c, i));
    for (size_t i = 0; i < pl_conf_nwarnings(c); i++)
        sum += strlen(pl_conf_warning(c, i));
    for (const struct pl_conf_param *p = pl_conf_params; p->name != NULL; p++) {
        const char *origin = pl_conf_origin(c, p->name);
        sum += strlen(pl_conf_str(c, p->name)) + (size_t)pl_conf_is_set(c, p->name);
        if (origin != NULL)
            sum += strlen(origin);
        switch (p->type) {
        case PL_CONF_BOOL:
            sum += (size_t)pl_conf_bool(c, p->name);
            break;
        case PL_CONF_INT: case PL_CONF_SIZE: case PL_CONF_TIME:
            sum += (size_t)pl_conf_int(c, p->name);
            break;
        case PL_CONF_LIST:
            for (const char *const *l = pl_conf_list(c, p->name); *l != NULL; l++)
                sum += strlen(*l);
            (void)pl_conf_map_lookup(c, p->name, "example.org");
            break;
        default:
            break;
        }
    }
    (void)pl_conf_domain_enabled(c, "example.org");
    /* a command-line override (-o name=value) taken from the first line */
    char *eq = strchr(text, '='), *nl = strchr(text, '\n');
    if (eq != NULL && (nl == NULL || eq < nl)) {
        *eq = '\0';
        if (nl != NULL)
            *nl = '\0';
        (void)pl_conf_set(c, text, eq + 1);
    }
    pl_conf_free(c);
    free(text);
    return 0;
}
