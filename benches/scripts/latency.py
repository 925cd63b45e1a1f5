#!/usr/bin/env python3
"""Latency of the metric endpoints over HTTP: `samples` sequential requests per
case, each with parameters not asked before (so the answer cache serves none),
p50 and p90 in milliseconds. Windows ending now are compared with windows of the
same length anywhere in the stored span, side by side in one run.

    latency.py BASE_URL SAMPLES FIRST LAST [REPO...] [--pr-counts-only] [--only=WORD]

FIRST and LAST: epoch seconds of the stored data's span; REPO: repositories for
average-pr-time (e.g. the largest).
"""
import os, random, statistics, sys, time, urllib.request
from datetime import datetime, timezone

args = [a for a in sys.argv[1:] if not a.startswith("--")]
base, samples, first, last, repos = args[0], int(args[1]), int(args[2]), int(args[3]), args[4:]
rng = random.Random(int(os.environ.get("SEED", "1")))
DAY = 86400


def iso(second):
    return datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def timed(path):
    started = time.perf_counter()
    with urllib.request.urlopen(base + path) as answer:
        answer.read()
        assert answer.status == 200, path
    return (time.perf_counter() - started) * 1000


def any_day():
    """A one-day window anywhere in the data, starting at any second."""
    start = rng.randint(first, max(first, last - DAY))
    return f"from={iso(start)}&to={iso(start + DAY)}"


def day_ending_now(i):
    """A window of a day (and i seconds) ending now: a new one each request."""
    return f"from={iso(int(time.time()) - DAY - i)}"


def repo(i):
    return repos[i % len(repos)] if repos else f"org{(r := rng.randint(1, 1_000_000)) % 9973}/repo{r}"


cases = {
    "event-counts (1 h .. 30 d windows)": lambda i: f"/metrics/event-counts?offset_minutes={rng.randint(60, 43200)}",
    "event-counts (whole history)": lambda i: f"/metrics/event-counts?offset_minutes={10_000_000 + i}",
    "event-counts (a day ending now)": lambda i: f"/metrics/event-counts?{day_ending_now(i)}",
    "event-counts (any day)": lambda i: f"/metrics/event-counts?{any_day()}",
    "average-pr-time (the largest repositories)": lambda i: f"/metrics/average-pr-time?repo_name={repo(i)}",
    "average-pr-time (the same, any day)": lambda i: f"/metrics/average-pr-time?repo_name={repo(i)}&{any_day()}",
    "average-pr-time (random repository)": lambda i: f"/metrics/average-pr-time?repo_name=org{(r := rng.randint(1, 1_000_000)) % 9973}/repo{r}",
    "pr-counts?limit=100..": lambda i: f"/metrics/pr-counts?limit={(100 + samples if '--pr-counts-only' in sys.argv else 100) + i}",
    "pr-counts?limit=100 (any day)": lambda i: f"/metrics/pr-counts?limit=100&{any_day()}",
    "timeline (24 h ending now, svg)": lambda i: f"/metrics/visualization/timeline?{day_ending_now(i)}&format=svg",
    "timeline (any day, svg)": lambda i: f"/metrics/visualization/timeline?{any_day()}&format=svg",
    "health": lambda i: "/health",
}
only = [name for name in cases if name.startswith("pr-counts?limit=100")] if "--pr-counts-only" in sys.argv else list(cases)
words = [a.split("=", 1)[1] for a in sys.argv if a.startswith("--only=")]
only = [name for name in only if not words or any(word in name for word in words)]
for name in only:
    times = sorted(timed(cases[name](i)) for i in range(samples))
    print(f"  {name:44} p50 {statistics.median(times):8.1f} ms   p90 {times[int(0.9 * len(times))]:8.1f} ms", flush=True)
