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
  modelSpec.storageUri; the inferenceservice-config `agent`, `batcher` and `router` JSON have the
  keys and quantities KServe expects (the router's optional headers.propagate patterns are
  given to the built kserve-router, which must accept every one).
- Every router container (args starting with --graph-json, or the router config's image) is
  laid out as KServe's InferenceGraph controller lays it out in raw mode: args exactly
  ["--graph-json", <JSON>], no command, readiness GET /readyz on 8080 (5 s delay, 2 s timeout,
  5 s period), upstream's security context, no service account token, PROPAGATE_HEADERS, the
  router config's image and resources, a Service in front; every serviceUrl names a Service of
  deploy/ whose model server serves the model in the URL's path. The built kserve-router starts
  with that graph and that environment, logs no graph warning and no pattern error, answers
  /readyz and exits 0 on SIGTERM.
- The Dockerfile's default (last) target runs as USER 65532 with ENTRYPOINT kserve-agent and
  EXPOSE 9081, ships storage-initializer and the modules library; its `router` target, on the
  same runtime, has ENTRYPOINT kserve-router, its https plugin and EXPOSE 8080; the build stage installs
  libre2-dev and builds and checks every binary; the runtime installs exactly the packages
  deploy/runtime-packages.sh derives from all the binaries.
- The command deploy/README.md documents, `docker run -p 8080:8080 IMAGE --graph-json <the
  seed's graph>`, works with the built kserve-router (on a free port instead of 8080): it
  listens on every interface, answers /readyz 200, and answers a request with upstream's error
  body, since nothing listens at the step's URL (skipped if something does).

Usage: check_manifests.py DEPLOY_DIR --agent BINARY --modules LIBRARY --storage-initializer BINARY
                          --router BINARY --router-https LIBRARY
Exits 0 when everything holds, 1 with one line per problem otherwise.
"""
import argparse
import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

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
ROUTER_PORT = 8080
# The readiness probe KServe's InferenceGraph controller gives the router.
ROUTER_PROBE = {"path": "/readyz", "port": ROUTER_PORT, "initialDelaySeconds": 5,
                "timeoutSeconds": 2, "periodSeconds": 5, "successThreshold": 1,
                "failureThreshold": 3}
ROUTER_SECURITY = {"privileged": False, "runAsNonRoot": True, "readOnlyRootFilesystem": True,
                   "allowPrivilegeEscalation": False}
# The graph of the seed's example, verbatim: `stepName` is no field of an InferenceStep, so the
# step is unnamed, as Go's decoder leaves it.
SEED_GRAPH = ('{"nodes":{"root":{"routerType":"Sequence","steps":[{"stepName":"model1",'
              '"serviceUrl":"http://localhost:8080/v1/models/model1:predict"}]}}}')
SEED_STEP_URL = "http://localhost:8080/v1/models/model1:predict"


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


def check_configured(container, config, key, where, problems):
    """The container has the image and resources of the inferenceservice-config `key` entry."""
    if container.get("image") != config.get("image"):
        problems.add(where, f"{key} image {container.get('image')!r} differs from the KServe "
                            f"{key} config's {config.get('image')!r}")
    resources = container.get("resources") or {}
    for section, kind, field in (("requests", "cpu", "cpuRequest"),
                                 ("requests", "memory", "memoryRequest"),
                                 ("limits", "cpu", "cpuLimit"),
                                 ("limits", "memory", "memoryLimit")):
        if str((resources.get(section) or {}).get(kind)) != config.get(field):
            problems.add(where, f"{key} resources.{section}.{kind} differs from the KServe "
                                f"{key} config's {field} {config.get(field)!r}")


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
        check_configured(agent, kserve_agent, "agent", where, problems)

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


def check_kserve_config(data, router, where, problems):
    """Checks the inferenceservice-config `agent`, `batcher` and `router` keys; returns the
    parsed JSON of each that parses."""
    parsed = {}
    for key, extra in (("agent", ()), ("batcher", ("maxBatchSize", "maxLatency")),
                       ("router", ())):
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
    if "router" in parsed:
        config = parsed["router"]
        if "agent" in parsed and config.get("image") == parsed["agent"].get("image"):
            problems.add(where, "router.image is the agent's image, whose entrypoint is "
                                "kserve-agent: the controller passes only --graph-json")
        headers = config.get("headers", {})
        if not isinstance(headers, dict):
            problems.add(where, "router.headers must be an object")
        elif "propagate" in headers:
            check_propagate(headers["propagate"], router, where, problems)
    return parsed


def router_help(binary):
    """The flags of `binary --help` and their defaults ({name: default text or None})."""
    help_text = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30,
                               check=True).stdout
    flags = {}
    for line in help_text.splitlines():
        match = re.match(r"^\s+--([a-z0-9][a-z0-9-]*)\b", line)
        if match:
            default = re.search(r"\(default ([^)]*)\)\s*$", line)
            flags[match.group(1)] = default.group(1) if default else None
    for needed in ("graph-json", "port", "drain-period", "drain-timeout"):
        if needed not in flags:
            raise RuntimeError(f"{binary} --help lists no --{needed}:\n{help_text}")
    return flags


def seconds_of(duration):
    """A Go-style duration such as 30s, 1m30s or 500ms, in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3}
    parts = re.findall(r"([0-9.]+)(ms|h|m|s)", duration or "")
    return sum(float(number) * units[unit] for number, unit in parts)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(host, port):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family) as s:
            s.settimeout(1)
            s.connect((host, port))
            return True
    except OSError:
        return False


def listens_on_every_interface(port):
    """Whether a listening socket on `port` is bound to the wildcard address (what `docker run
    -p` needs), read from /proc/net/tcp and tcp6."""
    for table, wildcard in (("/proc/net/tcp", "00000000"), ("/proc/net/tcp6", "0" * 32)):
        try:
            with open(table) as f:
                rows = [line.split() for line in f.readlines()[1:]]
        except OSError:
            continue
        for row in rows:
            address, _, hex_port = row[1].partition(":")
            if int(hex_port, 16) == port and row[3] == "0A" and address == wildcard:
                return True
    return False


class RouterRun:
    """The built kserve-router on a free loopback port, with `args` and only the environment
    given (no PROPAGATE_HEADERS or KSR_LOG_LEVEL from the caller's). The drain period is cut
    to 0s so that SIGTERM ends it at once."""

    def __init__(self, binary, args, env=None):
        self.port = free_port()
        environment = {k: v for k, v in os.environ.items()
                       if k not in ("PROPAGATE_HEADERS", "KSR_LOG_LEVEL")}
        environment.update(env or {})
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            [binary] + args + ["--port", str(self.port), "--drain-period", "0s"],
            stdout=self.log, stderr=subprocess.STDOUT, env=environment)

    def __enter__(self):
        return self

    def __exit__(self, *_):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body) of one request, or None when nothing answers."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        except OSError:
            return None
        finally:
            connection.close()

    def ready(self, timeout=10):
        """The status /readyz answers once the router listens; None if it exits or never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if listening("127.0.0.1", self.port):
                answer = self.request("GET", "/readyz")
                return answer[0] if answer else None
            time.sleep(0.05)
        return None

    def stop(self):
        """SIGTERM, then the exit status (None if it does not exit within 15 s)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            return None

    def output(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")


def log_messages(output, prefix):
    """The log lines of the router whose message starts with `prefix`."""
    return [line for line in output.splitlines() if f'"msg":"{prefix}' in line]


def check_router_runs(router, graph, env, where, problems):
    """Starts the built router with `graph` and `env`: it must answer /readyz 200, log no graph
    warning and no PROPAGATE_HEADERS error, and exit 0 on SIGTERM."""
    with RouterRun(router, ["--graph-json", graph], env) as run:
        status = run.ready()
        code = run.stop()
        output = run.output()
    if status != 200:
        problems.add(where, f"kserve-router does not start with this graph (/readyz: {status}): "
                            f"{output.strip()}")
        return
    for line in log_messages(output, "graph:") + log_messages(output, "PROPAGATE_HEADERS:"):
        problems.add(where, f"kserve-router logs: {line}")
    if code != 0:
        problems.add(where, f"kserve-router exits {code} on SIGTERM, not 0")


def check_propagate(patterns, router, where, problems):
    """headers.propagate of the router config: a list of strings the router compiles."""
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        problems.add(where, "router.headers.propagate must be a list of non-empty strings")
        return
    graph = json.dumps({"nodes": {"root": {"routerType": "Sequence", "steps": [
        {"serviceUrl": "http://127.0.0.1:9/"}]}}})
    check_router_runs(router, graph, {"PROPAGATE_HEADERS": ",".join(patterns)}, where, problems)


def pod_labels(doc):
    if doc.get("kind") == "Pod":
        return (doc.get("metadata") or {}).get("labels") or {}
    template = (doc.get("spec") or {}).get("template") or {}
    return (template.get("metadata") or {}).get("labels") or {}


def selected_pods(service, documents):
    """The documents whose pods the Service's selector selects."""
    selector = (service.get("spec") or {}).get("selector") or {}
    if not selector:
        return []
    return [doc for _, doc in documents if isinstance(doc, dict) and pod_specs(doc)
            and all(pod_labels(doc).get(k) == v for k, v in selector.items())]


def model_name(spec):
    """The model the pod's kserve-container serves (--model_name), or None."""
    for container in spec.get("containers", []):
        if container.get("name") != "kserve-container":
            continue
        args = [str(a) for a in container.get("command", []) + container.get("args", [])]
        for i, arg in enumerate(args):
            if arg.startswith("--model_name="):
                return arg.split("=", 1)[1]
            if arg == "--model_name" and i + 1 < len(args):
                return args[i + 1]
    return None


def check_service_url(url, documents, where, problems):
    """A step's serviceUrl must name a Service of deploy/ (by its short name or its cluster
    DNS name), on one of its ports, and a model path of the model its pods serve."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    name = host.split(".")[0]
    services = [doc for _, doc in documents if isinstance(doc, dict)
                and doc.get("kind") == "Service" and doc["metadata"].get("name") == name]
    in_cluster = rf"{re.escape(name)}(\.[a-z0-9-]+(\.svc(\.cluster\.local)?)?)?"
    if not services or not re.fullmatch(in_cluster, host):
        problems.add(where, f"serviceUrl {url}: {host} is no Service of deploy/")
        return
    service = services[0]
    if not any(p.get("port") == port for p in (service.get("spec") or {}).get("ports", [])):
        problems.add(where, f"serviceUrl {url}: Service {name} has no port {port}")
    for pod in selected_pods(service, documents):
        for spec in pod_specs(pod):
            model = model_name(spec)
            if model and parts.path not in (f"/v1/models/{model}:predict",
                                            f"/v2/models/{model}/infer"):
                problems.add(where, f"serviceUrl {url}: Service {name}'s model server serves "
                                    f"{model}, so the path must be /v1/models/{model}:predict "
                                    f"or /v2/models/{model}/infer")
    if not selected_pods(service, documents):
        problems.add(where, f"serviceUrl {url}: Service {name} selects no pod of deploy/")


def graph_steps(graph):
    """Every step of every node of a decoded graph."""
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    for node in (nodes or {}).values():
        for step in (node or {}).get("steps") or []:
            if isinstance(step, dict):
                yield step


def is_router(container, kserve_agent, kserve_router):
    """A container meant to run kserve-router: --graph-json first, or the router config's image
    (when it is not the agent's, which the checks of the config report)."""
    first = str((container.get("args") or [""])[0])
    image = container.get("image")
    return first == "--graph-json" or first.startswith("--graph-json=") or (
        kserve_router is not None and image == kserve_router.get("image")
        and image != (kserve_agent or {}).get("image"))


def check_router(container, doc, spec, documents, kserve_router, router, defaults, where,
                 problems):
    """A router container as KServe's InferenceGraph controller runs it (raw mode)."""
    if "command" in container:
        problems.add(where, "the controller sets no command: the image's kserve-router "
                            "entrypoint must run")
    args = container.get("args", [])
    if len(args) != 2 or args[0] != "--graph-json" or not isinstance(args[1], str):
        problems.add(where, 'args must be exactly ["--graph-json", <graph JSON>], as the '
                            "controller writes them")
        return
    try:
        graph = json.loads(args[1])
    except json.JSONDecodeError as error:
        problems.add(where, f"--graph-json is not JSON: {error}")
        return

    probe = container.get("readinessProbe") or {}
    get = probe.get("httpGet") or {}
    for key, wanted in ROUTER_PROBE.items():
        value = get.get(key) if key in ("path", "port") else probe.get(key, wanted)
        if value != wanted:
            problems.add(where, f"readinessProbe {key} must be {wanted!r} (the controller's)")
    if get.get("scheme", "HTTP") != "HTTP":
        problems.add(where, "readinessProbe must use HTTP")

    security = container.get("securityContext") or {}
    for key, wanted in ROUTER_SECURITY.items():
        if security.get(key) != wanted:
            problems.add(where, f"securityContext.{key} must be {wanted}")
    if (security.get("capabilities") or {}).get("drop") != ["ALL"]:
        problems.add(where, "securityContext.capabilities.drop must be [ALL]")
    if spec.get("automountServiceAccountToken") is not False:
        problems.add(where, "the pod must set automountServiceAccountToken: false")

    grace = spec.get("terminationGracePeriodSeconds", 30)
    drain = seconds_of(defaults.get("drain-period")) + seconds_of(defaults.get("drain-timeout"))
    if grace < drain:
        problems.add(where, f"terminationGracePeriodSeconds {grace} cuts the drain short "
                            f"(--drain-period + --drain-timeout = {drain:g} s)")

    env = {e.get("name"): e.get("value") for e in container.get("env", [])}
    if "PROPAGATE_HEADERS" not in env:
        problems.add(where, "no PROPAGATE_HEADERS env (headers.propagate, joined with commas)")

    if kserve_router:
        check_configured(container, kserve_router, "router", where, problems)

    labels = pod_labels(doc)
    if not any(doc_.get("kind") == "Service" and labels
               and all(labels.get(k) == v
                       for k, v in ((doc_.get("spec") or {}).get("selector") or {}).items())
               and any(p.get("targetPort") == ROUTER_PORT
                       for p in (doc_.get("spec") or {}).get("ports", []))
               for _, doc_ in documents if isinstance(doc_, dict)):
        problems.add(where, f"no Service selects this pod with targetPort {ROUTER_PORT}")

    for step in graph_steps(graph):
        if step.get("serviceUrl"):
            check_service_url(step["serviceUrl"], documents, where, problems)

    check_router_runs(router, args[1], {k: v for k, v in env.items() if k and v is not None},
                      where, problems)


def check_seed_example(readme_path, router, problems):
    """`docker run -p 8080:8080 IMAGE --graph-json <seed graph>` as deploy/README.md shows it,
    run with the built router on a free port."""
    where = os.path.basename(readme_path)
    with open(readme_path) as f:
        readme = f.read()
    if f"--graph-json '{SEED_GRAPH}'" not in readme or "docker run -p 8080:8080" not in readme:
        problems.add(where, "does not show the seed's `docker run -p 8080:8080 IMAGE "
                            "--graph-json '<graph>'` with its graph verbatim")
    with RouterRun(router, ["--graph-json", SEED_GRAPH]) as run:
        status = run.ready()
        if status != 200:
            run.stop()
            problems.add(where, f"kserve-router does not start with the seed's graph (/readyz: "
                                f"{status}): {run.output().strip()}")
            return
        if not listens_on_every_interface(run.port):
            problems.add(where, "kserve-router does not listen on every interface, so "
                                "`docker run -p` cannot reach it")
        if listening("127.0.0.1", ROUTER_PORT) or listening("::1", ROUTER_PORT):
            print(f"{where}: something listens on localhost:{ROUTER_PORT}; the seed's request "
                  "is not sent")
        else:
            answer = run.request("POST", "/v1/models/model1:predict", b'{"instances":[[1,2]]}',
                                 {"Content-Type": "application/json"})
            try:
                status, headers, body = answer
                error = json.loads(body)
                if (status != 502 or list(error) != ["error", "cause"]
                        or error["error"] != "Failed to process request"
                        or SEED_STEP_URL not in error["cause"]
                        or headers.get("Content-Type") != "application/json"):
                    raise ValueError(f"{status} {body!r}")
            except (TypeError, ValueError) as problem:
                problems.add(where, "the seed's request must get 502 with upstream's error body "
                                    f"naming {SEED_STEP_URL}, not {problem}")
        code = run.stop()
        if code != 0:
            problems.add(where, f"kserve-router exits {code} on SIGTERM, not 0: {run.output()}")


def dockerfile_stages(instructions):
    """The stages of a Dockerfile: base image or stage, name, and instructions of each."""
    stages = []
    for instruction in instructions:
        match = re.fullmatch(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", instruction, re.IGNORECASE)
        if match:
            stages.append({"base": match.group(1), "name": match.group(2), "lines": []})
        elif stages:
            stages[-1]["lines"].append(instruction)
    return stages


def stage_image(stages, index):
    """What the image of stage `index` holds: the stage and those it builds on (nearest first)
    give its entrypoint, user, exposed ports, copies and the image it starts from."""
    named = {stage["name"]: stage for stage in stages[:index] if stage["name"]}
    chain = [stages[index]]
    while chain[-1]["base"] in named and named[chain[-1]["base"]] not in chain:
        chain.append(named[chain[-1]["base"]])

    def last(keyword):
        for stage in chain:
            found = [i[len(keyword) + 1:] for i in stage["lines"] if i.startswith(keyword + " ")]
            if found:
                return found[-1]
        return None

    entrypoint = last("ENTRYPOINT")
    try:
        entrypoint = json.loads(entrypoint) if entrypoint else None
    except json.JSONDecodeError:
        pass
    return {"entrypoint": entrypoint, "user": last("USER"), "from": chain[-1]["base"],
            "expose": {p for stage in chain for i in stage["lines"] if i.startswith("EXPOSE ")
                       for p in i.split()[1:]},
            "copies": [i for stage in chain for i in stage["lines"] if i.startswith("COPY ")]}


def check_image(image, target, entrypoint, port, binaries, where, problems):
    if image["entrypoint"] != [entrypoint]:
        problems.add(where, f'{target}: ENTRYPOINT must be ["{entrypoint}"]')
    if image["user"] is None or not re.fullmatch(r"65532(:65532)?", image["user"]):
        problems.add(where, f"{target}: must run as USER 65532")
    if port is not None and str(port) not in image["expose"]:
        problems.add(where, f"{target}: must EXPOSE {port}")
    if not image["from"].startswith("debian:bookworm-slim"):
        problems.add(where, f"{target}: the runtime must be debian:bookworm-slim")
    for binary in binaries:
        if not any(binary in copy and "/usr/local/bin/" in copy for copy in image["copies"]):
            problems.add(where, f"{target}: {binary} is not copied into /usr/local/bin/")


def check_dockerfile(path, binaries, problems):
    where = os.path.relpath(path, os.path.dirname(os.path.dirname(path)))
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    instructions = [" ".join(line.split()) for line in text.splitlines()
                    if line.strip() and not line.strip().startswith("#")]
    stages = dockerfile_stages(instructions)
    if not stages:
        problems.add(where, "no FROM")
        return
    names = [stage["name"] for stage in stages]
    # `docker build` without --target builds the last stage: the agent.
    check_image(stage_image(stages, len(stages) - 1), "the default (last) target",
                "kserve-agent", 9081,
                ["kserve-agent", "storage-initializer", "libkserve-agent-modules.so"], where,
                problems)
    for target, entrypoint, port, files in (
            ("storage-initializer", "storage-initializer", None, ["storage-initializer"]),
            ("router", "kserve-router", 8080, ["kserve-router", "libkserve-router-https.so"])):
        if target not in names:
            problems.add(where, f"no `{target}` target (FROM runtime AS {target})")
            continue
        check_image(stage_image(stages, names.index(target)), f"target {target}", entrypoint,
                    port, files, where, problems)

    # The build stage builds every binary and re-derives the runtime packages from all of them.
    build = [i for stage in stages if stage["name"] == "build" for i in stage["lines"]]
    if not build:
        problems.add(where, "no `build` stage")
    installs = [i for i in build if "apt-get install" in i]
    if not any("libre2-dev" in i.split() for i in installs):
        problems.add(where, "the build stage must install libre2-dev (kserve-router's RE2)")
    names_built = [os.path.basename(b) for b in binaries]
    for name in names_built:
        target = name[3:-3] if name.startswith("lib") and name.endswith(".so") else name
        if not any(target in match.split() for i in build if "cmake --build" in i
                   for match in re.findall(r"--target\s+([^&;]*)", i)):
            problems.add(where, f"the build stage does not build {target}")
        if not any(f"/build/{name}" in arguments.split() for i in build
                   for arguments in re.findall(r"runtime-packages\.sh\s+([^|)]*)", i)):
            problems.add(where, f"the build stage does not derive runtime packages from "
                                f"/build/{name}")

    declared = [shlex.split(i[len("ARG RUNTIME_PACKAGES="):]) for i in instructions
                if i.startswith("ARG RUNTIME_PACKAGES=")]
    if len(declared) != 1:
        problems.add(where, "needs exactly one ARG RUNTIME_PACKAGES=\"...\"")
        return
    listed = declared[0][0].split() if declared[0] else []
    if not any(p.startswith("libre2-") for p in listed):
        problems.add(where, "RUNTIME_PACKAGES has no libre2 (kserve-router links RE2)")
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
    parser.add_argument("--router-https", required=True,
                        help="the built libkserve-router-https.so")
    parser.add_argument("--router", required=True, help="the built kserve-router")
    args = parser.parse_args()
    args.agent = os.path.abspath(args.agent)
    args.modules = os.path.abspath(args.modules)
    args.storage_initializer = os.path.abspath(args.storage_initializer)
    args.router = os.path.abspath(args.router)
    args.router_https = os.path.abspath(args.router_https)
    problems = Problems()
    flags = agent_flags(args.agent)
    router_defaults = router_help(args.router)

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
    kserve = None
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
                kserve = check_kserve_config(data, args.router, f"{where} {name}", problems)
    kserve_agent = (kserve or {}).get("agent")
    kserve_router = (kserve or {}).get("router")
    if kserve_agent is None:
        problems.add(args.deploy_dir, "no inferenceservice-config ConfigMap with an agent key")
    if kserve_router is None:
        problems.add(args.deploy_dir, "no inferenceservice-config ConfigMap with a router key")

    agents = 0
    routers = 0
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
                elif is_router(container, kserve_agent, kserve_router):
                    routers += 1
                    check_router(container, doc, spec, documents, kserve_router, args.router,
                                 router_defaults, place, problems)
    if agents == 0:
        problems.add(args.deploy_dir, "no manifest has an agent container")
    if routers == 0:
        problems.add(args.deploy_dir, "no manifest has a router container")

    check_dockerfile(os.path.join(args.deploy_dir, "Dockerfile"),
                     [args.agent, args.modules, args.storage_initializer, args.router,
                      args.router_https], problems)
    check_seed_example(os.path.join(args.deploy_dir, "README.md"), args.router, problems)

    for line in problems.lines:
        print(line)
    print(f"check_manifests: {len(documents)} documents, {agents} agent containers, "
          f"{routers} router containers, {len(problems.lines)} problems")
    sys.exit(1 if problems.lines else 0)


if __name__ == "__main__":
    main()
