/*
 * libp11c_fault.so: a PKCS#11 module that forwards every call to a real
 * module (SoftHSM2 by default) and fails one chosen call with a chosen CKR.
 *
 * What to fail, a "spec":
 *   FUNC:N:CKR      the Nth call of FUNC (counted from 1) returns CKR
 *   FUNC:N+:CKR     the Nth call of FUNC and every later one
 *   *:N:CKR         the Nth call overall (any function)
 *   count           nothing fails; calls are only counted and recorded
 * CKR is a name (CKR_DEVICE_ERROR, ...) or a number (0x30).
 *
 * Where the spec comes from, first found wins:
 *   - p11c_fault_set() (in-process, from a test that dlopen()s this module);
 *   - the file named by P11C_FAULT_FILE, re-read on every call (empty or
 *     absent: no fault), so that a test can change or clear the fault;
 *   - the environment variable P11C_FAULT, read once.
 * Counters restart whenever the spec changes. With P11C_FAULT_LOG set, the
 * name of every call is appended to that file, one a line.
 *
 * Injected failures behave like the real thing where it matters:
 *   CKR_USER_NOT_LOGGED_IN   the token is logged out underneath (C_Logout);
 *   CKR_SESSION_CLOSED,
 *   CKR_SESSION_HANDLE_INVALID the session is closed underneath;
 *   the others only fail the call (the token stays as it was).
 * The real call is not made when a fault fires.
 *
 * Environment: P11C_FAULT_MODULE names the real module
 * (default /usr/lib/softhsm/libsofthsm2.so).
 *
 * Tokens as they are (read on every call, so a test may change them):
 *   P11C_FAULT_HIDE_MECHS   mechanisms the token does not have: names
 *                           (CKM_RSA_PKCS_PSS) or numbers, separated by
 *                           commas; left out of C_GetMechanismList,
 *                           CKR_MECHANISM_INVALID from C_GetMechanismInfo
 *                           and from C_SignInit/C_DecryptInit with them.
 *   P11C_FAULT_TOKEN_FLAGS  flags OR'ed into C_GetTokenInfo's: names
 *                           (CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED,
 *                           CKF_PROTECTED_AUTHENTICATION_PATH) or numbers,
 *                           separated by commas.
 */
#ifndef P11C_FAULT_H
#define P11C_FAULT_H

#include <p11-kit/pkcs11.h>

/* Sets the spec (NULL or "": no fault, back to file/env) and restarts the
 * counters. Returns 0, or -1 when the spec does not parse. */
int p11c_fault_set(const char *spec);
/* PKCS#11 calls made since the counters restarted. */
unsigned long p11c_fault_calls(void);
/* Faults injected since the counters restarted. */
unsigned long p11c_fault_fired(void);
/* Name of call i (0-based) since the restart, or NULL beyond those recorded. */
const char *p11c_fault_call_name(unsigned long i);
/* CKR value of a name known to the module, or (CK_RV)-1. */
CK_RV p11c_fault_rv(const char *name);

#endif
