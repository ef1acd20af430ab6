#!/usr/bin/env bash
# A one-node SLURM cluster and a PostgreSQL-backed MLflow server, for tests/cluster.
#
#   scripts/cluster.sh up     install what is missing (root), start everything, print env.sh
#   scripts/cluster.sh env    print the variables to export (source "$CLUSTER_DIR/env.sh")
#   scripts/cluster.sh down   stop everything; no process, pid or lock file left behind
#
# Everything lives in one folder, $CLUSTER_DIR (default: .cluster in the checkout): slurm.conf
# and SLURM's state, spool and logs; munged's key, socket and log; SLURM's accounting (slurmdbd on
# a MariaDB of its own: submitit learns from `sacct` that a job was cancelled or died); a
# PostgreSQL of its own; the MLflow server's log and artifacts. Every server listens on 127.0.0.1
# only, on a free port chosen once (settings.env); unix sockets stay in the folder.
# `up` is idempotent: run again, it starts only what is not running, on the same ports.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${CLUSTER_DIR:-$ROOT/.cluster}
VENV=${VENV:-.venv}
[[ $VENV = /* ]] || VENV=$ROOT/$VENV
PY=$VENV/bin/python
HOST=$(hostname -s)
MLFLOW_WORKERS=${MLFLOW_WORKERS:-2}
export PATH=$PATH:/usr/sbin:/sbin
export SLURM_CONF=$STATE/slurm.conf
PG_USER=postgres

say() { echo "cluster.sh: $*" >&2; }
die() { say "$*"; exit 1; }

ours() {  # ours PID: the process was started from $STATE: its command line or its environment
  local info   # names it (slurmdbd takes no options: its SLURM_CONF does)
  info=$(cat "/proc/$1/cmdline" "/proc/$1/environ" 2>/dev/null | tr '\0' '\n')
  [[ $info == *"$STATE/"* ]]
}

alive() {  # alive PIDFILE: the process it names runs, and is ours
  local pid
  [[ -s $1 ]] && pid=$(cat "$1") && kill -0 "$pid" 2>/dev/null && ours "$pid"
}

wait_until() {  # wait_until SECONDS WHAT COMMAND...: poll COMMAND until it succeeds
  local deadline=$((SECONDS + $1)) what=$2
  shift 2
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "timed out waiting for $what"
    sleep 0.5
  done
}

free_port() {
  "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

port_taken() {
  "$PY" -c 'import socket, sys; s = socket.socket()
sys.exit(s.connect_ex(("127.0.0.1", int(sys.argv[1]))) != 0)' "$1"
}

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

as_pg() {  # PostgreSQL refuses to run as root: its files and processes belong to postgres
  if ((EUID == 0)); then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

# -- installing ----------------------------------------------------------------------------------
install_missing() {
  local pkgs=() need
  for need in slurmctld:slurm-wlm slurmd:slurm-wlm sbatch:slurm-wlm slurmdbd:slurmdbd \
    munged:munge mariadbd:mariadb-server-core my_print_defaults:mariadb-client-core; do
    command -v "${need%%:*}" >/dev/null || [[ " ${pkgs[*]} " == *" ${need#*:} "* ]] \
      || pkgs+=("${need#*:}")
  done
  [[ -n $(pg_bin) ]] || pkgs+=(postgresql)
  if ((${#pkgs[@]})); then
    ((EUID == 0)) || die "${pkgs[*]} missing and not root: run as root, or apt-get install ${pkgs[*]}"
    say "installing ${pkgs[*]}"
    [[ $(apt-cache policy "${pkgs[@]}") != *"Candidate: (none)"* ]] || apt-get update -qq
    local install=(apt-get install -y -qq --no-install-recommends "${pkgs[@]}")
    DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null; }
  fi
  [[ -x $PY ]] || die "no $PY: run make install first"
  # the driver SQLAlchemy uses for postgresql:// (psycopg 3 from SQLAlchemy 2.1, psycopg2 before)
  local driver
  driver=$("$PY" -c 'from sqlalchemy.dialects import postgresql; print(postgresql.dialect.driver)')
  if ! "$PY" -c "import $driver" 2>/dev/null; then
    [[ $driver == psycopg ]] && driver='psycopg[binary]' || driver=$driver-binary
    say "installing $driver into $VENV"
    "$PY" -m pip install --quiet "$driver" 2>&1 | grep -v '^WARNING: Location' >&2 || true
    "$PY" -c 'import sqlalchemy; sqlalchemy.create_engine("postgresql://").dialect.import_dbapi()' \
      || die "no PostgreSQL driver for SQLAlchemy in $VENV"
  fi
}

# -- ports and secrets, chosen once ----------------------------------------------------------------
load_settings() {
  mkdir -p "$STATE"
  local file=$STATE/settings.env
  if [[ ! -s $file ]]; then
    {
      echo "PG_PORT=$(free_port)"
      echo "MLFLOW_PORT=$(free_port)"
      echo "SLURMCTLD_PORT=$(free_port)"
      echo "SLURMD_PORT=$(free_port)"
      echo "SLURMDBD_PORT=$(free_port)"
      echo "DB_PORT=$(free_port)"
      echo "DB_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_hex(12))')"
      echo "PG_PASSWORD=$("$PY" -c 'import secrets; print(secrets.token_hex(12))')"
    } >"$file"
    chmod 600 "$file"
  fi
  # shellcheck disable=SC1090
  source "$file"
  PG_SOCKETS=$STATE/pg/run
  PG_URI=postgresql://mlflow:$PG_PASSWORD@127.0.0.1:$PG_PORT/mlflow
}

repick_port() {  # repick_port NAME: a port of ours taken by someone else while we were down
  local port
  port=$(free_port)
  sed -i "s/^$1=.*/$1=$port/" "$STATE/settings.env"
  say "port ${!1} taken: $1=$port"
  load_settings
}

# -- munge -----------------------------------------------------------------------------------------
MUNGE=$STATE/munge
start_munge() {
  alive "$MUNGE/munged.pid" && return
  mkdir -p "$MUNGE"
  chmod 755 "$MUNGE"  # munged checks: clients reach its socket, only it writes the folder
  if [[ ! -s $MUNGE/munge.key ]]; then
    if [[ -r /etc/munge/munge.key ]]; then
      install -m 600 /etc/munge/munge.key "$MUNGE/munge.key"
    else
      dd if=/dev/urandom of="$MUNGE/munge.key" bs=1024 count=1 status=none
      chmod 600 "$MUNGE/munge.key"
    fi
  fi
  rm -f "$MUNGE/munge.socket" "$MUNGE/munge.socket.lock"
  munged --key-file="$MUNGE/munge.key" --socket="$MUNGE/munge.socket" \
    --pid-file="$MUNGE/munged.pid" --log-file="$MUNGE/munged.log" --seed-file="$MUNGE/munged.seed"
  wait_until 20 munged munge --socket="$MUNGE/munge.socket" -n
}

# -- SLURM -----------------------------------------------------------------------------------------
SLURM=$STATE/slurm
write_slurm_conf() {
  local mem_mb
  mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  mkdir -p "$SLURM/state" "$SLURM/spool"
  cat >"$SLURM_CONF.new" <<EOF
# Written by scripts/cluster.sh: a one-node cluster, its state in $STATE.
ClusterName=alresearch
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$SLURMCTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket
CredType=cred/munge
StateSaveLocation=$SLURM/state
SlurmdSpoolDir=$SLURM/spool
SlurmctldPidFile=$SLURM/slurmctld.pid
SlurmdPidFile=$SLURM/slurmd.pid
SlurmctldLogFile=$SLURM/slurmctld.log
SlurmdLogFile=$SLURM/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$SLURMDBD_PORT
AccountingStoragePass=$MUNGE/munge.socket
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=10
MinJobAge=600
MailProg=/bin/true
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  if cmp -s "$SLURM_CONF.new" "$SLURM_CONF"; then rm "$SLURM_CONF.new"; else mv "$SLURM_CONF.new" "$SLURM_CONF"; fi
}

# -- SLURM's accounting: slurmdbd on a MariaDB of its own -----------------------------------------
DB=$STATE/mariadb
db_sql() { mariadb --no-defaults -S "$DB/mysqld.sock" -u "$(id -un)" -e "$1"; }

start_mariadb() {
  mkdir -p "$DB"
  if [[ ! -d $DB/data/mysql ]]; then  # its installing user reaches it through the socket only
    mariadb-install-db --no-defaults --datadir="$DB/data" --user="$(id -un)" --skip-test-db \
      >"$DB/install.log" 2>&1 || die "mariadb-install-db failed: see $DB/install.log"
  fi
  if ! alive "$DB/mariadbd.pid"; then
    port_taken "$DB_PORT" && repick_port DB_PORT
    setsid mariadbd --no-defaults --datadir="$DB/data" --user="$(id -un)" --bind-address=127.0.0.1 \
      --port="$DB_PORT" --socket="$DB/mysqld.sock" --pid-file="$DB/mariadbd.pid" \
      --log-error="$DB/mariadbd.log" --skip-name-resolve --innodb-buffer-pool-size=128M \
      --innodb-lock-wait-timeout=900 \
      </dev/null >/dev/null 2>&1 &
  fi
  wait_until 60 mariadbd db_sql "SELECT 1"
  db_sql "CREATE USER IF NOT EXISTS slurm@'127.0.0.1' IDENTIFIED BY '$DB_PASSWORD';
          GRANT ALL ON slurm_acct_db.* TO slurm@'127.0.0.1'"
}

start_slurmdbd() {
  if ! alive "$SLURM/slurmdbd.pid"; then
    port_taken "$SLURMDBD_PORT" && repick_port SLURMDBD_PORT
    mkdir -p "$SLURM"
    (umask 077 && cat >"$STATE/slurmdbd.conf" <<EOF
# Written by scripts/cluster.sh (beside slurm.conf, where slurmdbd looks for it).
AuthType=auth/munge
AuthInfo=socket=$MUNGE/munge.socket
DbdHost=$HOST
DbdAddr=127.0.0.1
DbdPort=$SLURMDBD_PORT
SlurmUser=$(id -un)
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
PidFile=$SLURM/slurmdbd.pid
LogFile=$SLURM/slurmdbd.log
EOF
    )
    write_slurm_conf  # sacctmgr reads AccountingStorage* from it
    slurmdbd
  fi
  wait_until 60 slurmdbd sacctmgr -n list cluster
  [[ -n $(sacctmgr -n list cluster format=cluster alresearch) ]] \
    || sacctmgr -i add cluster alresearch >/dev/null
}

node_state() { sinfo -h -N -n "$HOST" -o %T 2>/dev/null; }

start_slurm() {
  if ! alive "$SLURM/slurmctld.pid"; then
    port_taken "$SLURMCTLD_PORT" && repick_port SLURMCTLD_PORT
    port_taken "$SLURMD_PORT" && ! alive "$SLURM/slurmd.pid" && repick_port SLURMD_PORT
    write_slurm_conf
    slurmctld -f "$SLURM_CONF"
  fi
  alive "$SLURM/slurmd.pid" || slurmd -f "$SLURM_CONF"
  wait_until 60 "slurmctld to answer" scontrol ping
  local deadline=$((SECONDS + 60)) state
  while state=$(node_state); [[ $state != idle* && $state != mixed* && $state != allocated* ]]; do
    if [[ $state == drain* || $state == down* ]]; then
      scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
    fi
    ((SECONDS < deadline)) || die "node $HOST is '$state', not idle: see $SLURM/slurmd.log"
    sleep 0.5
  done
  timeout 60 srun -N1 -n1 -t 1 --mem=100 true || die "srun true failed: see $SLURM/slurmd.log"
}

# -- PostgreSQL ------------------------------------------------------------------------------------
PG=$STATE/pg
pg_running() { [[ -d $PG/data ]] && as_pg "$(pg_bin)/pg_ctl" status -D "$PG/data" >/dev/null 2>&1; }

psql_pg() { as_pg "$(pg_bin)/psql" -X -q -h "$PG_SOCKETS" -p "$PG_PORT" -U postgres -d postgres "$@"; }

start_postgres() {
  local bin
  bin=$(pg_bin)
  mkdir -p "$PG/run"
  if ((EUID == 0)); then
    chown -R "$PG_USER:" "$PG"
    runuser -u "$PG_USER" -- test -x "$PG" || die "user $PG_USER cannot reach $PG: put CLUSTER_DIR where it can"
  fi
  chmod 700 "$PG"
  if [[ ! -s $PG/data/PG_VERSION ]]; then
    as_pg "$bin/initdb" -D "$PG/data" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 >"$PG/initdb.log"
  fi
  if ! pg_running; then
    port_taken "$PG_PORT" && repick_port PG_PORT
    as_pg "$bin/pg_ctl" start -w -t 60 -D "$PG/data" -l "$PG/postgres.log" \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCKETS -c max_connections=200" >/dev/null
  fi
  if [[ -z $(psql_pg -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'mlflow'") ]]; then
    psql_pg -c "CREATE ROLE mlflow LOGIN PASSWORD '$PG_PASSWORD'"
  fi
  if [[ -z $(psql_pg -tAc "SELECT 1 FROM pg_database WHERE datname = 'mlflow'") ]]; then
    psql_pg -c "CREATE DATABASE mlflow OWNER mlflow"
  fi
}

# -- MLflow server ---------------------------------------------------------------------------------
SERVER=$STATE/mlflow
healthy() { "$PY" -c 'import sys, urllib.request
sys.exit(urllib.request.urlopen(sys.argv[1] + "/health", timeout=2).status != 200)' "$1"; }

start_mlflow() {
  local uri
  mkdir -p "$SERVER" "$STATE/artifacts"
  if ! alive "$SERVER/server.pid"; then
    port_taken "$MLFLOW_PORT" && repick_port MLFLOW_PORT
    # no job-execution workers (MLflow 3's huey consumers, ~2 GB): runs and artifacts only
    MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$PY" -m mlflow server --host 127.0.0.1 \
      --port "$MLFLOW_PORT" --workers "$MLFLOW_WORKERS" --backend-store-uri "$PG_URI" \
      --artifacts-destination "$STATE/artifacts" >"$SERVER/server.log" 2>&1 </dev/null &
    echo $! >"$SERVER/server.pid"
  fi
  uri=http://127.0.0.1:$MLFLOW_PORT
  local deadline=$((SECONDS + 180))
  until healthy "$uri" 2>/dev/null; do
    alive "$SERVER/server.pid" || die "mlflow server exited: $(tail -n 5 "$SERVER/server.log")"
    ((SECONDS < deadline)) || die "mlflow server not healthy after 180 s: see $SERVER/server.log"
    sleep 0.5
  done
}

write_env() {
  cat >"$STATE/env.sh" <<EOF
export SLURM_CONF=$SLURM_CONF
export MLFLOW_TRACKING_URI=http://127.0.0.1:$MLFLOW_PORT
export AL_RESEARCH_PG_URI=$PG_URI
export AL_RESEARCH_CLUSTER=1
export AL_RESEARCH_CLUSTER_DIR=$STATE
EOF
  chmod 600 "$STATE/env.sh"
}

# -- stopping --------------------------------------------------------------------------------------
stop() {  # stop PIDFILE...: TERM each process that is ours (the server: its whole process
  local file target targets=() deadline=$((SECONDS + 20))  # group) at once, KILL after 20 s
  for file in "$@"; do
    alive "$file" || continue
    target=$(cat "$file")
    [[ $file == "$SERVER/server.pid" ]] && target=-$target
    targets+=("$target")
    kill -TERM -- "$target" 2>/dev/null || true
  done
  for target in "${targets[@]}"; do
    while kill -0 -- "$target" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -KILL -- "$target" 2>/dev/null || true
    while kill -0 -- "$target" 2>/dev/null; do sleep 0.2; done
  done
  rm -f "$@"
}

down() {
  [[ -d $STATE ]] || { say "nothing to stop: no $STATE"; return; }
  if alive "$SLURM/slurmctld.pid"; then  # jobs first: their slurmstepd outlive slurmd
    squeue -h -o %A 2>/dev/null | sort -u | xargs -r scancel 2>/dev/null || true
    local deadline=$((SECONDS + 30))
    while [[ -n $(squeue -h -o %A 2>/dev/null) ]] && ((SECONDS < deadline)); do sleep 0.5; done
  fi
  local server
  server=$(cat "$SERVER/server.pid" 2>/dev/null || true)
  stop "$SERVER/server.pid" "$SLURM/slurmd.pid" "$SLURM/slurmctld.pid" "$SLURM/slurmdbd.pid"
  if pg_running; then as_pg "$(pg_bin)/pg_ctl" stop -m fast -w -D "$PG/data" >/dev/null; fi
  stop "$DB/mariadbd.pid" "$MUNGE/munged.pid"  # last: the others talk to them as they stop
  rm -f "$DB/mysqld.sock" "$DB/mysqld.sock.lock" "$MUNGE/munge.socket" "$MUNGE/munge.socket.lock"
  local pid left=()  # the daemons, their job steps and the server's process group
  for pid in $(ps -e -o pid=,comm= | awk '$2 ~ /^(munged|mariadbd|slurm.*|postgres)$/ {print $1}') \
    ${server:+$(pgrep -g "$server")}; do
    ! ours "$pid" || left+=("$(ps -o pid=,args= -p "$pid")")
  done
  ((${#left[@]} == 0)) || die "still running from $STATE: ${left[*]}"
  say "down: nothing runs from $STATE"
}

up() {
  install_missing
  load_settings
  start_munge
  start_mariadb
  start_slurmdbd
  start_slurm
  start_postgres
  start_mlflow
  write_env
  say "up: SLURM node $HOST idle (accounting on), PostgreSQL on 127.0.0.1:$PG_PORT," \
    "MLflow server on 127.0.0.1:$MLFLOW_PORT"
  cat "$STATE/env.sh"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  env) [[ -s $STATE/env.sh ]] || die "no $STATE/env.sh: run make cluster-up"; cat "$STATE/env.sh" ;;
  *) die "usage: scripts/cluster.sh up|down|env" ;;
esac
