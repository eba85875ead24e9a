"""The deployment manifests: generated from the code, buildable, valid Kubernetes, and complete."""

from __future__ import annotations

import base64
import copy
import functools
import os
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import SecretStr

from siyu_shared.app import create_app
from siyu_shared.db.engine import create_engine
from siyu_shared.events.topics import DEFAULT_PARTITIONS, TopicNames
from siyu_shared.service import READINESS, ServiceSpec, build_runtime
from siyu_shared.services import SERVICES, role_of
from siyu_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
K8S_VERSION = "1.33"
OPERATOR_GROUPS = {"postgresql.cnpg.io", "kafka.strimzi.io"}  # custom resources, validated against their CRDs
sys.path.insert(0, str(ROOT / "deploy"))
import render  # noqa: E402
import tools  # noqa: E402

TAGS = {"dev": render.DEV_TAG, "prod": render.PROD_TAG}  # the image tag each overlay deploys


@pytest.fixture(scope="session")
def kustomize() -> str:
    """The pinned kustomize (``deploy/tools.py``, which ``make test`` runs first; here only if it has not)."""
    try:
        return str(tools.kustomize())
    except tools.ToolError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def crd_schemas() -> dict[str, dict[str, Any]]:
    """Each custom kind's OpenAPI schema from its operator's pinned CRD, strict (unknown fields are errors)."""
    schemas = {}
    for kind, path in tools.crd_files().items():
        (crd,) = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert crd["spec"]["names"]["kind"] == kind
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schemas[f"{api_version}/{kind}"] = strict(version["schema"]["openAPIV3Schema"])
    return schemas


def strict(schema: Any) -> Any:
    """The schema with ``additionalProperties: false`` on every object that lists its properties and does not keep
    unknown fields: the API server would silently prune a misspelt field; the test reports it."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def validate_custom(doc: dict[str, Any], schemas: dict[str, dict[str, Any]]) -> None:
    schema = schemas[f"{doc['apiVersion']}/{doc['kind']}"]
    body = {**doc, "metadata": {}}  # metadata is checked by the API server, not the CRD's schema
    jsonschema.Draft7Validator(schema).validate(body)


def build(kustomize: str, overlay: str) -> list[dict[str, Any]]:
    return list(_build(kustomize, overlay))


@functools.cache
def _build(kustomize: str, overlay: str) -> tuple[dict[str, Any], ...]:
    out = subprocess.run(
        [kustomize, "build", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def test_generated_files_are_up_to_date() -> None:
    assert render.main(["--check"]) == 0, "run: .venv/bin/python deploy/render.py"


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_overlays_build_and_validate_against_the_kubernetes_schemas(
    kustomize: str, crd_schemas: dict[str, dict[str, Any]], overlay: str
) -> None:
    docs = build(kustomize, overlay)
    custom = [d for d in docs if d["apiVersion"].split("/")[0] in OPERATOR_GROUPS]
    builtin = [d for d in docs if d not in custom]
    assert len(builtin) >= len(SERVICES) * 10
    for doc in builtin:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    for doc in custom:
        if doc["apiVersion"].startswith("kafka.strimzi.io/"):
            continue  # no registry carries Strimzi's CRDs (see deploy/README.md)
        validate_custom(doc, crd_schemas)
    assert any(d["kind"] == "Cluster" for d in custom)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for service in SERVICES:
        for kind, name in [
            ("Deployment", f"{service}-api"),
            ("Deployment", f"{service}-worker"),
            ("Service", service),
            ("HorizontalPodAutoscaler", f"{service}-api"),
            ("HorizontalPodAutoscaler", f"{service}-worker"),
            ("PodDisruptionBudget", f"{service}-api"),
            ("PodDisruptionBudget", f"{service}-worker"),
            ("NetworkPolicy", service),
            ("ServiceAccount", service),
            ("Job", f"{service}-migrate-{TAGS[overlay]}"),
        ]:
            assert (kind, name) in kinds, (overlay, kind, name)


def test_every_topic_and_dlq_has_a_kafka_topic(kustomize: str) -> None:
    docs = build(kustomize, "prod")
    topics = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    assert set(topics) == set(TopicNames().all())
    assert {spec["partitions"] for spec in topics.values()} == {DEFAULT_PARTITIONS}


def test_postgres_cluster_has_a_role_and_schema_per_service(kustomize: str) -> None:
    (cluster,) = [d for d in build(kustomize, "prod") if d["kind"] == "Cluster"]
    roles = {r["name"] for r in cluster["spec"]["managed"]["roles"]}
    assert roles == {role_of(s) for s in SERVICES}
    sql = "\n".join(cluster["spec"]["bootstrap"]["initdb"]["postInitApplicationSQL"])
    for service in SERVICES:
        assert f'CREATE SCHEMA "{service}" AUTHORIZATION {role_of(service)}' in sql


def test_postgres_admits_every_pod_at_its_hpa_ceiling(kustomize: str) -> None:
    docs = build(kustomize, "prod")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    cluster = by_name[("Cluster", "siyu-postgres")]["spec"]
    limits = {r["name"]: r["connectionLimit"] for r in cluster["managed"]["roles"]}
    for service in SERVICES:
        config = by_name[("ConfigMap", f"{service}-config")]["data"]
        pool = int(config[f"{service.upper()}_DATABASE_POOL_SIZE"])
        most = sum(
            by_name[("HorizontalPodAutoscaler", f"{service}-{role}")]["spec"]["maxReplicas"]
            * render.pod_connections(service, role, pool)
            for role in ("api", "worker")
        )
        assert most <= limits[role_of(service)], service
    assert sum(limits.values()) + render.RESERVED_CONNECTIONS <= int(
        cluster["postgresql"]["parameters"]["max_connections"]
    )


def test_compose_postgres_admits_one_api_and_one_worker_of_everything() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    command = services["postgres"]["command"]
    admitted = int(command[command.index("-c") + 1].removeprefix("max_connections="))
    most = 0
    for service in SERVICES:
        assert f"{service.upper()}_DATABASE_POOL_SIZE" not in services[f"{service}-api"]["environment"]
        pool = render.pool_size(service)  # the setting's default
        most += render.pod_connections(service, "api", pool) + render.pod_connections(service, "worker", pool)
    assert most + render.RESERVED_CONNECTIONS <= admitted


def test_a_pod_opens_at_most_twice_its_pool_through_the_engine() -> None:
    """``render.pod_connections`` counts the shared engine as its pool plus as many again in overflow."""
    engine = create_engine("postgresql+asyncpg://u:p@localhost:1/db", schema="ingest", pool_size=7)
    assert engine.pool.size() == 7
    assert engine.pool._max_overflow == 7  # type: ignore[attr-defined]


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_a_service_reads_is_set_in_its_manifests(kustomize: str, service: str) -> None:
    """Each ConfigMap entry and required secret in the container's environment; each optional secret referenced,
    to be set by adding it to the Secret (the dev overlay leaves them out: those features are off)."""
    sources = render.setting_sources(service)
    docs = build(kustomize, "dev")
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    for workload in (f"{service}-api", f"{service}-worker", f"{service}-migrate-{TAGS['dev']}"):
        kind = "Job" if "-migrate-" in workload else "Deployment"
        pod = by_name[(kind, workload)]["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            where = (workload, container["name"])
            provided = set(process_env(docs, container, service))
            needed = set(sources.config) | set(sources.secrets)
            assert needed <= provided, (*where, sorted(needed - provided))
            referenced = {e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}
            assert set(sources.optional) <= referenced, (*where, sorted(set(sources.optional) - referenced))


def test_compose_runs_everything_with_migrations_first() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    created = services["kafka-topics"]["command"][0]
    for topic in TopicNames().all():
        assert f"--topic {topic} " in created
    for service in SERVICES:
        migrate = services[f"{service}-migrate"]
        assert migrate["command"] == ["migrate"]
        for role in ("api", "worker"):
            entry = services[f"{service}-{role}"]
            assert entry["depends_on"][f"{service}-migrate"]["condition"] == "service_completed_successfully"
            assert "healthcheck" in entry
            env = set(entry["environment"])
            for name, field in render.settings_class(service).model_fields.items():
                if field.is_required():  # set with the service's prefix or through the unprefixed fallback
                    assert {f"{service.upper()}_{name.upper()}", name.upper()} & env, (service, role, name)
            assert entry["environment"]["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"


# Settings a deployment sets on purpose; every other setting in a ConfigMap must parse back to its default.
DEPLOYMENT_VALUES = {"environment", "kafka_bootstrap_servers", "database_url"}


def process_env(docs: list[dict[str, Any]], container: dict[str, Any], service: str) -> dict[str, str]:
    """The environment the kubelet gives ``container``: its ConfigMaps and Secrets from the build, and for a Secret
    the operator supplies (not in the build) a dummy value for every key it must hold; optional keys stay unset."""
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    required = render.setting_sources(service).secrets
    supplied = {
        env: f"postgresql://{role_of(service)}:dummy@siyu-postgres-rw:5432/siyu"
        if env.endswith("DATABASE_URL")
        else "dummy-secret-from-the-secret-manager"
        for env in required
    }

    def secret(name: str) -> dict[str, str]:
        found = by_name.get(("Secret", name))
        if found is None:
            return supplied
        values = {k: base64.b64decode(v).decode() for k, v in found.get("data", {}).items()}
        assert all(values.values()), (name, sorted(k for k, v in values.items() if not v))
        return values

    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(by_name[("ConfigMap", source["configMapRef"]["name"])]["data"])
        if "secretRef" in source:
            env.update(secret(source["secretRef"]["name"]))
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["secretKeyRef"]
            value = secret(ref["name"]).get(ref["key"])
            if value is None:
                assert ref.get("optional"), (container["name"], entry["name"])
            else:
                env[entry["name"]] = value
        elif "configMapKeyRef" in entry.get("valueFrom", {}):
            ref = entry["valueFrom"]["configMapKeyRef"]
            env[entry["name"]] = by_name[("ConfigMap", ref["name"])]["data"][ref["key"]]
    return env


@pytest.mark.parametrize("overlay", ["dev", "prod"])
@pytest.mark.parametrize("service", SERVICES)
def test_every_workload_starts_from_its_built_environment(kustomize: str, overlay: str, service: str) -> None:
    """What each container's command builds at start, from exactly the environment its manifests give it: the
    Settings, the service (``build_spec``: ingest reads its channels file there) and, for ``serve``, the app.
    A value that parses but breaks start-up fails here, not in a crash-looping pod."""
    docs = build(kustomize, overlay)
    settings_class = render.settings_class(service)
    bootstrap = import_module(f"siyu_{service}.bootstrap")
    workloads = [
        d
        for d in docs
        if d["kind"] in {"Deployment", "Job"} and d["metadata"]["labels"]["app.kubernetes.io/name"] == service
    ]
    assert {d["metadata"]["labels"]["app.kubernetes.io/component"] for d in workloads} == {"api", "worker", "migrate"}
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        for container in pod.get("initContainers", []) + pod["containers"]:
            env = process_env(docs, container, service)
            where = (overlay, workload["metadata"]["name"], container["name"])
            with mock.patch.dict(os.environ, env, clear=True):
                spec = bootstrap.build_spec()
                args = container["args"]
                if args[0] == "serve":
                    create_app(spec, role=args[args.index("--role") + 1])
                else:
                    assert args[0] == "migrate", where
                # The ConfigMap carries the defaults: each parses back to its default (None stays unset, not "").
                settings = settings_class()
                for name, field in settings_class.model_fields.items():
                    if name not in DEPLOYMENT_VALUES and not isinstance(getattr(settings, name), SecretStr):
                        default = field.get_default(call_default_factory=True)
                        assert getattr(settings, name) == default, (*where, name)


def secret_references(node: Any) -> set[str]:
    """Names of the Secrets a manifest refers to, wherever it does: ``secretRef``/``secretKeyRef`` (env),
    ``secretName`` (volumes, Strimzi), ``passwordSecret``/``superuserSecret``/``secret`` (CloudNativePG)…"""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "secretName" and isinstance(value, str):
                found.add(value)
            elif "secret" in key.lower() and isinstance(value, dict) and isinstance(value.get("name"), str):
                found.add(value["name"])
            found |= secret_references(value)
    elif isinstance(node, list):
        for item in node:
            found |= secret_references(item)
    return found


def operator_supplied_secrets() -> set[str]:
    """The Secrets deploy/README.md says the operator creates for the prod overlay (its list under that heading)."""
    text = (ROOT / "deploy" / "README.md").read_text()
    section = text.split("## Secrets the operator supplies", 1)[1].split("\n## ", 1)[0]
    return {line.split("`")[1] for line in section.splitlines() if line.startswith("- `")}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_every_secret_referenced_exists_or_is_supplied_by_the_operator(kustomize: str, overlay: str) -> None:
    """The dev overlay generates all of its Secrets (kustomize rewrites a generated name only where it knows the
    field: not in a CloudNativePG Cluster); prod's come from the operator, as the README lists them."""
    docs = build(kustomize, overlay)
    existing = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    referenced = set().union(*(secret_references(d) for d in docs if d["kind"] != "Secret"))
    assert referenced
    supplied = operator_supplied_secrets() if overlay == "prod" else set()
    assert referenced <= existing | supplied, sorted(referenced - existing - supplied)
    if overlay == "prod":
        assert supplied <= referenced, sorted(supplied - referenced)  # the README lists no stale name


def test_the_crd_validation_catches_a_misspelt_or_mistyped_field(
    kustomize: str, crd_schemas: dict[str, dict[str, Any]]
) -> None:
    (cluster,) = [d for d in build(kustomize, "prod") if d["kind"] == "Cluster"]
    validate_custom(cluster, crd_schemas)
    misspelt = copy.deepcopy(cluster)
    misspelt["spec"]["managed"]["roles"][0]["passwordSecrets"] = misspelt["spec"]["managed"]["roles"][0].pop(
        "passwordSecret"
    )
    mistyped = copy.deepcopy(cluster)
    mistyped["spec"]["instances"] = "three"
    for bad in (misspelt, mistyped):
        with pytest.raises(jsonschema.ValidationError):
            validate_custom(bad, crd_schemas)


def test_docker_compose_validates_against_the_compose_specification() -> None:
    schema = tools.compose_schema()
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.validate(doc)
    broken = copy.deepcopy(doc)
    broken["services"]["postgres"]["healthcheck"]["retrys"] = 3
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(broken)


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_pods_wait_for_the_migrations_of_their_image_and_jobs_are_named_for_it(kustomize: str, overlay: str) -> None:
    """An api or worker pod starts only once its image's migrations are applied (``migrate --wait`` in an init
    container of the same image and environment); each migration Job carries its image's tag in its name, so that
    applying a new tag creates a new Job instead of failing on the old one's immutable template."""
    docs = build(kustomize, overlay)
    for service in SERVICES:
        (job,) = [
            d for d in docs if d["kind"] == "Job" and d["metadata"]["labels"]["app.kubernetes.io/name"] == service
        ]
        (migrate,) = job["spec"]["template"]["spec"]["containers"]
        tag = migrate["image"].rsplit(":", 1)[1]
        assert tag == TAGS[overlay]
        assert job["metadata"]["name"] == f"{service}-migrate-{tag}"
        for role in ("api", "worker"):
            pod = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == f"{service}-{role}")
            pod_spec = pod["spec"]["template"]["spec"]
            (wait,) = pod_spec.get("initContainers", [None])
            assert wait is not None, (overlay, service, role)
            (main,) = pod_spec["containers"]
            assert wait["args"][:2] == ["migrate", "--wait"]
            assert wait["image"] == main["image"] == migrate["image"]
            assert wait["envFrom"] == main["envFrom"] and wait.get("env") == main.get("env")


def test_compose_postgres_is_healthy_only_once_it_listens_on_tcp() -> None:
    """The official image runs its init scripts on a temporary server that listens on the unix socket only
    (``listen_addresses=''``); a socket ``pg_isready`` passes then, and the migrations would start before the init
    script has created their roles. Over TCP it passes only on the final server.

    This pins the setting render writes, no more: there is no Docker here to run the image and watch the check."""
    (check,) = [
        part
        for part in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["postgres"]["healthcheck"][
            "test"
        ]
        if "pg_isready" in part
    ]
    words = check.split()
    assert words[words.index("-h") + 1] == "127.0.0.1", check


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_kafka_cluster_the_topics_and_services_name_is_defined(kustomize: str, overlay: str) -> None:
    """A Strimzi KRaft ``Kafka`` with a node pool: the cluster every KafkaTopic is labelled for, the host and port of
    every service's bootstrap address and NetworkPolicy, with enough brokers for the topics' replicas."""
    docs = build(kustomize, overlay)
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    name = kafka["metadata"]["name"]
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    (plain,) = [listener for listener in kafka["spec"]["kafka"]["listeners"] if listener["type"] == "internal"]
    pools = [d for d in docs if d["kind"] == "KafkaNodePool" and d["metadata"]["labels"]["strimzi.io/cluster"] == name]
    roles = {role for pool in pools for role in pool["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    brokers = sum(pool["spec"]["replicas"] for pool in pools if "broker" in pool["spec"]["roles"])
    config = kafka["spec"]["kafka"]["config"]
    assert config["auto.create.topics.enable"] is False
    assert int(config["min.insync.replicas"]) <= int(config["offsets.topic.replication.factor"]) <= brokers
    for topic in (d for d in docs if d["kind"] == "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == name
        assert int(topic["spec"]["config"]["min.insync.replicas"]) <= topic["spec"]["replicas"] <= brokers
    for service in SERVICES:
        (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == f"{service}-config"]
        assert configmap["data"][f"{service.upper()}_KAFKA_BOOTSTRAP_SERVERS"] == (
            f"{name}-kafka-bootstrap:{plain['port']}"
        )
        (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == service]
        (to_kafka,) = [
            rule
            for rule in policy["spec"]["egress"]
            if rule.get("to", [{}])[0].get("podSelector", {}).get("matchLabels") == {"strimzi.io/cluster": name}
        ]
        assert to_kafka["ports"] == [{"protocol": "TCP", "port": plain["port"]}]


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_hpas_own_the_replica_counts(kustomize: str, overlay: str) -> None:
    """A Deployment with an HPA leaves ``replicas`` out: every apply would reset the HPA's count to it."""
    docs = build(kustomize, overlay)
    scaled = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert scaled == set(deployments)
    for name in scaled:
        assert "replicas" not in deployments[name]["spec"], name


def test_network_policies_admit_only_the_namespace_the_ingress_controller_and_prometheus(kustomize: str) -> None:
    for policy in (d for d in build(kustomize, "prod") if d["kind"] == "NetworkPolicy"):
        for rule in policy["spec"]["ingress"]:
            sources = rule.get("from")
            assert sources, (policy["metadata"]["name"], "an ingress rule without `from` admits everyone")
            for source in sources:
                if "namespaceSelector" in source:  # a whole namespace, by its name only
                    assert set(source) == {"namespaceSelector"}, source
                    assert set(source["namespaceSelector"]["matchLabels"]) == {"kubernetes.io/metadata.name"}
                else:  # any pod of the policy's own namespace
                    assert source == {"podSelector": {}}, source
            namespaces = {
                s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                for s in sources
                if "namespaceSelector" in s
            }
            assert namespaces == {render.INGRESS_NAMESPACE, render.MONITORING_NAMESPACE}


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_readiness_checks_what_each_role_needs(kustomize: str, overlay: str) -> None:
    """Every Deployment's readiness probe is ``/readyz`` of the process its args start, and that process checks
    what its role needs: an api pod the database only (a Kafka outage must not take the front door out of its
    Service: what it accepts is stored, the worker's relay publishes it later), a worker pod the database and
    Kafka. The Service sends traffic to api pods only."""
    docs = build(kustomize, overlay)
    checked: dict[str, set[str]] = {}
    for doc in docs:
        if doc["kind"] != "Deployment":
            continue
        service = doc["metadata"]["labels"]["app.kubernetes.io/name"]
        (container,) = doc["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        role = args[args.index("--role") + 1]
        probe = container["readinessProbe"]["httpGet"]
        assert (probe["path"], probe["port"]) == ("/readyz", "http"), doc["metadata"]["name"]
        settings = ServiceSettings(database_url="postgresql://u:p@db:5432/siyu", kafka_bootstrap_servers="kafka:9092")
        spec = ServiceSpec(name=service, title=service, description="", settings=settings, migrations=Path("."))
        checked[doc["metadata"]["name"]] = set(build_runtime(spec, role).readiness_checks())
        assert checked[doc["metadata"]["name"]] == set(READINESS[role])
    for service in SERVICES:
        assert checked[f"{service}-api"] == {"database"}
        assert checked[f"{service}-worker"] == {"database", "kafka"}
        (svc,) = [d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == service]
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "api"
