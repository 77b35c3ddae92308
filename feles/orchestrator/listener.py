"""The orchestrator's listening socket: bound here, or inherited from a launcher."""

from __future__ import annotations

import socket


class InheritedSocketError(ValueError):
    """The file descriptor given to the orchestrator is not a listening TCP socket."""


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening socket; port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP, and
    # without it small responses wait ~40 ms for the client's delayed ACK (uvicorn writes headers and
    # body separately).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def inherited_socket(fd: int) -> socket.socket:
    """The listening TCP socket a launcher (`feles run`, systemd) passed as file descriptor `fd`."""
    try:
        sock = socket.socket(fileno=fd)
    except OSError as error:
        raise InheritedSocketError(f"file descriptor {fd} is not an open socket ({error.strerror})") from None
    if sock.type != socket.SOCK_STREAM or sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 0:
        sock.close()
        raise InheritedSocketError(f"file descriptor {fd} is not a listening TCP socket")
    return sock
