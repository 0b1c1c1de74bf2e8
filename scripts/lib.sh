# Shell helpers shared by scripts/install-deps, scripts/test, scripts/demo and the other scripts. Source it; it
# defines functions and the variables `repo_root` and `tools_dir`, and changes no shell options of its caller.

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Where scripts/install-deps puts what it builds (bin/, env, the logs): .tools, or SIGNPATH_TOOLS_DIR (a relative
# path is taken from the workspace root), for example to time an install from nothing beside an existing one.
tools_dir="${SIGNPATH_TOOLS_DIR:-.tools}"
case "$tools_dir" in /*) ;; *) tools_dir="$repo_root/$tools_dir" ;; esac

# The directory cargo builds in: $CARGO_TARGET_DIR (relative to the workspace root) or target. Every script takes
# it from here, so none disagrees with cargo about where a build went.
target_dir() {
    local target="${CARGO_TARGET_DIR:-$repo_root/target}"
    case "$target" in /*) ;; *) target="$repo_root/$target" ;; esac
    printf '%s\n' "$target"
}

# The directory cargo writes release builds to: $(target_dir)/release.
release_dir() { printf '%s/release\n' "$(target_dir)"; }

# A path for messages: relative to the workspace root when it is inside it.
shown_path() { printf '%s\n' "${1#"$repo_root"/}"; }

# The name of the script that sourced us, for message prefixes ("install-deps: ...").
_lib_caller="$(basename "${BASH_SOURCE[1]:-${0}}")"

log() { printf '%s: %s\n' "$_lib_caller" "$*" >&2; }
die() { printf '%s: error: %s\n' "$_lib_caller" "$*" >&2; exit 1; }

# Prints a line that stands out in a long CI log.
step() { printf '\n==> %s\n' "$*" >&2; }

# Prints seconds as "1m05s".
duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# Prints a TCP port on 127.0.0.1 that nothing listens on right now, for a server that cannot bind port 0 and say
# which port it got. It is below Linux's ephemeral range (32768 and up), where the system puts no outgoing
# connection or port-0 bind; another pick like this one may still take it first, so callers that can retry should.
free_port() {
    local port tries=0
    while [ $tries -lt 100 ]; do
        port=$((20000 + RANDOM % 12000))
        # A connection that fails means nothing listens there.
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            printf '%s\n' "$port"
            return 0
        fi
        tries=$((tries + 1))
    done
    die "found no free TCP port on 127.0.0.1"
}

# wait_for_line FILE PATTERN SECONDS PID: waits until FILE has a line matching the extended regex PATTERN.
# Fails early when process PID exits first, and after SECONDS.
wait_for_line() {
    local file="$1" pattern="$2" seconds="$3" pid="$4" waited=0
    while ! grep -Eq -- "$pattern" "$file" 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ $waited -lt $((seconds * 10)) ] || return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

# wait_for_http URL SECONDS PID: waits until URL answers any HTTP status; fails when PID exits or after SECONDS.
wait_for_http() {
    local url="$1" seconds="$2" pid="$3" waited=0
    until curl -s -o /dev/null --max-time 2 "$url"; do
        kill -0 "$pid" 2>/dev/null || return 1
        [ $waited -lt $((seconds * 10)) ] || return 1
        sleep 0.1
        waited=$((waited + 1))
    done
}

# Runs as root directly, otherwise through sudo without a password prompt (CI has no terminal).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        die "need root to run: $* (no sudo found)"
    fi
}

# Cargo flags shared by test and demo: in CI the committed Cargo.lock must be used as it is.
cargo_lock_flags() {
    if is_ci; then printf '%s\n' --locked; fi
}

is_ci() {
    case "${CI:-}" in "" | 0 | false | FALSE | False) return 1 ;; *) return 0 ;; esac
}
