"""/metrics output parses with prometheus_client's parsers, and the Grafana dashboard
references only metrics it exports.

The sample comes from the Rust test tests/status_metrics.rs, which renders the real
/metrics endpoint after driving the status board through every kind of call. Order:
either run `cargo test -p opergroupd --test status_metrics` first and point
OPERGROUPD_METRICS_SAMPLE at the file it wrote (default target/metrics-sample.txt),
or let this test run that cargo test itself (it does when the variable is unset).
"""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_classic

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "opergroupd.json"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    given = os.environ.get("OPERGROUPD_METRICS_SAMPLE")
    if given:
        path = Path(given)
        assert path.is_file(), f"OPERGROUPD_METRICS_SAMPLE={given} does not exist"
        return path.read_text()
    path = tmp_path_factory.mktemp("metrics") / "metrics-sample.txt"
    env = dict(os.environ, OPERGROUPD_METRICS_SAMPLE=str(path))
    run = subprocess.run(
        ["cargo", "test", "-q", "-p", "opergroupd", "--test", "status_metrics", "--", "every_family"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, f"cargo test failed:\n{run.stdout}\n{run.stderr}"
    return path.read_text()


def families(text):
    return {f.name: f for f in parse_openmetrics(text)}


def value(family, **labels):
    matches = [s.value for s in family.samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(matches) == 1, f"{family.name} {labels}: {matches}"
    return matches[0]


def test_openmetrics_parser_reads_every_family(sample):
    fams = families(sample)
    assert fams["opergroupd_sets"].type == "counter"
    assert value(fams["opergroupd_sets"], group="leaf1-es1", result="ok") == 1
    assert value(fams["opergroupd_sets"], group="leaf1-es1", result="failed") == 1
    assert value(fams["opergroupd_set_retries"], group="leaf1-es1") == 1
    assert value(fams["opergroupd_group_state"], group="leaf1-es1", state="unhealthy") == 1
    assert value(fams["opergroupd_group_state"], group="leaf2-es1", state="not-ready") == 1
    assert value(fams["opergroupd_group_enforcement"], group="leaf2-es1", state="observe-only") == 1
    assert value(fams["opergroupd_target_up"], target="leaf1") == 1
    assert value(fams["opergroupd_target_reconnects"], target="leaf2") == 1
    assert value(fams["opergroupd_role"], role="leader") == 1
    assert value(fams["opergroupd_service_state"], service="dns-anycast", state="up") == 1
    assert fams["opergroupd_build"].type == "info"


def test_latency_histogram_is_well_formed(sample):
    hist = families(sample)["opergroupd_decision_to_set_seconds"]
    assert hist.type == "histogram"
    buckets = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels["group"] == "leaf1-es1"]
    bounds = [float(s.labels["le"]) for s in buckets]
    assert bounds == sorted(bounds) and bounds[0] == 0.0001 and bounds[-2] == 10.0
    assert bounds[-1] == float("inf")
    counts = [s.value for s in buckets]
    assert counts == sorted(counts), "cumulative buckets never decrease"
    # One ok Set (7 ms after the decision) and one dry-run (0 ms); the failure adds nothing.
    assert counts[-1] == 2
    assert counts[bounds.index(0.005)] == 1 and counts[bounds.index(0.01)] == 2


def test_classic_prometheus_parser_reads_it_too(sample):
    names = {f.name for f in parse_classic(sample)}
    assert "opergroupd_decision_to_set_seconds" in names
    assert any(n.startswith("opergroupd_sets") for n in names)


def test_dashboard_references_only_exported_metrics(sample):
    exported = {s.name for f in parse_openmetrics(sample) for s in f.samples}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr" and isinstance(v, str):
                    exprs.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(dashboard)
    referenced = {m for e in exprs for m in re.findall(r"opergroupd_[A-Za-z0-9_:]*", e)}
    assert referenced, "dashboard charts no opergroupd metric"
    assert referenced <= exported, f"not exported: {sorted(referenced - exported)}"


# --- A sample captured from a live run -------------------------------------------------
# tests/ops_status.rs runs the real controller against fabric-sim (both uplinks of leaf1
# fail: one Set; then leaf1's streams are dropped: one reconnect) and writes /metrics as
# served at the end to OPERGROUPD_LIVE_METRICS_SAMPLE. Point that variable at an existing
# file to skip the cargo run.


@pytest.fixture(scope="module")
def live_sample(tmp_path_factory):
    given = os.environ.get("OPERGROUPD_LIVE_METRICS_SAMPLE")
    if given and Path(given).is_file():
        return Path(given).read_text()
    path = tmp_path_factory.mktemp("live") / "live-metrics.txt"
    env = dict(os.environ, OPERGROUPD_LIVE_METRICS_SAMPLE=str(path))
    run = subprocess.run(
        ["cargo", "test", "-q", "-p", "opergroupd", "--test", "ops_status", "--",
         "readiness_an_outage_and_a_reconnect"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1200,
    )
    assert run.returncode == 0, f"cargo test failed:\n{run.stdout}\n{run.stderr}"
    assert path.is_file(), "ops_status did not write the live sample"
    return path.read_text()


def test_a_live_sample_parses_and_says_what_happened(live_sample):
    assert live_sample.rstrip().endswith("# EOF"), "OpenMetrics ends with # EOF"
    fams = families(live_sample)
    assert value(fams["opergroupd_sets"], group="leaf1-es1", result="ok") == 1
    assert value(fams["opergroupd_group_state"], group="leaf1-es1", state="unhealthy") == 1
    assert value(fams["opergroupd_group_state"], group="leaf2-es1", state="healthy") == 1
    assert value(fams["opergroupd_target_reconnects"], target="leaf1") == 1
    assert value(fams["opergroupd_target_reconnects"], target="leaf2") == 0
    assert value(fams["opergroupd_target_up"], target="leaf1") == 1
    assert value(fams["opergroupd_role"], role="single") == 1
    assert value(fams["opergroupd_downlink_desired_enabled"], group="leaf1-es1", interface="ethernet-1/1") == 0
    assert value(fams["opergroupd_notifications"], target="leaf1") > 0
    hist = fams["opergroupd_decision_to_set_seconds"]
    count = [s.value for s in hist.samples if s.name.endswith("_count") and s.labels["group"] == "leaf1-es1"]
    assert count == [1], "exactly one decision-to-Set sample"
    total = [s.value for s in hist.samples if s.name.endswith("_sum") and s.labels["group"] == "leaf1-es1"]
    assert 0 < total[0] < 5, f"one Set's latency in seconds: {total}"
    names = {f.name for f in parse_classic(live_sample)}
    assert "opergroupd_notification_to_decision_seconds" in names


def test_the_dashboard_charts_only_what_a_live_controller_exports(live_sample):
    exported = {s.name for f in parse_openmetrics(live_sample) for s in f.samples}
    dashboard = json.loads(DASHBOARD.read_text())
    referenced = set(re.findall(r"opergroupd_[A-Za-z0-9_:]*", json.dumps(dashboard)))
    # Service metrics exist only with ExaBGP services, which `run` does not start.
    missing = {m for m in referenced - exported if not m.startswith("opergroupd_service_")}
    assert not missing, f"not exported by a live controller: {sorted(missing)}"
