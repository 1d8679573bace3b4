# Shared by the scripts that check an HTTP API of a real node against its OpenAPI file with
# schemathesis (intake-schemathesis.sh, workspace-schemathesis.sh). Source it right after lib.sh and
# `workspace NAME`:
#
#   source "$(dirname "$0")/schemathesis-lib.sh"
#   require_schemathesis "$SPEC"            # PASS/FAIL lines; stops the script when it cannot run
#   serve_http "$STORE"                     # sets SERVER_PID, PORT and BASE
#   run_schemathesis "WHAT" COPY TOKEN [schemathesis options...]
#   check_node_runs
#   stop_server; check_node_stopped
#
# The EXIT trap it sets stops schemathesis and the node (by their pids) and removes $W. Bounds:
# RUN_SECONDS for the whole schemathesis run, REQUEST_SECONDS for each of its requests,
# START_SECONDS until the node logs its port, STOP_SECONDS until it exits after SIGTERM (the script
# may set them before sourcing). Environment: SCHEMATHESIS_EXAMPLES (default 40), SCHEMATHESIS_SEED
# (default: random; the report prints the seed).

RUN_SECONDS=${RUN_SECONDS:-900}
REQUEST_SECONDS=${REQUEST_SECONDS:-60}   # requests take milliseconds; generous for a busy machine
START_SECONDS=${START_SECONDS:-120}      # the node logs its port within a second
STOP_SECONDS=${STOP_SECONDS:-60}         # the node exits within a second of SIGTERM
EXAMPLES=${SCHEMATHESIS_EXAMPLES:-40}
WANT_VERSION=4.32.5
SERVER_PID=
ST_PID=

# stop_server: SIGTERM to the node (by its pid), SIGKILL if it still runs STOP_SECONDS later. STOP_RC:
# its exit status, or "killed".
STOP_RC=
stop_server() {
    if [[ -n $SERVER_PID ]]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq $((STOP_SECONDS * 10))); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            kill -KILL "$SERVER_PID" 2>/dev/null || true
            wait "$SERVER_PID" 2>/dev/null || true
            STOP_RC=killed
        else
            STOP_RC=0
            wait "$SERVER_PID" 2>/dev/null || STOP_RC=$?
        fi
    fi
    SERVER_PID=
}
stop_schemathesis() {
    if [[ -n $ST_PID ]] && kill -0 "$ST_PID" 2>/dev/null; then
        kill -TERM "$ST_PID" 2>/dev/null || true   # timeout passes it on to schemathesis
        wait "$ST_PID" 2>/dev/null || true
    fi
    ST_PID=
}
trap 'stop_schemathesis; stop_server; rm -rf "$W"' EXIT
trap 'exit 130' INT TERM   # so that the EXIT trap stops the node and removes $W then too

# require_schemathesis SPEC: schemathesis is on PATH (the expected version, else a note) and SPEC exists.
require_schemathesis() {
    local version
    if ! command -v schemathesis >/dev/null; then
        fail "schemathesis is installed" "no schemathesis on PATH: python3 -m pip install schemathesis==$WANT_VERSION (see .ci/run)"
        finish
    fi
    version=$(schemathesis --version 2>&1 || true)
    if [[ $version == *"$WANT_VERSION"* ]]; then
        pass "schemathesis $WANT_VERSION is installed"
    else
        echo "note: expected schemathesis $WANT_VERSION (the options and checks below are those of it); found: $version"
    fi
    if [[ ! -f $1 ]]; then
        fail "$(basename "$1") exists" "not found at $1"
        finish
    fi
}

# serve_http STORE: `tierline serve --http 127.0.0.1:0` in the background, its log in $W/node.log;
# the port is read from the line `address=http://127.0.0.1:PORT/ ... dashboard listening`.
serve_http() {
    "$BIN" serve --store "$1" --http 127.0.0.1:0 </dev/null >/dev/null 2>"$W/node.log" &
    SERVER_PID=$!
    PORT=
    for _ in $(seq $((START_SECONDS * 10))); do
        # swift-log writes the metadata first: "... address=http://127.0.0.1:PORT/ [tierline] dashboard listening"
        PORT=$(grep 'dashboard listening' "$W/node.log" 2>/dev/null | sed -n 's|.*address=http://127\.0\.0\.1:\([0-9][0-9]*\)/.*|\1|p' | head -n 1 || true)
        [[ -n $PORT ]] && break
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -n $PORT ]]; then
        pass "tierline serve --http 127.0.0.1:0 logs 'dashboard listening address=http://127.0.0.1:$PORT/'"
    else
        fail "tierline serve --http 127.0.0.1:0 logs 'dashboard listening address=...' within $START_SECONDS s" "$(tail -n 20 "$W/node.log")"
        finish
    fi
    BASE=http://127.0.0.1:$PORT
}

# run_schemathesis WHAT SPEC TOKEN [OPTION...]: `schemathesis run SPEC` against $BASE with the bearer
# TOKEN, every check but unsupported_method, EXAMPLES cases per operation, bounded by RUN_SECONDS;
# PASS when it reports no failure and no error on WHAT (e.g. "the 5 operations").
#
# unsupported_method sends methods the schema does not list (PUT, DELETE, ...) to each path and wants
# 405 with an Allow header. Tierline's API notes promise no 405, and Hummingbird 2.28.1's router
# answers a path known only for other methods as an unknown route, 404
# (Sources/Hummingbird/Router/Router.swift: NotFoundResponder). Checks that find nothing to do pass
# without a request: use_after_free and ensure_resource_availability (no DELETE, no links),
# object_level_authorization (one identity), allow_header_conformance (only on OPTIONS answers that
# carry Allow). The rest: not_a_server_error, status_code_conformance, content_type_conformance,
# response_headers_conformance, response_schema_conformance (formats too), negative_data_rejection,
# positive_data_acceptance, missing_required_header, ignored_auth (each accepted request is sent again
# without the token and with a wrong one, which must be refused with 401 or 403).
run_schemathesis() {
    local what=$1 spec=$2 token=$3 seed_args=() rc
    shift 3
    if [[ -n ${SCHEMATHESIS_SEED:-} ]]; then seed_args=(--seed "$SCHEMATHESIS_SEED"); fi
    echo "schemathesis run $spec --url $BASE $* --checks all --exclude-checks unsupported_method --max-examples $EXAMPLES ..."
    # In the background and waited for, so that INT or TERM stop it and the node at once; in $W, so
    # that anything it ever writes lands there.
    (cd "$W" && exec timeout -k 10 "$RUN_SECONDS" \
        schemathesis run "$spec" \
        --url "$BASE" \
        -H "Authorization: Bearer $token" \
        "$@" \
        --checks all \
        --exclude-checks unsupported_method \
        --max-examples "$EXAMPLES" \
        --workers 1 \
        --request-timeout "$REQUEST_SECONDS" \
        --generation-database none \
        --no-color \
        "${seed_args[@]}" </dev/null) &
    ST_PID=$!
    set +e
    wait "$ST_PID"
    rc=$?
    set -e
    ST_PID=
    if ((rc == 0)); then
        pass "schemathesis run: no failures and no errors on $what"
    elif ((rc == 124 || rc == 137)); then
        fail "schemathesis run finishes within $RUN_SECONDS s" "timed out (exit $rc)"
    else
        fail "schemathesis run: no failures and no errors on $what" "exit $rc; the report above lists each failure with a curl command that reproduces it"
    fi
}

check_node_runs() {
    if kill -0 "$SERVER_PID" 2>/dev/null; then
        pass "the node still runs after the schemathesis run"
    else
        fail "the node still runs after the schemathesis run" "$(tail -n 20 "$W/node.log")"
    fi
}

# check_node_stopped: after stop_server, the node exited 0; on any failure so far, the log's end.
check_node_stopped() {
    if [[ $STOP_RC == 0 ]]; then
        pass "the node stops with exit 0 on SIGTERM"
    else
        fail "the node stops with exit 0 on SIGTERM" "exit: $STOP_RC (killed: still running $STOP_SECONDS s after SIGTERM)"
    fi
    if ((FAILED > 0)); then
        echo "node log (last lines):"
        tail -n 15 "$W/node.log" | sed 's/^/      /'
    fi
}
