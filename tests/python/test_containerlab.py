"""The containerlab reference fabric ships as files users deploy elsewhere (no Docker here):
check that they hang together — every bind source exists, the leaves and links match the
reference fabric, and the opergroupd config it points at is valid for `opergroupd check`."""

import os
import pathlib
import subprocess

import yaml

LAB = pathlib.Path(__file__).resolve().parents[2] / "lab" / "containerlab"
ROOT = LAB.parents[1]


def topology():
    return yaml.safe_load((LAB / "opergroup.clab.yml").read_text())


def test_every_bind_source_exists():
    nodes = topology()["topology"]["nodes"]
    binds = [b for n in nodes.values() for b in (n or {}).get("binds", [])]
    assert binds, "the monitoring nodes bind their configuration"
    for b in binds:
        source = (LAB / b.split(":")[0]).resolve()
        assert source.exists(), f"bind source missing: {b}"


def test_reference_fabric_shape():
    t = topology()["topology"]
    leaves = [n for n in t["nodes"] if n.startswith("leaf")]
    assert sorted(leaves) == ["leaf1", "leaf2", "leaf3", "leaf4"]
    links = {tuple(l["endpoints"]) for l in t["links"]}
    for k in range(1, 5):
        assert (f"leaf{k}:e1-49", f"spine1:e1-{k}") in links
        assert (f"leaf{k}:e1-50", f"spine2:e1-{k}") in links


def test_grafana_is_provisioned_with_the_shipped_dashboard():
    grafana = topology()["topology"]["nodes"]["grafana"]
    assert any(b.startswith("../../deploy/grafana/opergroupd.json:") for b in grafana["binds"])
    provider = yaml.safe_load((LAB / "monitoring/grafana/provisioning/dashboards/opergroupd.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert any(b.split(":")[1].startswith(path) for b in grafana["binds"])


def test_the_lab_config_passes_check():
    binary = os.environ.get("OPERGROUPD_BIN", str(ROOT / "target" / "debug" / "opergroupd"))
    env = dict(os.environ, GNMI_PASSWORD="NokiaSrl1!")
    out = subprocess.run([binary, "check", "--config", str(LAB / "opergroupd.yaml")], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "leaf4-es2" in out.stdout
