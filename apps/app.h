/*
 * The p11chat command: shared declarations of its modules. Nothing here is
 * installed; the command is the interface.
 */
#ifndef P11C_APP_H
#define P11C_APP_H

#include <stddef.h>
#include <stdint.h>

#include <poll.h>

#include <openssl/evp.h>
#include <openssl/params.h>

#include "p11chat.h"

/* Bytes appended at len, taken from off; b->b[off..len) is what waits. */
typedef struct app_buf {
    uint8_t *b;
    size_t len, off, cap;
} APP_BUF;

/* Exit statuses. */
#define APP_OK    0
#define APP_FAIL  1 /* the operation failed; one line on stderr says why */
#define APP_USAGE 2 /* bad command line */
#define APP_TRUNC 3 /* the transport ended without CLOSE */

#define APP_NAME    "p11chat"
#define APP_VERSION "0.1.0"

/* ---- Messages (main.c) ---------------------------------------------------- */

/* "p11chat: <text>\n" on stderr. */
void app_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Like app_msg, followed by ": <first OpenSSL error reason>" when there is one;
 * empties OpenSSL's error queue. */
void app_ossl_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A usage error for `cmd`: one line on stderr and the hint to use --help. */
int app_usage(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning when the file at `path` (a trust store, a PIN file) can be read
 * or written by group or others: what it holds is the user's alone. */
void app_warn_shared(const char *what, const char *path);
/* Parses a decimal number in [lo, hi]; 0 on success. */
int app_parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out);

/* ---- OpenSSL context, provider, keys (keys.c) ----------------------------- */

typedef struct app_ossl {
    OSSL_LIB_CTX *libctx;
    int provider_loaded;
    const char *pin_source; /* --pin-source FILE, or NULL */
} APP_OSSL;

/* A fresh library context with the default provider. 0 on success. */
int app_ossl_init(APP_OSSL *o);
void app_ossl_free(APP_OSSL *o);
/* Loads the p11chat provider into o->libctx (once). 0 on success. */
int app_ossl_need_provider(APP_OSSL *o);
/* The directory the provider is looked for in (build tree or installed). */
const char *app_provider_dir(void);

/* 1 when `spec` is a pkcs11: URI (case-insensitive scheme). */
int app_is_uri(const char *spec);

/*
 * Loads KEY: a pkcs11: URI (through the provider) or a PEM file. With
 * need_private, only a private key will do; else a public key is enough.
 * On failure prints one line and returns NULL.
 */
EVP_PKEY *app_key_load(APP_OSSL *o, const char *spec, int need_private);

/* For a token key (spec a pkcs11: URI), one signature: the token logs in
 * and shows that the key signs. 0 when it does (or spec is a file), -1
 * after a message. */
int app_key_check(APP_OSSL *o, EVP_PKEY *key, const char *spec);

/* The URI with --pin-source merged in as its pin-source attribute (or a copy
 * of it when there is none). NULL (after a message) when both give a PIN. */
char *app_uri_with_pin(const char *uri, const char *pin_source);

/* The URI with its object, id and type attributes taken out: the token
 * alone (fresh buffer, free()). */
char *app_uri_token(const char *uri);

/* Value of the path attribute `name` of a pkcs11: URI, percent-decoded into
 * a fresh buffer (*len bytes, NUL-terminated), or NULL when absent. -1 in
 * *len when the URI is malformed. */
char *app_uri_attr(const char *uri, const char *name, size_t *len);

/* ---- Subcommands ------------------------------------------------------------ */

int cmd_keygen(int argc, char **argv);
int cmd_fingerprint(int argc, char **argv);
int cmd_keyfile(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_listen(int argc, char **argv);
int cmd_connect(int argc, char **argv);
int cmd_wrap(int argc, char **argv);
int cmd_irc(int argc, char **argv);

/* ---- TCP (tcp.c) ---------------------------------------------------------- */

/* Splits [HOST:]PORT in place ("[::1]:80", "localhost:80", "80"). 0 on success. */
int app_split_hostport(char *s, char **host, char **port);
/* A connected socket (close-on-exec, non-blocking) within timeout seconds, or
 * -1 after a message. */
int app_tcp_connect(const char *host, const char *port, unsigned timeout);

/* ---- Trust store (trust.c) ------------------------------------------------ */

/* --trust FILE, else $P11CHAT_TRUST, else $XDG_CONFIG_HOME/p11chat/trust,
 * else ~/.config/p11chat/trust. Static storage. NULL (after a message) when
 * no home is known. */
const char *app_trust_path(const char *opt);
/* Loads the store at `path` (a missing file is empty). NULL after a message. */
P11C_TRUST *app_trust_load(const char *path);

/* ---- Suites (suite.c) --------------------------------------------------------- */

struct app_chat;
struct app_chat_opts;

/* --suite 1|2 into o->suite: 1, or -1 after a usage error. */
int app_suite_option(const char *cmd, const char *arg, struct app_chat_opts *o);
/* "suite 0x02 (RSA or EC keys, ephemeral ECDH)", ... */
const char *app_suite_name(int suite);
/* The status line naming the suite of an established session. */
void app_suite_established(const struct app_chat *c);
/* After the transport ended during the handshake: a hint when it may be the suite. */
void app_suite_handshake_ended(const struct app_chat *c);

/* ---- Kinds of long-term key (keytype.c) ----------------------------------------- */

typedef struct app_keytype {
    const char *name;  /* "ec:p256", "rsa:2048", ... (keygen --type) */
    const char *alg;   /* "EC" or "RSA" */
    const char *group; /* EC: the curve; RSA: NULL */
    size_t bits;       /* RSA: the modulus size */
} APP_KEYTYPE;

const APP_KEYTYPE *app_keytype_find(const char *name);  /* NULL: no such type */
const APP_KEYTYPE *app_keytype_rsa(unsigned long bits); /* NULL: no such size */
/* The keygen parameter of the type (*bits: storage for RSA's size). */
OSSL_PARAM app_keytype_param(const APP_KEYTYPE *t, size_t *bits);

/* ---- Showing received text safely (escape.c) -------------------------------- */

/*
 * Escapes `len` bytes for a terminal: valid printable UTF-8 stays as it is;
 * backslash becomes "\\"; tab, CR and LF become "\t", "\r", "\n"; other
 * C0 controls, DEL and bytes that are not valid UTF-8 become "\xHH"; C1
 * controls and Unicode bidirectional and invisible format characters
 * become "\u{XXXX}". Returns a fresh NUL-terminated string (free()) or NULL.
 */
char *app_escape(const uint8_t *data, size_t len);

/* ---- What the reader sees (show.c) ------------------------------------------- */

/* 'NAME' with NAME escaped (app_escape) and its quotes as \' (free()). */
char *app_quote(const char *name);
/* The name received messages are shown under: NAME alone when it holds only
 * letters, digits and ._@+- (nothing a status or relay line starts with),
 * else quoted (free()). */
char *app_sender_name(const char *name);
/* "p11chat: VERDICT: 'peer' SHORTFP: text" on stderr: the verdict first, the
 * peer's identity quoted, so that nothing the peer chose comes before them. */
void app_status(const char *verdict, const char *peer_id, const char *short_fp, const char *fmt,
                ...) __attribute__((format(printf, 4, 5)));

typedef struct app_chat APP_CHAT;
/* Explains a refused peer (mismatch, unknown under --known-only, not the
 * one --peer names): who, which key, which trust entry, what to do. */
void app_show_refused(const APP_CHAT *c, const P11C_EVENT *ev);

/* ---- Session glue shared by listen/connect and wrap (session.c) --------------- */

typedef struct app_chat_opts {
    const char *key;
    const char *id;
    const char *trust;
    const char *pin_source;
    const char *peer; /* --peer NAME: the only identity we talk to */
    int known_only;
    int accept_unknown; /* lines typed before the session go to an unknown peer too */
    int raw;            /* received messages alone, without the sender's name */
    int policy;         /* p11c_policy */
    int token_session;  /* --session-key token */
    int verbose;
    unsigned timeout; /* seconds: handshake (connect) and the wait for CLOSE */
    int suite;        /* --suite: P11C_SUITE_1 or P11C_SUITE_2; 0: by our key */
    int text;         /* over a text transport: spec 9.1, window policy */
} APP_CHAT_OPTS;

struct app_chat {
    APP_OSSL ossl;
    p11c_role role;
    EVP_PKEY *key;
    char *token_uri; /* where token session keys are made, or NULL */
    P11C_TRUST *trust;
    const char *trust_path; /* where the store was loaded from */
    const char *peer;       /* --peer NAME, or NULL */
    P11C_CONFIG cfg;        /* what each session is made with */
    P11C_SESSION *s;
    int verbose;
    int raw;
    char *sender; /* the peer's name as shown before its messages */
    /* Our records, to tell DATA from ACK and CLOSE when the peer confirms. */
    uint64_t records;   /* records we have queued (our next seq) */
    uint64_t data_sent; /* of them, DATA */
    uint64_t *ctl;      /* seq of each ACK and CLOSE we sent, ascending */
    size_t nctl, capctl;
    uint64_t rx_unacked; /* DATA received that no record of ours confirmed yet */
    int64_t rx_last;     /* when the last DATA arrived (app_now_ms) */
    size_t max_data;     /* longest message the transport carries (0: P11C_MAX_DATA) */
    const char *max_why; /* what sets max_data, for the refusal ("--max-line 400") */
    uint64_t missing;    /* peer records reported missing that have not arrived */
    /* Lines typed before the session, each u32(len) || bytes: released when
     * it is established, to a trusted peer (or with --accept-unknown, or
     * after the user agreed on the terminal); otherwise dropped. */
    APP_BUF held;
    size_t nheld;
    int accept_unknown;
    int tty;          /* standard input is a terminal: the user can be asked */
    int asking;       /* the next line typed answers "send the held lines?" */
    int close_wanted; /* input ended before the session: CLOSE once it is up */
    int established;
    int close_sent;
    int close_received;
    int reported; /* a failure was already explained on stderr */
    int finished; /* session over: closed, truncated or failed */
    int status;   /* exit status once finished */
};

/* ---- Options every chat command takes (options.c) ---------------------------- */

/* getopt_long values of the long-only shared options. */
#define APP_OPT_PEER           0x100
#define APP_OPT_ACCEPT_UNKNOWN 0x101
#define APP_OPT_RAW            0x102

/* Entries for a command's struct option array (short names: "k:i:t:"). */
#define APP_CHAT_LONGOPTS                                                                          \
    {"key", required_argument, NULL, 'k'}, {"id", required_argument, NULL, 'i'},                   \
        {"trust", required_argument, NULL, 't'}, {"pin-source", required_argument, NULL, 'p'},     \
        {"known-only", no_argument, NULL, 'K'}, {"peer", required_argument, NULL, APP_OPT_PEER},   \
        {"accept-unknown", no_argument, NULL, APP_OPT_ACCEPT_UNKNOWN},                             \
        {"raw", no_argument, NULL, APP_OPT_RAW}, {"session-key", required_argument, NULL, 'S'},    \
        {"suite", required_argument, NULL, 'U'},                                                   \
    {                                                                                              \
        "verbose", no_argument, NULL, 'v'                                                          \
    }

/* Their lines of --help. */
extern const char app_chat_help[];

/* Parses one of the shared options, and --policy ('P') and --timeout ('T')
 * for the commands that take them (returns 1 when `opt` was one, 0 when not,
 * -1 after a usage error). */
int app_chat_option(const char *cmd, int opt, const char *arg, APP_CHAT_OPTS *o);
/* After parsing: --key and --id given and valid, no contradiction. APP_OK or
 * APP_USAGE (after the message). */
int app_chat_check(const char *cmd, const APP_CHAT_OPTS *o);
/* Loads key and trust, makes the session (not started). 0 on success. */
int app_chat_init(APP_CHAT *c, const APP_CHAT_OPTS *o, p11c_role role);
void app_chat_free(APP_CHAT *c);
/* Another session like c->s (a listener's next candidate); NULL after a message. */
P11C_SESSION *app_chat_session_new(APP_CHAT *c);
/* Sends one line of the user's as DATA. 0 when queued, -1 when refused (a
 * message says why; the session goes on unless it failed). */
int app_chat_send_line(APP_CHAT *c, const uint8_t *line, size_t len);
/* Says that a line of len bytes was not sent: longer than a message holds. */
void app_line_too_long(size_t len);
/* Sends our CLOSE (once). */
int app_chat_close(APP_CHAT *c);
/* Sends an ACK when DATA has arrived since our last record. */
void app_chat_ack(APP_CHAT *c);
/* Feeds one received message to the session and handles the events:
 * received DATA goes to stdout (escaped), everything else to stderr. */
void app_chat_recv(APP_CHAT *c, const uint8_t *msg, size_t len);
/* The transport ended. */
void app_chat_transport_end(APP_CHAT *c);
/* Says why a handshake message was dropped over a text transport (a
 * mismatch as a warning with both fingerprints). */
void app_chat_hs_rejected(APP_CHAT *c, const P11C_EVENT *ev);
/* Takes out every event and shows it; sets finished/status. */
void app_chat_events(APP_CHAT *c);
/* How many of our DATA records the peer has confirmed. */
uint64_t app_chat_confirmed(const APP_CHAT *c);
/* Writes all of buf to fd (blocking), retrying on EINTR. 0 on success. */
int app_write_all(int fd, const void *buf, size_t len);

/* ---- Lines typed before the session (held.c) --------------------------------- */

/* Holds one line until the session is established. 0, or -1 when refused
 * (too much held; said on stderr). */
int app_held_add(APP_CHAT *c, const uint8_t *line, size_t len);
/* At the ESTABLISHED event: sends the held lines to a trusted peer (or an
 * unknown one with --accept-unknown), asks on a terminal, drops otherwise. */
void app_held_release(APP_CHAT *c, const P11C_EVENT *ev);
/* The line typed while asking: "yes" sends the held lines, anything else
 * drops them. */
void app_held_answer(APP_CHAT *c, const uint8_t *line, size_t len);
/* Drops the held lines, saying how many and why (why NULL: silently). */
void app_held_drop(APP_CHAT *c, const char *why);

/* ---- Byte queue and clock for the I/O loops (bytebuf.c) --------------------- */

/* APP_BUF: see the top of this file. */

/* Appends n bytes (first reclaiming the space when all was taken). 0 on
 * success, -1 when out of memory (the queue is unchanged). */
int app_buf_add(APP_BUF *b, const void *p, size_t n);
/* Cleanses and frees the storage; the queue is empty again. */
void app_buf_free(APP_BUF *b);

/* ---- Timing for the poll() loops (loop.c) ----------------------------------- */

/* Milliseconds on the monotonic clock. */
int64_t app_now_ms(void);

typedef struct app_timers {
    unsigned timeout;       /* seconds: the wait for CLOSE, the last flush */
    int ack_delay;          /* ms the peer's DATA may wait for our ACK */
    int ack_quiet;          /* 1: ack_delay counts from the last DATA (a room), not the first */
    uint64_t ack_every;     /* 0, or ACK at once when this many DATA wait */
    int64_t close_deadline; /* 0 until our CLOSE is sent */
    int64_t ack_due;        /* 0 while nothing waits to be confirmed */
    int64_t flush_deadline; /* 0 until the session is over */
} APP_TIMERS;

/* Before each poll(): starts the wait for CLOSE once ours is sent, and the
 * ACK delay once the peer's DATA waits for confirmation (in a room: when
 * ack_every wait, or ack_delay after the last one, so that a room does not
 * get an ACK line per message). */
void app_timers_arm(APP_TIMERS *t, const APP_CHAT *c);
/* The end of the wait to send what is left once the session is over (set
 * from `now` the first time). */
int64_t app_timers_flush(APP_TIMERS *t, int64_t now);
/* poll() until `deadline` (-1: none) or the ACK falls due, whichever is
 * first. The count of ready descriptors, 0 after a timeout or a signal, -1
 * when poll() failed (said on stderr; the status is APP_FAIL). */
int app_poll(APP_CHAT *c, const APP_TIMERS *t, struct pollfd *p, nfds_t np, int64_t deadline,
             int64_t now);
/* After a poll() that found nothing: sends an ACK that fell due. 1 when the
 * loop is over (CLOSE not answered in time: APP_FAIL; or the last flush
 * timed out), else 0. */
int app_timers_expired(APP_TIMERS *t, APP_CHAT *c, int64_t now);
/* The exit status of a loop: a session that did not finish failed. */
int app_chat_exit(const APP_CHAT *c);

/* ---- A session carried in the lines of a chat: wrap and irc (room.c) -------- */

/* Room defaults: lines that fit IRC after the prefix a server adds, sent at a
 * pace servers take; an ACK after ROOM_ACK_EVERY messages or a quiet spell. */
#define ROOM_MAX_LINE      400
#define ROOM_LINE_DELAY_MS 500
#define ROOM_BURST         5 /* irc: lines a server takes at once */
#define ROOM_ACK_EVERY     8
#define ROOM_ACK_QUIET_MS  5000
#define ROOM_HS_TIMEOUT    60
#define ROOM_ECHO_RING     64

typedef struct app_room APP_ROOM;

typedef struct app_room_ops {
    const char *name; /* "the chat program", "the IRC server": in messages */
    /* Appends one armored line to r->out in the transport's form. */
    int (*put_line)(APP_ROOM *r, const char *text, size_t len);
    /* One line read from the transport, its line end taken off. */
    void (*got_line)(APP_ROOM *r, const char *line, size_t len);
    /* Optional, each turn: 1 when the transport has ended by other means
     * (the chat program exited). */
    int (*ended)(APP_ROOM *r);
} APP_ROOM_OPS;

/* Options shared by wrap and irc. */
typedef struct app_room_opts {
    unsigned long max_line;   /* 0: none */
    int max_line_set;         /* given on the command line */
    unsigned long line_delay; /* ms between lines after a burst */
    unsigned long hs_timeout; /* seconds */
    int initiate;
} APP_ROOM_OPTS;

struct app_room {
    APP_CHAT chat;
    const APP_ROOM_OPS *ops;
    void *transport; /* the transport's own state */
    int rfd, wfd;    /* lines come from rfd, go to wfd (may be one socket) */
    int ready;       /* the transport can carry the handshake now */
    int started;     /* the session was started (initiator: HELLO queued) */
    int initiate;
    P11C_TEXT *tx;
    size_t max_line;     /* armored text per line (the transport's own additions taken off) */
    char max_why[64];    /* what sets it, for refusals */
    unsigned line_delay; /* pacing: ms between lines once the burst is spent */
    unsigned burst;      /* lines that may go at once (1: every line waits) */
    int64_t tat;         /* pacing: when the next line is due at the steady pace */
    APP_BUF out;         /* bytes for the transport */
    size_t out_lines;    /* complete lines in out not yet written */
    APP_BUF rin;         /* partial line from the transport */
    size_t rdiscard;     /* bytes of an over-long transport line being dropped */
    size_t max_rline;    /* longest transport line kept */
    APP_BUF uin;         /* partial line typed by the user */
    size_t udiscard;
    APP_BUF held; /* typed before the session exists */
    int user_eof, transport_eof;
    unsigned hs_timeout;
    int64_t hs_deadline, next_waiting;
    char peer_label[300]; /* "the peer", "'bob'": who is waited for */
    const char *sender;   /* who sent the line being read (transport's, or NULL) */
    char peer_who[300];   /* the sender whose line completed the handshake */
    uint8_t echo[ROOM_ECHO_RING][32];
    size_t necho;
};

/* Parses one room option (1: was one, 0: not, -1: usage error said). */
int app_room_option(const char *cmd, int opt, const char *arg, APP_ROOM_OPTS *ro);
/* Loads keys and trust and makes the session for a text transport. 0 on success. */
int app_room_init(APP_ROOM *r, const APP_CHAT_OPTS *o, const APP_ROOM_OPTS *ro,
                  const APP_ROOM_OPS *ops);
/* Sets the armored text one line may hold, and what sets it (for messages). */
void app_room_set_max_line(APP_ROOM *r, size_t max_line, const char *why);
/* Queues bytes for the transport as they are (the transport's own commands);
 * a line end in them counts as a line for the pacing. 0 on success. */
int app_room_raw(APP_ROOM *r, const void *p, size_t n);
/* A chat line from the transport: a P11C line goes to the session, anything
 * else is shown marked as unencrypted (with `who` in front when given). */
void app_room_line(APP_ROOM *r, const char *who, const char *line, size_t len);
/* Shows a line as '[unencrypted] <who> line' (escaped; who may be NULL). */
void app_room_plain(APP_ROOM *r, const char *who, const char *line, size_t len);
/* The transport ended (said by the transport: `why`, or the default). */
void app_room_transport_end(APP_ROOM *r, const char *why);
/* The loop: until the session is over. Returns the exit status. */
int app_room_run(APP_ROOM *r, unsigned timeout);
void app_room_free(APP_ROOM *r);

/* Set by SIGINT/SIGTERM handlers: end the chat cleanly (as end of input). */
extern volatile int app_interrupted;
void app_signals_install(void);

#endif
