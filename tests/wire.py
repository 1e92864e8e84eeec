"""A TCP proxy in front of PostgreSQL, for what only the wire shows.

- Round trips: how many times the client spoke again after the server had answered. A query
  that needs a prepare first costs two; a cached prepared statement one; BEGIN and COMMIT one
  each.
- Silent deaths: `blackhole_existing()` drops every byte of the connections open now without
  closing them, as a suspended server or a lost network path does (no FIN, no error).
"""

import asyncio
import contextlib
from dataclasses import dataclass, field

from backend.db_url import parse_database_url


@dataclass
class _Link:
    """One client connection and its server connection."""

    writers: tuple[asyncio.StreamWriter, ...] = ()
    silenced: bool = False

    def close(self) -> None:
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.close()


@dataclass
class WireProxy:
    target_url: str
    round_trips: int = 0
    _client_spoke_last: bool = False
    _server: asyncio.Server | None = None
    _links: list[_Link] = field(default_factory=list)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> str:
        """Listen on a free loopback port; return the URL that goes through the proxy."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        url = parse_database_url(self.target_url).url
        query = {k: v for k, v in url.query.items() if k not in ("host", "port")}
        proxied = url.set(
            drivername="postgresql",
            host="127.0.0.1",
            port=port,
            query={**query, "sslmode": "disable"},
        )
        return proxied.render_as_string(hide_password=False)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            for link in self._links:  # silenced ones too: the server must see them go
                link.close()
            await self._server.wait_closed()

    def reset(self) -> None:
        self.round_trips = 0

    def blackhole_existing(self) -> None:
        for link in self._links:
            link.silenced = True

    async def _open_target(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        arguments = parse_database_url(self.target_url).asyncpg_arguments()
        host, port = arguments.get("host", "127.0.0.1"), arguments.get("port", 5432)
        if str(host).startswith("/"):  # a unix socket directory
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_reader, server_writer = await self._open_target()
        link = _Link(writers=(writer, server_writer))
        self._links.append(link)
        upstream = asyncio.create_task(self._pipe(link, reader, server_writer, from_client=True))
        downstream = asyncio.create_task(self._pipe(link, server_reader, writer, from_client=False))
        self._tasks |= {upstream, downstream}
        await asyncio.gather(upstream, downstream, return_exceptions=True)

    async def _pipe(
        self,
        link: _Link,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        from_client: bool,
    ) -> None:
        try:
            while data := await reader.read(65536):
                if link.silenced:
                    continue
                if from_client and not self._client_spoke_last:
                    self.round_trips += 1
                self._client_spoke_last = from_client
                writer.write(data)
                await writer.drain()
        finally:
            if not link.silenced:
                link.close()
