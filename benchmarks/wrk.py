"""Throughput with wrk (Debian package ``wrk``), driven by a generated Lua script.

The script cycles through the given request bodies, optionally mixes in a share of
fresh questions (misses), counts ``X-Semcache`` results and non-200 answers, and
prints one JSON line. wrk's own CPU time is read from the child's resource usage,
so the report can show the load generator was not the bottleneck.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["WRK", "run_wrk"]

WRK = shutil.which("wrk")

_FRESH_SUBJECTS = (
    "sourdough starters",
    "solar panels",
    "tax returns",
    "garden soil",
    "bike brakes",
    "password managers",
    "sleep cycles",
    "kitchen knives",
    "home networks",
    "car batteries",
    "running shoes",
    "coffee grinders",
    "job interviews",
    "house plants",
    "rain gutters",
    "budget spreadsheets",
    "wool sweaters",
    "guitar strings",
    "printer drivers",
    "dog training",
)
_FRESH_ASPECTS = (
    "the most common mistakes with",
    "how to choose",
    "how to clean",
    "the history of",
    "how to repair",
    "safety rules for",
    "the cost of",
    "how to store",
    "beginner tips for",
    "how long to keep",
    "environmental impact of",
    "how to compare",
)

_LUA = r"""
local path = "%(path)s"
local headers = {}
%(headers)s
local extra = {}
%(extra)s
local bodies = {
%(bodies)s
}
local flagged = {%(flagged)s}
local prepared = {}
local subjects = {%(subjects)s}
local aspects = {%(aspects)s}
local fresh = %(fresh)f
local model = "%(model)s"
local cache_header = "%(cache_header)s"
local similarity_header = "%(similarity_header)s"
local threads = {}
local counter = 0
hits, misses, others, bad, semantic = 0, 0, 0, 0, 0

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + id)
  -- Requests built once; flagged bodies carry the extra headers as well.
  for i, body in ipairs(bodies) do
    local h = {}
    for k, v in pairs(headers) do h[k] = v end
    if flagged[i] then
      for k, v in pairs(extra) do h[k] = v end
    end
    prepared[i] = wrk.format("POST", path, h, body)
  end
end

function request()
  counter = counter + 1
  if fresh > 0 and math.random() < fresh then
    local q = string.format("Ticket %%d-%%d: %%s %%s?", id, counter,
      aspects[math.random(#aspects)], subjects[math.random(#subjects)])
    local body = '{"model": "' .. model .. '", "messages": [{"role": "user", "content": "' .. q .. '"}]}'
    return wrk.format("POST", path, headers, body)
  end
  return prepared[(counter %% #prepared) + 1]
end

-- A header's value whatever the case of its name; nil when absent.
local function header(hdrs, name)
  local v = hdrs[name]
  if v ~= nil then return v end
  for k, value in pairs(hdrs) do
    if string.lower(k) == name then return value end
  end
  return nil
end

function response(status, hdrs, body)
  if status ~= 200 then bad = bad + 1 end
  local s = header(hdrs, cache_header)
  if s ~= nil then s = string.lower(s) end
  if s == "hit" then
    hits = hits + 1
    -- Below 1: answered by similarity (the model ran), not by the exact text.
    local sim = tonumber(header(hdrs, similarity_header) or "")
    if sim ~= nil and sim < 0.999999 then semantic = semantic + 1 end
  elseif s == "miss" then misses = misses + 1
  else others = others + 1 end
end

function done(summary, latency, requests)
  local h, m, o, b, sm = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    h = h + t:get("hits"); m = m + t:get("misses"); o = o + t:get("others"); b = b + t:get("bad")
    sm = sm + t:get("semantic")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%d, "duration_us": %%d, "bytes": %%d, "hits": %%d, "misses": %%d, ' ..
    '"others": %%d, "non_200": %%d, "semantic_hits": %%d, "socket_errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d, "max_us": %%d, "mean_us": %%f}\n',
    summary.requests, summary.duration, summary.bytes, h, m, o, b, sm,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    latency.mean))
end
"""


def _lua_string(text: str) -> str:
    level = "=" * 4
    if f"]{level}]" in text:
        raise ValueError("body contains the Lua long-bracket terminator")
    return f"[{level}[{text}]{level}]"


def write_script(
    path: Path,
    bodies: Sequence[tuple[bytes, bool]],
    *,
    request_path: str,
    headers: dict[str, str],
    extra_headers: dict[str, str] | None = None,
    fresh: float = 0.0,
    model: str = "bench",
    cache_header: str = "x-semcache",
    similarity_header: str = "x-semcache-similarity",
) -> Path:
    """A script cycling through ``bodies`` (body, flagged): flagged ones also carry
    ``extra_headers``; a ``fresh`` share of requests are new questions instead.

    A response counts as a hit when ``cache_header`` says ``hit`` (any case), and as
    a semantic hit when ``similarity_header`` is below 1 as well: other caches name
    these headers differently."""
    lua = _LUA % {
        "path": request_path,
        "headers": "\n".join(f'headers["{k}"] = "{v}"' for k, v in headers.items()),
        "extra": "\n".join(f'extra["{k}"] = "{v}"' for k, v in (extra_headers or {}).items()),
        "bodies": ",\n".join("  " + _lua_string(b.decode()) for b, _ in bodies),
        "flagged": ", ".join("true" if flag else "false" for _, flag in bodies),
        "subjects": ", ".join(f'"{s}"' for s in _FRESH_SUBJECTS),
        "aspects": ", ".join(f'"{a}"' for a in _FRESH_ASPECTS),
        "fresh": fresh,
        "model": model,
        "cache_header": cache_header.lower(),
        "similarity_header": similarity_header.lower(),
    }
    path.write_text(lua)
    return path


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int,
    duration: float,
    threads: int = 1,
    timeout: float = 10.0,
    proxy_cpu: Any = None,
) -> dict[str, Any]:
    """Run wrk; returns its JSON line plus req/s and the CPU seconds wrk and (when
    ``proxy_cpu`` is a callable returning them) the proxy used meanwhile."""
    if WRK is None:
        raise RuntimeError("wrk is not installed (apt-get install -y wrk)")
    args = [
        WRK,
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={timeout:g}s",
        "-s",
        str(script),
        url,
    ]
    cpu_before = proxy_cpu() if proxy_cpu else None
    started = time.monotonic()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    out = process.stdout.read().decode() if process.stdout else ""
    err = process.stderr.read().decode() if process.stderr else ""
    if process.returncode:
        raise RuntimeError(f"wrk failed ({process.returncode}): {err or out}")
    line = next((x for x in out.splitlines() if x.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result:\n{out}\n{err}")
    result: dict[str, Any] = json.loads(line[len("WRKJSON ") :])
    seconds = result["duration_us"] / 1e6
    result["rps"] = result["requests"] / seconds if seconds else 0.0
    result["hit_ratio"] = result["hits"] / result["requests"] if result["requests"] else 0.0
    result["hits_per_second"] = result["hits"] / seconds if seconds else 0.0
    result["connections"] = connections
    result["wrk_cpu_seconds"] = usage.ru_utime + usage.ru_stime
    result["wall_seconds"] = wall
    if cpu_before is not None:
        result["proxy_cpu_seconds"] = proxy_cpu() - cpu_before
    return result
