#!/usr/bin/env bash
# Drives the example server with curl on 127.0.0.1: the three routes, then an event stream
# open during evaluations, which must carry exactly the transitions that were committed; then
# /health, moves by other processes (the CLI's evaluate and batch) in the stream and in the
# cache, Last-Event-ID resume, and /metrics.
#
#   Examples/JourneyServer/drive.sh        (from anywhere; builds what it needs)
#
# Environment: JOURNEY_CLI=path/to/journey skips building the main package's CLI;
# DRIVE_KEEP=1 keeps the temporary folder (database, server log, events) for a look;
# DRIVE_JSON=python3 checks the JSON with python3 even where jq is installed.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/journey-drive.XXXXXX")"
HOST=127.0.0.1
PASSED=0
SERVER_PID=""
EVENTS_PID=""
EVENTS2_PID=""

# ---------------------------------------------------------------- helpers

say() { printf 'drive.sh: %s\n' "$*"; }

pass() {
    PASSED=$((PASSED + 1))
    printf 'ok   %s\n' "$1"
}

fail() {
    printf 'FAIL %s\n' "$1" >&2
    if [[ -s "$TMP/body.json" ]]; then printf '     last body: %s\n' "$(head -c 600 "$TMP/body.json")" >&2; fi
    if [[ -s "$TMP/server.log" ]]; then printf '     server log (tail):\n' >&2; tail -n 15 "$TMP/server.log" | sed 's/^/       /' >&2; fi
    printf 'drive.sh: %d passed, 1 failed\n' "$PASSED"
    exit 1
}

stop_pid() { # pid: TERM, wait up to 10 s, then KILL (and return 1)
    local pid="$1" i
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    say "process $pid ignored SIGTERM for 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
}

cleanup() {
    stop_pid "$EVENTS_PID" || true
    stop_pid "$EVENTS2_PID" || true
    stop_pid "$SERVER_PID" || true
    if [[ "${DRIVE_KEEP:-0}" == 1 ]]; then say "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

# json FILE JQ_FILTER PYTHON_EXPRESSION: one value of a JSON file, printed like `jq -r`.
# jq is used when installed; otherwise python3 evaluates the expression over `d`.
json() {
    local file="$1" filter="$2" expression="$3"
    if [[ "${DRIVE_JSON:-jq}" == jq ]] && command -v jq >/dev/null 2>&1; then
        jq -r "$filter" "$file"
    else
        python3 - "$file" "$expression" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
v = eval(sys.argv[2], {"d": d, "len": len})
if isinstance(v, list) and all(isinstance(x, str) for x in v):
    print("\n".join(v))
elif v is None: print("null")
elif isinstance(v, bool): print("true" if v else "false")
elif isinstance(v, str): print(v)
else: print(json.dumps(v))
PY
    fi
}

# http METHOD PATH [JSON_BODY]: the status code; the body goes to $TMP/body.json.
http() {
    local method="$1" path="$2" body="${3:-}"
    local args=(--silent --show-error --noproxy '*' --max-time 15 -o "$TMP/body.json" -w '%{http_code}' -X "$method")
    [[ -n "$body" ]] && args+=(-H 'Content-Type: application/json' --data "$body")
    curl "${args[@]}" "http://$HOST:$PORT$path" || true # prints 000 when nothing answered
}

expect_status() { # description expected actual
    [[ "$3" == "$2" ]] || fail "$1: expected HTTP $2, got $3"
}

# ---------------------------------------------------------------- build

say "building the server (swift build in Examples/JourneyServer)"
(cd "$HERE" && timeout 1800 swift build --scratch-path .build-example) >"$TMP/build.log" 2>&1 ||
    { tail -n 30 "$TMP/build.log" >&2; fail "swift build of Examples/JourneyServer"; }
SERVER_BIN="$(cd "$HERE" && swift build --scratch-path .build-example --show-bin-path)/JourneyServer"
[[ -x "$SERVER_BIN" ]] || fail "no server binary at $SERVER_BIN"

if [[ -n "${JOURNEY_CLI:-}" ]]; then
    JOURNEY="$JOURNEY_CLI"
else
    say "building the journey CLI (the main package)"
    timeout 1800 swift build --package-path "$ROOT" --product journey >"$TMP/cli-build.log" 2>&1 ||
        { tail -n 30 "$TMP/cli-build.log" >&2; fail "swift build --product journey in $ROOT"; }
    JOURNEY="$(swift build --package-path "$ROOT" --show-bin-path)/journey"
fi
[[ -x "$JOURNEY" ]] || fail "no journey CLI at $JOURNEY"

# ---------------------------------------------------------------- database and server

DB="$TMP/db.sqlite"
timeout 300 "$JOURNEY" generate --users 300 --seed 5 --output "$DB" >"$TMP/generate.log" 2>&1 ||
    { cat "$TMP/generate.log" >&2; fail "journey generate"; }
timeout 300 "$JOURNEY" migrate --db "$DB" >"$TMP/migrate.log" 2>&1 ||
    { cat "$TMP/migrate.log" >&2; fail "journey migrate"; }
say "demo database: $(cat "$TMP/generate.log")"

# --port 0: the system picks a free port, and the server prints it.
: >"$TMP/server.log" # created here: a background job opens its redirections only once it runs
"$SERVER_BIN" --db "$DB" --port 0 >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
PORT=""
for ((i = 0; i < 200; i++)); do # 20 s
    kill -0 "$SERVER_PID" 2>/dev/null || fail "the server exited at start"
    PORT="$(sed -n 's|^JourneyServer listening on http://127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$TMP/server.log" | head -n 1 || true)"
    if [[ -n "$PORT" ]] && [[ "$(http GET /users/1/journey)" != 000 ]]; then break; fi
    PORT=""
    sleep 0.1
done
[[ -n "$PORT" ]] || fail "the server did not answer on $HOST within 20 s"
say "server pid $SERVER_PID on http://$HOST:$PORT"

# ---------------------------------------------------------------- GET /users/{id}/journey

status="$(http GET /users/1/journey)"
expect_status "GET /users/1/journey" 200 "$status"
stage="$(json "$TMP/body.json" '.stage' 'd["stage"]')"
[[ "$stage" == J* ]] || fail "GET /users/1/journey: no \"stage\" in the JSON"
[[ "$(json "$TMP/body.json" '.next.criteria | length' 'len(d["next"]["criteria"]) if d["next"] else 0')" -gt 0 ]] ||
    [[ "$stage" == J4_SUPER_ADMIN ]] || fail "GET /users/1/journey: no checklist under next.criteria"
pass "GET /users/1/journey answers 200 with stage $stage and a checklist"

status="$(http GET /users/999999/journey)"
expect_status "GET /users/999999/journey" 404 "$status"
[[ "$(json "$TMP/body.json" '.error' 'd["error"]')" == *999999* ]] || fail "the 404 body does not name the user"
pass "GET /users/999999/journey answers 404 naming the user"

status="$(http GET /users/abc/journey)"
expect_status "GET /users/abc/journey" 400 "$status"
pass "GET /users/abc/journey answers 400"

# One report type: the server's answer is the object `journey explain --json` prints, typed.
http GET /users/1/journey >/dev/null
timeout 60 "$JOURNEY" explain 1 --db "$DB" --json >"$TMP/cli.json" 2>"$TMP/cli.err" ||
    { cat "$TMP/cli.err" >&2; fail "journey explain 1 --json"; }
server_keys="$(json "$TMP/body.json" 'keys | join(",")' '",".join(sorted(d.keys()))')"
cli_keys="$(json "$TMP/cli.json" 'keys | join(",")' '",".join(sorted(d.keys()))')"
[[ "$server_keys" == "$cli_keys" ]] || fail "GET /users/1/journey has the keys $server_keys; journey explain --json has $cli_keys"
[[ "$(json "$TMP/body.json" '.stage' 'd["stage"]')" == "$(json "$TMP/cli.json" '.stage' 'd["stage"]')" ]] ||
    fail "GET /users/1/journey and journey explain 1 --json disagree on the stage"
[[ "$(json "$TMP/body.json" '.metrics.posts | type == "number"' 'isinstance(d["metrics"]["posts"], int)')" == true ]] ||
    fail "GET /users/1/journey: metrics.posts is not a JSON number"
pass "GET /users/1/journey answers the same typed object as journey explain 1 --json ($server_keys)"

# Walk the users (bounded) for: a J1 user who stays (for the refusals) and a few who will move.
STAYER=""
MOVERS=()
for ((id = 1; id <= 300; id++)); do
    [[ "$(http GET "/users/$id/journey")" == 200 ]] || continue
    stored="$(json "$TMP/body.json" '.stored_stage' 'd["stored_stage"]')"
    pending="$(json "$TMP/body.json" '.transitions | length' 'len(d["transitions"])')"
    if [[ "$pending" -gt 0 ]]; then
        ((${#MOVERS[@]} < 8)) && MOVERS+=("$id")
    elif [[ "$stored" == J1_NEW_USER && -z "$STAYER" ]]; then
        STAYER="$id"
    fi
    [[ -n "$STAYER" ]] && ((${#MOVERS[@]} >= 8)) && break
done
[[ -n "$STAYER" ]] || fail "no J1 user who stays in J1 among users 1-300"
((${#MOVERS[@]} >= 2)) || fail "fewer than two users with pending transitions among users 1-300"
say "J1 user who stays: $STAYER; users who will move: ${MOVERS[*]}"

# ---------------------------------------------------------------- POST transitions: refusals

status="$(http POST "/users/$STAYER/journey/transitions" '{"to": "J3_POWER_USER"}')"
expect_status "POST J1 -> J3 (a skip) for user $STAYER" 409 "$status"
skipped="$(json "$TMP/body.json" '.skipped | join(",")' '",".join(d["skipped"])')"
[[ "$skipped" == J2_ACTIVE_USER ]] || fail "the 409 body's \"skipped\" is [$skipped], expected [J2_ACTIVE_USER]"
pass "POST a skip J1 -> J3 answers 409 with skipped [J2_ACTIVE_USER]"

status="$(http POST "/users/$STAYER/journey/transitions" '{"to": "J2_ACTIVE_USER"}')"
expect_status "POST J1 -> J2 with unmet criteria for user $STAYER" 422 "$status"
unmet="$(json "$TMP/body.json" '.unmet | length' 'len(d["unmet"])')"
[[ "$unmet" -gt 0 ]] || fail "the 422 body lists no unmet criteria"
[[ "$(json "$TMP/body.json" '[.unmet[].met] | any' 'any(c["met"] for c in d["unmet"])')" == false ]] ||
    fail "the 422 body lists a criterion that is met"
pass "POST J1 -> J2 with unmet criteria answers 422 listing $unmet unmet criteria"

status="$(http POST "/users/$STAYER/journey/transitions" '{"to": "J9_NOWHERE"}')"
expect_status "POST to an unknown stage" 400 "$status"
pass "POST to an unknown stage answers 400"

status="$(http POST "/users/$STAYER/journey/transitions" '{"stage": 3}')"
expect_status "POST a body without \"to\"" 400 "$status"
pass "POST a body without \"to\" answers 400"

timeout 60 "$JOURNEY" pin "$STAYER" --reason "drive.sh" --db "$DB" >/dev/null 2>"$TMP/pin.log" ||
    { cat "$TMP/pin.log" >&2; fail "journey pin $STAYER"; }
status="$(http POST "/users/$STAYER/journey/transitions" '{"to": "J2_ACTIVE_USER"}')"
expect_status "POST a move for pinned user $STAYER" 409 "$status"
[[ "$(json "$TMP/body.json" '.pin' 'd.get("pin")')" == J1_NEW_USER ]] || fail "the pinned 409 body does not name the pin's stage"
pass "POST a move for a pinned user answers 409 naming the pin"

# ---------------------------------------------------------------- events during evaluations

curl --silent --no-buffer --noproxy '*' --max-time 120 "http://$HOST:$PORT/journey/events" >"$TMP/events.txt" 2>"$TMP/events.err" &
EVENTS_PID=$!
for ((i = 0; i < 100; i++)); do # 10 s for the subscription to be in place
    grep -q '^: subscribed' "$TMP/events.txt" 2>/dev/null && break
    kill -0 "$EVENTS_PID" 2>/dev/null || fail "curl /journey/events exited: $(cat "$TMP/events.err")"
    sleep 0.1
done
grep -q '^: subscribed' "$TMP/events.txt" || fail "GET /journey/events sent nothing within 10 s"
pass "GET /journey/events streams text/event-stream"

: >"$TMP/expected.txt" # user-seq from-to, one line per committed transition the responses reported

# First mover: an explicit, valid move to its first pending stage (201).
first="${MOVERS[0]}"
http GET "/users/$first/journey" >/dev/null
target="$(json "$TMP/body.json" '.transitions[0].to' 'd["transitions"][0]["to"]')"
status="$(http POST "/users/$first/journey/transitions" "{\"to\": \"$target\"}")"
expect_status "POST a valid move to $target for user $first" 201 "$status"
json "$TMP/body.json" '"\(.user_id)-\(.seq) \(.from_state)-\(.to_state)"' '"%s-%s %s-%s" % (d["user_id"], d["seq"], d["from_state"], d["to_state"])' >>"$TMP/expected.txt"
[[ "$(json "$TMP/body.json" '.to_state' 'd["to_state"]')" == "$target" ]] || fail "the 201 body is not the move to $target"
pass "POST a valid move to $target for user $first answers 201 with the recorded transition"

# Every mover (the first again, for any move left): evaluate and persist.
for id in "${MOVERS[@]}"; do
    status="$(http POST "/users/$id/journey/evaluate")"
    expect_status "POST /users/$id/journey/evaluate" 200 "$status"
    [[ "$(json "$TMP/body.json" '.persisted' 'd["persisted"]')" == true ]] || fail "POST /users/$id/journey/evaluate: persisted is not true"
    json "$TMP/body.json" '.user as $u | .transitions[] | "\($u)-\(.seq) \(.from)-\(.to)"' \
        '["%s-%s %s-%s" % (d["user"], t["seq"], t["from"], t["to"]) for t in d["transitions"]]' >>"$TMP/expected.txt"
    # The write went through the service's pool: the cached answer must already be gone.
    http GET "/users/$id/journey" >/dev/null
    [[ "$(json "$TMP/body.json" '.transitions | length' 'len(d["transitions"])')" == 0 ]] ||
        fail "GET /users/$id/journey after evaluate still shows pending transitions (stale cache)"
    [[ "$(json "$TMP/body.json" '.stored_stage == .stage' 'd["stored_stage"] == d["stage"]')" == true ]] ||
        fail "GET /users/$id/journey after evaluate: stored_stage differs from stage"
done
sed -i '/^$/d' "$TMP/expected.txt"
expected_count="$(wc -l <"$TMP/expected.txt" | tr -d ' ')"
((expected_count >= ${#MOVERS[@]})) || fail "only $expected_count transitions recorded for ${#MOVERS[@]} users who had pending moves"
pass "POST evaluate for ${#MOVERS[@]} users recorded $expected_count transitions in all (with the 201), and the cache followed"

# Wait (bounded) for the stream to catch up, then give it a moment to show any extra event.
for ((i = 0; i < 100; i++)); do # 10 s
    [[ "$(grep -c '^event: transition$' "$TMP/events.txt" || true)" -ge "$expected_count" ]] && break
    sleep 0.1
done
sleep 1
sed -n 's/^data: //p' "$TMP/events.txt" >"$TMP/events.jsonl"
: >"$TMP/received.txt"
while IFS= read -r line; do
    printf '%s\n' "$line" >"$TMP/event.json"
    json "$TMP/event.json" '"\(.user_id)-\(.seq) \(.from_state)-\(.to_state)"' '"%s-%s %s-%s" % (d["user_id"], d["seq"], d["from_state"], d["to_state"])' >>"$TMP/received.txt"
done <"$TMP/events.jsonl"
received_count="$(wc -l <"$TMP/received.txt" | tr -d ' ')"
[[ "$received_count" == "$expected_count" ]] ||
    fail "the event stream carried $received_count transitions; the responses recorded $expected_count"
diff <(sort "$TMP/expected.txt") <(sort "$TMP/received.txt") >"$TMP/events.diff" ||
    fail "the events differ from the recorded transitions: $(cat "$TMP/events.diff")"
pass "the event stream carried exactly the $expected_count committed transitions"

# Every move in the stream is in the database: the history agrees for each user.
for id in "${MOVERS[@]}"; do
    stored="$(http GET "/users/$id/journey" >/dev/null; json "$TMP/body.json" '.stored_stage' 'd["stored_stage"]')"
    last="$(grep "^$id-" "$TMP/received.txt" | sort -t- -k2 -n | tail -n 1 | sed 's/.*-//')"
    [[ "$stored" == "$last" ]] || fail "user $id: the last event says $last, the database holds $stored"
done
pass "each mover's stored stage is the last stage its events announced"

# ---------------------------------------------------------------- /health

status="$(http GET /health)"
expect_status "GET /health" 200 "$status"
[[ "$(json "$TMP/body.json" '.status' 'd["status"]')" == ok ]] || fail "GET /health: status is not ok"
START_ID="$(json "$TMP/body.json" '.last_transition_id' 'd["last_transition_id"]')"
[[ "$START_ID" =~ ^[0-9]+$ ]] || fail "GET /health: no last_transition_id"
pass "GET /health answers 200 ok, rules $(json "$TMP/body.json" '.rules_version' 'd["rules_version"]'), feed at transition $START_ID"

# ---------------------------------------------------------------- other processes

# transition_ids_after ID: the ids of journey_transitions above ID, in order, read by python3's sqlite3.
transition_ids_after() {
    python3 - "$DB" "$1" <<'PY'
import sqlite3, sys
connection = sqlite3.connect(sys.argv[1])
for (id,) in connection.execute("SELECT id FROM journey_transitions WHERE id > ? ORDER BY id", (int(sys.argv[2]),)):
    print(id)
PY
}

curl --silent --no-buffer --noproxy '*' --max-time 120 "http://$HOST:$PORT/journey/events" >"$TMP/events2.txt" 2>"$TMP/events2.err" &
EVENTS2_PID=$!
for ((i = 0; i < 100; i++)); do
    grep -q '^: subscribed' "$TMP/events2.txt" 2>/dev/null && break
    sleep 0.1
done
grep -q '^: subscribed' "$TMP/events2.txt" || fail "a second GET /journey/events sent nothing within 10 s"

# A user the server has cached, with moves pending, is moved by the CLI (another process).
CLI_USER=""
for ((id = 1; id <= 300; id++)); do
    [[ "$(http GET "/users/$id/journey")" == 200 ]] || continue
    [[ "$(json "$TMP/body.json" '.transitions | length' 'len(d["transitions"])')" -gt 0 ]] && { CLI_USER="$id"; break; }
done
[[ -n "$CLI_USER" ]] || fail "no user left with pending transitions among users 1-300"
cached_stage="$(json "$TMP/body.json" '.stored_stage' 'd["stored_stage"]')"
timeout 60 "$JOURNEY" evaluate "$CLI_USER" --db "$DB" >/dev/null 2>"$TMP/evaluate.log" ||
    { cat "$TMP/evaluate.log" >&2; fail "journey evaluate $CLI_USER"; }
for ((i = 0; i < 30; i++)); do # 3 s
    http GET "/users/$CLI_USER/journey" >/dev/null
    [[ "$(json "$TMP/body.json" '.stored_stage' 'd["stored_stage"]')" != "$cached_stage" ]] && break
    sleep 0.1
done
[[ "$(json "$TMP/body.json" '.stored_stage' 'd["stored_stage"]')" != "$cached_stage" ]] ||
    fail "GET /users/$CLI_USER/journey still says $cached_stage 3 s after the CLI moved the user (stale cache)"
[[ "$(json "$TMP/body.json" '.transitions | length' 'len(d["transitions"])')" == 0 ]] ||
    fail "GET /users/$CLI_USER/journey after the CLI's move still shows pending transitions"
pass "the server's cache followed a move made by the CLI (user $CLI_USER, no longer $cached_stage): GET number $((i + 1)) after the CLI exited saw it"

# The nightly batch, another process, moves everyone else.
timeout 300 "$JOURNEY" batch --db "$DB" --json >"$TMP/batch.json" 2>"$TMP/batch.log" ||
    { cat "$TMP/batch.log" >&2; fail "journey batch"; }
transition_ids_after "$START_ID" >"$TMP/truth.txt"
truth_count="$(wc -l <"$TMP/truth.txt" | tr -d ' ')"
((truth_count > 1)) || fail "the CLI and the batch recorded $truth_count transitions; expected several"
for ((i = 0; i < 100; i++)); do # 10 s
    [[ "$(grep -c '^id: ' "$TMP/events2.txt" || true)" -ge "$truth_count" ]] && break
    sleep 0.1
done
sleep 0.5 # room for an extra event, which would fail the comparison below
sed -n 's/^id: //p' "$TMP/events2.txt" >"$TMP/streamed.txt"
diff "$TMP/truth.txt" "$TMP/streamed.txt" >"$TMP/streamed.diff" ||
    fail "the event stream's ids differ from journey_transitions after $START_ID: $(head -c 400 "$TMP/streamed.diff")"
pass "the event stream carried the $truth_count moves of two other processes (evaluate, batch), in id order, each once, id: = transition id"

# Resume: Last-Event-ID replays exactly what came after it.
MIDDLE="$(sed -n "$(((truth_count + 1) / 2))p" "$TMP/truth.txt")"
curl --silent --no-buffer --noproxy '*' --max-time 3 -H "Last-Event-ID: $MIDDLE" "http://$HOST:$PORT/journey/events" >"$TMP/events3.txt" 2>/dev/null || true
sed -n 's/^id: //p' "$TMP/events3.txt" >"$TMP/resumed.txt"
diff <(awk -v m="$MIDDLE" '$1 > m' "$TMP/truth.txt") "$TMP/resumed.txt" >"$TMP/resumed.diff" ||
    fail "Last-Event-ID: $MIDDLE did not resume with exactly the later ids: $(head -c 400 "$TMP/resumed.diff")"
pass "Last-Event-ID: $MIDDLE resumed with exactly the $(wc -l <"$TMP/resumed.txt" | tr -d ' ') later transitions"

status="$(http GET /journey/events?after=abc)"
expect_status "GET /journey/events?after=abc" 400 "$status"
pass "a Last-Event-ID (or after) that is not a transition id answers 400"

stop_pid "$EVENTS2_PID" || true
EVENTS2_PID=""

# ---------------------------------------------------------------- /metrics

status="$(http GET /metrics)"
expect_status "GET /metrics" 200 "$status"
for metric in journey_cache_hits_total journey_cache_misses_total journey_evaluations_total journey_transitions_total journey_metrics_query_duration; do
    grep -q "^$metric" "$TMP/body.json" || fail "GET /metrics lacks $metric"
done
pass "GET /metrics answers Prometheus text with the service's counters, per-edge transitions and the query-time histogram"

# ---------------------------------------------------------------- stop

# SIGTERM with the stream still open: the stream ends on graceful shutdown, and so does the server.
stop_pid "$SERVER_PID" || { SERVER_PID=""; fail "the server did not stop within 10 s of SIGTERM with an event stream open"; }
SERVER_PID=""
for ((i = 0; i < 50; i++)); do # 5 s
    kill -0 "$EVENTS_PID" 2>/dev/null || break
    sleep 0.1
done
kill -0 "$EVENTS_PID" 2>/dev/null && fail "curl /journey/events still open 5 s after the server stopped"
EVENTS_PID=""
pass "the server stopped on SIGTERM with an event stream open, closing the stream"

printf 'drive.sh: %d passed, 0 failed\n' "$PASSED"
