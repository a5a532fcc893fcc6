#!/bin/sh
# imgedge: keepalived notify script (`notify` in keepalived.conf). keepalived appends four
# arguments to the ones configured:  TYPE NAME STATE PRIORITY
#   TYPE      INSTANCE | GROUP
#   NAME      the vrrp_instance name (IMGEDGE)
#   STATE     MASTER | BACKUP | FAULT | STOP | DELETED
#   PRIORITY  the instance's priority
#
# It logs the change through logger (tag keepalived-imgedge, so `journalctl -t keepalived-imgedge`
# lists every transition), writes "STATE PRIORITY EPOCH-SECONDS" to a state file that monitoring
# can read, and runs every executable file in the hook folder with the same four arguments (e.g.
# move a cloud provider's floating IP to this machine on MASTER). A failing hook is logged, never
# fatal. Options, given before keepalived's arguments in the configured command:
#   --state-file FILE  (default /run/keepalived-imgedge.state)
#   --hook-dir DIR     (default /etc/keepalived/notify.d; a missing folder means no hooks)

state_file=/run/keepalived-imgedge.state
hook_dir=/etc/keepalived/notify.d

while [ $# -gt 4 ]; do
  case "$1" in
    --state-file) state_file=$2; shift 2 ;;
    --hook-dir) hook_dir=$2; shift 2 ;;
    *) break ;;
  esac
done

if [ $# -ne 4 ]; then
  echo "notify: expected TYPE NAME STATE PRIORITY, got: $*" >&2
  exit 2
fi
type=$1 name=$2 state=$3 priority=$4

log() {
  # logger needs a syslog socket (journald provides /dev/log); without one the line goes to stderr.
  logger -t keepalived-imgedge -p "daemon.$1" -- "$2" 2>/dev/null || echo "keepalived-imgedge: $2" >&2
}

level=notice
[ "$state" = FAULT ] && level=warning
log "$level" "$type $name is now $state (priority $priority)"

tmp="$state_file.tmp.$$"
if printf '%s %s %s\n' "$state" "$priority" "$(date +%s)" >"$tmp" 2>/dev/null && mv -f "$tmp" "$state_file"; then
  :
else
  rm -f "$tmp"
  log warning "cannot write the state file $state_file"
fi

if [ -d "$hook_dir" ]; then
  for hook in "$hook_dir"/*; do
    [ -f "$hook" ] && [ -x "$hook" ] || continue
    "$hook" "$type" "$name" "$state" "$priority"
    rc=$?
    [ "$rc" -eq 0 ] || log err "hook $hook failed for $state (exit $rc)"
  done
fi
exit 0
