#!/usr/bin/env bash
# Makes sure the real services the test suites talk to are up: PostgreSQL on 127.0.0.1:5432
# (trust auth, database `test`) and Mosquitto on 127.0.0.1:1883. Starts them if they are down
# and, as root on a Debian machine that lacks them, installs them first. Sourced by scripts/test.
set -euo pipefail

log() { printf '[services] %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  local port=$1 name=$2
  for _ in $(seq 1 100); do
    port_open "$port" && return 0
    sleep 0.2
  done
  log "$name did not open 127.0.0.1:$port"
  return 1
}

apt_install() {
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "cannot install $* here (needs root and apt-get); install it and run again"
    return 1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ensure_postgres() {
  if ! port_open 5432; then
    command -v pg_ctlcluster >/dev/null || apt_install postgresql
    local version
    version=$(ls /etc/postgresql | sort -V | tail -n 1)
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
    wait_port 5432 PostgreSQL
  fi
  # A machine where we installed PostgreSQL ourselves has neither the `root` role nor trust
  # auth on loopback; the suites expect both, as the development machines have them.
  if ! psql -h 127.0.0.1 -d test -Atc 'select 1' >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
    log "preparing role root and database test"
    su postgres -c "psql -Atc \"select 1 from pg_roles where rolname='root'\"" | grep -q 1 ||
      su postgres -c "createuser --superuser root"
    su postgres -c "psql -Atc \"select 1 from pg_database where datname='test'\"" | grep -q 1 ||
      su postgres -c "createdb -O root test"
    local hba
    hba=$(su postgres -c "psql -Atc 'show hba_file'")
    if ! grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
      sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
      su postgres -c "psql -Atc 'select pg_reload_conf()'" >/dev/null
    fi
  fi
  psql -h 127.0.0.1 -d test -Atc 'select 1' >/dev/null
}

ensure_mosquitto() {
  port_open 1883 && return 0
  command -v mosquitto >/dev/null || apt_install mosquitto mosquitto-clients
  log "starting Mosquitto"
  if [ -f /etc/mosquitto/mosquitto.conf ]; then
    mosquitto -d -c /etc/mosquitto/mosquitto.conf
  else
    mosquitto -d -p 1883
  fi
  wait_port 1883 Mosquitto
}

ensure_postgres
ensure_mosquitto
log "PostgreSQL on 127.0.0.1:5432 and Mosquitto on 127.0.0.1:1883 are up"
