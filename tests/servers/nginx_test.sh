#!/usr/bin/env bash
# nginx 1.22 with its key in the token through a key file that names it
# (ssl_certificate_key reads PEM files only): started as root, two workers
# as the worker user, handshakes over TLS 1.3 and 1.2 spread across both
# workers, each verifying the certificate.
source "$(dirname "$0")/common.sh"
need nginx

port=$(free_port)
mkdir -p "$work/nginx/logs"
user_line=""
[ "$(id -u)" = 0 ] && user_line="user $wuser $wgroup;"
cat >"$work/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
daemon off;
master_process on;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log info;
# Workers see only the environment named here: the token's configuration
# (SoftHSM2 reads it again after fork) and OpenSSL's.
env SOFTHSM2_CONF;
env OPENSSL_CONF;
events { worker_connections 64; }
http {
    log_format worker '\$pid';
    access_log $work/nginx/logs/access.log worker;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    server {
        # reuseport: each worker has its own socket, so connections spread
        listen 127.0.0.1:$port ssl reuseport;
        ssl_certificate $work/server.crt;
        ssl_certificate_key $work/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_ciphers HIGH:AES128-GCM-SHA256;
        location / { return 200 "hello from nginx\n"; }
    }
}
EOF
nginx -t -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx/t.log" 2>&1 ||
    fail "nginx -t: $(cat "$work/nginx/t.log")"
setsid nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx/out.log" 2>&1 &
master=$!
pids+=("$master")
wait_port "$port" "$master" || fail "nginx did not listen: $(cat "$work/nginx/out.log" "$work/nginx/logs/error.log")"

handshakes "$port" "hello from nginx" 6
served=$(sort -u "$work/nginx/logs/access.log" | tr '\n' ' ')
note "requests served by worker processes: $served"
[ "$(sort -u "$work/nginx/logs/access.log" | wc -l)" -ge 2 ] || fail "every request went to one worker"
users=$(children_users "$master")
note "workers run as: $users"
[ "$users" = "$wuser" ] || fail "workers run as '$users', not $wuser"
if grep -q '\[emerg\]\|\[crit\]\|\[alert\]' "$work/nginx/logs/error.log"; then
    fail "nginx errors: $(grep '\[emerg\]\|\[crit\]\|\[alert\]' "$work/nginx/logs/error.log")"
fi
echo "ok"
