"""Environment variables parsed once at start-up, with errors that name the variable.

Each service keeps a frozen dataclass of its settings and builds it with these readers; a bad value raises
`ConfigError`, which `exit_on_config_error` turns into one line on stderr and exit code 2.
"""

from __future__ import annotations

import builtins
import ipaddress
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

T = TypeVar("T")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message starts with the variable's name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name


class Env:
    """Typed reads from one environment mapping."""

    def __init__(self, environ: Mapping[builtins.str, builtins.str]) -> None:
        self._environ = environ

    def raw(self, name: builtins.str) -> builtins.str | None:
        value = self._environ.get(name)
        if value is None or value.strip() == "":
            return None
        return value.strip()

    def str(
        self, name: builtins.str, default: builtins.str | None = None, *, required: builtins.bool = False
    ) -> builtins.str:
        value = self.raw(name)
        if value is None:
            if required or default is None:
                raise ConfigError(name, "is required")
            return default
        return value

    def optional_str(self, name: builtins.str) -> builtins.str | None:
        return self.raw(name)

    def int(
        self,
        name: builtins.str,
        default: builtins.int,
        *,
        minimum: builtins.int | None = None,
        maximum: builtins.int | None = None,
    ) -> builtins.int:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(name, f"must be a whole number, got {value!r}") from None
        _check_range(name, number, minimum, maximum)
        return number

    def float(
        self,
        name: builtins.str,
        default: builtins.float,
        *,
        minimum: builtins.float | None = None,
        maximum: builtins.float | None = None,
    ) -> builtins.float:
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(name, f"must be a number, got {value!r}") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ConfigError(name, f"must be a finite number, got {value!r}")
        _check_range(name, number, minimum, maximum)
        return number

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        value = self.raw(name)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(name, f"must be true or false, got {value!r}")

    def port(self, name: builtins.str, default: builtins.int) -> builtins.int:
        return self.int(name, default, minimum=0, maximum=65535)

    def path(self, name: builtins.str, default: builtins.str | None = None) -> Path:
        return Path(self.str(name, default))

    def url(self, name: builtins.str, default: builtins.str | None = None) -> builtins.str:
        value = self.str(name, default)
        _check_url(name, value)
        return value.rstrip("/") if value.endswith("/") and urlsplit(value).path in ("", "/") else value

    def optional_url(self, name: builtins.str) -> builtins.str | None:
        value = self.raw(name)
        if value is None:
            return None
        _check_url(name, value)
        return value

    def choice(self, name: builtins.str, default: builtins.str, choices: tuple[builtins.str, ...]) -> builtins.str:
        value = self.str(name, default)
        if value not in choices:
            raise ConfigError(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def log_level(self, name: builtins.str = "LOG_LEVEL", default: builtins.str = "INFO") -> builtins.str:
        """A logging level name in any case, returned in upper case (what logging.setLevel takes)."""
        level = self.str(name, default).upper()
        if level not in LOG_LEVELS:
            raise ConfigError(name, f"must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
        return level

    def networks(
        self, name: builtins.str, default: builtins.str
    ) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """A comma-separated list of addresses or CIDR networks (empty means none)."""
        value = self._environ.get(name, default)
        networks = []
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ConfigError(name, f"{item!r} is not an IP address or CIDR network") from None
        return tuple(networks)

    def secret(self, name: builtins.str, *, min_bytes: builtins.int = 0) -> builtins.bytes:
        """A secret from `NAME_FILE` (a mounted Secret) or else `NAME`; required."""
        file_name = f"{name}_FILE"
        path = self.raw(file_name)
        if path is not None:
            try:
                data = Path(path).read_bytes().strip()
            except OSError as exc:
                raise ConfigError(file_name, f"cannot read {path!r}: {exc.strerror}") from None
            source = file_name
        else:
            value = self.raw(name)
            if value is None:
                raise ConfigError(name, f"is required (or {file_name}, a file holding it)")
            data, source = value.encode(), name
        if len(data) < min_bytes:
            raise ConfigError(source, f"must hold at least {min_bytes} bytes, got {len(data)}")
        return data


def _check_range(name: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise ConfigError(name, f"must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(name, f"must be at most {maximum}, got {number}")


def _check_url(name: str, value: str) -> None:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(name, f"must be an http(s) URL, got {value!r}")


def load_or_exit(build: Callable[[], T]) -> T:
    """Build the settings, or print `config error: NAME: problem` on stderr and exit with code 2."""
    try:
        return build()
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def exit_on_config_error() -> Iterator[None]:
    """The same as `load_or_exit`, for a block."""
    try:
        yield
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


class UnsupportedRelease(ImportError):
    """An installed library is not the release a module patches or subclasses (its `name` is the library's)."""


def require_release(
    module: Any, name: str, version: str, *, user: str, needs: str, pin_file: str, attributes: Sequence[str] = ()
) -> None:
    """Raise UnsupportedRelease unless `module` (the library `name`) is release `version` and has `attributes`:
    `user` (a module of ours) `needs` it so (it patches or subclasses private parts, which any release may
    change without notice)."""
    found = getattr(module, "__version__", None)
    missing = [attribute for attribute in attributes if not hasattr(module, attribute)]
    if found != version or missing:
        without = f", without {', '.join(missing)}" if missing else ""
        raise UnsupportedRelease(
            f"{user} {needs}, but {name} {found} is installed ({getattr(module, '__file__', '?')}{without});"
            f" install {name}=={version} ({pin_file} pins it)",
            name=name,
        )


@contextmanager
def exit_on_unsupported(library: str) -> Iterator[None]:
    """For a block that imports a module fenced to one release of `library` (require_release raises an
    ImportError naming `library` for any other): print `startup error: ...` on stderr and exit with code 2,
    like a config error."""
    try:
        yield
    except ImportError as exc:
        if exc.name != library:
            raise
        print(f"startup error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
