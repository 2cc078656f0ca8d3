# Site twins, sourced by tests/cluster/slurm-cluster (which defines say, die, wait_for, pid_alive,
# show_log, stop_pidfile, start_munge, start_mariadb, start_slurmdbd, LOGDIR and RUNDIR).
#
# A site twin is a second slurmctld configured like a EuroHPC site from the site's documentation
# (tests/cluster/twins/SITE.conf), with no slurmd: its nodes are CLOUD nodes (powered down but
# available), so `SLURM_CONF=/etc/slurm-twins/SITE/slurm.conf sbatch --test-only ...` answers as
# the site's controller would and nothing is queued or run. Each twin has its own ClusterName
# (twin-SITE), ports (18200 + 2 x its index in TWIN_SITES) and state folder; it shares munge with
# the test cluster, and, where the site limits jobs by QoS (tests/cluster/twins/SITE.qos), the
# test cluster's slurmdbd.

TWIN_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TWIN_SITES=(lumi-g leonardo-booster jupiter-booster mn5-acc meluxina-gpu karolina-gpu)
TWIN_CONF_ROOT=/etc/slurm-twins
TWIN_STATE=/var/spool/aifsdk-twins
TWIN_PORT_BASE=18200

twin_index() {
  local i
  for i in "${!TWIN_SITES[@]}"; do [ "${TWIN_SITES[$i]}" = "$1" ] && { echo "$i"; return 0; }; done
  die "no twin for site '$1' (twins: ${TWIN_SITES[*]})"
}

twin_conf_path() { echo "$TWIN_CONF_ROOT/$1/slurm.conf"; }
twin_pidfile() { echo "$RUNDIR/twin-$1.pid"; }

# The twin's slurm.conf: this machine's keys (ports, files, CLOUD power saving, EnforcePartLimits),
# then the site's file, its nodes marked State=CLOUD.
twin_write_conf() {
  local site=$1 idx port conf host accounting
  idx=$(twin_index "$site"); port=$((TWIN_PORT_BASE + 2 * idx))
  conf=$(twin_conf_path "$site"); host=$(hostname)
  [ -f "$TWIN_DIR/$site.conf" ] || die "missing $TWIN_DIR/$site.conf"
  mkdir -p "$(dirname "$conf")" "$TWIN_STATE/$site" "$LOGDIR" "$RUNDIR"
  if [ -f "$TWIN_DIR/$site.qos" ]; then
    accounting="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStorageEnforce=associations,limits,qos"
  else
    accounting="AccountingStorageType=accounting_storage/none"
  fi
  {
    cat <<EOF
# Written by aifsdk tests/cluster/slurm-cluster from tests/cluster/twins/$site.conf: a site twin.
ClusterName=twin-$site
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SelectType=select/cons_tres
EnforcePartLimits=ALL
StateSaveLocation=$TWIN_STATE/$site
SlurmctldPidFile=$(twin_pidfile "$site")
SlurmctldLogFile=$LOGDIR/twin-$site.log
SuspendProgram=/bin/true
ResumeProgram=/bin/true
SuspendTime=600
ResumeTimeout=600
SuspendTimeout=60
ReturnToService=2
MessageTimeout=30
MaxJobCount=100000
SchedulerType=sched/backfill
JobCompType=jobcomp/none
$accounting
EOF
    # CLOUD nodes: powered down but available, never contacted, and their names need no address
    sed -E 's/^(NodeName=[^#]*[^[:space:]#])/\1 State=CLOUD/' "$TWIN_DIR/$site.conf"
  } > "$conf.new"
  if cmp -s "$conf.new" "$conf"; then rm -f "$conf.new"; TWIN_CHANGED=0; else mv "$conf.new" "$conf"; TWIN_CHANGED=1; fi
  chmod 644 "$conf"
}

# QoS and root's association through the test cluster's slurmdbd. QoS are global in a slurmdbd;
# the test cluster enforces associations only, so the twins' QoS limits never apply to its jobs.
# SITE.qos lines: `account NAME` (an account root may submit with), `qos NAME KEY=VALUE...`
# (sacctmgr settings of that QoS, granted to root), `restricted NAME KEY=VALUE...` (a QoS the site
# grants only by arrangement: created, not granted), `default NAME` (the association's default).
twin_accounting() {
  local site=$1 cluster="twin-$1" file="$TWIN_DIR/$1.qos" kind name rest qos_list="" default="" accounts=() a
  [ -f "$file" ] || return 0
  start_mariadb; start_slurmdbd
  local stamp="$TWIN_STATE/$site/qos.applied"
  if cmp -s "$file" "$stamp" && sacctmgr -n -P show assoc cluster="$cluster" user=root format=user | grep -qx root; then
    return 0  # already in slurmdbd (sacctmgr calls take about a second each)
  fi
  sacctmgr -n -P show cluster format=cluster | grep -qx "$cluster" || sacctmgr -i add cluster "$cluster" >/dev/null
  while read -r kind name rest; do
    case "$kind" in
      ''|'#'*) continue ;;
      account) accounts+=("$name") ;;
      default) default=$name ;;
      qos|restricted)
        [ "$kind" = restricted ] || qos_list="${qos_list:+$qos_list,}$name"
        sacctmgr -n -P show qos format=name | grep -qx "$name" || sacctmgr -i add qos "$name" >/dev/null
        # shellcheck disable=SC2086  # the settings are separate words
        [ -z "$rest" ] || sacctmgr -i modify qos where name="$name" set $rest >/dev/null || die "$file: sacctmgr refused: qos $name $rest" ;;
      *) die "$file: unknown line '$kind $name $rest'" ;;
    esac
  done < "$file"
  for a in "${accounts[@]}"; do
    sacctmgr -n -P show assoc cluster="$cluster" account="$a" format=account | grep -qix "$a" \
      || sacctmgr -i add account "$a" cluster="$cluster" Description="site twin" Organization=aifsdk >/dev/null
    sacctmgr -n -P show assoc cluster="$cluster" account="$a" user=root format=user | grep -qx root \
      || sacctmgr -i add user root account="$a" cluster="$cluster" >/dev/null
    sacctmgr -i modify user where name=root cluster="$cluster" account="$a" set qos="$qos_list" ${default:+defaultqos="$default"} >/dev/null 2>&1 || true
  done
  cp "$file" "$stamp"
}

twin_up_check() { pid_alive "$(twin_pidfile "$1")" && SLURM_CONF=$(twin_conf_path "$1") scontrol ping 2>/dev/null | grep -q UP; }

cmd_twin_up() {
  local site=$1 conf t0
  need_root
  t0=$(date +%s)
  twin_write_conf "$site"
  conf=$(twin_conf_path "$site")
  start_munge
  twin_accounting "$site"
  if pid_alive "$(twin_pidfile "$site")"; then
    if [ "$TWIN_CHANGED" = 1 ]; then SLURM_CONF=$conf scontrol reconfigure >/dev/null || true; fi
  else
    # -c: a clean start, no saved state (--test-only queues nothing anyway)
    SLURM_CONF=$conf /usr/sbin/slurmctld -c -f "$conf"
  fi
  wait_for 60 "twin $site" twin_up_check "$site" || { show_log "twin $site" "$LOGDIR/twin-$site.log"; die "twin $site did not start"; }
  say "twin $site up in $(( $(date +%s) - t0 )) s: SLURM_CONF=$conf"
}

cmd_twin_down() { need_root; stop_pidfile "twin $1" "$(twin_pidfile "$1")"; say "twin $1 down"; }

cmd_twin_status() {
  if twin_up_check "$1"; then printf '  twin %-18s up    SLURM_CONF=%s\n' "$1" "$(twin_conf_path "$1")"; return 0; fi
  printf '  twin %-18s DOWN\n' "$1"; return 1
}

cmd_twin() {
  local site=${1:?usage: twin SITE [up|down|status|conf]} verb=${2:-up}
  twin_index "$site" >/dev/null
  case "$verb" in
    up) cmd_twin_up "$site" ;;
    down) cmd_twin_down "$site" ;;
    status) cmd_twin_status "$site" ;;
    conf) twin_conf_path "$site" ;;
    *) die "twin $site $verb: use up, down, status or conf" ;;
  esac
}

cmd_twins() {
  local verb=${1:-status} site rc=0
  for site in "${TWIN_SITES[@]}"; do
    [ -f "$TWIN_DIR/$site.conf" ] || { say "twin $site: no $TWIN_DIR/$site.conf yet, skipped"; continue; }
    case "$verb" in
      up) cmd_twin_up "$site" ;;
      down) cmd_twin_down "$site" ;;
      status) cmd_twin_status "$site" || rc=1 ;;
      *) die "twins $verb: use up, down or status" ;;
    esac
  done
  return $rc
}
