# Shared by Tests/CLI/notify.sh and Tests/CLI/notices.sh, sourced after nodes.sh: starting the Python
# SMTP servers and webhook receivers of this folder in the background and learning their ports.
HELPERS=$CLI_DIR/notify
# wait_file FILE: waits (bounded, 30 s) until FILE exists.
wait_file() {
    local deadline=$(($(now_ms) + 30000))
    while [[ ! -s $1 ]] && (($(now_ms) < deadline)); do sleep 0.05; done
    [[ -s $1 ]]
}
# helper NAME SCRIPT ARGS...: a Python helper in the background that writes its port to $W/NAME.port;
# sets HELPER_PORT to it. Call it as a command, never inside $(...): in a subshell, bg's PIDS+= would
# be lost and the EXIT trap would leave the helper running.
helper() {
    local name=$1 script=$2
    shift 2
    bg "$name" python3 "$HELPERS/$script" --port-file "$W/$name.port" "$@"
    wait_file "$W/$name.port" || { fail "$name starts" "$(cat "$W/$name.log")"; finish; }
    HELPER_PORT=$(cat "$W/$name.port")
}
