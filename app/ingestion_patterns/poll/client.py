"""The Kafka connection of the poll pattern: aiokafka clients built from one set of settings.

Every field comes from the environment (see ``build_resources``), so the same code reaches the local
broker (PLAINTEXT) and a Strimzi cluster (TLS and/or SASL listeners). Clients are created inside the
caller's event loop. ``consumer_session`` is what the assets and the sensor use: a started consumer
that is stopped however the block ends; ``consumer``/``producer``/``admin`` return a fresh, not yet
started client for callers that manage it themselves.

Strimzi's TLS listener with SCRAM-SHA-512 (and charts/kafka's standalone one): ``security_protocol``
SASL_SSL, ``sasl_mechanism`` SCRAM-SHA-512, the KafkaUser's name and password, and ``ssl_cafile`` the
cluster CA's ``ca.crt``. aiokafka only says "Unable to bootstrap" when the login or the TLS handshake
fails (the reason goes to its log); ``diagnose`` connects once itself and names the reason, and
``consumer_session`` raises it as a ``dg.Failure`` (wrong password, untrusted certificate, ...).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import dagster as dg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.conn import create_conn
from aiokafka.errors import KafkaConnectionError, KafkaError, SaslAuthenticationFailed
from aiokafka.helpers import create_ssl_context
from pydantic import Field

if TYPE_CHECKING:
    from ..settings import Settings

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")

# Large fetches: the poller lands whole batches, so fewer, bigger responses are faster.
FAST_FETCH = {
    "fetch_max_bytes": 64 * 1024 * 1024,
    "max_partition_fetch_bytes": 16 * 1024 * 1024,
    "fetch_max_wait_ms": 200,
}


class KafkaResource(dg.ConfigurableResource):
    """Where the Kafka cluster is and how to authenticate to it."""

    bootstrap_servers: str = Field(default="", description="host:port[,host:port]; empty = not configured")
    topic: str = Field(
        default="", description="The topic the poll pattern lands (KAFKA_TOPIC); a run's config may name another"
    )
    security_protocol: str = Field(default="PLAINTEXT", description=f"one of {', '.join(SECURITY_PROTOCOLS)}")
    sasl_mechanism: str = Field(default="", description=f"with SASL_*: one of {', '.join(SASL_MECHANISMS)}")
    sasl_username: str = Field(default="")
    sasl_password: str = Field(default="")
    ssl_cafile: str = Field(
        default="", description="CA bundle that signed the brokers' certificates (Strimzi's cluster CA)"
    )
    ssl_certfile: str = Field(default="", description="client certificate for mutual TLS (Strimzi's KafkaUser, tls)")
    ssl_keyfile: str = Field(default="", description="the client certificate's private key")
    client_id: str = Field(default="ingestion-patterns")
    group_id: str = Field(
        default="ingestion-patterns", description="consumer group that receives the (visibility-only) offset commits"
    )

    def client_kwargs(self, bootstrap_servers: str = "") -> dict[str, Any]:
        """Keyword arguments shared by aiokafka's consumer, producer and admin client.

        ``bootstrap_servers`` overrides the configured servers (a run's config may name others).
        """
        servers = bootstrap_servers or self.bootstrap_servers
        if not servers:
            raise dg.Failure(
                "Kafka is not configured: set KAFKA_BOOTSTRAP_SERVERS (for example `ingest kafka up` prints "
                "127.0.0.1:9094) or the run config's bootstrap_servers"
            )
        protocol = self.security_protocol.upper() or "PLAINTEXT"
        if protocol not in SECURITY_PROTOCOLS:
            raise dg.Failure(f"KAFKA_SECURITY_PROTOCOL {protocol!r} is not one of {SECURITY_PROTOCOLS}")
        kwargs: dict[str, Any] = {
            "bootstrap_servers": servers,
            "client_id": self.client_id or "ingestion-patterns",
            "security_protocol": protocol,
        }
        if protocol in ("SSL", "SASL_SSL"):
            kwargs["ssl_context"] = self.ssl_context()
        if protocol.startswith("SASL_"):
            mechanism = (self.sasl_mechanism or "SCRAM-SHA-512").upper()
            if mechanism not in SASL_MECHANISMS:
                raise dg.Failure(f"KAFKA_SASL_MECHANISM {mechanism!r} is not one of {SASL_MECHANISMS}")
            kwargs.update(
                sasl_mechanism=mechanism,
                sasl_plain_username=self.sasl_username,
                sasl_plain_password=self.sasl_password,
            )
        return kwargs

    def ssl_context(self) -> ssl.SSLContext:
        try:
            return create_ssl_context(
                cafile=self.ssl_cafile or None,
                certfile=self.ssl_certfile or None,
                keyfile=self.ssl_keyfile or None,
            )
        except (OSError, ssl.SSLError) as error:
            raise dg.Failure(
                f"Kafka TLS settings unusable (KAFKA_SSL_CAFILE={self.ssl_cafile!r}, KAFKA_SSL_CERTFILE="
                f"{self.ssl_certfile!r}): {error}"
            ) from error

    async def diagnose(self, bootstrap_servers: str = "", timeout: float = 15) -> str | None:
        """Why clients cannot reach the cluster, in words; None when a bootstrap server accepts a
        connection (TLS handshake and SASL login included). aiokafka logs these reasons but raises only
        "Unable to bootstrap"; this opens one connection per server itself to name them."""
        kwargs = self.client_kwargs(bootstrap_servers)
        servers = [s.strip() for s in kwargs.pop("bootstrap_servers").split(",") if s.strip()]
        kwargs.pop("client_id")
        reasons = []
        for server in servers:
            host, _, port = server.rpartition(":")
            try:
                conn = await asyncio.wait_for(
                    create_conn(host, int(port), request_timeout_ms=int(timeout * 1000), **kwargs), timeout
                )
            except SaslAuthenticationFailed as error:
                reasons.append(
                    f"{server}: SASL {kwargs.get('sasl_mechanism')} authentication of user "
                    f"{self.sasl_username!r} failed (wrong KAFKA_SASL_USERNAME or KAFKA_SASL_PASSWORD?): {error}"
                )
            except ssl.SSLCertVerificationError as error:
                reasons.append(
                    f"{server}: the broker's TLS certificate is not trusted (KAFKA_SSL_CAFILE="
                    f"{self.ssl_cafile!r}): {error.verify_message or error}"
                )
            except (OSError, KafkaError, TimeoutError, ssl.SSLError) as error:
                reasons.append(f"{server}: {type(error).__name__}: {error}")
            else:
                conn.close()
                return None
        return "; ".join(reasons) or "no bootstrap server configured"

    def consumer(
        self, bootstrap_servers: str = "", *, group_id: str | None = None, **overrides: Any
    ) -> AIOKafkaConsumer:
        """A consumer for manual assignment: no auto-commit (the warehouse holds the offsets), large
        fetches, committed transactions only, and unseen partitions read from their start."""
        options: dict[str, Any] = {
            **FAST_FETCH,
            "group_id": group_id,
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "isolation_level": "read_committed",
            **overrides,
        }
        return AIOKafkaConsumer(**self.client_kwargs(bootstrap_servers), **options)

    @asynccontextmanager
    async def consumer_session(
        self, bootstrap_servers: str = "", *, group_id: str | None = None, **overrides: Any
    ) -> AsyncIterator[AIOKafkaConsumer]:
        """``consumer(...)`` started, and stopped on the way out whatever happens (a failed start
        included: aiokafka leaves its connections and tasks behind otherwise)."""
        consumer = self.consumer(bootstrap_servers, group_id=group_id, **overrides)
        try:
            try:
                await consumer.start()
            except KafkaConnectionError as error:
                reason = await self.diagnose(bootstrap_servers)
                if reason is None:
                    raise
                raise dg.Failure(f"cannot connect to Kafka: {reason}") from error
            yield consumer
        finally:
            await consumer.stop()

    def producer(self, bootstrap_servers: str = "", **overrides: Any) -> AIOKafkaProducer:
        return AIOKafkaProducer(**self.client_kwargs(bootstrap_servers), **overrides)

    def admin(self, bootstrap_servers: str = "") -> AIOKafkaAdminClient:
        return AIOKafkaAdminClient(**self.client_kwargs(bootstrap_servers))


# Each field of KafkaResource and the setting it comes from.
SETTING_FIELDS = {
    "bootstrap_servers": "kafka_bootstrap_servers",
    "topic": "kafka_topic",
    "security_protocol": "kafka_security_protocol",
    "sasl_mechanism": "kafka_sasl_mechanism",
    "sasl_username": "kafka_sasl_username",
    "sasl_password": "kafka_sasl_password",
    "ssl_cafile": "kafka_ssl_cafile",
    "ssl_certfile": "kafka_ssl_certfile",
    "ssl_keyfile": "kafka_ssl_keyfile",
    "client_id": "kafka_client_id",
    "group_id": "kafka_group_id",
}


def kafka_resource(settings: Settings, resolve: Callable[[str], Any] | None = None) -> KafkaResource:
    """The resource for ``settings``; ``resolve(setting name)`` may turn a value into a ``dg.EnvVar``."""
    value = resolve or (lambda name: str(getattr(settings, name)))
    return KafkaResource(**{field: value(name) for field, name in SETTING_FIELDS.items()})
