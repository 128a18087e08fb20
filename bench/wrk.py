"""Load from wrk (Debian's package): one thread, N keep-alive connections, figures read back as JSON.

wrk's own summary has only a few percentiles; a Lua `done()` prints the whole distribution as one JSON
line (`WRK_JSON {...}`), which is what the report and the plot use. Latency in wrk is in microseconds.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.users import BenchUsers

PERCENTILES = (1, 5, 10, 20, 30, 40, 50, 60, 70, 75, 80, 90, 95, 97.5, 99, 99.5, 99.9, 99.99)

# the report every wrk run ends with; a script's response() may count answers by status in `statuses`
_REPORT_LUA = """
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end
local function status_json()
  local total, parts = {}, {}
  for _, t in ipairs(threads) do
    for code, n in pairs(t:get("statuses") or {}) do total[code] = (total[code] or 0) + n end
  end
  for code, n in pairs(total) do table.insert(parts, string.format('"%d":%d', code, n)) end
  return "{" .. table.concat(parts, ",") .. "}"
end
function done(summary, latency, requests)
  local e = summary.errors
  local out = {}
  table.insert(out, string.format('{"requests":%d,"duration_us":%d,"bytes":%d,', summary.requests,
    summary.duration, summary.bytes))
  table.insert(out, string.format('"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},',
    e.connect, e.read, e.write, e.status, e.timeout))
  table.insert(out, '"statuses":' .. status_json() .. ",")
  table.insert(out, string.format('"latency_us":{"min":%d,"max":%d,"mean":%.1f,"stdev":%.1f,"percentiles":{',
    latency.min, latency.max, latency.mean, latency.stdev))
  for i, p in ipairs({%PERCENTILES%}) do
    table.insert(out, string.format('%s"%s":%d', i > 1 and "," or "", tostring(p), latency:percentile(p)))
  end
  table.insert(out, "}}}")
  io.write("WRK_JSON " .. table.concat(out) .. "\\n")
end
""".replace("%PERCENTILES%", ", ".join(str(p) for p in PERCENTILES))

# POST /login as JSON: a bench user's success path (rotating over the users: the lockout counts attempts in
# flight per name), or an unknown user (a fresh name per attempt: unknown names are not tracked)
_LOGIN_LUA = """
statuses = {}
local mode, prefix, count = "success", "bench", 0
local headers = {["Content-Type"] = "application/json", ["User-Agent"] = "bench-wrk"}
function init(args)
  mode = args[1] or "success"
  prefix = string.format("bench-%d-%d", os.time(), thread_id or 0)
end
function request()
  count = count + 1
  local body
  if mode == "success" then
    body = string.format('{"username":"%USER_PREFIX%%d","password":"%PASSWORD%"}', count % %USERS%)
  else
    body = string.format('{"username":"%s-%d","password":"wrong-password-bench"}', prefix, count)
  end
  headers["X-Request-ID"] = string.format("%s-%s-%d", prefix, mode, count)
  return wrk.format("POST", "/login", headers, body)
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
"""


@dataclass(frozen=True)
class WrkResult:
    target: str
    connections: int
    seconds: float
    requests: int
    rps: float
    latency_ms: dict[str, float]  # min, mean, stdev, max, p50, p90, p99 ...
    percentiles_ms: dict[str, float]
    errors: dict[str, int]
    statuses: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _script(text: str, directory: Path, name: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def run(
    url: str,
    *,
    target: str,
    connections: int,
    seconds: float,
    login: str | None = None,
    users: BenchUsers | None = None,
) -> WrkResult:
    """wrk against `url` for `seconds`; with `login` ("success"/"failure") it POSTs logins instead of GETs."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        lua = _REPORT_LUA
        if login is not None:
            if users is None:
                raise ValueError("logins need the bench users")
            lua = (
                _LOGIN_LUA.replace("%USER_PREFIX%", users.prefix)
                .replace("%USERS%", str(users.count))
                .replace("%PASSWORD%", users.password)
                + lua
            )
        script = _script(lua, Path(tmp), "bench.lua")
        argv = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ]
        if login is not None:
            argv += ["--", login]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stdout[-2000:]} {done.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    duration = raw["duration_us"] / 1e6
    lat = raw["latency_us"]
    pcts = {key: value / 1000 for key, value in lat["percentiles"].items()}
    return WrkResult(
        target=target,
        connections=connections,
        seconds=round(duration, 3),
        requests=raw["requests"],
        rps=round(raw["requests"] / duration, 1) if duration else 0.0,
        latency_ms={
            "min": lat["min"] / 1000,
            "mean": round(lat["mean"] / 1000, 3),
            "stdev": round(lat["stdev"] / 1000, 3),
            "p50": pcts["50"],
            "p90": pcts["90"],
            "p99": pcts["99"],
            "max": lat["max"] / 1000,
        },
        percentiles_ms=pcts,
        errors=raw["errors"],
        statuses=raw["statuses"],
    )
