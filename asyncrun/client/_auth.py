"""Bearer tokens for every gRPC call of a `Client` whose config sets `admin.authType`.

Imported only then, so unauthenticated use pays nothing. The order of preference for a token is:
the one in memory, the cached file (shared with the daemon), a refresh, then the configured flow.
A call refused with UNAUTHENTICATED renews the token once and tries again; a second refusal is
reported as one line with its own exit code (see `asyncrun._exceptions`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from .._exceptions import (
    AuthenticationError,
    ConfigError,
    MissingScopeError,
    TokenExpiredError,
)
from . import _oauth, _token_cache
from ._token_cache import Token

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping

    from grpclib.client import Channel

    from ._config import ClientConfig

T = TypeVar("T")
Metadata = dict[str, str]
INTERACTIVE = ("Pkce", "DeviceFlow")


class Authenticator:
    """Holds one endpoint's token; `call` runs an RPC with it and renews it once when refused."""

    def __init__(
        self,
        config: ClientConfig,
        channel: Callable[[], Channel],
        *,
        prompt: Callable[[str], None] | None = None,
        secret_env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self._secret_env = secret_env if secret_env is not None else {}
        self._channel = channel
        self._prompt = prompt or _oauth.stderr_prompt
        self._lock = anyio.Lock()
        self._token: Token | None = None
        self._refused_token: Token | None = (
            None  # refused by the control plane: never taken from the cache again
        )
        self._cache_path = _token_cache.cache_path(config)
        self._issuer: _oauth.Issuer | None = None
        self._public: Any = None
        self._header = "authorization"

    def __repr__(self) -> str:
        return f"Authenticator({self.config.endpoint!r}, {self.config.auth_type!r})"

    async def call(self, rpc: Callable[[Metadata], Awaitable[T]]) -> T:
        """Run `rpc(metadata)`; on UNAUTHENTICATED renew the token and run it once more."""
        metadata = await self.metadata()
        try:
            return await rpc(metadata)
        except AuthenticationError as exc:
            if type(exc) is not AuthenticationError:
                raise  # ours, from a flow: renewing would not help
            await self.renew(metadata)
        metadata = await self.metadata()
        try:
            return await rpc(metadata)
        except AuthenticationError as exc:
            if type(exc) is not AuthenticationError:
                raise
            raise self._refused(exc) from None

    async def metadata(self) -> Metadata:
        """The call metadata with a fresh token, obtaining one if needed."""
        async with self._lock:
            token = await self._fresh_token()
        return {self._header: f"Bearer {token.access_token}"}

    async def renew(self, refused: Mapping[str, str]) -> None:
        """The control plane refused the token in `refused`: do not send it again."""
        async with self._lock:
            if self._token is not None and refused.get(self._header) == f"Bearer {self._token.access_token}":
                # Keep the refresh token: it is the way to a new access token without the user.
                self._refused_token = self._token
                self._token = Token("", self._token.refresh_token, expires_at=0.0)

    def _refused(self, exc: AuthenticationError) -> AuthenticationError:
        detail = str(exc)
        where = self.config.endpoint
        if "scope" in detail.lower():
            scopes = " ".join(self.config.scopes) or "the default scopes"
            return MissingScopeError(
                f"the control plane at {where} refused the token ({detail}); "
                f"the token was granted for {scopes}: add the missing scope to admin.scopes"
            )
        if "expired" in detail.lower():
            return TokenExpiredError(
                f"the control plane at {where} refused the token as expired and a new one was refused too"
            )
        return AuthenticationError(f"the control plane at {where} refused a newly obtained token ({detail})")

    # ---------------------------------------------------------------- getting a token

    async def _fresh_token(self) -> Token:
        token = self._token
        if token is None or not token.access_token or not token.fresh():
            # Another process (the CLI, the daemon, another client) may have renewed it already.
            cached = await anyio.to_thread.run_sync(_token_cache.load, self._cache_path)
            if (
                cached is not None
                and cached.access_token
                and cached.fresh()
                and cached != self._refused_token
            ):
                token = self._token = cached
            elif token is None:
                token = cached
        if token is not None and token.access_token and token.fresh():
            if self._issuer is None and self.config.auth_type != "ExternalCommand":
                await self._discover()  # for the metadata key FlyteAdmin expects; once per process
            return token
        new = await self._obtain(token)
        self._token = new
        await anyio.to_thread.run_sync(_token_cache.save, self._cache_path, new, self.config.endpoint)
        return new

    async def _obtain(self, previous: Token | None) -> Token:
        config = self.config
        if config.auth_type == "ExternalCommand":
            return await _oauth.external_command(config.auth_command, time_limit=config.auth_timeout)
        issuer = await self._discover()
        requester = _oauth.TokenRequester(timeout=config.auth_timeout, verify=self._verify())
        try:
            client_id = config.client_id or (self._public.client_id if self._public is not None else "")
            if previous is not None and previous.refresh_token:
                try:
                    return await _oauth.refresh(requester, issuer, client_id, previous.refresh_token)
                except TokenExpiredError:
                    if config.auth_type in INTERACTIVE and not config.interactive:
                        raise TokenExpiredError(
                            f"the token for {config.endpoint} expired and its refresh token was refused; "
                            "run an asyncrun command in a terminal to sign in again"
                        ) from None
            scopes = config.scopes or (tuple(self._public.scopes) if self._public is not None else ())
            audience = config.audience or (self._public.audience if self._public is not None else "")
            if config.auth_type == "ClientSecret":
                secret = self._client_secret()
                return await _oauth.client_credentials(requester, issuer, client_id, secret, scopes, audience)
            if not config.interactive:
                if previous is not None:
                    raise TokenExpiredError(
                        f"the token for {config.endpoint} expired and cannot be renewed without you; "
                        "run an asyncrun command in a terminal to sign in again"
                    )
                raise AuthenticationError(
                    f"{config.endpoint} needs you to sign in ({config.auth_type}); "
                    "run an asyncrun command in a terminal first"
                )
            if config.auth_type == "DeviceFlow":
                return await _oauth.device_flow(requester, issuer, client_id, scopes, audience, self._prompt)
            return await _oauth.pkce_flow(requester, issuer, client_id, scopes, audience, self._prompt)
        finally:
            await requester.aclose()

    def _client_secret(self) -> str:
        config = self.config
        if config.client_secret_location:
            try:
                with open(config.client_secret_location, encoding="utf-8") as handle:
                    secret = handle.read().strip()
            except OSError as exc:
                raise ConfigError(
                    f"cannot read admin.clientSecretLocation {config.client_secret_location}: "
                    f"{exc.strerror or type(exc).__name__}"
                ) from None
            if secret:
                return secret
            raise ConfigError(f"admin.clientSecretLocation {config.client_secret_location} is empty")
        name = config.client_secret_env_var or ""
        # A value the CLI forwarded (to the daemon) is the newer one; else this process's environment.
        secret = (self._secret_env.get(name) or os.environ.get(name) or "").strip()
        if not secret:
            raise ConfigError(f"admin.clientSecretEnvVar names {name}, which is not set in the environment")
        return secret

    def _verify(self) -> Any:
        if self.config.ca_cert_path:
            import ssl

            return ssl.create_default_context(cafile=self.config.ca_cert_path)
        return True

    # ---------------------------------------------------------------- discovery

    async def _discover(self) -> _oauth.Issuer:
        """Ask FlyteAdmin's AuthMetadataService where the issuer is (unauthenticated calls)."""
        if self._issuer is not None:
            return self._issuer
        from .._proto.flyteidl.service import AuthMetadataServiceStub
        from ._errors import map_grpc_errors

        stub = AuthMetadataServiceStub(self._channel())
        timeout = self.config.call_timeout
        with map_grpc_errors(self.config.endpoint):
            public = await stub.get_public_client_config(timeout=timeout)
            if self.config.token_url:
                metadata = None
            else:
                metadata = await stub.get_o_auth_2_metadata(timeout=timeout)
        self._public = public
        self._header = (public.authorization_metadata_key or "authorization").lower()
        token_endpoint = self.config.token_url or (metadata.token_endpoint if metadata else "")
        if not token_endpoint and self.config.auth_type != "ExternalCommand":
            raise AuthenticationError(
                f"the control plane at {self.config.endpoint} names no token endpoint; set admin.tokenUrl"
            )
        self._issuer = _oauth.Issuer(
            token_endpoint=token_endpoint,
            device_endpoint=metadata.device_authorization_endpoint if metadata else "",
            authorization_endpoint=metadata.authorization_endpoint if metadata else "",
            redirect_uri=public.redirect_uri,
        )
        return self._issuer
