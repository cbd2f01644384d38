"""What stands behind the emulated Elastic Beanstalk when the sandbox runs a fleet (``inv sandbox --instances N``).

Every instance EB launches is a host on this machine (``sandbox/instance_host.py``: its own network namespace on
the sandbox's bridge, sshd, nginx, dockerd, a metadata service). Its address is the instance's address in EC2.
A deployment runs the platform engine on each host (``sandbox/platform_agent.py``), one instance at a time, each
taken out of the load balancer while it is deployed and put back once it answers its health check
(EB-DEPLOY-ROLLING). The load balancer (``sandbox/load_balancer.py``) is generated from the environment's option
settings, and the environment's CNAME resolves to it inside the sandbox's client namespace. EFS and RDS have their
stand-ins (``sandbox/stores.py``) at the names AWS reports. A host that dies is replaced, as its Auto Scaling group
would: a new instance, deployed through the bundle alone, joins the load balancer (EB-ASG-REPLACE).

Work on the hosts runs in threads. The lifecycle's stages wait for it (``Stage.until``); no thread changes the
emulator's state without holding ``sandbox.model.LOCK``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROPERTIES_NAMESPACE = "aws:elasticbeanstalk:application:environment"
SECRETS_NAMESPACE = "aws:elasticbeanstalk:application:environmentsecrets"
FIRST_BALANCER = 3
FIRST_STORE = 10
FIRST_INSTANCE = 20  # host numbers on the sandbox's subnet: .1 bridge, .3-.9 load balancers, .10-.19 EFS/RDS, .20+ instances
LAST_INSTANCE = 250


@dataclass(frozen=True)
class FleetConfig:
    """Where the fleet lives and what its hosts need from the rest of the sandbox."""

    prefix: str  # names of namespaces and interfaces
    subnet: str  # first three octets of the sandbox's /24, e.g. "10.239.0"
    workdir: str  # the hosts' files
    public_key: str  # the EC2 key pair's OpenSSH public key, authorized for ec2-user on every host
    endpoint: str  # the emulated AWS (http://127.0.0.1:PORT; the hosts reach this machine's loopback port)
    registry: str  # 127.0.0.1:PORT, the registry behind ECR (likewise)
    client_hosts: str  # the hosts file of the sandbox's clients: each environment's CNAME -> its load balancer

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FleetConfig:
        return cls(**{name: str(data[name]) for name in cls.__dataclass_fields__})


@dataclass
class Outcome:
    """How one instance's deployment ended."""

    instance_id: str
    ok: bool
    message: str = ""


@dataclass
class Rollout:
    """A deployment (or settings update) running on some of an environment's instances."""

    instance_ids: list[str]
    future: Future[list[Outcome]]

    def done(self) -> bool:
        return self.future.done()

    def failures(self) -> list[Outcome]:
        try:
            outcomes = self.future.result()
        except Exception as exc:  # noqa: BLE001 - the fleet's own failure is the deployment's failure
            return [Outcome(self.instance_ids[0] if self.instance_ids else "i-unknown", False, f"sandbox: {exc}")]
        return [o for o in outcomes if not o.ok]


@dataclass
class EnvironmentView:
    """What the fleet needs of an environment, copied under the emulator's lock."""

    id: str
    name: str
    cname: str
    region: str
    options: dict[tuple[str, str, str], str]
    instance_ids: list[str]  # all of the environment's instances (the load balancer's targets)
    deploy_to: list[str]  # the ones this rollout deploys to
    bucket: str = ""
    key: str = ""
    label: str = ""
    role: str = ""


def environment_of(options: dict[tuple[str, str, str], str]) -> tuple[dict[str, str], dict[str, str]]:
    """The environment properties and the environment secrets (name -> SSM ARN) among option settings."""
    properties = {name: value for (_, namespace, name), value in sorted(options.items())
                  if namespace == PROPERTIES_NAMESPACE}
    secrets = {name: value for (_, namespace, name), value in sorted(options.items())
               if namespace == SECRETS_NAMESPACE}
    return properties, secrets


def option_settings(options: dict[tuple[str, str, str], str]) -> list[dict[str, str]]:
    """Option settings as DescribeConfigurationSettings lists them."""
    return [{"Namespace": namespace, "OptionName": name, "Value": value, **({"ResourceName": resource} if resource
                                                                             else {})}
            for (resource, namespace, name), value in sorted(options.items())]


def write_hosts_file(path: Path, names: dict[str, str]) -> None:
    """The sandbox clients' /etc/hosts (localhost, then each name). Rewritten in place, never replaced: running
    clients have this very file bind-mounted over their /etc/hosts."""
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{address}\t{name}" for name, address in sorted(names.items())]
    with open(path, "r+" if path.exists() else "w") as hosts:
        hosts.truncate(0)
        hosts.write("\n".join(lines) + "\n")


def _port(address: str) -> int:
    return int(address.rstrip("/").rsplit(":", 1)[1])


@dataclass
class Stores:
    """The stand-ins behind EFS (nfs-ganesha, one export per file system) and RDS (PostgreSQL, one cluster per DB
    instance), each in a namespace of its own on the bridge, started the first time an instance needs them."""

    network: Any
    workdir: Path
    prefix: str
    subnet: str
    file_systems: dict[str, Any] = field(default_factory=dict)
    databases: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _made: int = 0

    def _namespace(self) -> tuple[str, str]:
        number = FIRST_STORE + self._made
        self._made += 1
        if number >= FIRST_INSTANCE:
            raise RuntimeError("the sandbox runs at most 10 EFS and RDS stand-ins")
        address = f"{self.subnet}.{number}"
        return self.network.add_namespace(f"{self.prefix}-s{number}", address), address

    def file_system(self, file_system_id: str) -> Any:
        from sandbox.stores import NfsExport

        with self._lock:
            if file_system_id not in self.file_systems:
                namespace, address = self._namespace()
                self.file_systems[file_system_id] = NfsExport(self.workdir / file_system_id, namespace,
                                                              address).start()
            return self.file_systems[file_system_id]

    def database(self, db_instance: Any) -> Any:
        """The PostgreSQL behind moto's ``db_instance``, created with the master credentials it was given."""
        from sandbox.stores import Database, DatabaseRequest

        with self._lock:
            key = db_instance.db_instance_identifier
            if key not in self.databases:
                namespace, address = self._namespace()
                self.databases[key] = Database(self.workdir / key, namespace, address,
                                               DatabaseRequest.from_moto(db_instance)).start()
            return self.databases[key]

    def exports(self) -> dict[str, str]:
        """Server address -> exported directory, for the instance hosts' NFS client (sandbox/nfs_client.py)."""
        return {nfs.address: str(nfs.export) for nfs in self.file_systems.values()}

    def stop(self) -> None:
        for store in [*self.file_systems.values(), *self.databases.values()]:
            store.remove()


@dataclass
class Fleet:
    config: FleetConfig
    hosts: dict[str, Any] = field(default_factory=dict)  # instance id -> InstanceHost
    starting: dict[str, Future[Any]] = field(default_factory=dict)
    deployed: dict[str, str] = field(default_factory=dict)  # instance id -> version label running there
    pool: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(max_workers=8,
                                                                               thread_name_prefix="fleet"))
    _free: list[int] = field(default_factory=lambda: list(range(FIRST_INSTANCE, LAST_INSTANCE)))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    network: Any = None
    balancers: dict[str, Any] = field(default_factory=dict)  # environment id -> LoadBalancer
    stores: Any = None
    ca: Any = None  # the sandbox's CA: its certificates stand in for ACM's
    client_names: dict[str, str] = field(default_factory=dict)  # CNAME -> load balancer address
    healing: dict[str, Rollout] = field(default_factory=dict)  # environment id -> replacement being deployed
    watchers: dict[str, Callable[[], None]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def watch(self, environment_id: str, heal: Callable[[], None]) -> None:
        """Call ``heal`` (under the emulator's lock) every second, as Auto Scaling checks its instances."""
        self.watchers[environment_id] = heal

    def unwatch(self, environment_id: str) -> None:
        self.watchers.pop(environment_id, None)

    def _watch_loop(self) -> None:
        from sandbox.model import LOCK

        while not self._stop.wait(1.0):
            for heal in list(self.watchers.values()):
                try:
                    with LOCK:
                        heal()
                except Exception:  # noqa: BLE001 - one environment's trouble must not stop the watcher
                    logging.getLogger(__name__).exception("healing an environment failed")

    def stand_in_names(self, account_id: str, region: str) -> dict[str, str]:
        """EFS DNS names and RDS endpoints -> the addresses of their stand-ins, started on first use."""
        from moto.efs.models import efs_backends
        from moto.rds.models import rds_backends

        names = {}
        for file_system_id in list(efs_backends[account_id][region].file_systems_by_id):
            names[f"{file_system_id}.efs.{region}.amazonaws.com"] = self.stores.file_system(file_system_id).address
        for database in list(rds_backends[account_id][region].databases.values()):
            names[database.address] = self.stores.database(database).address
        return names

    # -- instances ------------------------------------------------------------------------------------
    def address(self) -> str:
        with self._lock:
            return f"{self.config.subnet}.{self._free.pop(0)}"

    def release(self, address: str) -> None:
        with self._lock:
            number = int(address.rsplit(".", 1)[1])
            if FIRST_INSTANCE <= number < LAST_INSTANCE and number not in self._free:
                self._free.append(number)
                self._free.sort()

    def launch(self, instance_id: str, address: str, role: str, region: str,  # role: the instance role's ARN
               hosts_entries: Callable[[], dict[str, str]]) -> None:
        """Start the host of ``instance_id`` at ``address`` in the background."""
        self.starting[instance_id] = self.pool.submit(self._start_host, instance_id, address, role, region,
                                                      hosts_entries)

    def _start_host(self, instance_id: str, address: str, role: str, region: str,
                    hosts_entries: Callable[[], dict[str, str]]) -> Any:
        from sandbox import metadata
        from sandbox.instance_host import InstanceHost

        number = address.rsplit(".", 1)[1]
        host = InstanceHost(
            self.network, f"{self.config.prefix}-i{number}", address, instance_id,
            Path(self.config.workdir) / instance_id, self.config.public_key, region=region,
            role_name=role.rsplit("/", 1)[-1] if role else None,
            credentials=metadata.assume_role_credentials(self.config.endpoint, role, region, instance_id)
            if role else None,
            hosts_entries=hosts_entries(), loopback_ports=[_port(self.config.endpoint), _port(self.config.registry)])
        self.hosts[instance_id] = host
        host.start()
        self._nfs_client(host)
        return host

    def _nfs_client(self, host: Any) -> None:
        """The host's mount.nfs is the sandbox's stand-in (sandbox/nfs_client.py), bound in its mount namespace."""
        from sandbox import nfs_client

        (host.workdir / nfs_client.EXPORTS_FILE).write_text(nfs_client.exports_file(self.stores.exports()))
        script = host.workdir / "mount-nfs"
        script.write_text(nfs_client.mount_script(host.workdir / nfs_client.EXPORTS_FILE, "/var/log/sandbox-nfs"))
        script.chmod(0o755)
        host.run(["mount", "--bind", str(script), "/sbin/mount.nfs"])

    def terminate(self, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            self.starting.pop(instance_id, None)
            self.deployed.pop(instance_id, None)
            host = self.hosts.pop(instance_id, None)
            if host is not None:
                self.pool.submit(self._stop_host, host)

    def _stop_host(self, host: Any) -> None:
        host.stop()
        self.release(host.address)

    def dead(self, instance_ids: list[str]) -> list[str]:
        """Instances whose host was up and has died (killed, crashed): EC2's status check fails."""
        return [i for i in instance_ids if i in self.starting and self.starting[i].done()
                and self.starting[i].exception() is None and not self.hosts[i].alive()]

    # -- deployments ----------------------------------------------------------------------------------
    def rollout(self, view: EnvironmentView, mode: str, one_at_a_time: bool) -> Rollout:
        """Deploy ``view.label`` (mode "deploy") or the new settings (mode "configure") to ``view``'s instances."""
        ids = list(view.deploy_to)
        return Rollout(ids, self.pool.submit(self._roll, view, mode, ids, one_at_a_time))

    def _roll(self, view: EnvironmentView, mode: str, ids: list[str], one_at_a_time: bool) -> list[Outcome]:
        for instance_id in ids:
            self.starting[instance_id].result()
        if not one_at_a_time:
            outcomes = list(self.pool.map(lambda i: self._deploy_one(i, mode, view), ids))
            self.balance(view)
            return outcomes
        outcomes = []
        for instance_id in ids:
            self.balance(view, draining={instance_id})
            outcome = self._deploy_one(instance_id, mode, view)
            outcomes.append(outcome)
            if not outcome.ok:
                break
            self.balance(view)
            self.wait_in_service(view, instance_id)
        return outcomes

    def _deploy_one(self, instance_id: str, mode: str, view: EnvironmentView) -> Outcome:
        from sandbox.platform_agent import Manifest

        host = self.hosts[instance_id]
        properties, secrets = environment_of(view.options)
        manifest = Manifest(endpoint_url=self.config.endpoint, region=view.region, bucket=view.bucket, key=view.key,
                            version_label=view.label, properties=properties, secrets=secrets)
        result = host.deploy(manifest) if mode == "deploy" else host.configure(manifest)
        if result.ok:
            self.deployed[instance_id] = view.label
        return Outcome(instance_id, result.ok, " ".join(result.events[1:]) or result.error or "")

    # -- the load balancer --------------------------------------------------------------------------------
    def balance(self, view: EnvironmentView, draining: frozenset[str] = frozenset()) -> None:
        """Point the environment's load balancer at its deployed instances, less ``draining`` (started on first
        use; its CNAME then resolves to it for the sandbox's clients)."""
        targets = [self.hosts[i].address for i in view.instance_ids
                   if i in self.hosts and i in self.deployed and i not in draining]
        with self._lock:
            balancer = self.balancers.get(view.id) or self._new_balancer(view)
        balancer.configure(option_settings(view.options), targets)

    def _new_balancer(self, view: EnvironmentView) -> Any:
        from sandbox.load_balancer import LoadBalancer

        number = FIRST_BALANCER + len(self.balancers)
        namespace = self.network.add_namespace(f"{self.config.prefix}-lb{number}", f"{self.config.subnet}.{number}")
        balancer = self.balancers[view.id] = LoadBalancer(Path(self.config.workdir) / f"lb-{view.id}", namespace,
                                                          f"{self.config.subnet}.{number}", view.cname, ca=self.ca)
        self.client_names[view.cname] = balancer.address
        write_hosts_file(Path(self.config.client_hosts), self.client_names)
        return balancer

    def wait_in_service(self, view: EnvironmentView, instance_id: str, timeout: float = 120.0) -> bool:
        """Wait until every process of the load balancer sees ``instance_id`` healthy (False after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.target_health(view).get(instance_id):
                return True
            time.sleep(0.5)
        return False

    def target_health(self, view: EnvironmentView) -> dict[str, bool]:
        """Instance id -> whether every process's health check passes on it (haproxy names a target IP:PORT)."""
        balancer = self.balancers.get(view.id)
        if balancer is None:
            return {}
        try:
            states = balancer.server_states()
        except OSError:
            return {}
        health = {}
        for instance_id in view.instance_ids:
            host = self.hosts.get(instance_id)
            if host is not None:
                seen = [state for (_, server), state in states.items() if server.rsplit(":", 1)[0] == host.address]
                health[instance_id] = bool(seen) and all(state == "UP" for state in seen)
        return health

    def close(self) -> None:
        self._stop.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with ThreadPoolExecutor(max_workers=8) as stopping:  # a host with the app's image takes ~20 s to clear
            list(stopping.map(lambda host: host.stop(), list(self.hosts.values())))
        for balancer in self.balancers.values():
            balancer.stop()
        if self.stores is not None:
            self.stores.stop()
        if self.network is not None:
            for name in list(self.network.namespaces):
                self.network.remove_namespace(name)


_current: Fleet | None = None


def current() -> Fleet | None:
    """The fleet of this serving process, if the sandbox runs one."""
    return _current


def start(config: FleetConfig) -> Fleet:
    """Start the fleet (bridge, stores) in this serving process; an existing one with the same config is kept."""
    global _current
    if _current is not None:
        if _current.config == config:
            return _current
        _current.close()
    from sandbox.network import Bridge

    fleet = Fleet(config)
    fleet.network = Bridge(config.prefix, config.subnet)  # the session made it; its namespaces are ours
    fleet.stores = Stores(fleet.network, Path(config.workdir) / "stores", config.prefix, config.subnet)
    # The CA that stands in for ACM: made now, so that the session can point its clients at it.
    from sandbox.tls import SandboxCA

    fleet.ca = SandboxCA(Path(config.workdir) / "ca")
    fleet.ca.trust_bundle()
    threading.Thread(target=fleet._watch_loop, name="fleet-watch", daemon=True).start()
    _current = fleet
    return fleet


def stop() -> None:
    global _current
    if _current is not None:
        _current.close()
        _current = None
