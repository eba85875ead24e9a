"""Render the deployment manifests from the code: ``docker-compose.yml`` and ``deploy/k8s/base/``.

    .venv/bin/python deploy/render.py          # write
    .venv/bin/python deploy/render.py --check  # fail if the committed files differ (run by the tests)

Generated, not hand-written, so that every setting a service reads appears in its manifests, every topic and DLQ
has a KafkaTopic and a compose creation step, and the four services cannot drift apart. The overlays
(``deploy/k8s/overlays/{dev,prod}``), the Dockerfiles and compose's Postgres init script are generated too.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Any, NamedTuple

import yaml
from pydantic import SecretStr

from siyu_shared.events.topics import DEFAULT_PARTITIONS, TopicNames
from siyu_shared.services import SERVICES, env_prefix_of, role_of
from siyu_shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parent.parent
K8S_BASE = ROOT / "deploy" / "k8s" / "base"
COMPOSE = ROOT / "docker-compose.yml"
KAFKA_IMAGE = "apache/kafka:4.1.1"
KAFKA_METADATA_VERSION = "4.1-IV1"  # KRaft metadata version of that Kafka release (Strimzi's Kafka resource)
POSTGRES_IMAGE = "postgres:17"
KAFKA_CLUSTER = "siyu-kafka"  # Strimzi names its bootstrap Service <cluster>-kafka-bootstrap
KAFKA_BROKERS = 3
DEV_KAFKA_BROKERS = 1
MIN_INSYNC_REPLICAS = 2  # of 3 replicas: an acks=all write survives one broker down
KAFKA_PORT = 9092
PARTITIONS = DEFAULT_PARTITIONS  # what the local stack and the tests create, too
API_PORT = 8000
DEV_TAG = "dev"
PROD_TAG = "0.1.0"
API_MAX_REPLICAS = 10
# Connections kept outside the services' budgets: Postgres' superuser reserve, CloudNativePG's own (replication,
# monitoring), migration Jobs and an operator's psql.
RESERVED_CONNECTIONS = 20
# Settings whose values are credentials: never in a ConfigMap.
SECRET_SETTINGS = {"database_url"}
INGRESS_NAMESPACE = "ingress-nginx"  # where the ingress controller runs
MONITORING_NAMESPACE = "monitoring"  # where Prometheus runs
EGRESS_HTTPS = {"journey"}  # senders call WeCom / SMS gateways


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def dump(*docs: Any) -> str:
    return "---\n".join(yaml.dump(d, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=120) for d in docs)


def settings_class(service: str) -> type[ServiceSettings]:
    module = import_module(f"siyu_{service}.settings")
    found = [
        v
        for v in vars(module).values()
        if isinstance(v, type) and issubclass(v, ServiceSettings) and v is not ServiceSettings
    ]
    if len(found) != 1:
        raise RuntimeError(f"siyu_{service}.settings must define exactly one ServiceSettings subclass")
    return found[0]


class SettingSources(NamedTuple):
    """Where each setting of a service comes from in its manifests, by environment variable name."""

    config: dict[str, str]
    """ConfigMap entries, with the deployment's values or the defaults."""
    secrets: list[str]
    """Secrets the service needs (required, or with a development default that production refuses)."""
    optional: list[str]
    """Optional secrets: unset means the feature is off (e.g. no WeCom credentials: sandbox sender)."""
    unset: list[str]
    """Settings whose default is None (the feature is off): left out of the ConfigMap, set one to turn it on."""


def settings_env(service: str) -> tuple[dict[str, str], list[str]]:
    """(ConfigMap entries with their defaults, names that come from the service's Secret) for every field."""
    sources = setting_sources(service)
    return sources.config, sources.secrets + sources.optional


def setting_sources(service: str) -> SettingSources:
    """Every field of the service's settings, by where its manifests take it from."""
    prefix = env_prefix_of(service)
    sources = SettingSources({}, [], [], [])
    for name, field in settings_class(service).model_fields.items():
        env = f"{prefix}{name.upper()}"
        if name in SECRET_SETTINGS or field.annotation is SecretStr:
            sources.secrets.append(env)
            continue
        if field.annotation == SecretStr | None:
            sources.optional.append(env)
            continue
        if name == "kafka_bootstrap_servers":
            sources.config[env] = f"{KAFKA_CLUSTER}-kafka-bootstrap:{KAFKA_PORT}"
        elif name == "environment":
            sources.config[env] = "production"
        elif field.is_required():
            raise RuntimeError(f"{env} is required but has no deployment value; add one to deploy/render.py")
        else:
            default = field.get_default(call_default_factory=True)
            if default is None:
                # Unset means off (no channels file, no SMS gateway): an empty string would not parse back to
                # None (``Path("")`` is the working directory), so the setting stays out of the ConfigMap.
                sources.unset.append(env)
                continue
            sources.config[env] = _env_value(default)
    return sources


def dev_secret_values(service: str) -> dict[str, str]:
    """Development values of the service's secrets: its database URL and the development defaults."""
    secrets = setting_sources(service).secrets
    fields = settings_class(service).model_fields
    prefix = env_prefix_of(service)
    values = {}
    for env in secrets:
        name = env.removeprefix(prefix).lower()
        if name == "database_url":
            values[env] = f"postgresql://{role_of(service)}:dev-only-{service}@siyu-postgres-rw:5432/siyu"
        else:
            default = fields[name].get_default(call_default_factory=True)
            values[env] = default.get_secret_value() if isinstance(default, SecretStr) else f"dev-only-{name}"
    return values


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        import json

        return json.dumps(value)
    return str(value)


def labels(service: str, role: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/name": service, "app.kubernetes.io/part-of": "siyu"}
    if role:
        out["app.kubernetes.io/component"] = role
    return out


def env_from(service: str) -> list[dict[str, Any]]:
    _, secrets = settings_env(service)
    return [{"configMapRef": {"name": f"{service}-config"}}] + (
        [{"secretRef": {"name": f"{service}-secrets"}}] if secrets else []
    )


def container(service: str, role: str, *, args: list[str]) -> dict[str, Any]:
    probe_port = "http"
    optional = setting_sources(service).optional
    spec: dict[str, Any] = {
        "name": service,
        "image": f"siyu/{service}",
        "args": args,
        "envFrom": env_from(service),
        **(
            {
                "env": [
                    {
                        "name": env,
                        "valueFrom": {"secretKeyRef": {"name": f"{service}-secrets", "key": env, "optional": True}},
                    }
                    for env in optional
                ]
            }
            if optional
            else {}
        ),
        "ports": [{"name": "http", "containerPort": API_PORT}],
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": {
            "requests": {"cpu": "250m" if role == "api" else "500m", "memory": "256Mi" if role == "api" else "384Mi"},
            "limits": {"memory": "512Mi" if role == "api" else "768Mi"},
        },
    }
    if role not in ("migrate", "wait"):
        spec["livenessProbe"] = {
            "httpGet": {"path": "/healthz", "port": probe_port},
            "periodSeconds": 10,
            "failureThreshold": 3,
        }
        spec["readinessProbe"] = {
            "httpGet": {"path": "/readyz", "port": probe_port},
            "periodSeconds": 5,
            "failureThreshold": 2,
        }
        spec["startupProbe"] = {
            "httpGet": {"path": "/healthz", "port": probe_port},
            "periodSeconds": 2,
            "failureThreshold": 30,
        }
    else:
        del spec["ports"]
    if role == "wait":
        spec["name"] = "wait-for-migrations"
        spec["resources"] = {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}}
    return spec


def pod_spec(service: str, containers: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "serviceAccountName": service,
        "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": containers,
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
        **extra,
    }


def deployment(service: str, role: str) -> dict[str, Any]:
    name = f"{service}-{role}"
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(service, role)},
        "spec": {
            # No replicas: the HPA owns the count (a value here would reset it on every apply).
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels(service, role)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels(service, role)},
                "spec": pod_spec(
                    service,
                    [
                        container(
                            service, role, args=["serve", "--role", role, "--host", "0.0.0.0", "--port", str(API_PORT)]
                        )
                    ],
                    # No pod starts on a schema its code is ahead of: the migration Job of this image runs first.
                    initContainers=[container(service, "wait", args=["migrate", "--wait", "--timeout", "300"])],
                    # Workers drain on SIGTERM: finish the batch, commit offsets, close.
                    terminationGracePeriodSeconds=45 if role == "worker" else 30,
                ),
            },
        },
    }


def manifests(service: str) -> dict[str, str]:
    config, secrets = settings_env(service)
    files: dict[str, str] = {}
    files["serviceaccount.yaml"] = dump(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": service, "labels": labels(service)},
            "automountServiceAccountToken": False,
        }
    )
    files["configmap.yaml"] = dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{service}-config", "labels": labels(service)},
            "data": config,
        }
    )
    files["deployment-api.yaml"] = dump(deployment(service, "api"))
    files["deployment-worker.yaml"] = dump(deployment(service, "worker"))
    files["service.yaml"] = dump(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": service, "labels": labels(service, "api")},
            "spec": {"selector": labels(service, "api"), "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
        }
    )
    files["hpa.yaml"] = dump(
        *[
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": f"{service}-{role}", "labels": labels(service, role)},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{service}-{role}"},
                    "minReplicas": 2,
                    "maxReplicas": max_replicas(role),
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                        }
                    ],
                },
            }
            for role in ("api", "worker")
        ]
    )
    files["pdb.yaml"] = dump(
        *[
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": f"{service}-{role}", "labels": labels(service, role)},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": labels(service, role)}},
            }
            for role in ("api", "worker")
        ]
    )
    egress: list[dict[str, Any]] = [
        {
            "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {
            "to": [{"podSelector": {"matchLabels": {"cnpg.io/cluster": "siyu-postgres"}}}],
            "ports": [{"protocol": "TCP", "port": 5432}],
        },
        {
            "to": [{"podSelector": {"matchLabels": {"strimzi.io/cluster": KAFKA_CLUSTER}}}],
            "ports": [{"protocol": "TCP", "port": KAFKA_PORT}],
        },
    ]
    if service in EGRESS_HTTPS:
        egress.append({"ports": [{"protocol": "TCP", "port": 443}]})
    files["networkpolicy.yaml"] = dump(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": service, "labels": labels(service)},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": service}},
                "policyTypes": ["Ingress", "Egress"],
                # HTTP from pods of the namespace, the ingress controller's namespace and Prometheus' (/metrics).
                # An overlay with other namespaces patches the labels (kubernetes.io/metadata.name is set by
                # Kubernetes on every namespace).
                "ingress": [
                    {
                        "from": [
                            {"podSelector": {}},
                            *(
                                {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}}
                                for namespace in (INGRESS_NAMESPACE, MONITORING_NAMESPACE)
                            ),
                        ],
                        "ports": [{"protocol": "TCP", "port": API_PORT}],
                    }
                ],
                "egress": egress,
            },
        }
    )
    files["job-migrate.yaml"] = dump(
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": f"{service}-migrate", "labels": labels(service, "migrate")},
            "spec": {
                "backoffLimit": 6,
                "ttlSecondsAfterFinished": 3600,
                "template": {
                    "metadata": {"labels": labels(service, "migrate")},
                    "spec": pod_spec(
                        service, [container(service, "migrate", args=["migrate"])], restartPolicy="OnFailure"
                    ),
                },
            },
        }
    )
    resources = sorted(files)
    files["kustomization.yaml"] = dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
    )
    if secrets:
        unset = setting_sources(service).unset
        files["README.md"] = (
            f"# {service}\n\nGenerated by `deploy/render.py`. Expects a Secret `{service}-secrets` with: "
            + ", ".join(f"`{s}`" for s in secrets)
            + f" (the database URL of role `{role_of(service)}`, e.g. built from CloudNativePG's role secret).\n"
            + (
                "\nOff unless set (default None, so not in the ConfigMap; add them with a `configMapGenerator`"
                " merge in your overlay): " + ", ".join(f"`{s}`" for s in unset) + ".\n"
                if unset
                else ""
            )
        )
    return files


def kafka_topics() -> str:
    docs = []
    for topic in TopicNames().all():
        docs.append(
            {
                "apiVersion": "kafka.strimzi.io/v1beta2",
                "kind": "KafkaTopic",
                "metadata": {"name": topic.replace(".", "-"), "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
                "spec": {
                    "topicName": topic,
                    "partitions": PARTITIONS,
                    "replicas": KAFKA_BROKERS,
                    "config": {
                        "min.insync.replicas": str(min_insync_replicas(KAFKA_BROKERS)),
                        "retention.ms": str(30 * 24 * 3600 * 1000 if topic.endswith(".dlq") else 7 * 24 * 3600 * 1000),
                    },
                },
            }
        )
    return dump(*docs)


def min_insync_replicas(brokers: int) -> int:
    return min(MIN_INSYNC_REPLICAS, brokers)


def kafka_config(brokers: int) -> dict[str, Any]:
    """The brokers' configuration for a cluster of ``brokers``, matching the topics: every replica on its own broker,
    ``min_insync_replicas`` in sync (the services' idempotent producers use acks=all); no auto-created topics."""
    return {
        "default.replication.factor": brokers,
        "min.insync.replicas": min_insync_replicas(brokers),
        "offsets.topic.replication.factor": brokers,
        "transaction.state.log.replication.factor": brokers,
        "transaction.state.log.min.isr": min_insync_replicas(brokers),
        "auto.create.topics.enable": False,
    }


def kafka_cluster() -> str:
    """The Strimzi ``Kafka`` the topics and the services' bootstrap address (``siyu-kafka-kafka-bootstrap:9092``)
    belong to: KRaft, one node pool of combined controller+broker nodes, the Kafka version compose runs (the
    Strimzi release installed must support it)."""
    version = KAFKA_IMAGE.rsplit(":", 1)[1]
    pool = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaNodePool",
        "metadata": {"name": "combined", "labels": {"strimzi.io/cluster": KAFKA_CLUSTER}},
        "spec": {
            "replicas": KAFKA_BROKERS,
            "roles": ["controller", "broker"],
            "storage": {
                "type": "jbod",
                "volumes": [
                    {
                        "id": 0,
                        "type": "persistent-claim",
                        "size": "100Gi",
                        "deleteClaim": False,
                        "kraftMetadata": "shared",
                    }
                ],
            },
            "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
        },
    }
    kafka = {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "Kafka",
        "metadata": {
            "name": KAFKA_CLUSTER,
            "annotations": {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"},
        },
        "spec": {
            "kafka": {
                "version": version,
                "metadataVersion": KAFKA_METADATA_VERSION,
                "listeners": [{"name": "plain", "port": KAFKA_PORT, "type": "internal", "tls": False}],
                "config": kafka_config(KAFKA_BROKERS),
            },
            # The topic operator turns the KafkaTopic resources into topics.
            "entityOperator": {"topicOperator": {}},
        },
    }
    return dump(kafka, pool)


def max_replicas(role: str) -> int:
    """The HPA's ceiling: a consumer group scales to the partition count (more workers would idle)."""
    return API_MAX_REPLICAS if role == "api" else PARTITIONS


def pod_connections(service: str, role: str, pool_size: int) -> int:
    """The most Postgres connections one pod can open with ``pool_size`` (its ``DATABASE_POOL_SIZE``).

    The shared engine's pool plus as many again in overflow (``siyu_shared.db.engine``); a worker adds the outbox
    relay's LISTEN connection, ingest's worker its deliveries listener, and ingest's api its webhook pool.
    """
    count = 2 * pool_size
    if role == "worker":
        count += 2 if service == "ingest" else 1
    elif service == "ingest":
        count += pool_size
    return count


def pool_size(service: str) -> int:
    return int(settings_env(service)[0][f"{env_prefix_of(service)}DATABASE_POOL_SIZE"])


def connection_budget(service: str, replicas: Callable[[str], int] = max_replicas) -> int:
    """What every pod of ``service`` can open, at ``replicas(role)`` pods per role (by default the HPA ceilings:
    the role's connection limit in the cluster)."""
    return sum(replicas(r) * pod_connections(service, r, pool_size(service)) for r in ("api", "worker"))


def max_connections(replicas: Callable[[str], int] = max_replicas) -> int:
    """Postgres' ``max_connections``: every service's budget and the reserve."""
    return sum(connection_budget(s, replicas) for s in SERVICES) + RESERVED_CONNECTIONS


def database_sql(role_options: Callable[[str], str]) -> list[str]:
    """The database's set-up, run once in it by a superuser (CloudNativePG's initdb, compose's init script): one role
    and one schema per service, each role reaching only its own schema, and nobody else the database or ``public``.
    ``role_options(service)`` completes its role's ``CREATE ROLE``."""
    sql = ["REVOKE ALL ON SCHEMA public FROM PUBLIC", "REVOKE ALL ON DATABASE siyu FROM PUBLIC"]
    for s in SERVICES:
        role = role_of(s)
        sql += [
            f"CREATE ROLE {role} {role_options(s)}",
            f"GRANT CONNECT ON DATABASE siyu TO {role}",
            f'CREATE SCHEMA "{s}" AUTHORIZATION {role}',
            f'REVOKE ALL ON SCHEMA "{s}" FROM PUBLIC',
            f'ALTER ROLE {role} SET search_path = "{s}"',
        ]
    return sql


def postgres_cluster() -> str:
    roles = [
        {
            "name": role_of(s),
            "ensure": "present",
            "login": True,
            "connectionLimit": connection_budget(s),
            "passwordSecret": {"name": f"{s}-db-credentials"},
        }
        for s in SERVICES
    ]
    cluster = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "siyu-postgres"},
        "spec": {
            "instances": 3,
            "imageName": "ghcr.io/cloudnative-pg/postgresql:17",
            "storage": {"size": "50Gi"},
            # Every service at its HPA ceilings fits (each role is capped at its budget), plus the reserve.
            "postgresql": {"parameters": {"max_connections": str(max_connections())}},
            "managed": {"roles": roles},
            "bootstrap": {
                "initdb": {
                    "database": "siyu",
                    "owner": "siyu_owner",
                    # initdb runs this before the operator reconciles ``managed.roles`` (once the instance is
                    # up): the roles are created here without login, and the managed roles adopt them (login,
                    # password from the Secret, connection limit).
                    "postInitApplicationSQL": database_sql(lambda _: "NOLOGIN"),
                }
            },
            "monitoring": {"enablePodMonitor": True},
        },
    }
    return dump(cluster)


def k8s_base() -> dict[str, str]:
    files: dict[str, str] = {}
    for service in SERVICES:
        for name, body in manifests(service).items():
            files[f"{service}/{name}"] = body
    files["kafka/topics.yaml"] = kafka_topics()
    files["kafka/cluster.yaml"] = kafka_cluster()
    files["kafka/kustomization.yaml"] = dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["cluster.yaml", "topics.yaml"],
        }
    )
    files["postgres/cluster.yaml"] = postgres_cluster()
    files["postgres/kustomization.yaml"] = dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": ["cluster.yaml"]}
    )
    files["kustomization.yaml"] = dump(
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["postgres", "kafka", *SERVICES],
        }
    )
    return {
        k: "# Generated by deploy/render.py: edit the generator, not this file.\n" + v if k.endswith(".yaml") else v
        for k, v in files.items()
    }


def compose() -> str:
    common_env = {"KAFKA_BOOTSTRAP_SERVERS": "kafka:9092", "SIYU_ENVIRONMENT": "development"}
    services: dict[str, Any] = {
        "postgres": {
            "image": POSTGRES_IMAGE,
            # One api and one worker of every service, each at its pool's overflow, fit (the default 100 do not).
            "command": ["postgres", "-c", f"max_connections={max_connections(lambda _: 1)}"],
            "environment": {"POSTGRES_PASSWORD": "dev-only-postgres", "POSTGRES_DB": "siyu"},
            "volumes": [
                "./deploy/compose/postgres-init.sql:/docker-entrypoint-initdb.d/10-siyu.sql:ro",
                "pgdata:/var/lib/postgresql/data",
            ],
            # Over TCP: while the image runs its init scripts, its temporary server listens on the unix socket
            # only, and a socket check would pass before the roles and schemas exist.
            "healthcheck": {
                "test": ["CMD-SHELL", "pg_isready -h 127.0.0.1 -p 5432 -U postgres -d siyu"],
                "interval": "2s",
                "timeout": "3s",
                "retries": 30,
            },
        },
        "kafka": {
            "image": KAFKA_IMAGE,
            "environment": {
                "KAFKA_NODE_ID": "1",
                "KAFKA_PROCESS_ROLES": "broker,controller",
                "KAFKA_LISTENERS": "PLAINTEXT://:9092,CONTROLLER://:9093",
                "KAFKA_ADVERTISED_LISTENERS": "PLAINTEXT://kafka:9092",
                "KAFKA_CONTROLLER_LISTENER_NAMES": "CONTROLLER",
                "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": "1@kafka:9093",
                "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
                "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR": "1",
                "KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS": "0",
                "KAFKA_AUTO_CREATE_TOPICS_ENABLE": "false",
            },
            "healthcheck": {
                "test": [
                    "CMD-SHELL",
                    "/opt/kafka/bin/kafka-broker-api-versions.sh --bootstrap-server localhost:9092 >/dev/null",
                ],
                "interval": "3s",
                "timeout": "10s",
                "retries": 40,
            },
        },
        "kafka-topics": {
            "image": KAFKA_IMAGE,
            "depends_on": {"kafka": {"condition": "service_healthy"}},
            "entrypoint": ["/bin/sh", "-c"],
            "command": [" && ".join(_create_topic(t) for t in TopicNames().all())],
            "restart": "no",
        },
    }
    for service in SERVICES:
        env = {
            **common_env,
            f"{env_prefix_of(service)}DATABASE_URL": f"postgresql://{role_of(service)}:dev-only-{service}@postgres:5432/siyu",
        }
        build = {"context": ".", "dockerfile": f"services/{service}/Dockerfile"}
        services[f"{service}-migrate"] = {
            "build": build,
            "image": f"siyu/{service}",
            "command": ["migrate"],
            "environment": env,
            "depends_on": {"postgres": {"condition": "service_healthy"}},
            "restart": "no",
        }
        after = {
            f"{service}-migrate": {"condition": "service_completed_successfully"},
            "kafka-topics": {"condition": "service_completed_successfully"},
        }
        health = {
            "test": [
                "CMD",
                "python",
                "-c",
                f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:{API_PORT}/readyz', timeout=3)",
            ],
            "interval": "5s",
            "timeout": "5s",
            "retries": 12,
        }
        for role in ("api", "worker"):
            entry: dict[str, Any] = {
                "image": f"siyu/{service}",
                "command": ["serve", "--role", role, "--host", "0.0.0.0", "--port", str(API_PORT)],
                "environment": env,
                "depends_on": after,
                "healthcheck": health,
                "restart": "unless-stopped",
                "stop_grace_period": "45s",
            }
            if role == "api":
                entry["ports"] = [f"127.0.0.1:{8001 + SERVICES.index(service)}:{API_PORT}"]
            services[f"{service}-{role}"] = entry
    doc = {"name": "siyu", "services": services, "volumes": {"pgdata": {}}}
    header = (
        "# Generated by deploy/render.py: edit the generator, not this file.\n"
        "# docker compose up --build: Postgres, Kafka (KRaft), topics, migrations, each service's api and worker.\n"
    )
    return header + dump(doc)


def _create_topic(topic: str) -> str:
    return (
        "/opt/kafka/bin/kafka-topics.sh --bootstrap-server kafka:9092 --create --if-not-exists"
        f" --topic {topic} --partitions {PARTITIONS} --replication-factor 1"
    )


def compose_postgres_init() -> str:
    statements = database_sql(lambda service: f"LOGIN PASSWORD 'dev-only-{service}'")
    header = "-- Generated by deploy/render.py. One role and one schema per service; each role reaches only its own.\n"
    return header + "".join(f"{statement};\n" for statement in statements)


def dockerfile(service: str) -> str:
    return f"""# syntax=docker/dockerfile:1
# Generated by deploy/render.py. The {service} image, built from the repository root:
#   docker build -f services/{service}/Dockerfile -t siyu/{service} .
# Multi-stage: wheels are built first; the runtime stage has no compiler, no sources, no pip cache, and runs
# as an unprivileged user.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY constraints.txt ./
COPY shared/ shared/
COPY services/{service}/ services/{service}/
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt ./shared ./services/{service}

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \\
    pip install --no-cache-dir --no-index --find-links /wheels siyu-{service} \\
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin siyu
USER 10001:10001
EXPOSE {API_PORT}
ENTRYPOINT ["siyu-{service}"]
CMD ["serve", "--role", "api", "--host", "0.0.0.0", "--port", "{API_PORT}"]
"""


def dev_overlay() -> str:
    doc: dict[str, Any] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "siyu-dev",
        "resources": ["../../base"],
        "images": [{"name": f"siyu/{s}", "newTag": DEV_TAG} for s in SERVICES],
        "patches": [
            *migration_job_names(DEV_TAG),
            _json_patch("HorizontalPodAutoscaler", "/spec/minReplicas", 1),
            _json_patch("PodDisruptionBudget", "/spec/minAvailable", 0),
            _json_patch("Cluster", "/spec/instances", 1),
            _json_patch("KafkaTopic", "/spec/replicas", DEV_KAFKA_BROKERS),
            _json_patch("KafkaTopic", "/spec/config/min.insync.replicas", str(min_insync_replicas(DEV_KAFKA_BROKERS))),
            _json_patch("KafkaNodePool", "/spec/replicas", DEV_KAFKA_BROKERS),
            _json_patch("KafkaNodePool", "/spec/resources/requests", {"cpu": "250m", "memory": "1Gi"}),
            _json_patch("KafkaNodePool", "/spec/resources/limits/memory", "1Gi"),
            _json_patch("KafkaNodePool", "/spec/storage/volumes/0/size", "5Gi"),
            _json_patch("Kafka", "/spec/kafka/config", kafka_config(DEV_KAFKA_BROKERS)),
        ],
        "configMapGenerator": [
            {"name": f"{s}-config", "behavior": "merge", "literals": [f"{env_prefix_of(s)}ENVIRONMENT=development"]}
            for s in SERVICES
        ],
        "secretGenerator": [
            entry
            for s in SERVICES
            for entry in (
                {"name": f"{s}-secrets", "literals": [f"{k}={v}" for k, v in dev_secret_values(s).items()]},
                {
                    "name": f"{s}-db-credentials",
                    "type": "kubernetes.io/basic-auth",
                    "literals": [f"username={role_of(s)}", f"password=dev-only-{s}"],
                    # Kustomize does not rewrite a hashed name in the Cluster's managed.roles[].passwordSecret;
                    # the fixed name matches prod, and the reload label has the operator apply a new password.
                    "options": {"disableNameSuffixHash": True, "labels": {"cnpg.io/reload": "true"}},
                },
            )
        ],
    }
    return (
        "# Generated by deploy/render.py. Development: one replica each, development secrets"
        " (never use them elsewhere).\n" + dump(doc)
    )


def prod_overlay() -> str:
    lines = []
    for s in SERVICES:
        _, secrets, optional, _ = setting_sources(s)
        lines.append(
            f"#   {s}-secrets: {', '.join(secrets)}" + (f" (optional: {', '.join(optional)})" if optional else "")
        )
        lines.append(
            f"#   {s}-db-credentials: basic-auth username={role_of(s)} + password (CloudNativePG managed role)"
        )
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": "siyu",
        "resources": ["../../base"],
        "images": [
            {"name": f"siyu/{s}", "newName": f"registry.example.com/siyu/{s}", "newTag": PROD_TAG} for s in SERVICES
        ],
        "patches": [
            *migration_job_names(PROD_TAG),
            {
                "target": {"kind": "Deployment", "labelSelector": "app.kubernetes.io/component=worker"},
                "patch": yaml.dump(
                    [{"op": "replace", "path": "/spec/template/spec/containers/0/resources/requests/cpu", "value": "1"}]
                ),
            },
        ],
    }
    header = (
        "# Generated by deploy/render.py. Production: pinned images. Secrets are NOT generated here; create them with\n"
        "# your secret manager (External Secrets, Sealed Secrets, Vault…):\n" + "\n".join(lines) + "\n"
    )
    return header + dump(doc)


def _json_patch(kind: str, path: str, value: Any, name: str | None = None) -> dict[str, Any]:
    target = {"kind": kind} | ({"name": name} if name else {})
    return {"target": target, "patch": yaml.dump([{"op": "replace", "path": path, "value": value}])}


def migration_job_names(tag: str) -> list[dict[str, Any]]:
    """Each migration Job named for the image tag it runs: a Job's pod template is immutable, so applying a new
    tag under the old name would fail; a new name is a new Job (the old one goes after ttlSecondsAfterFinished)."""
    return [_json_patch("Job", "/metadata/name", f"{s}-migrate-{tag}", name=f"{s}-migrate") for s in SERVICES]


def render() -> dict[Path, str]:
    out: dict[Path, str] = {
        COMPOSE: compose(),
        ROOT / "deploy" / "compose" / "postgres-init.sql": compose_postgres_init(),
    }
    for service in SERVICES:
        out[ROOT / "services" / service / "Dockerfile"] = dockerfile(service)
    out[ROOT / "deploy" / "k8s" / "overlays" / "dev" / "kustomization.yaml"] = dev_overlay()
    out[ROOT / "deploy" / "k8s" / "overlays" / "prod" / "kustomization.yaml"] = prod_overlay()
    for rel, body in k8s_base().items():
        out[K8S_BASE / rel] = body
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    rendered = render()
    if args.check:
        stale = [p for p, body in rendered.items() if not p.exists() or p.read_text() != body]
        extra = sorted(set(K8S_BASE.rglob("*")) - set(rendered) - {p for p in K8S_BASE.rglob("*") if p.is_dir()})
        for p in stale:
            print(f"out of date: {p.relative_to(ROOT)} (run: .venv/bin/python deploy/render.py)", file=sys.stderr)
        for p in extra:
            print(f"not generated: {p.relative_to(ROOT)}", file=sys.stderr)
        return 1 if stale or extra else 0
    for path, body in rendered.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
    print(f"wrote {len(rendered)} files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
