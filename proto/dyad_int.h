/*
 * dyad_int: what the dyad's rooms share (internal to proto/dyad*.c; dyad.h is the manual).
 *
 * The rooms.
 *   dyad.c      the state machine: kind and state names, the ONE transition table and its
 *               guards, the dyad (apply, propose, make, act, timeouts), the attestation and
 *               its cosignatures, the dyad's own encoding and the accessors.
 *   dyad_msg.c  the messages: the terms hash, dyad_msg_id, the decoder (dyad_msg_decode,
 *               dyad_msg_verify) and the signer below.
 */
#ifndef PULL_DYAD_INT_H
#define PULL_DYAD_INT_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "proto/dyad.h"

/* Times beyond this (year 36812) are refused, so created + any timeout can't overflow. */
#define DYAD_TIME_MAX (UINT64_C(1) << 40)

/* Checks a note: at most DYAD_NOTE_MAX bytes of valid UTF-8 without C0 controls other
 * than \n and \t, DEL or C1 controls. Returns 0, PULL_ERR_FIELD, PULL_ERR_UTF8 or
 * PULL_ERR_CONTROL. */
int dyad_check_note(const char *s, size_t n);

/* Packs m's body, signs it with me and appends the envelope to out. Returns 0 or a
 * negative PULL_ERR_*; on error out is left as it was (unless out itself has failed). */
int dyad_msg_sign(const struct dyad_msg *m, const struct ident *me, struct pull_wb *out);

#endif
