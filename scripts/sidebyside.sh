#!/usr/bin/env bash
# Side-by-side forwarding cost of Cascade and LiveKit (issue #10): one WHIP publisher of an
# H.264 720p30 ~1.5 Mb/s file, N viewers (Cascade: WHEP; LiveKit: receive-only WHIP with its
# X-LiveKit-ClientInfo header), server pinned to CPU 0, generator (relayctl load) to CPU 1, a
# fresh server process per case, a steady window of $WINDOW, CPU-seconds of the server process
# per million egress packets counted at the viewers. Prints a markdown table on stdout;
# progress and logs go to $OUT.
#
#   LIVEKIT_BIN=/work/livekit-src/livekit-server scripts/sidebyside.sh
#
# Environment: VIEWERS (default "20 100 200"), REPEAT (2), WINDOW (30s), RATE (20/s),
# SERVERS ("cascade livekit"), LIVEKIT_BIN, H264 (made with ffmpeg if missing), OUT.
# Everything listens on 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."

VIEWERS=${VIEWERS:-"20 100 200"}
REPEAT=${REPEAT:-2}
WINDOW=${WINDOW:-30s}
RATE=${RATE:-20/s}
SERVERS=${SERVERS:-"cascade livekit"}
LIVEKIT_BIN=${LIVEKIT_BIN:-/work/livekit-src/livekit-server}
OUT=${OUT:-$(mktemp -d /tmp/sidebyside.XXXXXX)}
H264=${H264:-$OUT/720p30.h264}
HTTP_PORT=${HTTP_PORT:-17980}
UDP_PORT=${UDP_PORT:-17982}
KEY=sidebyside
SECRET=sidebyside-bench-secret-0123456789abcdef

mkdir -p "$OUT" bin
go build -o bin/sfu ./cmd/sfu
go build -o bin/relayctl ./cmd/relayctl
if [ ! -s "$H264" ]; then
	# Noise keeps x264 at its 1.5 Mb/s target (≈ 175 packets/s, the issue's load); plain
	# testsrc encodes to half of it.
	ffmpeg -loglevel error -y -f lavfi -i "testsrc2=size=1280x720:rate=30,noise=alls=8:allf=t" -t 40 \
		-c:v libx264 -preset veryfast -pix_fmt yuv420p -profile:v baseline -b:v 1500k -maxrate 1500k \
		-bufsize 3000k -g 60 -bsf:v h264_mp4toannexb "$H264"
fi
if [[ " $SERVERS " == *" livekit "* ]] && [ ! -x "$LIVEKIT_BIN" ]; then
	echo "sidebyside: no LiveKit binary at $LIVEKIT_BIN (make bench-livekit builds it)" >&2
	exit 2
fi
cat >"$OUT/livekit.yaml" <<YAML
port: $HTTP_PORT
bind_addresses: ["127.0.0.1"]
log_level: info
rtc:
  udp_port: $UDP_PORT
  tcp_port: 0
  use_external_ip: false
  node_ip: 127.0.0.1
  enable_loopback_candidate: true
  ips:
    includes: ["127.0.0.1/32"]
turn:
  enabled: false
keys:
  $KEY: $SECRET
YAML

pid=
stop_server() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}
trap stop_server EXIT INT TERM

start_server() { # server case-name
	case $1 in
	cascade)
		CASCADE_API_KEY=$KEY CASCADE_API_SECRET=$SECRET taskset -c 0 ./bin/sfu --http 127.0.0.1:$HTTP_PORT \
			--udp-port $UDP_PORT --max-participants 1000 --log-level warn >"$OUT/$2.server.log" 2>&1 &
		;;
	livekit)
		taskset -c 0 "$LIVEKIT_BIN" --config "$OUT/livekit.yaml" >"$OUT/$2.server.log" 2>&1 &
		;;
	esac
	pid=$!
	for _ in $(seq 100); do
		curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/" && return 0
		sleep 0.1
	done
	echo "sidebyside: $1 did not start, see $OUT/$2.server.log" >&2
	return 1
}

rows=()
for n in $VIEWERS; do
	for run in $(seq "$REPEAT"); do
		for s in $SERVERS; do
			name="$s-$n-$run"
			start_server "$s" "$name"
			sleep 1
			echo "sidebyside: $name (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
			taskset -c 1 ./bin/relayctl --server "http://127.0.0.1:$HTTP_PORT" load --target "$s" \
				--api-key $KEY --api-secret $SECRET --room bench --h264 "$H264" --fps 30 --viewers "$n" \
				--rate "$RATE" --duration "$WINDOW" --server-pid "$pid" --json >"$OUT/$name.json" 2>"$OUT/$name.progress" || true
			load=$(cut -d' ' -f1 /proc/loadavg)
			stop_server
			rows+=("$(python3 - "$OUT/$name.json" "$s" "$n" "$run" "$load" <<'PY'
import json, sys
path, server, n, run, load = sys.argv[1:]
try:
    r = json.load(open(path)); w = r["steady"]
    print(f"| {server} | {n} | {run} | {r['viewers_connected']}/{r['viewers_requested']} | {w['packets_per_s']:.0f} | "
          f"{100*w['loss']:.3f}% | {100*w['server_cpu']:.1f}% | {w['cpu_s_per_mpkt']:.2f} | {100*w['generator_cpu']:.0f}% | {load} |")
except Exception as e:
    print(f"| {server} | {n} | {run} | failed: {e} | | | | | | {load} |")
PY
)")
		done
	done
done

echo "Side by side, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD), $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), window $WINDOW, LiveKit $("$LIVEKIT_BIN" --version 2>/dev/null | awk '{print $NF}')"
echo
echo "| server | viewers | run | connected | egress pkt/s | loss | server CPU | **CPU-s per M egress pkts** | generator CPU | load avg after |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${rows[@]}"
python3 - "$OUT" $VIEWERS <<'PY'
import glob, json, os, sys, statistics
out, ns = sys.argv[1], sys.argv[2:]
print()
print("| viewers | Cascade CPU-s/Mpkt (median) | LiveKit CPU-s/Mpkt (median) | Cascade / LiveKit |")
print("|---:|---:|---:|---:|")
for n in ns:
    med = {}
    for s in ("cascade", "livekit"):
        v = []
        for p in glob.glob(os.path.join(out, f"{s}-{n}-*.json")):
            try:
                x = json.load(open(p))["steady"]["cpu_s_per_mpkt"]
                if x > 0: v.append(x)
            except Exception:
                pass
        med[s] = statistics.median(v) if v else None
    c, l = med["cascade"], med["livekit"]
    f = lambda x: f"{x:.2f}" if x else "n/a"
    print(f"| {n} | {f(c)} | {f(l)} | {f(c/l) if c and l else 'n/a'} |")
PY
echo
echo "(raw JSON, progress and server logs: $OUT)"
