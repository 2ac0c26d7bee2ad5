/* The command table's flag strings (cli.h): reading them, and checking a command's getopt
 * table against them. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

bool
cli_flag_next(const char **p, struct cli_flag *f)
{
    const char *s = *p, *e, *eq;

    memset(f, 0, sizeof(*f));
    if (s == NULL)
        return false;
    while (*s == ' ')
        s++;
    if (*s == '\0') {
        *p = s;
        return false;
    }
    if (*s == '!') {
        f->refused = true;
        s++;
    }
    for (e = s; *e != '\0' && *e != ' '; e++)
        ;
    f->name = s;
    f->name_len = (size_t)(e - s);
    if ((eq = memchr(s, '=', f->name_len)) != NULL) {
        f->name_len = (size_t)(eq - s);
        f->value = eq + 1;
        f->value_len = (size_t)(e - (eq + 1));
    }
    *p = e;
    return true;
}

const struct cli_verb *
cli_verb_find(const struct cli_command *cmd, const char *name)
{
    if (cmd->verbs == NULL)
        return NULL;
    for (const struct cli_verb *v = cmd->verbs; v->name != NULL; v++) {
        if (strcmp(v->name, name) == 0)
            return v;
    }
    return NULL;
}

static bool
is_common(const char *name)
{
    return strcmp(name, "json") == 0 || strcmp(name, "data-dir") == 0 || strcmp(name, "help") == 0;
}

/* Finds option name in a flags string. */
static bool
flags_find(const char *flags, const char *name, struct cli_flag *out)
{
    const char *p = flags;

    while (cli_flag_next(&p, out)) {
        if (out->name_len == strlen(name) && memcmp(out->name, name, out->name_len) == 0)
            return true;
    }
    return false;
}

int
cli_check_options(const struct cli_command *cmd, const char *word, const struct option *opts)
{
    const char *flags = cmd->flags, *p, *what = cmd->name;
    char where[96];
    struct cli_flag f;
    int bad = 0;

    if (cmd->verbs != NULL) {
        const struct cli_verb *v = cli_verb_find(cmd, word);
        if (v == NULL) {
            fprintf(stderr, "pull: internal: verb '%s %s' is not in the command table\n", cmd->name,
                    word);
            return 1;
        }
        flags = v->flags;
        what = word;
    }
    snprintf(where, sizeof(where), "%s%s%s", cmd->name, what != cmd->name ? " " : "",
             what != cmd->name ? what : "");
    for (size_t i = 0; opts[i].name != NULL; i++) {
        if (is_common(opts[i].name))
            continue;
        if (!flags_find(flags, opts[i].name, &f)) {
            fprintf(stderr, "pull: internal: option --%s of '%s' is not in the command table\n",
                    opts[i].name, where);
            bad++;
        } else if ((f.value != NULL) != (opts[i].has_arg != no_argument)) {
            fprintf(stderr,
                    "pull: internal: option --%s of '%s' takes a value in the %s table but "
                    "not in the %s table\n",
                    opts[i].name, where, f.value != NULL ? "command" : "getopt",
                    f.value != NULL ? "getopt" : "command");
            bad++;
        }
    }
    p = flags;
    while (cli_flag_next(&p, &f)) {
        size_t i;
        for (i = 0; opts[i].name != NULL; i++) {
            if (strlen(opts[i].name) == f.name_len && memcmp(opts[i].name, f.name, f.name_len) == 0)
                break;
        }
        if (opts[i].name == NULL) {
            fprintf(stderr,
                    "pull: internal: option --%.*s of '%s' in the command table is not "
                    "in its getopt table\n",
                    (int)f.name_len, f.name, where);
            bad++;
        }
    }
    return bad;
}
