#!/usr/bin/env bash
# The one command: builds once and runs the whole system.
#
#   scripts/run-all.sh          local mode: devidp (:8443), upstream (:5051),
#                               demoapi (:5050), demohost (:30662); Ctrl-C stops all
#   scripts/run-all.sh --check  the same, headless: signs in with ROPC through the
#                               CLI app, calls /api and /api/obo, prints the three
#                               milestones, stops everything; exit 1 if one fails
#
# Entra mode (a real tenant) when TENANT_ID is set: only demoapi and demohost run
# (upstream = Microsoft Graph); see README "Entra mode" for every variable.
# Components not in this checkout yet are skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
unset ADDR # each service has its own fixed local port; ADDR would move them all

check=0
for a in "$@"; do
  case "$a" in
    --check) check=1 ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run-all: unknown argument $a (try --help)" >&2; exit 2 ;;
  esac
done

tenant_default=2dcbe9d9-33d9-44a7-b4e9-b846975b02ad
if [ -n "${TENANT_ID:-}" ]; then mode=entra; else mode=local; fi

if [ -t 1 ]; then say() { printf '\033[1m[run-all]\033[0m %s\n' "$*"; }; else say() { printf '[run-all] %s\n' "$*"; }; fi

# ---- what to run -------------------------------------------------------------
if [ "$mode" = local ]; then
  wanted=(devidp upstream demoapi demohost)
else
  wanted=(demoapi demohost)
  if [ "$check" = 1 ]; then
    echo "run-all: --check signs in with ROPC against the local emulator; in Entra mode sign in through the page instead." >&2
    exit 2
  fi
fi
present=()
for c in "${wanted[@]}"; do
  if ls "$c"/*.go >/dev/null 2>&1; then present+=("$c"); else say "$c: not in this checkout yet, skipped"; fi
done
[ ${#present[@]} -gt 0 ] || { say "nothing to run yet"; exit 0; }
has() { local x; for x in "${present[@]}"; do [ "$x" = "$1" ] && return 0; done; return 1; }

# ---- configuration -----------------------------------------------------------
port_of() { case "$1" in devidp) echo 8443 ;; upstream) echo 5051 ;; demoapi) echo 5050 ;; demohost) echo 30662 ;; esac; }
if [ "$mode" = local ]; then
  export DEVIDP_CA_FILE="${DEVIDP_CA_FILE:-$root/.devidp/ca.pem}"
  authority="${AUTHORITY:-https://localhost:8443/$tenant_default}"
else
  authority="${AUTHORITY:-https://login.microsoftonline.com/$TENANT_ID}"
  # No local upstream in Entra mode: demoapi calls Microsoft Graph.
  export UPSTREAM_URL="${UPSTREAM_URL:-https://graph.microsoft.com/v1.0/me}"
fi
api_base="${API_BASE_URL:-http://localhost:5050}"

health_url() {
  case "$1" in
    devidp) echo "$authority/v2.0/.well-known/openid-configuration" ;;
    upstream) echo "http://localhost:5051/readyz" ;;
    demoapi) echo "$api_base/readyz" ;;
    demohost) echo "http://localhost:30662/healthz" ;;
  esac
}

# Refuse to start over something already listening (a previous run-all?).
for c in "${present[@]}"; do
  p=$(port_of "$c")
  if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
    echo "run-all: port $p ($c) is already in use; stop what runs there first (another run-all?)" >&2
    exit 1
  fi
done

# ---- build once ----------------------------------------------------------------
mkdir -p bin
say "building ${present[*]}"
pkgs=(); for c in "${present[@]}"; do pkgs+=("./$c"); done
[ "$check" = 1 ] && pkgs+=(./scripts/walkcheck)
go build -o bin/ "${pkgs[@]}"

# ---- start, prefix logs, stop together ----------------------------------------
pids=()
names=()
logdir=""
if [ "$check" = 1 ]; then logdir=$(mktemp -d); fi
stopping=0
cleanup() {
  stopping=1
  local p
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
  [ -n "$logdir" ] && rm -rf "$logdir"
}
trap cleanup EXIT
trap 'echo; say "stopping"; exit 130' INT TERM

start() {
  local c=$1
  if [ -n "$logdir" ]; then
    "./bin/$c" >"$logdir/$c.log" 2>&1 &
  else
    "./bin/$c" > >(sed -u "s/^/[$c] /") 2>&1 &
  fi
  pids+=($!)
  names+=("$c")
}

wait_ready() {
  local c=$1 url pid=$2 i
  url=$(health_url "$c")
  for i in $(seq 1 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "run-all: $c exited during start-up" >&2
      [ -n "$logdir" ] && sed "s/^/[$c] /" "$logdir/$c.log" >&2
      return 1
    fi
    if [ "$c" = devidp ]; then
      [ -f "$DEVIDP_CA_FILE" ] && curl -fsS --max-time 2 --cacert "$DEVIDP_CA_FILE" -o /dev/null "$url" 2>/dev/null && return 0
    else
      curl -fsS --max-time 2 -o /dev/null "$url" 2>/dev/null && return 0
    fi
    sleep 0.2
  done
  echo "run-all: $c not ready after 30 s ($url)" >&2
  [ -n "$logdir" ] && sed "s/^/[$c] /" "$logdir/$c.log" >&2
  return 1
}

for c in "${present[@]}"; do
  start "$c"
  wait_ready "$c" "${pids[-1]}" || exit 1
  say "$c ready ($(health_url "$c"))"
done

if [ "$check" = 1 ]; then
  if ! has devidp; then
    echo "run-all: --check needs devidp, which is not in this checkout yet" >&2
    exit 1
  fi
  echo
  if AUTHORITY="$authority" API_BASE_URL="$api_base" ./bin/walkcheck; then
    echo; say "all three milestones passed"
    exit 0
  fi
  echo; say "a milestone failed; service logs:"
  for c in "${present[@]}"; do tail -n 30 "$logdir/$c.log" | sed "s/^/[$c] /"; done
  exit 1
fi

cat <<EOF

  Open  http://localhost:30662/  and sign in.

EOF
if [ "$mode" = local ]; then
  cat <<EOF
  Dev users (password: dev-password)
    reader@dev.test   a plain user
    admin@dev.test    has the API app role Demo.Read.All
    mfa@dev.test      the upstream requires MFA: Milestone 3 asks for a step-up

  Trust step (once per browser): the emulator serves HTTPS with a dev CA made on
  its first run. Open
    $authority/v2.0/.well-known/openid-configuration
  and accept the warning, or trust $DEVIDP_CA_FILE in your browser/OS
  (README: "Trusting its CA").

  Ctrl-C stops everything.
EOF
else
  echo "  Entra mode: authority $authority, API $api_base, upstream $UPSTREAM_URL. Ctrl-C stops everything."
fi

# Stop everything when any one of them exits.
set +e
wait -n "${pids[@]}"
rc=$?
if [ "$stopping" = 0 ]; then
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then say "${names[$i]} exited (status $rc); stopping the others"; fi
  done
fi
exit 1
