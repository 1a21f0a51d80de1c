/*
 * Driving the real p11chat command in tests: child processes with piped
 * stdin, stdout and stderr, all drained together (so that no child blocks on
 * a full pipe) and every wait bounded.
 */
#ifndef P11C_APPS_UTIL_H
#define P11C_APPS_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tproc {
    pid_t pid;
    int in, out, err;  /* our ends; -1 once closed */
    char *obuf, *ebuf; /* everything read so far, NUL-terminated */
    size_t olen, elen, ocap, ecap;
    int status; /* exit status, 128 + signal, or -1 while running */
} TPROC;

/* Path of the built p11chat command. */
const char *ta_p11chat(void);
/* A fresh directory for this test program's files (removed at exit). */
const char *ta_tmpdir(void);
/* "<tmpdir>/<name>", valid until exit. */
const char *ta_path(const char *name);
/* Writes a file, mode 0600 (aborts the program on failure). */
void ta_write_file(const char *path, const void *data, size_t len);
/* Writes the vector key `name`'s private PEM to <tmpdir>/<name>.pem; returns the path.
 * Names of keys.json and of handshake_suite2.json's keys ("alice_p256", "bob_p384"). */
const char *ta_key_pem(const char *name);
/* Writes the vector key `name`'s public key as SubjectPublicKeyInfo PEM. */
const char *ta_pub_pem(const char *name);
/* fp of vector key `name`: "sha256" hex and short form, from fingerprint.json. */
const char *ta_fp_hex(const char *name);
const char *ta_fp_short(const char *name);
/* A trust store <tmpdir>/<file> of one entry, `name` with fingerprint `hex`;
 * returns its path. */
const char *ta_trust_store(const char *file, const char *name, const char *hex);

/* Starts argv[0..] (NULL-terminated; argv[0] a path or a name on PATH). */
int tp_start(TPROC *p, char *const argv[]);
/* Starts the p11chat command with the given arguments (NULL-terminated). */
int tp_p11chat(TPROC *p, ...) __attribute__((sentinel));
/* Writes all of s to the process's stdin (pumping the others meanwhile). */
int tp_write(TPROC *p, const void *s, size_t len);
int tp_puts(TPROC *p, const char *s);
void tp_close_in(TPROC *p);
/* Pumps every running process until `needle` appears in p's stdout (which = 1)
 * or stderr (which = 2), or timeout_ms passes. 1 when found. */
int tp_wait_for(TPROC *p, int which, const char *needle, int timeout_ms);
/* Pumps until p has exited and its pipes are drained; kills it after
 * timeout_ms. Returns the exit status (128 + signal when killed). */
int tp_wait_exit(TPROC *p, int timeout_ms);
/* Drains every running process for up to ms (while a test waits on
 * something else, a socket of its own). */
void tp_pump(int ms);
/* Sends sig to the process if it is still running (never to a process group). */
void tp_signal(TPROC *p, int sig);
/* SIGKILL and reap. */
void tp_kill(TPROC *p);
/* Frees buffers; kills the process if still running. */
void tp_free(TPROC *p);

/* Runs p11chat with args to completion (stdin from `input`, may be NULL),
 * within timeout_ms. Returns the exit status; *out and *err (if given) get
 * copies of the output (free()). */
int ta_run(const char *input, char **out, char **err, int timeout_ms, ...)
    __attribute__((sentinel));

/* Like ta_run, with standard input left open (no input, no end of it). */
int ta_run_open(char **out, char **err, int timeout_ms, ...) __attribute__((sentinel));

/* A TCP port on 127.0.0.1 that was free a moment ago (0 on failure); a
 * server started on it may still lose it to another program: retry. */
int ta_free_port(void);
/* Milliseconds on the monotonic clock. */
int64_t ta_now_ms(void);

/* Number of lines in s (count of '\n'). */
size_t ta_lines(const char *s);

/* Starts `p11chat listen 127.0.0.1:0 ARGS...` and waits for its port. 0 on failure. */
int tp_listen(TPROC *p, ...) __attribute__((sentinel));

#endif
