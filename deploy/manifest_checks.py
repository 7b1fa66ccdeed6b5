"""Checks of the rendered Kubernetes manifests that need no cluster (run by deploy/validate.sh).

Schemas: every resource of a built-in kind is validated with kubernetes-validate (strict: no
unknown fields) for each Kubernetes version asked for. Strimzi kinds have no schema offline and
are skipped with a note; their content is covered by Tandem's invariants instead:

- the KafkaTopics are exactly the topics of shared/src/tandem_shared/topics.py, with the same
  partition counts, replication factor 3 and min.insync.replicas 2, and so is the compose
  stack's topic script;
- the Kafka cluster has at least three nodes, default replication factor 3, min ISR 2;
- no Secret is defined (references only) and every secret key referenced is documented in
  docs/deploy.md;
- the Kustomize base's configuration copies equal config/example/ and are all in the ConfigMap;
- docker-compose.yml passes every webhook secret variable sources.yaml names to ingest.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import kubernetes_validate
import yaml

Resource = dict[str, Any]

CRD_GROUPS = ("kafka.strimzi.io/",)
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2
SECRET_NAMES = ("tandem-secrets", "tandem-ingest-webhooks")
TOPIC_LINE = re.compile(r"^(tandem\.[a-z0-9.-]+) (\d+)$")


@dataclass
class Report:
    """Failures and notes collected over all checks."""

    failures: list[str]
    notes: list[str]

    def fail(self, message: str) -> None:
        """Record a failure."""
        self.failures.append(message)

    def note(self, message: str) -> None:
        """Record something worth printing that is not a failure."""
        self.notes.append(message)


def load_resources(path: Path) -> list[Resource]:
    """Return the resources of a multi-document YAML file."""
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def describe(resource: Resource) -> str:
    """Return kind/namespace/name of a resource."""
    meta = resource.get("metadata", {})
    return f"{resource.get('kind')}/{meta.get('namespace', '-')}/{meta.get('name')}"


def is_custom(resource: Resource) -> bool:
    """Tell whether a resource is of a custom kind with no schema offline."""
    return str(resource.get("apiVersion", "")).startswith(CRD_GROUPS)


def check_schemas(
    overlay: str, resources: list[Resource], versions: Iterable[str], report: Report
) -> None:
    """Validate every built-in resource against the Kubernetes schemas of each version."""
    skipped = sorted({r["kind"] for r in resources if is_custom(r)})
    if skipped:
        report.note(
            f"{overlay}: no offline schema for {', '.join(skipped)} (Strimzi CRDs): skipped"
        )
    checked = [r for r in resources if not is_custom(r)]
    for version in versions:
        for resource in checked:
            try:
                kubernetes_validate.validate(resource, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                report.fail(f"{overlay} k8s {version}: {describe(resource)} {where}: {exc.message}")
            except kubernetes_validate.SchemaNotFoundError:
                report.fail(f"{overlay} k8s {version}: {describe(resource)}: unknown kind")
        report.note(f"{overlay}: {len(checked)} resources checked against Kubernetes {version}")


def load_topics_module(root: Path) -> ModuleType:
    """Import tandem_shared/topics.py by path (it needs nothing but the standard library)."""
    path = root / "shared/src/tandem_shared/topics.py"
    spec = importlib.util.spec_from_file_location("tandem_topics", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


def expected_topics(root: Path) -> dict[str, int]:
    """Return topic name -> partitions as topics.py declares them."""
    module = load_topics_module(root)
    return {spec.name: spec.partitions for spec in module.ALL_TOPICS}


def check_kafka(
    overlay: str, resources: list[Resource], topics: dict[str, int], report: Report
) -> None:
    """Check the Strimzi cluster and topics against topics.py and the durability settings."""
    clusters = [r for r in resources if r["kind"] == "Kafka"]
    if len(clusters) != 1:
        report.fail(f"{overlay}: expected one Kafka resource, found {len(clusters)}")
        return
    cluster = clusters[0]
    name = cluster["metadata"]["name"]
    config = cluster["spec"]["kafka"].get("config", {})
    if config.get("default.replication.factor") != REPLICATION_FACTOR:
        report.fail(f"{overlay}: Kafka default.replication.factor is not {REPLICATION_FACTOR}")
    if config.get("min.insync.replicas") != MIN_INSYNC_REPLICAS:
        report.fail(f"{overlay}: Kafka min.insync.replicas is not {MIN_INSYNC_REPLICAS}")
    nodes = sum(
        r["spec"]["replicas"]
        for r in resources
        if r["kind"] == "KafkaNodePool"
        and r["metadata"]["labels"].get("strimzi.io/cluster") == name
    )
    if nodes < REPLICATION_FACTOR:
        report.fail(f"{overlay}: {nodes} Kafka nodes cannot hold replication factor 3")

    declared: dict[str, int] = {}
    for topic in (r for r in resources if r["kind"] == "KafkaTopic"):
        meta, spec = topic["metadata"], topic["spec"]
        topic_name = spec.get("topicName", meta["name"])
        declared[topic_name] = spec["partitions"]
        if meta.get("labels", {}).get("strimzi.io/cluster") != name:
            report.fail(f"{overlay}: KafkaTopic {topic_name} is not labelled for cluster {name}")
        if spec.get("replicas") != REPLICATION_FACTOR:
            report.fail(f"{overlay}: KafkaTopic {topic_name} replicas is not {REPLICATION_FACTOR}")
        if spec.get("config", {}).get("min.insync.replicas") != MIN_INSYNC_REPLICAS:
            report.fail(f"{overlay}: KafkaTopic {topic_name} min.insync.replicas is not 2")
    compare_topics(f"{overlay} KafkaTopics", declared, topics, report)


def compare_topics(
    what: str, declared: dict[str, int], expected: dict[str, int], report: Report
) -> None:
    """Fail on topics missing, extra or with other partition counts than topics.py."""
    for name in sorted(expected.keys() - declared.keys()):
        report.fail(f"{what}: topic {name} of topics.py is missing")
    for name in sorted(declared.keys() - expected.keys()):
        report.fail(f"{what}: topic {name} is not in topics.py")
    for name in sorted(expected.keys() & declared.keys()):
        if declared[name] != expected[name]:
            report.fail(
                f"{what}: {name} has {declared[name]} partitions, topics.py says {expected[name]}"
            )


def compose_topics(script: Path) -> dict[str, int]:
    """Return the topics the compose stack's creation script declares."""
    lines = (line.strip() for line in script.read_text(encoding="utf-8").splitlines())
    return {m[1]: int(m[2]) for m in (TOPIC_LINE.match(line) for line in lines) if m}


def secret_refs(resources: list[Resource]) -> Iterator[tuple[str, str, str | None]]:
    """Yield (resource, secret name, key or None for a whole-Secret envFrom) of every reference."""
    for resource in resources:
        pod = resource.get("spec", {}).get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    yield describe(resource), ref["name"], ref["key"]
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    yield describe(resource), source["secretRef"]["name"], None


def check_secrets(overlay: str, resources: list[Resource], deploy_doc: str, report: Report) -> None:
    """Fail on Secrets defined in the manifests and on undocumented secret references."""
    for resource in resources:
        if resource["kind"] == "Secret":
            report.fail(f"{overlay}: {describe(resource)} defines a Secret; reference one instead")
    for where, name, key in secret_refs(resources):
        if name not in SECRET_NAMES:
            report.fail(f"{overlay}: {where} references Secret {name}, not one of {SECRET_NAMES}")
        elif key is not None and f"`{key}`" not in deploy_doc:
            report.fail(
                f"{overlay}: {where} uses key {key} of {name}, not listed in docs/deploy.md"
            )


def check_config_copies(root: Path, report: Report) -> None:
    """Fail when the base's configuration copies drift from config/example/."""
    example = root / "config/example"
    copies = root / "deploy/k8s/base/config"
    hint = "run deploy/validate.sh --sync-config"
    for source in sorted(example.glob("*.yaml")):
        copy = copies / source.name
        if not copy.exists():
            report.fail(f"deploy/k8s/base/config/{source.name} is missing: {hint}")
        elif copy.read_bytes() != source.read_bytes():
            report.fail(f"deploy/k8s/base/config/{source.name} differs from config/example: {hint}")
    kustomization = yaml.safe_load((root / "deploy/k8s/base/kustomization.yaml").read_text())
    generator = next(g for g in kustomization["configMapGenerator"] if g["name"] == "tandem-config")
    listed = {Path(f).name for f in generator["files"]}
    for copy in sorted(copies.glob("*.yaml")):
        if copy.name not in listed:
            report.fail(f"deploy/k8s/base/config/{copy.name} is not in the tandem-config generator")


def check_compose_webhook_secrets(root: Path, report: Report) -> None:
    """Fail when compose's ingest lacks a secret variable that sources.yaml names."""
    sources = yaml.safe_load((root / "config/example/sources.yaml").read_text(encoding="utf-8"))
    names = {name for source in sources["sources"] for name in source.get("secrets", [])}
    compose = yaml.safe_load((root / "docker-compose.yml").read_text(encoding="utf-8"))
    passed = set(compose["services"]["ingest"].get("environment", {}))
    for name in sorted(names - passed):
        report.fail(f"docker-compose.yml: ingest does not pass {name}, a secret of sources.yaml")


def main(argv: list[str] | None = None) -> int:
    """Run every check on the rendered overlays; print notes and failures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rendered", nargs="+", type=Path, help="rendered overlay files")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--k8s-versions", nargs="+", default=["1.31.0", "1.37.0"])
    args = parser.parse_args(argv)

    report = Report(failures=[], notes=[])
    topics = expected_topics(args.root)
    deploy_doc = (args.root / "docs/deploy.md").read_text(encoding="utf-8")
    for path in args.rendered:
        overlay = path.stem
        resources = load_resources(path)
        check_schemas(overlay, resources, args.k8s_versions, report)
        check_kafka(overlay, resources, topics, report)
        check_secrets(overlay, resources, deploy_doc, report)
    script = args.root / "deploy/compose/create-topics.sh"
    compare_topics("compose create-topics.sh", compose_topics(script), topics, report)
    check_config_copies(args.root, report)
    check_compose_webhook_secrets(args.root, report)

    for note in report.notes:
        print(f"   note: {note}")  # noqa: T201 - a command-line report
    for failure in report.failures:
        print(f"   FAIL: {failure}")  # noqa: T201
    if report.failures:
        return 1
    print(f"   ok: {len(topics)} topics match topics.py; configuration copies in sync")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
