#!/usr/bin/env python3
"""Checks everything under deploy/ without a cluster or a Docker engine.

- Every YAML document parses and has apiVersion, kind and metadata.name; every container has a
  name and an image, string args, ports in range, probes on known ports, mounts of declared
  volumes.
- Every `agent` container passes only flags the built kserve-agent accepts (names read from its
  --help), in a shape it parses; it listens on agent-port 9081, its readiness probe sends
  `K-Network-Probe: queue`, SERVING_READINESS_PROBE is a probe on the component port, it runs as
  UID 65532 with a read-only root filesystem, and its image and resources are the ones the KServe
  `agent` config injects. With --enable-puller, the config and model dirs are mounted as KServe
  mounts them.
- ConfigMaps holding models.json list models with modelName and a supported
  modelSpec.storageUri; the inferenceservice-config `agent` and `batcher` JSON have the keys and
  quantities KServe expects.
- The Dockerfile runs as USER 65532 with ENTRYPOINT kserve-agent, ships storage-initializer, and
  installs exactly the runtime packages deploy/runtime-packages.sh derives from the binaries.

Usage: check_manifests.py DEPLOY_DIR --agent BINARY --modules LIBRARY --storage-initializer BINARY
Exits 0 when everything holds, 1 with one line per problem otherwise.
"""
import argparse
import json
import os
import re
import shlex
import subprocess
import sys

import yaml

AGENT_PORT = 9081
AGENT_UID = 65532
DEFAULT_COMPONENT_PORT = 8080
STORAGE_PREFIXES = ("s3://", "gs://", "http://", "https://")
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|Ki|M|Mi|G|Gi|T|Ti)?$")
QUANTITY_SCALE = {None: 1, "m": 1e-3, "k": 1e3, "Ki": 2**10, "M": 1e6, "Mi": 2**20, "G": 1e9,
                  "Gi": 2**30, "T": 1e12, "Ti": 2**40}
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Sanitizer runtimes appear in sanitizer builds only; a release image never links them.
SANITIZER_PACKAGE = re.compile(r"^lib(asan|ubsan|tsan|lsan)[0-9]+$")


class Problems:
    def __init__(self):
        self.lines = []

    def add(self, where, text):
        self.lines.append(f"{where}: {text}")


def agent_flags(binary):
    """Maps each flag of `binary --help` to True when it takes a value, False for a bool flag
    (shown with the type BOOL, or with none)."""
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30,
                               check=True).stdout
    flags = {}
    for match in re.finditer(r"^\s+(?:-\w,)?--([a-z0-9][a-z0-9-]*)(?: ([A-Z]+)\b)?", help_text,
                             re.MULTILINE):
        flags[match.group(1)] = match.group(2) not in (None, "BOOL")
    if "port" not in flags or "component-port" not in flags:
        raise RuntimeError(f"{binary} --help lists no --port/--component-port:\n{help_text}")
    return flags


def parse_args(args, flags, where, problems):
    """Parses an agent argv the way kserve-agent does; returns {flag: value} (bools as text)."""
    values = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if not arg.startswith("--"):
            problems.add(where, f"stray argument {arg!r} (not a flag or a flag's value)")
            continue
        name, has_value, value = arg[2:].partition("=")
        if name not in flags:
            problems.add(where, f"--{name} is not a flag of kserve-agent")
            continue
        if flags[name] and not has_value:
            if i == len(args):
                problems.add(where, f"--{name} has no value")
                continue
            value = args[i]
            i += 1
        elif not flags[name] and not has_value:
            value = "true"
            if i < len(args) and args[i] in ("true", "false"):
                value = args[i]
                i += 1
        values[name] = value
    return values


def quantity(text):
    match = QUANTITY.match(str(text))
    return float(match.group(1)) * QUANTITY_SCALE[match.group(2)] if match else None


def port_ok(port, named_ports):
    if isinstance(port, int):
        return 1 <= port <= 65535
    return port in named_ports


def pod_specs(doc):
    kind = doc.get("kind")
    if kind == "Pod":
        return [doc.get("spec") or {}]
    if kind in WORKLOAD_KINDS:
        return [((doc.get("spec") or {}).get("template") or {}).get("spec") or {}]
    return []


def check_container(container, volumes, where, problems):
    name = container.get("name")
    if not isinstance(name, str) or not DNS_LABEL.match(name):
        problems.add(where, f"container name {name!r} is not a DNS label")
    if not isinstance(container.get("image"), str) or not container["image"]:
        problems.add(where, "container has no image")
    for key in ("command", "args"):
        if any(not isinstance(a, str) for a in container.get(key, [])):
            problems.add(where, f"{key} must all be strings (quote numbers and booleans)")
    named_ports = set()
    for port in container.get("ports", []):
        if not port_ok(port.get("containerPort"), set()):
            problems.add(where, f"containerPort {port.get('containerPort')!r} out of range")
        if "name" in port:
            if len(port["name"]) > 15 or not DNS_LABEL.match(port["name"]):
                problems.add(where, f"port name {port['name']!r} is not an IANA service name")
            named_ports.add(port["name"])
    for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        probe = container.get(probe_kind)
        if not probe:
            continue
        handler = probe.get("httpGet") or probe.get("tcpSocket") or probe.get("grpc")
        if handler is None and "exec" not in probe:
            problems.add(where, f"{probe_kind} has no handler")
        elif handler is not None and not port_ok(handler.get("port"), named_ports):
            problems.add(where, f"{probe_kind} port {handler.get('port')!r} is not a port "
                                "of this container")
        for header in (probe.get("httpGet") or {}).get("httpHeaders", []):
            if not isinstance(header.get("name"), str) or not isinstance(header.get("value"), str):
                problems.add(where, f"{probe_kind} header {header!r} needs a string name and value")
    for mount in container.get("volumeMounts", []):
        if mount.get("name") not in volumes:
            problems.add(where, f"volumeMount {mount.get('name')!r} names no volume of the pod")


def mounts_of(container, volumes, source):
    """The mount paths of `container` whose volume has the given source (configMap, emptyDir)."""
    return {m["mountPath"]: volumes[m["name"]] for m in container.get("volumeMounts", [])
            if m.get("name") in volumes and source in volumes[m["name"]]}


def check_agent(agent, spec, config_maps, kserve_agent, flags, where, problems):
    argv = [str(a) for a in agent.get("args", [])]  # non-strings are reported by check_container
    values = parse_args(argv, flags, where, problems)
    if values.get("port", str(AGENT_PORT)) != str(AGENT_PORT):
        problems.add(where, f"--port must be {AGENT_PORT} (the webhook's agent-port)")
    if not any(p.get("name") == "agent-port" and p.get("containerPort") == AGENT_PORT
               for p in agent.get("ports", [])):
        problems.add(where, f"no container port agent-port {AGENT_PORT}")
    try:
        component_port = int(values.get("component-port", DEFAULT_COMPONENT_PORT))
    except ValueError:
        problems.add(where, f"--component-port {values['component-port']!r} is not a number")
        component_port = DEFAULT_COMPONENT_PORT
    modules = [f for f in ("enable-batcher", "enable-puller", "log-url") if f in values]
    flag_args = [a for a in argv if a.startswith("--")]
    if modules and flag_args and flag_args[-1].split("=")[0] != "--component-port":
        problems.add(where, "the webhook passes --component-port last")

    containers = {c.get("name"): c for c in spec.get("containers", [])}
    model = containers.get("kserve-container")
    if model and not any(p.get("containerPort") == component_port
                         for p in model.get("ports", [])):
        problems.add(where, f"kserve-container has no port {component_port} (--component-port)")

    probe = (agent.get("readinessProbe") or {}).get("httpGet")
    if not probe:
        problems.add(where, "agent readinessProbe must be an httpGet")
    else:
        if probe.get("port") not in (AGENT_PORT, "agent-port"):
            problems.add(where, f"agent readinessProbe must target port {AGENT_PORT}")
        headers = {h.get("name"): h.get("value") for h in probe.get("httpHeaders", [])}
        if headers.get("K-Network-Probe") != "queue":
            problems.add(where, "agent readinessProbe must send header K-Network-Probe: queue")

    env = {e.get("name"): e.get("value") for e in agent.get("env", [])}
    if "SERVING_READINESS_PROBE" not in env:
        problems.add(where, "agent has no SERVING_READINESS_PROBE env (the webhook sets it)")
    else:
        try:
            user_probe = json.loads(env["SERVING_READINESS_PROBE"])
            handlers = [k for k in ("httpGet", "tcpSocket", "grpc") if k in user_probe]
            if len(handlers) != 1:
                problems.add(where, "SERVING_READINESS_PROBE needs one httpGet, tcpSocket or grpc")
            elif user_probe[handlers[0]].get("port") != component_port:
                problems.add(where, "SERVING_READINESS_PROBE must probe the component port "
                                    f"{component_port}")
            elif "httpGet" in user_probe and probe and \
                    probe.get("path", "/") != user_probe["httpGet"].get("path", "/"):
                problems.add(where, "agent readinessProbe path must mirror the user httpGet path")
        except (json.JSONDecodeError, AttributeError) as error:
            problems.add(where, f"SERVING_READINESS_PROBE is not a JSON probe: {error}")

    security = agent.get("securityContext") or {}
    for key, wanted in (("runAsNonRoot", True), ("runAsUser", AGENT_UID),
                        ("readOnlyRootFilesystem", True)):
        if security.get(key) != wanted:
            problems.add(where, f"agent securityContext.{key} must be {wanted}")

    if kserve_agent:
        if agent.get("image") != kserve_agent.get("image"):
            problems.add(where, f"agent image {agent.get('image')!r} differs from the KServe "
                                f"agent config's {kserve_agent.get('image')!r}")
        resources = agent.get("resources") or {}
        for section, kind, key in (("requests", "cpu", "cpuRequest"),
                                   ("requests", "memory", "memoryRequest"),
                                   ("limits", "cpu", "cpuLimit"),
                                   ("limits", "memory", "memoryLimit")):
            if str((resources.get(section) or {}).get(kind)) != kserve_agent.get(key):
                problems.add(where, f"agent resources.{section}.{kind} differs from the KServe "
                                    f"agent config's {key} {kserve_agent.get(key)!r}")

    if "enable-puller" in values and values["enable-puller"] == "true":
        volumes = {v.get("name"): v for v in spec.get("volumes", [])}
        config_dir = values.get("config-dir", "/mnt/configs")
        model_dir = values.get("model-dir", "/mnt/models")
        config_mounts = mounts_of(agent, volumes, "configMap")
        if config_dir not in config_mounts:
            problems.add(where, f"--config-dir {config_dir} is not a configMap mount of the agent")
        else:
            name = config_mounts[config_dir]["configMap"].get("name")
            if name in config_maps and "models.json" not in config_maps[name]:
                problems.add(where, f"ConfigMap {name} has no models.json key")
        if model_dir not in mounts_of(agent, volumes, "emptyDir"):
            problems.add(where, f"--model-dir {model_dir} is not an emptyDir mount of the agent")
        elif model and model_dir not in mounts_of(model, volumes, "emptyDir"):
            problems.add(where, f"kserve-container does not mount the model dir {model_dir}")


def check_models_json(text, where, problems):
    try:
        models = json.loads(text)
    except json.JSONDecodeError as error:
        problems.add(where, f"models.json is not JSON: {error}")
        return
    if not isinstance(models, list):
        problems.add(where, "models.json must be a JSON array")
        return
    names = set()
    for model in models:
        name = model.get("modelName") if isinstance(model, dict) else None
        if not isinstance(name, str) or not name:
            problems.add(where, f"models.json entry without modelName: {model!r}")
            continue
        if name in names:
            problems.add(where, f"models.json lists {name} twice")
        names.add(name)
        uri = (model.get("modelSpec") or {}).get("storageUri")
        if not isinstance(uri, str) or not uri.startswith(STORAGE_PREFIXES):
            problems.add(where, f"{name}: modelSpec.storageUri {uri!r} must start with one of "
                                f"{', '.join(STORAGE_PREFIXES)}")


def check_kserve_config(data, where, problems):
    """Checks the inferenceservice-config `agent` and `batcher` keys; returns the agent JSON."""
    parsed = {}
    for key, extra in (("agent", ()), ("batcher", ("maxBatchSize", "maxLatency"))):
        if key not in data:
            problems.add(where, f"inferenceservice-config has no {key!r} key")
            continue
        try:
            config = json.loads(data[key])
        except json.JSONDecodeError as error:
            problems.add(where, f"{key} is not JSON: {error}")
            continue
        parsed[key] = config
        for field in ("image", "cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit") + extra:
            if not isinstance(config.get(field), str) or not config[field]:
                problems.add(where, f"{key}.{field} must be a non-empty string")
        for kind in ("cpu", "memory"):
            request = quantity(config.get(kind + "Request"))
            limit = quantity(config.get(kind + "Limit"))
            if request is None or limit is None:
                problems.add(where, f"{key}: {kind} request/limit are not Kubernetes quantities")
            elif request > limit:
                problems.add(where, f"{key}: {kind} request exceeds its limit")
        for field in extra:
            if not str(config.get(field, "")).isdigit() or int(config[field]) <= 0:
                problems.add(where, f"{key}.{field} must be a positive integer string")
    return parsed.get("agent")


def check_dockerfile(path, binaries, problems):
    where = os.path.relpath(path, os.path.dirname(os.path.dirname(path)))
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    instructions = [line.strip() for line in text.splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    if not any(re.fullmatch(r"USER 65532(:65532)?", i) for i in instructions):
        problems.add(where, "no USER 65532")
    entrypoints = [i for i in instructions if i.startswith("ENTRYPOINT ")]
    if not entrypoints or json.loads(entrypoints[-1][len("ENTRYPOINT "):]) != ["kserve-agent"]:
        problems.add(where, 'the final ENTRYPOINT must be ["kserve-agent"]')
    if not any(i.startswith("COPY ") and "storage-initializer" in i for i in instructions):
        problems.add(where, "storage-initializer is not copied into the image")
    # The agent loads the logger and the puller from this library beside its binary.
    if not any(i.startswith("COPY ") and "libkserve-agent-modules.so" in i
               and "/usr/local/bin/" in i for i in instructions):
        problems.add(where, "libkserve-agent-modules.so is not copied beside kserve-agent")
    if not any(i.startswith("FROM debian:bookworm-slim") for i in instructions):
        problems.add(where, "the runtime stage must be debian:bookworm-slim")
    declared = [shlex.split(i[len("ARG RUNTIME_PACKAGES="):]) for i in instructions
                if i.startswith("ARG RUNTIME_PACKAGES=")]
    if len(declared) != 1:
        problems.add(where, "needs exactly one ARG RUNTIME_PACKAGES=\"...\"")
        return
    listed = declared[0][0].split() if declared[0] else []
    script = os.path.join(os.path.dirname(path), "runtime-packages.sh")
    derived = subprocess.run([script] + binaries, capture_output=True, text=True, timeout=60)
    if derived.returncode != 0:
        problems.add(where, f"runtime-packages.sh failed: {derived.stderr.strip()}")
        return
    packages = [p for p in derived.stdout.split() if not SANITIZER_PACKAGE.match(p)]
    if listed != packages:
        problems.add(where, f"RUNTIME_PACKAGES is {' '.join(listed)!r} but the binaries need "
                            f"ARG RUNTIME_PACKAGES=\"{' '.join(packages)}\"")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("deploy_dir")
    parser.add_argument("--agent", required=True, help="the built kserve-agent")
    parser.add_argument("--modules", required=True, help="the built libkserve-agent-modules.so")
    parser.add_argument("--storage-initializer", required=True,
                        help="the built storage-initializer")
    args = parser.parse_args()
    args.agent = os.path.abspath(args.agent)
    args.modules = os.path.abspath(args.modules)
    args.storage_initializer = os.path.abspath(args.storage_initializer)
    problems = Problems()
    flags = agent_flags(args.agent)

    documents = []
    for root, _, files in os.walk(args.deploy_dir):
        for name in sorted(files):
            if not name.endswith((".yaml", ".yml")):
                continue
            path = os.path.join(root, name)
            where = os.path.relpath(path, args.deploy_dir)
            try:
                with open(path) as f:
                    loaded = [d for d in yaml.safe_load_all(f) if d is not None]
            except yaml.YAMLError as error:
                problems.add(where, f"YAML does not parse: {error}")
                continue
            documents += [(where, doc) for doc in loaded]

    config_maps = {}
    kserve_agent = None
    for where, doc in documents:
        if not isinstance(doc, dict):
            problems.add(where, "a document is not a mapping")
            continue
        name = (doc.get("metadata") or {}).get("name")
        for key, value in (("apiVersion", doc.get("apiVersion")), ("kind", doc.get("kind")),
                           ("metadata.name", name)):
            if not isinstance(value, str) or not value:
                problems.add(where, f"document without {key}")
        if doc.get("kind") == "ConfigMap":
            data = doc.get("data") or {}
            config_maps[name] = data
            if "models.json" in data:
                check_models_json(data["models.json"], f"{where} {name}", problems)
            if name == "inferenceservice-config":
                kserve_agent = check_kserve_config(data, f"{where} {name}", problems)
    if kserve_agent is None:
        problems.add(args.deploy_dir, "no inferenceservice-config ConfigMap with an agent key")

    agents = 0
    for where, doc in documents:
        if not isinstance(doc, dict):
            continue
        for spec in pod_specs(doc):
            volumes = {v.get("name"): v for v in spec.get("volumes", [])}
            if not spec.get("containers"):
                problems.add(where, f"{doc.get('kind')} without containers")
            for container in spec.get("initContainers", []) + spec.get("containers", []):
                place = f"{where} {doc['metadata'].get('name')}/{container.get('name')}"
                check_container(container, volumes, place, problems)
                if container.get("name") == "agent":
                    agents += 1
                    check_agent(container, spec, config_maps, kserve_agent, flags, place,
                                problems)
    if agents == 0:
        problems.add(args.deploy_dir, "no manifest has an agent container")

    check_dockerfile(os.path.join(args.deploy_dir, "Dockerfile"),
                     [args.agent, args.modules, args.storage_initializer], problems)

    for line in problems.lines:
        print(line)
    print(f"check_manifests: {len(documents)} documents, {agents} agent containers, "
          f"{len(problems.lines)} problems")
    sys.exit(1 if problems.lines else 0)


if __name__ == "__main__":
    main()
