#!/bin/sh
# imgedge: keepalived track script (vrrp_script chk_imgedge in keepalived.conf).
#
# Healthy (exit 0) only when BOTH hold on this machine:
#   1. nginx answers HTTP at all on the load-balancer port: any status code (a 403, 404 or 502
#      still proves nginx is up and accepting); a refused or timed-out connection is a failure;
#   2. the local edge is ready: GET /_edge/ready answers 200 (cache folder writable, Redis
#      answering), or 503 with only Redis failing ("cacheWritable":true in its body). Redis is
#      shared by every node, so its outage is the same on both machines: moving the virtual IP
#      would not help, and failing the check would put both machines in FAULT, leaving no one
#      holding the virtual IP while the edges can still serve every image.
# keepalived runs it every `interval` seconds; `fall` failures in a row put the instance in FAULT,
# which hands the virtual IP to the peer at once; `rise` successes bring it back.
#
# Planned restart of the local edge (docs/OPERATIONS.md, "Upgrading"): while the maintenance file
# exists and is less than 30 minutes old, only nginx is checked, so restarting the edge does not
# move the virtual IP (nginx sends the requests to the other nodes meanwhile). An older file is
# ignored, so a forgotten one cannot switch the edge check off for good.
#
# Usage: check-edge.sh [--nginx URL] [--ready URL] [--timeout SECONDS] [--maintenance-file FILE]
#   --nginx             URL nginx must answer      (default http://127.0.0.1:80/_edge/health)
#   --ready             the edge's readiness URL   (default http://127.0.0.1:8080/_edge/ready)
#   --timeout           curl limit per request     (default 0.8; keep 2 x this below the
#                       vrrp_script timeout)
#   --maintenance-file  (default /run/imgedge-maintenance)
# Exit codes: 0 healthy, 1 nginx does not answer, 2 the edge is not ready, 3 bad usage / no curl.
# The reason of a failure goes to stderr (keepalived logs script output with -D / log_detail).

nginx_url=http://127.0.0.1:80/_edge/health
ready_url=http://127.0.0.1:8080/_edge/ready
timeout=0.8
maintenance_file=/run/imgedge-maintenance

while [ $# -gt 0 ]; do
  case "$1" in
    --nginx|--ready|--timeout|--maintenance-file)
      [ $# -ge 2 ] || { echo "check-edge: $1 needs a value" >&2; exit 3; }
      case "$1" in
        --nginx) nginx_url=$2 ;;
        --ready) ready_url=$2 ;;
        --timeout) timeout=$2 ;;
        --maintenance-file) maintenance_file=$2 ;;
      esac
      shift 2 ;;
    *) echo "check-edge: unknown argument $1" >&2; exit 3 ;;
  esac
done

command -v curl >/dev/null 2>&1 || { echo "check-edge: curl is not installed" >&2; exit 3; }

# Prints the body (at most 4 KiB), then the status code on a line of its own ("000" when nothing
# answered). No proxy from the environment: these are local addresses.
fetch() {
  curl -s -w '\n%{http_code}' --noproxy '*' --max-filesize 4096 \
    --connect-timeout "$timeout" --max-time "$timeout" "$1" 2>/dev/null
}

code=$(fetch "$nginx_url" | tail -n 1)
case "$code" in
  ''|000) echo "check-edge: nginx does not answer at $nginx_url" >&2; exit 1 ;;
esac

if [ -f "$maintenance_file" ]; then
  if [ -n "$(find "$maintenance_file" -mmin -30 2>/dev/null)" ]; then
    echo "check-edge: $maintenance_file exists: the local edge is not checked" >&2
    exit 0
  fi
  echo "check-edge: $maintenance_file is older than 30 minutes: ignored" >&2
fi

answer=$(fetch "$ready_url")
code=$(printf '%s\n' "$answer" | tail -n 1)
body=$(printf '%s\n' "$answer" | sed '$d')
[ "$code" = 200 ] && exit 0
case "$code:$body" in
  503:*'"cacheWritable":true'*)
    echo "check-edge: the edge reports its shared store (Redis) down: not a reason to move the VIP" >&2
    exit 0 ;;
esac
echo "check-edge: edge not ready at $ready_url (HTTP ${code:-none}) $body" >&2
exit 2
