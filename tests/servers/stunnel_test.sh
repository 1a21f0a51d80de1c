#!/usr/bin/env bash
# stunnel 5.68 with its key in the token through a key file that names it
# (key = reads files only): started as root, running as the worker user
# (setuid), handshakes over TLS 1.3 and 1.2 that verify the certificate.
source "$(dirname "$0")/common.sh"
stunnel=$(command -v stunnel4 || command -v stunnel || true)
[ -n "$stunnel" ] || skip "stunnel4 is not installed (bash scripts/setup.sh installs it)"

port=$(free_port)
mkdir -p "$work/stunnel"
chown "$wuser" "$work/stunnel"
user_lines=""
[ "$(id -u)" = 0 ] && user_lines="setuid = $wuser
setgid = $wgroup"
# The service behind the tunnel reads the whole request (up to its empty
# line: leaving bytes unread would reset the connection), then answers.
cat >"$work/stunnel/hello" <<'EOF'
#!/bin/sh
cr=$(printf '\r')
while IFS= read -r line && [ "$line" != "$cr" ] && [ -n "$line" ]; do :; done
echo hello from stunnel
EOF
chmod 755 "$work/stunnel/hello"
cat >"$work/stunnel/stunnel.conf" <<EOF
foreground = yes
pid =
$user_lines
debug = 7
[echo]
accept = 127.0.0.1:$port
cert = $work/server.crt
key = $work/server.key
ciphers = HIGH:AES128-GCM-SHA256
exec = $work/stunnel/hello
EOF
setsid "$stunnel" "$work/stunnel/stunnel.conf" >"$work/stunnel/log" 2>&1 &
server=$!
pids+=("$server")
wait_port "$port" "$server" || fail "stunnel did not listen: $(cat "$work/stunnel/log")"
grep -q "Private key loaded from file: $work/server.key" "$work/stunnel/log" ||
    fail "key not loaded: $(cat "$work/stunnel/log")"

handshakes "$port" "hello from stunnel" 4
users=$(ps -o user= -p "$server")
note "stunnel runs as: $users"
[ "$users" = "$wuser" ] || fail "stunnel runs as '$users', not $wuser"
echo "ok"
