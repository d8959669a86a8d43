"""A loopback TCP forwarder the tests can cut and restore, to take a real
dependency (PostgreSQL, Redis) "down" for one service without stopping it."""

from __future__ import annotations

import asyncio
import contextlib


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._open = asyncio.Event()
        self._open.set()
        self.held = 0  # connections accepted while held, not yet forwarded
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Refuses new connections and resets the open ones: an outage."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._pipes):
            task.cancel()

    async def restore(self) -> None:
        """Accepts connections again (a no-op while up)."""
        if self._server is None:
            await self.start()

    def hold(self) -> None:
        """Accepts new connections but forwards nothing until `release`: a request in flight."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    async def wait_held(self, within: float = 5.0) -> None:
        """Until a connection is waiting in `hold`, e.g. a retry in flight."""
        deadline = asyncio.get_running_loop().time() + within
        while not self.held:
            assert asyncio.get_running_loop().time() < deadline, "no connection was held"
            await asyncio.sleep(0.05)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self._open.is_set():
            self._writers.add(writer)
            self.held += 1
            try:
                await self._open.wait()
            finally:
                self.held -= 1
                self._writers.discard(writer)
            if writer.is_closing():  # cut while held
                return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        tasks = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._pipes.update(tasks)
        try:
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._pipes.difference_update(tasks)
            self._writers.difference_update((writer, up_writer))
            for w in (writer, up_writer):
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
