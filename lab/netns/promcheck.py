"""A real Prometheus (Debian's) in og-mgmt scraping opergroupd, and the dashboard check:
every expression of deploy/grafana/opergroupd.json is evaluated against it; a query error,
or an empty result for an expression that must have data, is a failure."""

import json
import subprocess
import urllib.parse

import conditions as c
import fabric

LISTEN = "127.0.0.1:9190"
# Grafana's interval variables, as a 1 s scrape makes them.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "1s", "$__range": "5m"}


def expressions(dashboard):
    found = []

    def walk(o, title):
        if isinstance(o, dict):
            title = o.get("title", title)
            if isinstance(o.get("expr"), str):
                found.append((title, o["expr"]))
            for v in o.values():
                walk(v, title)
        elif isinstance(o, list):
            for v in o:
                walk(v, title)

    walk(json.loads(dashboard.read_text()), "")
    return found


class Prometheus:
    def __init__(self, directory, opergroupd_http):
        directory.mkdir(parents=True, exist_ok=True)
        conf = directory / "prometheus.yml"
        conf.write_text(
            "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
            "scrape_configs:\n"
            f"  - job_name: opergroupd\n    static_configs: [{{ targets: ['{opergroupd_http}'] }}]\n")
        self.log = open(directory / "prometheus.log", "w")
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", fabric.MGMT, "prometheus", f"--config.file={conf}",
             f"--storage.tsdb.path={directory / 'data'}", f"--web.listen-address={LISTEN}"],
            stdout=self.log, stderr=self.log)
        ready = c.Condition("Prometheus: /-/ready answers",
                            lambda look: (self.get("/-/ready") is not None, f"no answer; see {self.log.name}"))
        c.wait_until("Prometheus to start", [ready], 30)

    def get(self, path):
        from experiment import http_get

        return http_get(f"{LISTEN}{path}")

    def query(self, expr):
        body = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body is None:
            return None, "no answer (HTTP error: a bad query answers 400)"
        doc = json.loads(body)
        if doc.get("status") != "success":
            return None, doc.get("error", "unknown error")
        return doc["data"]["result"], None

    def check_dashboard(self, dashboard):
        # The scrape must have data first: opergroupd up for a few scrapes.
        c.wait_until("Prometheus to scrape opergroupd", [c.Condition(
            'Prometheus: up{job="opergroupd"} == 1', lambda look: (bool(self.query('up{job="opergroupd"} == 1')[0]),
                                                                   "no such series yet"))], 30)
        failures, results = [], []
        for title, expr in expressions(dashboard):
            q = expr
            for k, v in VARIABLES.items():
                q = q.replace(k, v)
            res, err = self.query(q)
            if err:
                failures.append(f"{title}: {expr}: {err}")
            elif not res:
                failures.append(f"{title}: {expr}: empty result, but opergroupd ran and changed state")
            results.append({"panel": title, "expr": expr, "series": len(res or []), "error": err})
        return {"checked": len(results), "failures": failures, "results": results}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
