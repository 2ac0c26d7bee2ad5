#include "lib/err.h"

const char *
pull_strerror(int err)
{
    switch (err) {
    case PULL_OK:
        return "success";
#define PULL_ERR_MSG(name, num, msg)                                           \
    case -(num):                                                               \
        return msg;
        PULL_ERR_LIST(PULL_ERR_MSG)
#undef PULL_ERR_MSG
    }
    return "unknown error";
}

const char *
pull_errname(int err)
{
    switch (err) {
    case PULL_OK:
        return "OK";
#define PULL_ERR_NAME(name, num, msg)                                          \
    case -(num):                                                               \
        return #name;
        PULL_ERR_LIST(PULL_ERR_NAME)
#undef PULL_ERR_NAME
    }
    return "UNKNOWN";
}
