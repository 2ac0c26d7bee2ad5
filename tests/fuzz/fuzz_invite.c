/* Fuzz the invitation code's decoder (lib/invite.h). Properties:
 *   - any text decodes or is refused with a reason, never out of bounds (the input is
 *     copied into a NUL-ended string of at most 4 KiB: the decoder reads C strings);
 *   - a refused text leaves the struct wiped;
 *   - an accepted one re-encodes to a code that decodes to the same fields, and its text
 *     is the input's without the surrounding white space, in lowercase. */
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/invite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct invite zero;
    char text[4097], again[INVITE_TEXT_MAX + 1];
    struct invite a, b;
    enum invite_bad bad;
    int n;

    if (sodium_init() < 0)
        abort();
    if (size > sizeof(text) - 1)
        size = sizeof(text) - 1;
    memcpy(text, data, size);
    text[size] = '\0';
    if (invite_decode(text, &a, &bad) != 0) {
        if (bad == INVITE_OK || memcmp(&a, &zero, sizeof(a)) != 0)
            abort();
        return 0;
    }
    if (bad != INVITE_OK || a.naddrs < 1 || a.naddrs > INVITE_ADDRS_MAX)
        abort();
    n = invite_encode(&a, again, sizeof(again));
    if (n <= 0)
        abort();
    if (invite_decode(again, &b, &bad) != 0 || memcmp(&a, &b, sizeof(a)) != 0)
        abort();
    {
        /* the input, trimmed and lowercased, is the code */
        const char *s = text, *e = text + strlen(text);
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
            e--;
        if ((size_t)(e - s) != (size_t)n)
            abort();
        for (int i = 0; i < n; i++) {
            char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
            if (c != again[i])
                abort();
        }
    }
    invite_wipe(&a);
    invite_wipe(&b);
    return 0;
}
