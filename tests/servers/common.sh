# Shared by the server tests (sourced): a private SoftHSM2 token, an OpenSSL
# configuration loading the provider, certificates for the token keys, key
# files naming them, free ports, handshakes that verify the certificate, and
# cleanup of everything started, on every path.
#
# The test script is run as: SCRIPT BUILD_DIR SOURCE_DIR [KIND]
# KIND is rsa (default) or ec: which key the server uses.
set -euo pipefail

build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) kind=${3:-rsa}
SKIP=77
name=$(basename "$0" .sh)-$kind

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
skip() {
    echo "SKIP: $*"
    exit $SKIP
}
note() { echo "$name: $*"; }

# What the tests start, stopped in reverse order at exit (pid files or pids).
pids=()
work=$(mktemp -d "${TMPDIR:-/tmp}/p11chat-$name.XXXXXX")
cleanup() {
    local rc=$?
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill "${pids[$i]}" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.2
        done
        kill -9 "$p" 2>/dev/null || true
    done
    if [ $rc -ne 0 ] && [ $rc -ne $SKIP ] && [ -n "${KEEP_LOGS:-}" ]; then
        echo "logs kept in $work" >&2
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

need() {
    command -v "$1" >/dev/null 2>&1 || skip "$1 is not installed (bash scripts/setup.sh installs it)"
}

# The user worker processes run as: Debian's www-data, else nobody. Only
# root can start a server that changes user; otherwise workers stay ours.
if [ "$(id -u)" = 0 ]; then
    wuser=$(id -un www-data 2>/dev/null || echo nobody)
    wgroup=$(id -gn "$wuser")
else
    wuser=$(id -un) wgroup=$(id -gn)
fi

# ---- The token, readable by the worker user ---------------------------------
chmod 755 "$work"
bash "$src/tests/token/mktoken.sh" "$work/token" >/dev/null
export SOFTHSM2_CONF=$work/token/softhsm2.conf
softhsm=${P11CHAT_SOFTHSM_MODULE:-/usr/lib/softhsm/libsofthsm2.so}

case $kind in
rsa) key_uri='pkcs11:token=p11chat-test;object=alice' ;;
ec)
    key_uri='pkcs11:token=p11chat-test;object=carol-ec'
    pkcs11-tool --module "$softhsm" --token-label p11chat-test --login --pin 1234 \
        --keypairgen --key-type EC:prime256v1 --label carol-ec --id 0e >/dev/null 2>&1 ||
        fail "making the EC key"
    ;;
*) fail "unknown key kind $kind" ;;
esac

# ---- OpenSSL configuration: the system's, then the default and p11chat ------
cat >"$work/openssl.cnf" <<EOF
.include /etc/ssl/openssl.cnf
[default]
openssl_conf = p11chat_init
[p11chat_init]
providers = p11chat_providers
[p11chat_providers]
default = p11chat_default
p11chat = p11chat_sect
[p11chat_default]
activate = 1
[p11chat_sect]
module = $build/provider/p11chat.so
pkcs11-module = $softhsm
pkcs11-pin = file:$work/token/pin
activate = 1
EOF
[ -f /etc/ssl/openssl.cnf ] || sed -i '1d' "$work/openssl.cnf"
export OPENSSL_CONF=$work/openssl.cnf
# The clients use OpenSSL alone: they verify what the server sends.
client_env=(env OPENSSL_CONF=/dev/null)

# ---- The server certificate, signed by the token key; its key file --------
openssl req -new -x509 -key "$key_uri" -subj /CN=localhost -days 30 \
    -addext subjectAltName=IP:127.0.0.1,DNS:localhost -out "$work/server.crt" 2>"$work/req.err" ||
    fail "certificate for $key_uri: $(cat "$work/req.err")"
"$build/apps/p11chat" keyfile --key "$key_uri" --out "$work/server.key" ||
    fail "p11chat keyfile for $key_uri"
grep -q 'BEGIN PKCS#11 PROVIDER URI' "$work/server.key" || fail "key file: $(cat "$work/server.key")"
chmod 644 "$work/server.crt" "$work/server.key"
# The certificate also in the token, beside its key (same id), for servers
# that read it from there.
case $kind in rsa) key_id=01 ;; ec) key_id=0e ;; esac
openssl x509 -in "$work/server.crt" -outform DER -out "$work/server.der"
pkcs11-tool --module "$softhsm" --token-label p11chat-test --login --pin 1234 \
    --write-object "$work/server.der" --type cert --id "$key_id" --label server-cert \
    >"$work/cert-import.log" 2>&1 || fail "importing the certificate: $(cat "$work/cert-import.log")"
cert_uri='pkcs11:token=p11chat-test;object=server-cert;type=cert'

# Workers re-open the module after fork(): they read SOFTHSM2_CONF and the
# token directory, every object of it made above included; the PIN was read
# by the server at start and is kept.
chgrp -R "$wgroup" "$work/token/tokens"
chmod -R g+rX "$work/token/tokens"
chmod 644 "$work/token/softhsm2.conf"


# ---- Ports and handshakes ----------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until something listens on 127.0.0.1:$1 (up to 15 s), while the
# process $2 (when given) lives.
wait_port() {
    for _ in $(seq 1 150); do
        if [ -n "${2:-}" ] && ! kill -0 "$2" 2>/dev/null; then
            return 1
        fi
        if (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# One TLS handshake with certificate verification; prints the protocol and
# cipher, and what the server sent. handshake PORT OPTIONS...
handshake() {
    local port=$1
    shift
    printf 'GET %s HTTP/1.0\r\nHost: localhost\r\n\r\n' "${req_path:-/}" |
        timeout 20 "${client_env[@]}" openssl s_client -connect "127.0.0.1:$port" \
            -servername localhost -CAfile "$work/server.crt" -verify_return_error \
            -verify_ip 127.0.0.1 -ign_eof "$@" 2>&1
}

# Several handshakes in a row with each protocol: TLS 1.3, TLS 1.2 with
# ECDHE, and (RSA keys) TLS 1.2 with static RSA key exchange, whose
# pre-master secret the token decrypts. expect_body: what the server sends.
handshakes() {
    local port=$1 expect_body=$2 n=${3:-4} out
    local -a variants=("-tls1_3" "-tls1_2 -cipher ECDHE")
    [ "$kind" = rsa ] && variants+=("-tls1_2 -cipher AES128-GCM-SHA256")
    for v in "${variants[@]}"; do
        for i in $(seq 1 "$n"); do
            # shellcheck disable=SC2086
            out=$(handshake "$port" $v) || fail "handshake $i ($v): $(tail -n 20 <<<"$out")"
            grep -q 'Verify return code: 0 (ok)' <<<"$out" ||
                fail "not verified ($v): $(grep -i 'verify\|error' <<<"$out")"
            grep -q "$expect_body" <<<"$out" ||
                fail "no '$expect_body' ($v): $(grep -i 'HTTP/\|error\|Cipher is' <<<"$out")"
        done
        note "$n handshakes ok: $v ($(grep -m1 -o 'Cipher is [^ ]*' <<<"$out"))"
    done
}

# The user owning each child process of $1.
children_users() {
    ps -o user= --ppid "$1" | sort -u
}
