# A throw-away PostgreSQL 15 cluster for the mirror's tests: `source "$CLI_DIR/pg-cluster.sh"`, then
# `pg_cluster_start` (sets PG_DIR, PG_PORT, PG_CA and the `pg_admin` helper) and, in the script's
# EXIT trap, `pg_cluster_stop`. The cluster runs as an unprivileged user (initdb refuses root: as
# root it runs as `nobody`), listens on 127.0.0.1 only with ssl=on (a CA and a server certificate
# made here with openssl, for localhost and 127.0.0.1), and is stopped by its postmaster's own pid.
# Local socket connections (the admin's) are trusted; TCP ones need a password, and the role
# `mirror` (made by `pg_cluster_add_mirror_role`) may connect over TLS only.

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
PG_DIR=""
PG_PORT=""
PG_PID=""

pg_as_owner() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u nobody -- "$@"; else "$@"; fi
}

pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

pg_cluster_start() {
    if [[ -z $PG_BIN || ! -x $PG_BIN/initdb ]]; then
        echo "FAIL: no PostgreSQL server binaries (install Debian's postgresql package)" >&2
        return 1
    fi
    PG_DIR=$(mktemp -d /tmp/tierline-pg.XXXXXX)
    chmod 755 "$PG_DIR"
    mkdir -p "$PG_DIR/data" "$PG_DIR/tls" "$PG_DIR/log"
    # A CA, and the server's certificate signed by it.
    (
        cd "$PG_DIR/tls"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=tierline test CA" 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >san.ext
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null
    )
    PG_CA=$PG_DIR/tls/ca.crt
    chmod 644 "$PG_CA"
    if [[ $(id -u) -eq 0 ]]; then chown -R nobody "$PG_DIR/data" "$PG_DIR/tls" "$PG_DIR/log"; fi
    chmod 600 "$PG_DIR/tls/server.key"
    pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log" >&2
        return 1
    }
    PG_PORT=$(pg_free_port)
    cat >>"$PG_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DIR/data'
ssl = on
ssl_cert_file = '$PG_DIR/tls/server.crt'
ssl_key_file = '$PG_DIR/tls/server.key'
fsync = off
max_connections = 40
CONF
    cat >"$PG_DIR/data/pg_hba.conf" <<HBA
local all all trust
hostnossl all mirror 127.0.0.1/32 reject
host all all 127.0.0.1/32 scram-sha-256
HBA
    pg_cluster_up
}

# Starts the cluster (again), waiting at most 60 s; PG_PID is its postmaster.
pg_cluster_up() {
    pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log/server.log" -w -t 60 start >/dev/null || {
        tail -n 20 "$PG_DIR/log/server.log" >&2
        return 1
    }
    PG_PID=$(head -n 1 "$PG_DIR/data/postmaster.pid")
}

# Stops the postmaster by its pid (fast shutdown, then SIGKILL after 30 s).
pg_cluster_down() {
    [[ -n $PG_PID ]] || return 0
    kill -INT "$PG_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do
        kill -0 "$PG_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -9 "$PG_PID" 2>/dev/null || true
    PG_PID=""
}

pg_cluster_stop() {
    pg_cluster_down
    [[ -n $PG_DIR ]] && rm -rf "$PG_DIR"
    PG_DIR=""
}

# pg_admin DATABASE SQL: runs SQL as the superuser over the local socket; prints unaligned rows.
pg_admin() {
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At -h "$PG_DIR/data" -p "$PG_PORT" -U postgres -d "$1" -c "$2"
}

# pg_cluster_add_mirror_role PASSWORD DATABASE SCHEMA...: the least-privilege role of the guide: it
# logs in and owns the named schemas of DATABASE, nothing else.
pg_cluster_add_mirror_role() {
    local password=$1 database=$2
    shift 2
    pg_admin postgres "CREATE ROLE mirror LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD '$password'"
    pg_admin postgres "CREATE DATABASE $database"
    pg_admin "$database" "REVOKE CREATE ON SCHEMA public FROM PUBLIC; GRANT CONNECT ON DATABASE $database TO mirror"
    for schema in "$@"; do pg_admin "$database" "CREATE SCHEMA $schema AUTHORIZATION mirror"; done
}
