#!/usr/bin/env bash
# TLS servers with the token key (docs/benchmarks.md, "TLS servers"):
#
#   bash bench/tls.sh [--quick] [--handshakes N]
#
# In one run, on a private SoftHSM2 token (made as the server tests make it,
# tests/servers/common.sh):
#   - the token's RSA-2048 signature rate through the provider, and the same
#     in software (p11chat-bench --only sign);
#   - TLS 1.3 full handshakes per second (openssl s_time -new, from two
#     client processes at once) of openssl s_server and of nginx (two
#     workers), with the token key and with an RSA-2048 key in a file, in
#     interleaved rounds, the median of each kept (the machine may be shared);
#   - the memory (VmRSS) of one nginx worker over N handshakes with the
#     token key (default 20 000), sampled as they go;
#   - instructions per handshake of openssl s_server under valgrind's
#     callgrind, token key against file key, each split into its signature
#     and the rest: what the provider adds beyond the token's signature,
#     in a figure that does not move with the machine's load.
# The bound the token sets on a handshake rate is the file key's rate with
# its software signature replaced by the token's:
#   1 / bound = 1 / file_rate - 1 / software_sign_rate + 1 / token_sign_rate
# and "measured / bound" says what the provider adds beyond the token's own
# signature time (1.00: nothing).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${P11CHAT_BUILD:-$root/build}
seconds=5 rounds=3 total=20000 counted=100 signquick=
while [ $# -gt 0 ]; do
    case $1 in
    --quick) seconds=3 rounds=1 total=2000 counted=30 signquick=--quick ;;
    --handshakes) total=$2; shift ;;
    *) echo "usage: bench/tls.sh [--quick] [--handshakes N]" >&2; exit 2 ;;
    esac
    shift
done
command -v nginx >/dev/null || { echo "bench/tls.sh: nginx is not installed (bash scripts/setup.sh)" >&2; exit 1; }
[ -x "$build/bench/p11chat-bench" ] || { echo "bench/tls.sh: build first (bash bench/run.sh)" >&2; exit 1; }

# The token, configuration, certificate and key file of the server tests.
set -- "$build" "$root" rsa
# shellcheck source=../tests/servers/common.sh
source "$root/tests/servers/common.sh"

# The same kind of key in a file, for comparison.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$work/file.key" -out "$work/file.crt" \
    -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 -days 30 >/dev/null 2>&1
chmod 644 "$work/file.key"

# ---- Signature rates, token through the provider and software --------------
# (A full run: the quick one's short rounds put the token's rate a third low.)
"$build/bench/p11chat-bench" $signquick --only sign >"$work/sign.txt" 2>/dev/null
# The value column of the line that starts with $1.
rate_of() {
    awk -v k="$1" 'index($0, k) == 1 { split(substr($0, length(k) + 1), f, " "); print f[1]; exit }' \
        "$work/sign.txt"
}
tok1=$(rate_of "provider, EVP_DigestSign (key from OSSL_STORE)")
tok2=$(rate_of "provider, 2 threads")
sw1=$(rate_of "software, default provider")
sw2=$(rate_of "software, 2 threads")

# ---- Handshakes per second ---------------------------------------------------
# rate PORT: full TLS 1.3 handshakes per second from two clients at once.
rate() {
    local port=$1 a b
    for c in 1 2; do
        "${client_env[@]}" openssl s_time -connect "127.0.0.1:$port" -new -time "$seconds" \
            -CAfile "$work/server.crt" >"$work/s_time.$c" 2>&1 &
    done
    wait
    a=$(awk '/connections in .* real seconds/ { print $1 / $4 }' "$work/s_time.1")
    b=$(awk '/connections in .* real seconds/ { print $1 / $4 }' "$work/s_time.2")
    awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN { printf "%.0f", a + b }'
}

s_server_rate() {
    local cert=$1 key=$2 port server r
    port=$(free_port)
    setsid openssl s_server -accept "127.0.0.1:$port" -cert "$cert" -key "$key" -www -quiet \
        >"$work/s_server.log" 2>&1 &
    server=$!
    pids+=("$server")
    wait_port "$port" "$server" || fail "s_server: $(cat "$work/s_server.log")"
    r=$(rate "$port")
    kill "$server"
    wait "$server" 2>/dev/null || true
    echo "$r"
}

# nginx_start CERT KEY WORKERS: sets port and master.
nginx_start() {
    local cert=$1 key=$2 workers=$3 dir=$work/nginx-$RANDOM
    port=$(free_port)
    mkdir -p "$dir/logs"
    cat >"$dir/nginx.conf" <<EOF
user $wuser $wgroup;
worker_processes $workers;
daemon off;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
env SOFTHSM2_CONF;
env OPENSSL_CONF;
events { worker_connections 256; }
http {
    access_log off;
    ssl_session_cache off;
    ssl_session_tickets off;
    client_body_temp_path $dir/b; proxy_temp_path $dir/p; fastcgi_temp_path $dir/f;
    uwsgi_temp_path $dir/u; scgi_temp_path $dir/s;
    server {
        listen 127.0.0.1:$port ssl reuseport;
        ssl_certificate $cert;
        ssl_certificate_key $key;
        ssl_protocols TLSv1.3;
        location / { return 200 "ok\n"; }
    }
}
EOF
    setsid nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/out.log" 2>&1 &
    master=$!
    pids+=("$master")
    wait_port "$port" "$master" || fail "nginx: $(cat "$dir/out.log" "$dir/logs/error.log")"
}

nginx_rate() {
    local r
    nginx_start "$1" "$2" 2
    r=$(rate "$port")
    kill "$master"
    wait "$master" 2>/dev/null || true
    echo "$r"
}

echo "bench/tls.sh: $(nproc) CPUs, $(openssl version | cut -d' ' -f1-2), $(nginx -v 2>&1 | cut -d/ -f2)" \
    "($seconds s per figure, two s_time clients)"
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
all_ss_tok="" all_ss_file="" all_ng_tok="" all_ng_file=""
for r in $(seq 1 "$rounds"); do
    all_ss_tok+=" $(s_server_rate "$work/server.crt" "$key_uri")"
    all_ss_file+=" $(s_server_rate "$work/file.crt" "$work/file.key")"
    all_ng_tok+=" $(nginx_rate "$work/server.crt" "$work/server.key")"
    all_ng_file+=" $(nginx_rate "$work/file.crt" "$work/file.key")"
    echo "round $r: s_server token/file:$all_ss_tok /$all_ss_file; nginx token/file:$all_ng_tok /$all_ng_file" >&2
done
ss_tok=$(median <<<"$all_ss_tok")
ss_file=$(median <<<"$all_ss_file")
ng_tok=$(median <<<"$all_ng_tok")
ng_file=$(median <<<"$all_ng_file")

bound() { awk -v f="$1" -v s="$2" -v t="$3" 'BEGIN { printf "%.0f", 1 / (1 / f - 1 / s + 1 / t) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
ss_bound=$(bound "$ss_file" "$sw1" "$tok1")
ng_bound=$(bound "$ng_file" "$sw2" "$tok2")
printf '\n%-58s %8s\n' "RSA-2048 signatures through the provider, 1 thread" "$tok1/s"
printf '%-58s %8s\n' "                                          2 threads" "$tok2/s"
printf '%-58s %8s\n' "RSA-2048 signatures in software, 1 thread" "$sw1/s"
printf '%-58s %8s\n' "                                2 threads" "$sw2/s"
printf '\n%-34s %10s %10s %10s %8s %8s\n' "TLS 1.3 handshakes/s" "token key" "file key" "bound" "tok/bnd" "tok/file"
printf '%-34s %10s %10s %10s %8s %8s\n' "openssl s_server (1 process)" "$ss_tok" "$ss_file" "$ss_bound" \
    "$(ratio "$ss_tok" "$ss_bound")" "$(ratio "$ss_tok" "$ss_file")"
printf '%-34s %10s %10s %10s %8s %8s\n' "nginx (2 workers)" "$ng_tok" "$ng_file" "$ng_bound" \
    "$(ratio "$ng_tok" "$ng_bound")" "$(ratio "$ng_tok" "$ng_file")"

# ---- Memory of one nginx worker over many handshakes ------------------------
nginx_start "$work/server.crt" "$work/server.key" 1
worker=$(ps -o pid= --ppid "$master" | head -n 1 | tr -d ' ')
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$worker/status"; }
done_hs=0
printf '\nnginx worker memory (VmRSS, KiB) over %d TLS 1.3 handshakes with the token key:\n' "$total"
printf '  %6d handshakes: %6d\n' 0 "$(rss)"
first="" first_n=0
while [ "$done_hs" -lt "$total" ]; do
    "${client_env[@]}" openssl s_time -connect "127.0.0.1:$port" -new -time 5 \
        -CAfile "$work/server.crt" >"$work/s_time.m" 2>&1
    n=$(awk '/connections in .* real seconds/ { print $1 }' "$work/s_time.m")
    [ -n "$n" ] && [ "$n" -gt 0 ] || fail "s_time: $(cat "$work/s_time.m")"
    done_hs=$((done_hs + n))
    r=$(rss)
    [ -z "$first" ] && first=$r first_n=$done_hs
    printf '  %6d handshakes: %6d\n' "$done_hs" "$r"
done
printf 'growth from %d to %d handshakes: %d KiB\n' "$first_n" "$done_hs" "$(($(rss) - first))"

# ---- Instructions per handshake (callgrind), s_server ------------------------
# After 20 handshakes (the key's session copy, OpenSSL's caches), the
# counters are zeroed and $counted handshakes counted. The signature is
# p11c_key_sign with the token key (the token's own work: the call the raw
# benchmark makes) and EVP_DigestSignFinal with the file key (the default
# provider's RSA-PSS); the rest of the token row holds everything of the
# provider's outside the token call.
if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
    printf '\ninstructions per handshake: skipped, valgrind is not installed\n'
    exit 0
fi
# inclusive FILE FUNCTION: the inclusive instruction count of FUNCTION
# (TOTAL: the whole program) in a callgrind dump.
inclusive() {
    callgrind_annotate --threshold=100 --inclusive=yes "$1" 2>/dev/null |
        awk -v f="$2" 'v == "" { gsub(",", "", $1) }
            v == "" && f == "TOTAL" && /PROGRAM TOTALS/ { v = $1 }
            v == "" && f != "TOTAL" && index($0, ":" f " [") { v = $1 }
            END { print v }'
}
counted_run() {
    local tag=$1 cert=$2 key=$3 port server i
    port=$(free_port)
    (cd "$work" && exec valgrind --tool=callgrind --callgrind-out-file="$work/cg.$tag" \
        openssl s_server -accept "127.0.0.1:$port" -cert "$cert" -key "$key" -www -quiet \
        -no_ticket) >"$work/cg.$tag.log" 2>&1 &
    server=$!
    pids+=("$server")
    for i in $(seq 1 600); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && break
        kill -0 "$server" 2>/dev/null || fail "s_server under callgrind: $(cat "$work/cg.$tag.log")"
        sleep 0.1
    done
    handshakes() {
        for ((i = 0; i < $1; i++)); do
            "${client_env[@]}" openssl s_client -connect "127.0.0.1:$port" -tls1_3 \
                -verify_return_error -CAfile "$cert" </dev/null >/dev/null 2>&1 ||
                fail "a handshake with s_server under callgrind"
        done
    }
    handshakes 20
    callgrind_control -z "$server" >/dev/null
    handshakes "$counted"
    callgrind_control -d counted "$server" >/dev/null
    kill "$server"
    wait "$server" 2>/dev/null || true
}
counted_run token "$work/server.crt" "$key_uri"
counted_run file "$work/file.crt" "$work/file.key"
tok_all=$(inclusive "$work/cg.token.1" TOTAL) tok_sig=$(inclusive "$work/cg.token.1" p11c_key_sign)
file_all=$(inclusive "$work/cg.file.1" TOTAL) file_sig=$(inclusive "$work/cg.file.1" EVP_DigestSignFinal)
[ -n "$tok_all" ] && [ -n "$tok_sig" ] && [ -n "$file_all" ] && [ -n "$file_sig" ] ||
    fail "reading the callgrind dumps in $work"
awk -v n="$counted" -v ta="$tok_all" -v ts="$tok_sig" -v fa="$file_all" -v fs="$file_sig" 'BEGIN {
    printf "\nopenssl s_server, instructions per TLS 1.3 handshake (callgrind, %d handshakes):\n", n
    printf "%-34s %12s %12s %12s\n", "", "whole", "signature", "the rest"
    printf "%-34s %12.0f %12.0f %12.0f\n", "token key", ta / n, ts / n, (ta - ts) / n
    printf "%-34s %12.0f %12.0f %12.0f\n", "file key", fa / n, fs / n, (fa - fs) / n
    added = ((ta - ts) - (fa - fs)) / n
    printf "added by the provider beyond the token'"'"'s signature: %.0f instructions per handshake (%.2f%% of a token handshake)\n", added, 100 * added / (ta / n)
    printf "tok/bnd in instructions (the token'"'"'s signature with the file key'"'"'s rest / token handshake): %.3f\n", ((fa - fs) + ts) / ta
}'
