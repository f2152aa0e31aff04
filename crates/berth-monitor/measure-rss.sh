#!/usr/bin/env bash
# measure-rss.sh [MONITOR_BINARY]
#
# Idle VmRSS of a berth-monitor supervising `sleep 100` under runc (as root): builds a busybox
# bundle in a temporary directory, runs the monitor, starts the container, reads
# /proc/PID/status of the monitor, then cleans up.
set -euo pipefail
mon=${1:-${CARGO_TARGET_DIR:-target}/release/berth-monitor}
runc=$(command -v runc || echo /usr/sbin/runc)
t=$(mktemp -d /tmp/berth-mon-rss.XXXXXX)
id=rss-$$
cleanup() { "$runc" --root "$t/root" delete -f "$id" >/dev/null 2>&1 || true; rm -rf "$t"; }
trap cleanup EXIT
mkdir -p "$t/b/rootfs/bin" "$t/run"
cp /bin/busybox "$t/b/rootfs/bin/"
ln -s busybox "$t/b/rootfs/bin/sleep"
(cd "$t/b" && "$runc" spec)
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sleep", "100"/' "$t/b/config.json"
"$mon" --id "$id" --runtime "$runc" --runtime-arg --root --runtime-arg "$t/root" \
    --bundle "$t/b" --pid-file "$t/run/pid" --log-path "$t/run/log" --exit-file "$t/run/exit" \
    --attach-socket "$t/run/attach" 3>"$t/run/sync" </dev/null >/dev/null 2>&1 &
mpid=$!
for _ in $(seq 100); do [ -s "$t/run/sync" ] && break; sleep 0.05; done
cat "$t/run/sync"
"$runc" --root "$t/root" start "$id"
sleep 0.5
grep -E 'VmRSS|RssAnon|RssFile|VmHWM' "/proc/$mpid/status"
cpid=$(cat "$t/run/pid")
echo "container (sleep): $(grep VmRSS /proc/$cpid/status)"
kill -9 "$cpid"
wait "$mpid" || true
cat "$t/run/exit"; echo
