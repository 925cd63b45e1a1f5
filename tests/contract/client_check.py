"""Calls every endpoint of a running ghmetrics through the client that
openapi-python-client generated from its OpenAPI document (tests/contract/client.sh)."""

import inspect
import json
import sys
from datetime import datetime, timezone

import httpx

from ghmetrics_client import Client
from ghmetrics_client.api.charts import (
    visualization, visualization_timeline, visualization_timeline_v1, visualization_v1)
from ghmetrics_client.api.metrics import (
    average_pr_time, average_pr_time_v1, coverage, coverage_v1, event_counts, event_counts_v1,
    pr_counts, pr_counts_v1, top, top_v1)
from ghmetrics_client.api.operations import health
import ghmetrics_client.models as models
from ghmetrics_client.models import ErrorBody, Health

base = sys.argv[1]
client = Client(base_url=base)
raw = httpx.Client(base_url=base)
checked = 0

def normal(answer):
    """Times as datetimes: the client writes `+00:00` where the API wrote `Z`."""
    return {key: datetime.fromisoformat(value) if key.endswith("_at") and value else value
            for key, value in answer.items()}

def same(typed, path):
    """A typed answer equals the raw JSON of the same request."""
    global checked
    expected = raw.get(path).json()
    assert normal(typed.to_dict()) == normal(expected), f"{path}: {typed.to_dict()} != {expected}"
    checked += 1

# Every fixture event lies within this many minutes of now.
minutes = 10_000_000
for counts, pr, average in [(event_counts, pr_counts, average_pr_time),
                            (event_counts_v1, pr_counts_v1, average_pr_time_v1)]:
    prefix = "" if counts is event_counts else "/v1"
    same(counts.sync(client=client, offset_minutes=minutes),
         f"{prefix}/metrics/event-counts?offset_minutes={minutes}")
    ranking = pr.sync(client=client, limit=3)
    same(ranking, f"{prefix}/metrics/pr-counts?limit=3")
    busiest = next(iter(ranking.to_dict()))
    same(average.sync(client=client, repo_name=busiest),
         f"{prefix}/metrics/average-pr-time?repo_name={busiest}")
    # An absolute window, as datetimes.
    start, end = datetime(2021, 7, 21, 6, tzinfo=timezone.utc), datetime(2021, 7, 21, 10, tzinfo=timezone.utc)
    same(counts.sync(client=client, from_=start, to=end),
         f"{prefix}/metrics/event-counts?from=2021-07-21T06:00:00Z&to=2021-07-21T10:00:00Z")
    # Without bots, and one repository (any case).
    same(counts.sync(client=client, offset_minutes=minutes, exclude_bots=True),
         f"{prefix}/metrics/event-counts?offset_minutes={minutes}&exclude_bots=true")
    same(counts.sync(client=client, offset_minutes=minutes, repo_name=busiest.upper()),
         f"{prefix}/metrics/event-counts?offset_minutes={minutes}&repo_name={busiest.upper()}")
    same(pr.sync(client=client, limit=3, exclude_bots=True),
         f"{prefix}/metrics/pr-counts?limit=3&exclude_bots=true")
    same(average.sync(client=client, repo_name=busiest, exclude_bots=True),
         f"{prefix}/metrics/average-pr-time?repo_name={busiest}&exclude_bots=true")
    refused = counts.sync(client=client, offset_minutes=0)
    assert isinstance(refused, ErrorBody) and "offset_minutes" in refused.detail, refused
    checked += 1

# top, for every type, through the generated enum of `type`.
for rank, prefix, type_model in [(top, "", "TopType"), (top_v1, "/v1", "TopV1Type")]:
    kind = getattr(models, type_model)
    for event_type in ["WatchEvent", "PullRequestEvent", "IssuesEvent"]:
        same(rank.sync(client=client, type_=kind(event_type), limit=5, offset_minutes=minutes),
             f"{prefix}/metrics/top?type={event_type}&limit=5&offset_minutes={minutes}")
        same(rank.sync(client=client, type_=kind(event_type), limit=5, offset_minutes=minutes,
                       exclude_bots=True),
             f"{prefix}/metrics/top?type={event_type}&limit=5&offset_minutes={minutes}&exclude_bots=true")

assert isinstance(health.sync(client=client), Health)
checked += 1
for cover, prefix in [(coverage, ""), (coverage_v1, "/v1")]:
    same(cover.sync(client=client, from_=datetime(2015, 1, 1, tzinfo=timezone.utc)),
         f"{prefix}/coverage?from=2015-01-01T00:00:00Z")

signatures = {"png": b"\x89PNG\r\n\x1a\n", "svg": b"<svg"}
for chart in [visualization, visualization_v1, visualization_timeline, visualization_timeline_v1]:
    module_format = {
        visualization: "VisualizationFormat",
        visualization_v1: "VisualizationV1Format",
        visualization_timeline: "VisualizationTimelineFormat",
        visualization_timeline_v1: "VisualizationTimelineV1Format",
    }[chart]
    format_type = getattr(models, module_format)
    # The chart is an image to the client, not a list of numbers.
    answer_type = str(inspect.signature(chart.sync).return_annotation)
    assert "list" not in answer_type, (chart.__name__, answer_type)
    for name, signature in signatures.items():
        body = chart.sync(client=client, offset_minutes=60, format_=format_type(name))
        assert isinstance(body, bytes) and body.startswith(signature), (chart.__name__, name, body[:20])
        checked += 1
        body = chart.sync(client=client, offset_minutes=60, format_=format_type(name), exclude_bots=True)
        assert isinstance(body, bytes) and body.startswith(signature), (chart.__name__, name, body[:20])
        checked += 1
# One repository's timeline as data, its running totals.
for timeline, prefix, model in [(visualization_timeline, "", "VisualizationTimelineFormat"),
                                (visualization_timeline_v1, "/v1", "VisualizationTimelineV1Format")]:
    query = f"offset_minutes={minutes}&bucket_minutes=1000000&format=json&cumulative=true&repo_name={busiest}&exclude_bots=true"
    answer = timeline.sync_detailed(client=client, offset_minutes=minutes, bucket_minutes=1_000_000,
                                    format_=getattr(models, model)("json"), cumulative=True,
                                    repo_name=busiest, exclude_bots=True)
    assert answer.status_code == 200, answer
    assert json.loads(answer.content) == raw.get(f"{prefix}/metrics/visualization/timeline?{query}").json()
    checked += 1

print(f"client_check: {checked} calls through the generated client answered as the API does")
