#include "lib/paths.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/err.h"

static int
put(char *out, size_t n, const char *a, const char *b)
{
    int len = snprintf(out, n, "%s%s", a, b);

    if (len < 0 || (size_t)len >= n)
        return PULL_ERR_TOO_BIG;
    return 0;
}

int
paths_data_dir(const char *flag, char *out, size_t n)
{
    const char *v;

    if (flag != NULL && flag[0] != '\0')
        return put(out, n, flag, "");
    if ((v = getenv("PULL_HOME")) != NULL && v[0] != '\0')
        return put(out, n, v, "");
    if ((v = getenv("XDG_DATA_HOME")) != NULL && v[0] != '\0')
        return put(out, n, v, "/pull");
    if ((v = getenv("HOME")) == NULL || v[0] == '\0') {
        struct passwd *pw = getpwuid(getuid());
        v = pw != NULL ? pw->pw_dir : NULL;
    }
    if (v == NULL || v[0] == '\0')
        return PULL_ERR_INVAL;
    return put(out, n, v, "/.local/share/pull");
}

int
paths_join(const char *dir, const char *name, char *out, size_t n)
{
    int len = snprintf(out, n, "%s/%s", dir, name);

    if (len < 0 || (size_t)len >= n)
        return PULL_ERR_TOO_BIG;
    return 0;
}
