#!/usr/bin/env bash
# openssl s_server with the token key given as a pkcs11: URI, and again as a
# key file naming it with the certificate read from the token: TLS 1.3,
# TLS 1.2 with ECDHE and, for RSA, TLS 1.2 with static RSA key exchange (the
# token decrypts the pre-master secret).
source "$(dirname "$0")/common.sh"

for pair in "$work/server.crt|$key_uri" "$cert_uri|$work/server.key"; do
    certspec=${pair%%|*} keyspec=${pair#*|}
    port=$(free_port)
    setsid openssl s_server -accept "127.0.0.1:$port" -cert "$certspec" -key "$keyspec" \
        -cipher HIGH:AES128-GCM-SHA256 -www >"$work/s_server.log" 2>&1 &
    server=$!
    pids+=("$server")
    wait_port "$port" "$server" || fail "s_server did not listen: $(cat "$work/s_server.log")"
    note "certificate: $certspec, key: $keyspec"
    handshakes "$port" "HTTP/1.0 200 ok" 3
    kill "$server"
done
echo "ok"
