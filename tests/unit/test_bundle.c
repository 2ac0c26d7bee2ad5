/* Tests of the import/export bundle format (lib/bundle.h): round trips through files and
 * memory, and every way a bundle can be broken. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/bundle.h"
#include "lib/err.h"
#include "lib/ident.h"
#include "lib/record.h"
#include "testutil.h"

/* Envelope i of a test: arbitrary bytes (the bundle doesn't look inside). */
static size_t
fake_env(unsigned i, uint8_t *out)
{
    size_t n = 1 + (i * 397u) % RECORD_ENVELOPE_MAX;

    for (size_t j = 0; j < n; j++)
        out[j] = (uint8_t)(i * 31u + j);
    return n;
}

static void
test_roundtrip_file_and_mem(void **state)
{
    static uint8_t env[RECORD_ENVELOPE_MAX];
    struct bundle_writer w;
    struct bundle_reader *r = malloc(sizeof(*r));
    const uint8_t *p;
    size_t len, n;
    char *buf = NULL;
    size_t buflen = 0;
    FILE *f = tmpfile(), *mf;
    (void)state;

    assert_non_null(r);
    assert_non_null(f);
    assert_int_equal(bundle_writer_init(&w, f), 0);
    for (unsigned i = 0; i < 50; i++) {
        n = fake_env(i, env);
        assert_int_equal(bundle_write(&w, env, n), 0);
    }
    /* the largest and the smallest envelope */
    memset(env, 0xab, sizeof(env));
    assert_int_equal(bundle_write(&w, env, RECORD_ENVELOPE_MAX), 0);
    assert_int_equal(bundle_write(&w, env, 1), 0);
    assert_int_equal(bundle_writer_finish(&w), 0);
    assert_int_equal((int)w.count, 52);

    rewind(f);
    bundle_reader_init_file(r, f);
    for (unsigned i = 0; i < 50; i++) {
        uint8_t want[RECORD_ENVELOPE_MAX];
        n = fake_env(i, want);
        assert_int_equal(bundle_next(r, &p, &len), 1);
        assert_int_equal(len, n);
        assert_memory_equal(p, want, n);
    }
    assert_int_equal(bundle_next(r, &p, &len), 1);
    assert_int_equal(len, RECORD_ENVELOPE_MAX);
    assert_int_equal(bundle_next(r, &p, &len), 1);
    assert_int_equal(len, 1);
    assert_int_equal(bundle_next(r, &p, &len), 0);
    assert_null(p);
    assert_int_equal(bundle_next(r, &p, &len), 0); /* the end stays the end */
    assert_int_equal((int)r->count, 52);

    /* the same bytes through the memory reader */
    rewind(f);
    mf = open_memstream(&buf, &buflen);
    assert_non_null(mf);
    {
        int c;
        while ((c = fgetc(f)) != EOF)
            fputc(c, mf);
    }
    fclose(mf);
    bundle_reader_init_mem(r, (const uint8_t *)buf, buflen);
    for (unsigned i = 0; i < 52; i++) {
        assert_int_equal(bundle_next(r, &p, &len), 1);
        assert_true(p > (const uint8_t *)buf && p + len <= (const uint8_t *)buf + buflen);
    }
    assert_int_equal(bundle_next(r, &p, &len), 0);
    free(buf);
    fclose(f);
    free(r);
}

static int
read_hex(const char *hex, int *records)
{
    uint8_t b[64];
    size_t n = tu_hex(hex, b, sizeof(b));
    struct bundle_reader *r = malloc(sizeof(*r));
    const uint8_t *p;
    size_t len;
    int rc;

    assert_non_null(r);
    bundle_reader_init_mem(r, b, n);
    *records = 0;
    while ((rc = bundle_next(r, &p, &len)) == 1)
        (*records)++;
    assert_int_equal(bundle_next(r, &p, &len), rc); /* sticky */
    free(r);
    return rc;
}

#define MAGIC_HEX "50 55 4c 4c 42 44 4c 31"

static void
test_broken_bundles(void **state)
{
    int n;
    (void)state;

    assert_int_equal(read_hex(MAGIC_HEX, &n), 0); /* an empty bundle */
    assert_int_equal(n, 0);
    assert_int_equal(read_hex(MAGIC_HEX "00 00 00 02 aa bb", &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(read_hex("", &n), PULL_ERR_TRUNCATED);
    assert_int_equal(read_hex("50 55 4c 4c", &n), PULL_ERR_TRUNCATED);
    assert_int_equal(read_hex("50 55 4c 4c 42 44 4c 32", &n), PULL_ERR_VERSION);
    assert_int_equal(read_hex("7f 45 4c 46 02 01 01 00", &n), PULL_ERR_MALFORMED);
    assert_int_equal(read_hex(MAGIC_HEX "00 00 00 00", &n), PULL_ERR_MALFORMED);
    assert_int_equal(read_hex(MAGIC_HEX "00 00", &n), PULL_ERR_TRUNCATED);
    assert_int_equal(read_hex(MAGIC_HEX "00 00 00 03 aa bb", &n), PULL_ERR_TRUNCATED);
    assert_int_equal(read_hex(MAGIC_HEX "00 00 00 01 aa 00 00 00 03 aa", &n), PULL_ERR_TRUNCATED);
    assert_int_equal(n, 1); /* the good record before the damage was returned */
    assert_int_equal(read_hex(MAGIC_HEX "ff ff ff ff", &n), PULL_ERR_TOO_BIG);
    /* RECORD_ENVELOPE_MAX + 1 = 4201 = 0x1069 */
    assert_int_equal(read_hex(MAGIC_HEX "00 00 10 69 aa", &n), PULL_ERR_TOO_BIG);
    assert_int_equal(read_hex(MAGIC_HEX "00 00 10 68 aa", &n), PULL_ERR_TRUNCATED);
}

/* An oversized length is refused before a single byte of the envelope is read. */
static void
test_oversized_refused_before_reading(void **state)
{
    struct bundle_reader *r = malloc(sizeof(*r));
    uint8_t hdr[4];
    const uint8_t *p;
    size_t len;
    FILE *f = tmpfile();
    (void)state;

    assert_non_null(r);
    assert_non_null(f);
    fwrite(BUNDLE_MAGIC, 1, BUNDLE_MAGIC_LEN, f);
    be32enc(hdr, 0x7fffffffu);
    fwrite(hdr, 1, 4, f);
    for (int i = 0; i < 100; i++)
        fputc(0, f);
    rewind(f);
    bundle_reader_init_file(r, f);
    assert_int_equal(bundle_next(r, &p, &len), PULL_ERR_TOO_BIG);
    assert_int_equal(ftell(f), BUNDLE_MAGIC_LEN + 4);
    assert_null(p);
    assert_int_equal(len, 0);
    fclose(f);
    free(r);
}

static void
test_writer_errors(void **state)
{
    static uint8_t env[RECORD_ENVELOPE_MAX + 1];
    struct bundle_writer w;
    FILE *f = tmpfile(), *full;
    long pos;
    (void)state;

    assert_non_null(f);
    assert_int_equal(bundle_writer_init(&w, f), 0);
    assert_int_equal(bundle_write(&w, env, 0), PULL_ERR_INVAL);
    assert_int_equal(bundle_write(&w, NULL, 3), PULL_ERR_INVAL);
    assert_int_equal(bundle_write(&w, env, RECORD_ENVELOPE_MAX + 1), PULL_ERR_TOO_BIG);
    fflush(f);
    pos = ftell(f);
    assert_int_equal(pos, BUNDLE_MAGIC_LEN); /* nothing was written by refused calls */
    assert_int_equal(bundle_write(&w, env, 5), 0);
    assert_int_equal(bundle_writer_finish(&w), 0);
    fclose(f);

    assert_int_equal(bundle_writer_init(&w, NULL), PULL_ERR_INVAL);

    /* a device that is always full: the error surfaces at the latest on finish */
    full = fopen("/dev/full", "wb");
    if (full != NULL) {
        int rc = bundle_writer_init(&w, full);
        for (int i = 0; rc == 0 && i < 10000; i++)
            rc = bundle_write(&w, env, 100);
        if (rc == 0)
            rc = bundle_writer_finish(&w);
        assert_int_equal(rc, PULL_ERR_IO);
        assert_int_equal(bundle_write(&w, env, 1), PULL_ERR_IO); /* sticky */
        assert_int_equal(bundle_writer_finish(&w), PULL_ERR_IO);
        fclose(full);
    }
}

/* Signed records survive a bundle round trip byte for byte and still open. */
static void
test_signed_records(void **state)
{
    struct ident id;
    struct record *rec = malloc(sizeof(*rec));
    struct bundle_writer w;
    struct bundle_reader *r = malloc(sizeof(*r));
    struct envelope env;
    struct pull_wb wb;
    uint8_t ids[5][RECORD_ID_BYTES], seed[32] = {7};
    const uint8_t *p;
    size_t len;
    FILE *f = tmpfile();
    (void)state;

    assert_non_null(rec);
    assert_non_null(r);
    assert_non_null(f);
    assert_int_equal(ident_from_seed(&id, seed), 0);
    assert_int_equal(bundle_writer_init(&w, f), 0);
    wb_init(&wb, RECORD_ENVELOPE_MAX);
    for (int i = 0; i < 5; i++) {
        record_init(rec);
        rec->kind = RECORD_OFFER;
        memcpy(rec->author, id.pk, 32);
        rec->slot[0] = (uint8_t)i;
        rec->seq = 1;
        rec->created = 1700000000;
        rec->expires = 1700000000 + RECORD_TTL_DEFAULT;
        snprintf(rec->title, sizeof(rec->title), "bundled offer %d", i);
        wb_reset(&wb);
        assert_int_equal(record_sign(rec, &id, &wb, ids[i]), 0);
        assert_int_equal(bundle_write(&w, wb.p, wb.len), 0);
    }
    assert_int_equal(bundle_writer_finish(&w), 0);
    rewind(f);
    bundle_reader_init_file(r, f);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(bundle_next(r, &p, &len), 1);
        assert_int_equal(envelope_open(p, len, 1700000100, &env, rec), 0);
        assert_memory_equal(env.id, ids[i], RECORD_ID_BYTES);
    }
    assert_int_equal(bundle_next(r, &p, &len), 0);
    ident_wipe(&id);
    wb_release(&wb);
    fclose(f);
    free(rec);
    free(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_file_and_mem),
        cmocka_unit_test(test_broken_bundles),
        cmocka_unit_test(test_oversized_refused_before_reading),
        cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_signed_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
