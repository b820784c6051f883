"""A local Apache Kafka broker, assembled from its jars on Maven Central and run on the machine's Java.

KRaft mode, one node that is both broker and controller, PLAINTEXT on loopback. Optionally a second
listener as a secured cluster has it (Strimzi's tls listener, charts/kafka's standalone one): SASL_SSL with
SCRAM-SHA-512 users made at format time, a certificate from a CA made here with keytool, and ACLs enforced
(StandardAuthorizer); the PLAINTEXT loopback listener then serves the broker itself and admin tooling, whose
principal (User:ANONYMOUS) is the super user. The jars are
resolved once with Maven (a generated pom and ``dependency:copy-dependencies``) and cached under
``$XDG_CACHE_HOME/ingestion-patterns/kafka/<version>/``, so tests, CI and ``ingest kafka up`` share
them. ``python -m ingestion_patterns.kafka.broker fetch`` only downloads them (CI pre-warms with it).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .processes import ManagedProcess, free_port, wait_until

KAFKA_VERSION = os.environ.get("INGEST_KAFKA_VERSION", "4.4.0")
# Kafka's own pom asks for slf4j 1.7; log4j2's binding needs slf4j 2, so both are pinned here.
_LOG4J_VERSION = "2.25.3"
_SLF4J_VERSION = "2.0.17"
DEFAULT_PORT = 9094
PID_FILE = "broker.pid"
_READY_LINE = "Kafka Server started"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.ingestion-patterns</groupId>
  <artifactId>kafka-broker-jars</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <!-- kafka_2.13 holds kafka.Kafka (the server) and kafka.tools.StorageTool (storage format) -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>{kafka}</version></dependency>
    <!-- kafka-tools holds org.apache.kafka.tools.TopicCommand (kafka-topics.sh of the local-cluster image);
         connect-runtime (Jetty, Jersey) only serves its Connect plugin tools -->
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>{kafka}</version>
      <exclusions><exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion></exclusions>
    </dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-api</artifactId><version>{slf4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-slf4j2-impl</artifactId><version>{log4j}</version></dependency>
    <dependency><groupId>org.apache.logging.log4j</groupId><artifactId>log4j-core</artifactId><version>{log4j}</version></dependency>
  </dependencies>
</project>
"""

_LOG4J2_XML = """<Configuration status="WARN">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT"><PatternLayout pattern="[%d] %p %m (%c)%n"/></Console>
  </Appenders>
  <Loggers>
    <Logger name="kafka" level="INFO"/>
    <Logger name="org.apache.kafka" level="WARN"/>
    <Logger name="kafka.server.KafkaConfig" level="WARN"/>
    <Root level="WARN"><AppenderRef ref="STDOUT"/></Root>
  </Loggers>
</Configuration>
"""


class BrokerError(RuntimeError):
    """The broker could not be assembled or started; the message says why."""


@dataclass(frozen=True)
class SaslSsl:
    """A SASL_SSL listener with SCRAM-SHA-512 on ``port``: its users (name -> password) are created when the
    storage is formatted (kafka-storage's --add-scram), so they belong to a new data folder."""

    port: int
    users: dict[str, str]
    mechanism: str = "SCRAM-SHA-512"


def keytool_executable() -> str | None:
    """keytool of the Java that runs the broker (it comes with every JRE)."""
    java = java_executable()
    if java and (candidate := Path(java).resolve().parent / "keytool").exists():
        return str(candidate)
    return shutil.which("keytool")


def make_certificates(
    folder: Path, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"), days: int = 30
) -> dict[str, Path]:
    """A CA and a broker key store signed by it, with keytool (as charts/kafka's certificates Job does):
    ``ca.crt`` (PEM, what clients trust), ``broker.p12`` and its password in ``broker.password``."""
    keytool = keytool_executable()
    if keytool is None:
        raise BrokerError("keytool (from the Java installation) is needed for a SASL_SSL listener")
    folder.mkdir(parents=True, exist_ok=True)
    password = base64.urlsafe_b64encode(os.urandom(18)).decode()
    (folder / "broker.password").write_text(password)
    san = ",".join(f"ip:{h}" if h.replace(".", "").isdigit() else f"dns:{h}" for h in hosts)
    store = ["-storetype", "PKCS12", "-storepass", password]
    steps = [
        [
            "-genkeypair",
            "-alias",
            "ca",
            "-dname",
            "CN=local-kafka-ca",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            str(days),
            "-ext",
            "bc:c=ca:true",
            "-ext",
            "KU:c=keyCertSign,cRLSign",
            "-keystore",
            str(folder / "ca.p12"),
            *store,
        ],
        [
            "-exportcert",
            "-rfc",
            "-alias",
            "ca",
            "-keystore",
            str(folder / "ca.p12"),
            "-storepass",
            password,
            "-file",
            str(folder / "ca.crt"),
        ],
        [
            "-genkeypair",
            "-alias",
            "broker",
            "-dname",
            "CN=local-kafka",
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            str(days),
            "-keystore",
            str(folder / "broker.p12"),
            *store,
        ],
        [
            "-certreq",
            "-alias",
            "broker",
            "-keystore",
            str(folder / "broker.p12"),
            "-storepass",
            password,
            "-file",
            str(folder / "broker.csr"),
        ],
        [
            "-gencert",
            "-alias",
            "ca",
            "-keystore",
            str(folder / "ca.p12"),
            "-storepass",
            password,
            "-rfc",
            "-infile",
            str(folder / "broker.csr"),
            "-outfile",
            str(folder / "broker.crt"),
            "-validity",
            str(days),
            "-ext",
            "KU:c=digitalSignature,keyEncipherment",
            "-ext",
            "EKU=serverAuth",
            "-ext",
            f"SAN={san}",
        ],
        [
            "-importcert",
            "-noprompt",
            "-alias",
            "ca",
            "-file",
            str(folder / "ca.crt"),
            "-keystore",
            str(folder / "broker.p12"),
            "-storepass",
            password,
        ],
        [
            "-importcert",
            "-noprompt",
            "-alias",
            "broker",
            "-file",
            str(folder / "broker.crt"),
            "-keystore",
            str(folder / "broker.p12"),
            "-storepass",
            password,
        ],
    ]
    for step in steps:
        result = subprocess.run([keytool, *step], capture_output=True, text=True)
        if result.returncode != 0:
            raise BrokerError(f"keytool {step[0]} failed:\n{result.stdout}{result.stderr}")
    return {"ca": folder / "ca.crt", "keystore": folder / "broker.p12", "password": folder / "broker.password"}


def java_executable() -> str | None:
    """The ``java`` to run the broker with: ``$JAVA_HOME/bin/java`` or the one on PATH."""
    if home := os.environ.get("JAVA_HOME"):
        candidate = Path(home, "bin", "java")
        if candidate.exists():
            return str(candidate)
    return shutil.which("java")


def cache_dir(version: str = KAFKA_VERSION) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ingestion-patterns" / "kafka" / version


def ensure_jars(version: str = KAFKA_VERSION) -> Path:
    """The folder holding every jar the broker needs, downloading them with Maven on first use."""
    root = cache_dir(version)
    pom = _POM.format(kafka=version, slf4j=_SLF4J_VERSION, log4j=_LOG4J_VERSION)
    # The marker holds the pom's digest: a cache made from another jar set is fetched again, once.
    libs, done, digest = root / "libs", root / "libs.complete", hashlib.sha256(pom.encode()).hexdigest()
    if _marker(done) == digest:
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Apache Maven (`mvn`) is needed once to fetch Kafka's jars; install it (apt-get install maven)"
        )
    root.mkdir(parents=True, exist_ok=True)
    # One download at a time per version, across processes (parallel test sessions, CI steps).
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _marker(done) == digest:
            return libs
        with tempfile.TemporaryDirectory(dir=root) as work:
            work_path = Path(work)
            (work_path / "pom.xml").write_text(pom)
            out = work_path / "libs"
            result = subprocess.run(
                [mvn, "-B", "-q", "dependency:copy-dependencies", f"-DoutputDirectory={out}", "-DincludeScope=runtime"],
                cwd=work_path,
                capture_output=True,
                text=True,
            )
            if result.returncode != 0 or not any(out.glob("kafka_2.13-*.jar")):
                raise BrokerError(
                    f"mvn could not fetch Kafka {version}'s jars:\n{result.stdout[-4000:]}{result.stderr[-2000:]}"
                )
            shutil.rmtree(libs, ignore_errors=True)
            out.rename(libs)
        done.write_text(digest + "\n")
    return libs


def _marker(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _cluster_id() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 bytes, unpadded; one starting with "-" would
    # read as a command-line option, so pick another.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def server_properties(
    *,
    port: int,
    controller_port: int,
    data_dir: Path,
    host: str = "127.0.0.1",
    sasl_ssl: SaslSsl | None = None,
    tls: dict[str, Path] | None = None,
) -> str:
    """A single-node KRaft configuration: broker and controller in one process (and with ``sasl_ssl``, a
    SASL_SSL listener with SCRAM, TLS from ``tls`` (make_certificates) and ACLs)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{host}:{controller_port}",
        "listeners": f"PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir / "logs"),
        "num.partitions": "1",
        "auto.create.topics.enable": "true",
        # One node: every internal topic has one replica.
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Large fetches for fast consumers (the default caps a fetch at 55 MB, a partition at 1 MB).
        "message.max.bytes": str(16 * 1024 * 1024),
    }
    if sasl_ssl is not None:
        if tls is None:
            raise BrokerError("a SASL_SSL listener needs certificates (make_certificates)")
        mechanism = sasl_ssl.mechanism.lower()
        settings.update(
            {
                "listeners": f"{settings['listeners']},SASL_SSL://{host}:{sasl_ssl.port}",
                "advertised.listeners": f"{settings['advertised.listeners']},SASL_SSL://{host}:{sasl_ssl.port}",
                "listener.security.protocol.map": f"{settings['listener.security.protocol.map']},SASL_SSL:SASL_SSL",
                "listener.name.sasl_ssl.sasl.enabled.mechanisms": sasl_ssl.mechanism,
                f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "ssl.keystore.type": "PKCS12",
                "ssl.keystore.location": str(tls["keystore"]),
                "ssl.keystore.password": tls["password"].read_text(),
                "ssl.key.password": tls["password"].read_text(),
                # ACLs: the application's users get what they are granted (Broker.grant); the PLAINTEXT loopback
                # listeners (this broker itself, the controller, admin tooling) are the super user.
                "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                "super.users": "User:ANONYMOUS",
                "allow.everyone.if.no.acl.found": "false",
                "auto.create.topics.enable": "false",
            }
        )
    return "".join(f"{key}={value}\n" for key, value in settings.items())


@dataclass
class Broker:
    """A running (or once running) local broker: its process id, port and data folder."""

    pid: int
    port: int
    data_dir: Path
    log_path: Path
    host: str = "127.0.0.1"
    process: ManagedProcess | None = None  # set when this Python process started it
    sasl_ssl: SaslSsl | None = None
    ca_file: Path | None = None  # with sasl_ssl: the CA that signed the broker's certificate (PEM)

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        if self.sasl_ssl is None:
            raise BrokerError("this broker has no SASL_SSL listener")
        return f"{self.host}:{self.sasl_ssl.port}"

    def client_settings(self, user: str, password: str | None = None) -> dict[str, str]:
        """The KAFKA_* settings (environment variables) of a client logging in as ``user`` over SASL_SSL."""
        if self.sasl_ssl is None or self.ca_file is None:
            raise BrokerError("this broker has no SASL_SSL listener")
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.sasl_ssl_bootstrap_servers,
            "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "KAFKA_SASL_MECHANISM": self.sasl_ssl.mechanism,
            "KAFKA_SASL_USERNAME": user,
            "KAFKA_SASL_PASSWORD": self.sasl_ssl.users[user] if password is None else password,
            "KAFKA_SSL_CAFILE": str(self.ca_file),
        }

    def grant(
        self,
        user: str,
        *,
        topics: tuple[str, ...] = (),
        groups: tuple[str, ...] = (),
        operations: tuple[str, ...] = ("Describe", "DescribeConfigs", "Read", "Write"),
        prefixed: bool = False,
        version: str = KAFKA_VERSION,
    ) -> None:
        """Allow ``user`` ``operations`` on ``topics`` and Read on consumer ``groups`` (names, or name
        prefixes with ``prefixed``), with Kafka's own kafka-acls tool as the super user."""
        java = java_executable()
        if java is None:
            raise BrokerError("Java is not installed")
        pattern = ["--resource-pattern-type", "prefixed" if prefixed else "literal"]
        calls = []
        if topics:
            calls.append(
                [*[a for t in topics for a in ("--topic", t)], *[a for o in operations for a in ("--operation", o)]]
            )
        if groups:
            calls.append([*[a for g in groups for a in ("--group", g)], "--operation", "Read"])
        for resources in calls:
            result = subprocess.run(
                [
                    java,
                    "-Xmx256m",
                    "-cp",
                    f"{ensure_jars(version)}/*",
                    f"-Dlog4j2.configurationFile={self.data_dir / 'log4j2.xml'}",
                    "org.apache.kafka.tools.AclCommand",
                    "--bootstrap-server",
                    self.bootstrap_servers,
                    "--add",
                    "--allow-principal",
                    f"User:{user}",
                    *pattern,
                    *resources,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if result.returncode != 0:
                raise BrokerError(f"kafka-acls failed:\n{result.stdout}{result.stderr}")

    @property
    def running(self) -> bool:
        if self.process is not None:
            return self.process.running
        return _is_broker_pid(self.pid)

    def wait_ready(self, timeout: float = 90) -> Broker:
        """Wait until the broker logged its start and answers Kafka metadata requests."""

        def ready() -> bool:
            if not self.running:
                raise BrokerError(
                    f"the Kafka broker exited during start-up; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            return _READY_LINE in _read(self.log_path) and metadata_ok(self.bootstrap_servers)

        wait_until(ready, timeout=timeout, what=f"Kafka broker at {self.bootstrap_servers}", interval=0.25)
        return self

    def stop(self, timeout: float = 30) -> None:
        """Controlled shutdown (SIGTERM), then SIGKILL whatever is left after ``timeout``."""
        if self.process is not None:
            self.process.stop(timeout=timeout)
        elif _is_broker_pid(self.pid):
            _signal_group(self.pid, signal.SIGTERM)
            try:
                wait_until(lambda: not _is_broker_pid(self.pid), timeout=timeout, what="broker shutdown")
            except TimeoutError:
                _signal_group(self.pid, signal.SIGKILL)
        _remove_pid_file(self.data_dir, self.pid)

    def kill(self) -> None:
        """SIGKILL: a crash, not a shutdown."""
        if self.process is not None:
            self.process.kill()
        else:
            _signal_group(self.pid, signal.SIGKILL)
        _remove_pid_file(self.data_dir, self.pid)

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_broker(
    port: int = DEFAULT_PORT,
    data_dir: str | Path = "data/kafka",
    log_path: str | Path | None = None,
    *,
    controller_port: int | None = None,
    heap: str = "512m",
    version: str = KAFKA_VERSION,
    wait: bool = True,
    timeout: float = 90,
    sasl_ssl: SaslSsl | None = None,
) -> Broker:
    """Start a single-node KRaft broker on 127.0.0.1:``port`` with its data in ``data_dir``.

    With ``sasl_ssl``: also a SASL_SSL listener on 127.0.0.1:``sasl_ssl.port`` (SCRAM users of a new data
    folder, certificates made in ``<data_dir>/tls``, ACLs enforced; see ``Broker.grant``).

    Formats the storage the first time; later starts reuse the data (topics and offsets survive).
    Writes ``<data_dir>/broker.pid`` ("pid port"). Returns once the broker answers, unless ``wait``
    is false. The broker runs in its own process group and outlives this Python process unless
    stopped.
    """
    java = java_executable()
    if java is None:
        raise BrokerError("Java is not installed (the local Kafka broker needs Java 17 or newer)")
    libs = ensure_jars(version)
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_path) if log_path else data_dir / "broker.log"
    if existing := read_pid_file(data_dir):
        raise BrokerError(f"a broker already runs on this data folder (pid {existing.pid}, port {existing.port})")
    controller_port = controller_port or free_port()
    config = data_dir / "server.properties"
    tls = None
    if sasl_ssl is not None:
        tls_dir = data_dir / "tls"
        if (tls_dir / "broker.p12").exists():
            tls = {
                "ca": tls_dir / "ca.crt",
                "keystore": tls_dir / "broker.p12",
                "password": tls_dir / "broker.password",
            }
        else:
            tls = make_certificates(tls_dir)
    config.write_text(
        server_properties(port=port, controller_port=controller_port, data_dir=data_dir, sasl_ssl=sasl_ssl, tls=tls)
    )
    (data_dir / "log4j2.xml").write_text(_LOG4J2_XML)
    classpath = f"{libs}/*"
    if not (data_dir / "logs" / "meta.properties").exists():
        scram = []
        if sasl_ssl is not None:
            for user, password in sasl_ssl.users.items():
                scram += ["--add-scram", f"{sasl_ssl.mechanism}=[name={user},password={password}]"]
        fmt = subprocess.run(
            [
                java,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                "-t",
                _cluster_id(),
                "-c",
                str(config),
                *scram,
            ],
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            raise BrokerError(f"formatting Kafka storage in {data_dir} failed:\n{fmt.stdout}{fmt.stderr}")
    log_path.write_text("")  # the ready check reads this start's log only
    process = ManagedProcess(
        "kafka",
        [
            java,
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={data_dir / 'log4j2.xml'}",
            f"-Dkafka.logs.dir={data_dir}",
            "-cp",
            classpath,
            "kafka.Kafka",
            str(config),
        ],
        log_path=log_path,
    ).start()
    (data_dir / PID_FILE).write_text(f"{process.started.pid} {port}\n")
    broker = Broker(
        pid=process.started.pid,
        port=port,
        data_dir=data_dir,
        log_path=log_path,
        process=process,
        sasl_ssl=sasl_ssl,
        ca_file=tls["ca"] if tls else None,
    )
    if wait:
        try:
            broker.wait_ready(timeout)
        except BaseException:
            broker.kill()
            raise
    return broker


def read_pid_file(data_dir: str | Path) -> Broker | None:
    """The broker recorded in ``data_dir``'s pid file if it still runs (a stale file is removed)."""
    data_dir = Path(data_dir).resolve()
    path = data_dir / PID_FILE
    try:
        pid_text, port_text = path.read_text().split()
        pid, port = int(pid_text), int(port_text)
    except (OSError, ValueError):
        return None
    if not _is_broker_pid(pid):
        path.unlink(missing_ok=True)
        return None
    return Broker(pid=pid, port=port, data_dir=data_dir, log_path=data_dir / "broker.log")


def status(data_dir: str | Path) -> dict[str, object]:
    """What ``ingest kafka status`` shows: running or not, pid, bootstrap servers, answering."""
    broker = read_pid_file(data_dir)
    if broker is None:
        return {"running": False, "data_dir": str(Path(data_dir).resolve())}
    return {
        "running": True,
        "pid": broker.pid,
        "bootstrap_servers": broker.bootstrap_servers,
        "answering": metadata_ok(broker.bootstrap_servers),
        "data_dir": str(broker.data_dir),
        "log": str(broker.log_path),
    }


def metadata_ok(bootstrap_servers: str, timeout: float = 5) -> bool:
    """True when the cluster answers a metadata request (a TCP accept alone is not enough)."""
    host, _, port = bootstrap_servers.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=1):
            pass
    except OSError:
        return False

    async def probe() -> bool:
        from aiokafka.admin import AIOKafkaAdminClient

        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000))
        try:
            await asyncio.wait_for(admin.start(), timeout)
            await asyncio.wait_for(admin.list_topics(), timeout)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False
        finally:
            await admin.close()

    return asyncio.run(probe())


def _is_broker_pid(pid: int) -> bool:
    # The pid must still be a Kafka JVM: guards against a recycled pid after a reboot or crash.
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        state = ""
    return b"kafka.Kafka" in cmdline and state != "Z"


def _signal_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, sig)


def _remove_pid_file(data_dir: Path, pid: int) -> None:
    path = data_dir / PID_FILE
    try:
        if path.read_text().split()[0] == str(pid):
            path.unlink()
    except (OSError, IndexError):
        pass


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(path: Path, lines: int = 30) -> str:
    return "\n".join(_read(path).splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingestion_patterns.kafka.broker", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("fetch", help="download (and cache) the broker's jars only")
    run = sub.add_parser("run", help="run a broker in the foreground until Ctrl-C")
    run.add_argument("--port", type=int, default=DEFAULT_PORT)
    run.add_argument("--data-dir", default="data/kafka")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        started = time.monotonic()
        libs = ensure_jars()
        print(
            f"Kafka {KAFKA_VERSION}: {len(list(libs.glob('*.jar')))} jars in {libs} ({time.monotonic() - started:.1f}s)"
        )
        return 0
    broker = start_broker(args.port, args.data_dir)
    print(f"Kafka {KAFKA_VERSION} answering at {broker.bootstrap_servers} (pid {broker.pid}, log {broker.log_path})")
    try:
        while broker.running:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
