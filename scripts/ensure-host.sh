#!/usr/bin/env bash
# Makes this machine able to run sandboxed tasks: Docker engine with gVisor (runsc) registered
# as a runtime, and Symbi's base images built locally. Idempotent; does nothing that is done.
#
# What it changes on the machine (also in README.md):
#   - installs Debian's docker.io, runsc, busybox-static and prometheus when missing (apt-get;
#     prometheus is only run by the end-to-end tests, never as a system service by us);
#   - writes /etc/docker/daemon.json when its runsc runtime is missing or lacks --host-uds=open
#     (the old file is kept as daemon.json.symbi-backup): runsc with --network=none and
#     --host-uds=open (so a task can reach the one Unix socket mounted into it: its channel),
#     and "bridge": "none" so containers never get a network interface;
#   - starts dockerd in the background when it is not running (log: /var/log/symbi-dockerd.log);
#   - builds the images symbi/busybox and symbi/python with `symbi sandbox build-images`.
#
# SYMBI_SKIP_HOST=1 skips all of it (the sandbox tests then fail with a clear message).
set -euo pipefail

log() { printf 'symbi host: %s\n' "$*" >&2; }

if [ "${SYMBI_SKIP_HOST:-0}" = "1" ]; then
  log "SYMBI_SKIP_HOST=1: not touching Docker"
  exit 0
fi

as_root() {
  if [ "$(id -u)" = "0" ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; exit 1
  fi
}

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v runsc >/dev/null 2>&1 || [ -x /usr/bin/runsc ] || missing+=(runsc)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)   # static: copied into image rootfs
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)          # scrapes the services in e2e tests
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} (apt-get)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

daemon_json=/etc/docker/daemon.json
runsc_path=$(command -v runsc || echo /usr/bin/runsc)
if ! { [ -f "$daemon_json" ] && grep -q '"runsc"' "$daemon_json" && grep -q 'host-uds=open' "$daemon_json"; }; then
  log "registering gVisor (runsc) as a Docker runtime in $daemon_json"
  as_root mkdir -p /etc/docker
  [ -f "$daemon_json" ] && as_root cp "$daemon_json" "$daemon_json.symbi-backup"
  as_root tee "$daemon_json" >/dev/null <<JSON
{
  "bridge": "none",
  "runtimes": {"runsc": {"path": "$runsc_path", "runtimeArgs": ["--network=none", "--host-uds=open"]}}
}
JSON
  if pgrep -x dockerd >/dev/null; then as_root pkill -HUP -x dockerd; sleep 1; fi
fi

docker_ready() { docker info >/dev/null 2>&1; }
if ! docker_ready; then
  if ! pgrep -x dockerd >/dev/null; then
    log "starting dockerd (log: /var/log/symbi-dockerd.log)"
    as_root bash -c 'nohup dockerd >/var/log/symbi-dockerd.log 2>&1 &'
  fi
  for _ in $(seq 1 150); do docker_ready && break; sleep 0.2; done
  if ! docker_ready; then
    log "dockerd did not become ready in 30 s; last lines of its log:"
    tail -n 20 /var/log/symbi-dockerd.log >&2 || true
    exit 1
  fi
fi
if ! docker info --format '{{json .Runtimes}}' | grep -q runsc; then
  log "dockerd is running without the runsc runtime; reloading its configuration"
  as_root pkill -HUP -x dockerd
  for _ in $(seq 1 50); do docker info --format '{{json .Runtimes}}' | grep -q runsc && break; sleep 0.2; done
fi

# Base images (built once, reused). The sandbox package owns the recipe.
here=$(cd "$(dirname "$0")/.." && pwd)
if [ -x "$here/.venv/bin/symbi" ] && "$here/.venv/bin/symbi" sandbox --help >/dev/null 2>&1; then
  "$here/.venv/bin/symbi" sandbox build-images --if-missing
fi
