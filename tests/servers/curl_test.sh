#!/usr/bin/env bash
# curl 7.88 as a TLS client whose key is in the token: mutual TLS against
# openssl s_server, which requires and verifies the client certificate.
# curl reads the key through a key file that names it (--key FILE); a
# pkcs11: URI given to --key would go to an OpenSSL engine instead.
source "$(dirname "$0")/common.sh"
need curl

# The server: a software key; it trusts the token key's certificate only.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/web.pem" -out "$work/web.crt" \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 30 >/dev/null 2>&1 ||
    fail "the server's certificate"

# start_server PORT OPTIONS...
start_server() {
    local port=$1
    shift
    setsid env OPENSSL_CONF=/dev/null openssl s_server -accept "127.0.0.1:$port" \
        -cert "$work/web.crt" -key "$work/web.pem" -Verify 1 -verify_return_error \
        -CAfile "$work/server.crt" -www "$@" >"$work/s_server.$port.log" 2>&1 &
    server=$!
    pids+=("$server")
    wait_port "$port" "$server" || fail "s_server did not listen: $(cat "$work/s_server.$port.log")"
}

for tls in 1.3 1.2; do
    port=$(free_port)
    start_server "$port"
    for i in 1 2 3; do
        out=$(curl -sS --max-time 20 --tlsv"$tls" --tls-max "$tls" --cacert "$work/web.crt" \
            --cert "$work/server.crt" --key "$work/server.key" "https://127.0.0.1:$port/" 2>&1) ||
            fail "curl TLS $tls, request $i: $out"
        grep -q "New, TLSv$tls" <<<"$out" || fail "not TLS $tls: $out"
    done
    note "TLS $tls: 3 requests with the client key in the token ($(grep -m1 -o 'Cipher is [^ ]*' <<<"$out"))"
    # without the client certificate the server refuses
    if out=$(curl -sS --max-time 20 --tlsv"$tls" --tls-max "$tls" --cacert "$work/web.crt" \
        "https://127.0.0.1:$port/" 2>&1); then
        fail "TLS $tls without a client certificate was accepted: $out"
    fi
    kill "$server"
done
echo "ok"
