#!/usr/bin/env bash
# Apache 2.4 (mod_ssl, prefork) with its key in the token, next to Debian's
# libp11 engine (libengine-pkcs11-openssl): mod_ssl hands a pkcs11: URI in
# SSLCertificateKeyFile to an engine named "pkcs11" when it finds one, so the
# provider is reached either through a key file that names the token key
# (read as a PEM file: no engine is asked), or through the URI with the
# engine directory hidden (OPENSSL_ENGINES). Started as root, children as
# the worker user; handshakes over TLS 1.3 and 1.2, across children.
source "$(dirname "$0")/common.sh"
apache=$(command -v apache2 || command -v httpd || true)
[ -n "$apache" ] || skip "apache2 is not installed (bash scripts/setup.sh installs it)"
mods=${APACHE_MODULES:-/usr/lib/apache2/modules}
[ -f "$mods/mod_ssl.so" ] || skip "mod_ssl is not in $mods"
engine_dir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
if [ -f "$engine_dir/pkcs11.so" ]; then
    note "libp11's engine is installed ($engine_dir/pkcs11.so)"
else
    note "libp11's engine is not installed: only the provider can answer"
fi

req_path=/index.html

# run_apache NAME CERTSPEC KEYSPEC [ENV...]: starts Apache with
# SSLCertificateFile CERTSPEC and SSLCertificateKeyFile KEYSPEC, runs the
# handshakes, checks the children, stops it.
run_apache() {
    local tag=$1 certspec=$2 keyspec=$3 port dir master
    shift 3
    port=$(free_port)
    dir=$work/apache-$tag
    mkdir -p "$dir/logs"
    echo "hello from apache" >"$dir/index.html"
    local user_lines=""
    [ "$(id -u)" = 0 ] && user_lines="User $wuser
Group $wgroup"
    cat >"$dir/httpd.conf" <<EOF
ServerRoot $dir
ServerName localhost
PidFile $dir/httpd.pid
DefaultRuntimeDir $dir
Mutex file:$dir
ErrorLog $dir/logs/error.log
LogLevel info
LoadModule mpm_prefork_module $mods/mod_mpm_prefork.so
LoadModule authz_core_module $mods/mod_authz_core.so
<IfModule !log_config_module>
    LoadModule log_config_module $mods/mod_log_config.so
</IfModule>
LoadModule ssl_module $mods/mod_ssl.so
$user_lines
StartServers 3
MinSpareServers 3
MaxSpareServers 5
MaxConnectionsPerChild 2
Listen 127.0.0.1:$port
LogFormat "%P" worker
CustomLog $dir/logs/access.log worker
SSLSessionCache none
DocumentRoot $dir
<Directory $dir>
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:$port>
    SSLEngine on
    SSLProtocol -all +TLSv1.2 +TLSv1.3
    SSLCipherSuite HIGH:AES128-GCM-SHA256
    SSLCertificateFile "$certspec"
    SSLCertificateKeyFile "$keyspec"
</VirtualHost>
EOF
    chmod -R o+rX "$dir"
    # its own process group: Apache signals its whole group when it stops
    setsid env "$@" "$apache" -f "$dir/httpd.conf" -DFOREGROUND >"$dir/out.log" 2>&1 &
    master=$!
    pids+=("$master")
    wait_port "$port" "$master" || fail "apache ($tag) did not listen: $(cat "$dir/out.log" "$dir/logs/error.log")"
    grep -q "AH02568: Certificate and private key .* configured from $certspec and $keyspec" \
        "$dir/logs/error.log" || fail "apache ($tag): key not configured: $(cat "$dir/logs/error.log")"
    handshakes "$port" "hello from apache" 4
    note "$tag: requests served by children: $(sort -u "$dir/logs/access.log" | tr '\n' ' ')"
    [ "$(sort -u "$dir/logs/access.log" | wc -l)" -ge 2 ] || fail "apache ($tag): one child served all"
    local users
    users=$(children_users "$master")
    note "$tag: children run as: $users"
    [ "$users" = "$wuser" ] || fail "apache ($tag): children run as '$users', not $wuser"
    kill "$master"
    wait "$master" 2>/dev/null || true
}

# The key file: the engine is never asked.
run_apache keyfile "$work/server.crt" "$work/server.key"
# URIs for the certificate and the key, both in the token, with the engines
# directory hidden so that mod_ssl falls back to OSSL_STORE, where the
# provider opens them.
run_apache uri "$cert_uri" "$key_uri" OPENSSL_ENGINES="$work/no-engines"
echo "ok"
