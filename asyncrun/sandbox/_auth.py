"""`sandbox --auth`: an OAuth2 authorization server shaped like FlyteAdmin's own.

- gRPC: `AuthMetadataService` (`GetOAuth2Metadata`, `GetPublicClientConfig`) answers without a token;
  every other RPC needs `authorization: Bearer <token>` (or `flyte-authorization`) carrying the `all`
  scope, else UNAUTHENTICATED, as flyteadmin's blanket authorization does.
- HTTP (the sandbox's HTTP port, routes in `routes()`): the token endpoint (client credentials,
  device code, refresh token and authorization code with PKCE grants), device authorization with a
  verification endpoint a test approves as the user, and an authorization endpoint that approves at
  once (there is no user database to log in to).

Tokens are opaque random strings kept in memory; they expire after `token_lifetime` seconds. A
restart forgets them all, which clients see as expired tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode

from grpclib import GRPCError
from grpclib.const import Status

from .._proto.flyteidl.service import (
    AuthMetadataServiceBase,
    OAuth2MetadataRequest,
    OAuth2MetadataResponse,
    PublicClientAuthConfigRequest,
    PublicClientAuthConfigResponse,
)
from ._guard import GuardedService

if TYPE_CHECKING:
    from collections.abc import Mapping

    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

PUBLIC_CLIENT_ID = "flytectl"  # flyteadmin's default public client, used by device flow and PKCE
CONFIDENTIAL_CLIENT_ID = "asyncrun-sandbox"
REQUIRED_SCOPE = "all"
KNOWN_SCOPES = ("all", "offline")
TOKEN_PATH = "/oauth2/token"
DEVICE_PATH = "/oauth2/device/code"
VERIFY_PATH = "/oauth2/device/verify"
AUTHORIZE_PATH = "/oauth2/authorize"
METADATA_KEYS = ("authorization", "flyte-authorization")
DEVICE_INTERVAL = 1  # seconds between device-code polls (RFC 8628 suggests 5; tests want speed)
DEVICE_LIFETIME = 300.0


@dataclass
class _Grant:
    client_id: str
    scopes: tuple[str, ...]
    expires_at: float


@dataclass
class _DeviceCode:
    client_id: str
    scopes: tuple[str, ...]
    user_code: str
    expires_at: float
    approved: bool = False
    denied: bool = False


@dataclass
class _AuthCode:
    client_id: str
    scopes: tuple[str, ...]
    redirect_uri: str
    challenge: str
    expires_at: float


class OAuthError(Exception):
    """An RFC 6749 error answer of the token or device endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class AuthServer:
    """The sandbox's authorization server: clients, issued tokens, device codes.

    Attributes:
        issuer: base URL of the HTTP side, e.g. `http://127.0.0.1:30081`.
        token_lifetime: seconds an access token is valid.
        client_secret: the confidential client's secret (printed at start, kept in `sandbox.json`).
    """

    issuer: str
    token_lifetime: float = 600.0
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    client_id: str = CONFIDENTIAL_CLIENT_ID
    tokens_issued: int = 0
    _access: dict[str, _Grant] = field(default_factory=dict, repr=False)
    _refresh: dict[str, _Grant] = field(default_factory=dict, repr=False)
    _devices: dict[str, _DeviceCode] = field(default_factory=dict, repr=False)
    _codes: dict[str, _AuthCode] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- checking calls

    def check(self, metadata: Mapping[str, Any]) -> None:
        """Raise UNAUTHENTICATED unless `metadata` carries a live bearer token with the `all` scope."""
        value = next((str(metadata[k]) for k in METADATA_KEYS if metadata.get(k)), "")
        scheme, _, token = value.partition(" ")
        if not value:
            raise GRPCError(Status.UNAUTHENTICATED, "no authorization metadata: send a bearer token")
        if scheme.lower() != "bearer" or not token:
            raise GRPCError(Status.UNAUTHENTICATED, "authorization metadata is not a bearer token")
        grant = self._access.get(token.strip())
        if grant is None:
            raise GRPCError(Status.UNAUTHENTICATED, "invalid token: unknown or revoked")
        if grant.expires_at <= time.time():
            raise GRPCError(Status.UNAUTHENTICATED, "token is expired")
        if REQUIRED_SCOPE not in grant.scopes:
            raise GRPCError(Status.UNAUTHENTICATED, "authenticated user doesn't have required scope")

    def revoke_access_tokens(self) -> None:
        """Forget every access token (refresh tokens stay): the next call of each client is refused."""
        self._access.clear()

    def revoke_refresh_tokens(self) -> None:
        self._refresh.clear()

    # ---------------------------------------------------------------- issuing tokens

    def _scopes(self, requested: str, default: tuple[str, ...]) -> tuple[str, ...]:
        scopes = tuple(s for s in requested.split() if s) or default
        unknown = [s for s in scopes if s not in KNOWN_SCOPES]
        if unknown:
            raise OAuthError("invalid_scope", f"unknown scope {unknown[0]}")
        return scopes

    def _issue(self, client_id: str, scopes: tuple[str, ...], *, refresh: bool) -> dict[str, Any]:
        now = time.time()
        access = secrets.token_urlsafe(32)
        self._access[access] = _Grant(client_id, scopes, now + self.token_lifetime)
        self.tokens_issued += 1
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": self.token_lifetime,
            "scope": " ".join(scopes),
        }
        if refresh and "offline" in scopes:
            token = secrets.token_urlsafe(32)
            self._refresh[token] = _Grant(client_id, scopes, now + 30 * 86400)
            body["refresh_token"] = token
        return body

    def _client(self, form: Mapping[str, str], authorization: str) -> tuple[str, str | None]:
        """The client id and secret, from HTTP Basic auth (as flytekit sends) or the form."""
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except (ValueError, UnicodeDecodeError):
                raise OAuthError("invalid_client", "malformed basic credentials", 401) from None
            client_id, _, secret = decoded.partition(":")
            return unquote(client_id), unquote(secret)
        return form.get("client_id", ""), form.get("client_secret")

    def token(self, form: Mapping[str, str], authorization: str = "") -> dict[str, Any]:
        """The token endpoint; raises `OAuthError`."""
        grant_type = form.get("grant_type", "")
        client_id, secret = self._client(form, authorization)
        if grant_type == "client_credentials":
            if (
                client_id != self.client_id
                or secret is None
                or not hmac.compare_digest(secret.encode(), self.client_secret.encode())
            ):
                raise OAuthError("invalid_client", "client authentication failed", 401)
            return self._issue(client_id, self._scopes(form.get("scope", ""), ("all",)), refresh=False)
        if client_id not in (PUBLIC_CLIENT_ID, self.client_id):
            raise OAuthError("invalid_client", f"unknown client {client_id!r}", 401)
        if grant_type == "urn:ietf:params:oauth:grant-type:device_code":
            return self._device_token(form.get("device_code", ""), client_id)
        if grant_type == "refresh_token":
            grant = self._refresh.get(form.get("refresh_token", ""))
            if grant is None or grant.client_id != client_id or grant.expires_at <= time.time():
                raise OAuthError("invalid_grant", "refresh token is invalid or expired")
            return self._issue(client_id, grant.scopes, refresh=True)
        if grant_type == "authorization_code":
            return self._code_token(form, client_id)
        raise OAuthError("unsupported_grant_type", f"grant type {grant_type!r} is not supported")

    def _device_token(self, device_code: str, client_id: str) -> dict[str, Any]:
        device = self._devices.get(device_code)
        if device is None or device.client_id != client_id:
            raise OAuthError("invalid_grant", "unknown device code")
        if device.expires_at <= time.time():
            del self._devices[device_code]
            raise OAuthError("expired_token", "the device code expired")
        if device.denied:
            del self._devices[device_code]
            raise OAuthError("access_denied", "the user denied the request")
        if not device.approved:
            raise OAuthError("authorization_pending", "waiting for the user")
        del self._devices[device_code]
        return self._issue(client_id, device.scopes, refresh=True)

    def _code_token(self, form: Mapping[str, str], client_id: str) -> dict[str, Any]:
        code = self._codes.pop(form.get("code", ""), None)
        if code is None or code.client_id != client_id or code.expires_at <= time.time():
            raise OAuthError("invalid_grant", "authorization code is invalid or expired")
        if form.get("redirect_uri", "") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier", "")
        digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not hmac.compare_digest(digest, code.challenge):
            raise OAuthError("invalid_grant", "code_verifier does not match the code challenge")
        return self._issue(client_id, code.scopes, refresh=True)

    def device_authorization(self, form: Mapping[str, str]) -> dict[str, Any]:
        client_id = form.get("client_id", "")
        if client_id not in (PUBLIC_CLIENT_ID, self.client_id):
            raise OAuthError("invalid_client", f"unknown client {client_id!r}", 401)
        scopes = self._scopes(form.get("scope", ""), ("all", "offline"))
        device_code = secrets.token_urlsafe(32)
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        self._devices[device_code] = _DeviceCode(client_id, scopes, user_code, time.time() + DEVICE_LIFETIME)
        verify = self.issuer + VERIFY_PATH
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": verify,
            "verification_uri_complete": f"{verify}?{urlencode({'user_code': user_code})}",
            "expires_in": int(DEVICE_LIFETIME),
            "interval": DEVICE_INTERVAL,
        }

    def verify(self, user_code: str, *, approve: bool) -> bool:
        """The user approves (or denies) a device code; False if no pending code matches."""
        for device in self._devices.values():
            if hmac.compare_digest(device.user_code, user_code.strip().upper()):
                device.approved, device.denied = approve, not approve
                return True
        return False

    def authorize(self, params: Mapping[str, str]) -> str:
        """The authorization endpoint: the redirect URL carrying a code (approved at once)."""
        client_id = params.get("client_id", "")
        redirect_uri = params.get("redirect_uri", "")
        if client_id not in (PUBLIC_CLIENT_ID, self.client_id):
            raise OAuthError("invalid_client", f"unknown client {client_id!r}")
        if params.get("response_type") != "code" or params.get("code_challenge_method") != "S256":
            raise OAuthError("invalid_request", "use response_type=code with an S256 code challenge")
        if not redirect_uri.startswith(("http://127.0.0.1:", "http://localhost:")):
            raise OAuthError("invalid_request", "redirect_uri must be a loopback address")
        scopes = self._scopes(params.get("scope", ""), ("all", "offline"))
        code = secrets.token_urlsafe(24)
        self._codes[code] = _AuthCode(
            client_id, scopes, redirect_uri, params.get("code_challenge", ""), time.time() + 120
        )
        return f"{redirect_uri}?{urlencode({'code': code, 'state': params.get('state', '')})}"

    # ---------------------------------------------------------------- discovery

    def oauth2_metadata(self) -> OAuth2MetadataResponse:
        return OAuth2MetadataResponse(
            issuer=self.issuer,
            authorization_endpoint=self.issuer + AUTHORIZE_PATH,
            token_endpoint=self.issuer + TOKEN_PATH,
            response_types_supported=["code"],
            scopes_supported=list(KNOWN_SCOPES),
            token_endpoint_auth_methods_supported=["client_secret_basic", "client_secret_post"],
            code_challenge_methods_supported=["S256"],
            grant_types_supported=[
                "client_credentials",
                "refresh_token",
                "authorization_code",
                "urn:ietf:params:oauth:grant-type:device_code",
            ],
            device_authorization_endpoint=self.issuer + DEVICE_PATH,
        )

    def public_client_config(self) -> PublicClientAuthConfigResponse:
        return PublicClientAuthConfigResponse(
            client_id=PUBLIC_CLIENT_ID,
            redirect_uri="http://localhost:53593/callback",
            scopes=["offline", "all"],
            authorization_metadata_key="authorization",
            service_http_endpoint=self.issuer,
            audience="",
        )

    # ---------------------------------------------------------------- HTTP routes

    def routes(self) -> list[Route]:
        from starlette.routing import Route

        return [
            Route(TOKEN_PATH, self._http_token, methods=["POST"]),
            Route(DEVICE_PATH, self._http_device, methods=["POST"]),
            Route(VERIFY_PATH, self._http_verify, methods=["GET", "POST"]),
            Route(AUTHORIZE_PATH, self._http_authorize, methods=["GET"]),
        ]

    async def _http_token(self, request: Request) -> Response:
        form = await _form(request)
        try:
            return _json(200, self.token(form, request.headers.get("authorization", "")))
        except OAuthError as exc:
            return _oauth_error(exc)

    async def _http_device(self, request: Request) -> Response:
        try:
            return _json(200, self.device_authorization(await _form(request)))
        except OAuthError as exc:
            return _oauth_error(exc)

    async def _http_verify(self, request: Request) -> Response:
        from starlette.responses import PlainTextResponse

        params = dict(request.query_params)
        if request.method == "POST":
            params.update(await _form(request))
        user_code = params.get("user_code", "")
        if not user_code:
            return PlainTextResponse("POST user_code=XXXX-XXXX (and action=deny to refuse)\n")
        approve = params.get("action", "approve") != "deny"
        if not self.verify(user_code, approve=approve):
            return PlainTextResponse("no pending request has that code\n", status_code=404)
        return PlainTextResponse("approved\n" if approve else "denied\n")

    async def _http_authorize(self, request: Request) -> Response:
        from starlette.responses import RedirectResponse

        try:
            return RedirectResponse(self.authorize(dict(request.query_params)), status_code=302)
        except OAuthError as exc:
            return _oauth_error(exc)


async def _form(request: Request) -> dict[str, str]:
    # Parsed by hand: starlette's request.form() needs python-multipart for a one-line job.
    body = await request.body()
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _json(status: int, body: dict[str, Any]) -> Response:
    from starlette.responses import JSONResponse

    return JSONResponse(body, status_code=status, headers={"Cache-Control": "no-store"})


def _oauth_error(exc: OAuthError) -> Response:
    return _json(exc.status, {"error": exc.error, "error_description": exc.description})


class AuthMetadataService(GuardedService, AuthMetadataServiceBase):
    """FlyteAdmin's discovery service: where the issuer is and which public client to use."""

    def __init__(self, auth: AuthServer) -> None:
        self._auth = auth

    async def get_o_auth_2_metadata(self, message: OAuth2MetadataRequest) -> OAuth2MetadataResponse:
        return self._auth.oauth2_metadata()

    async def get_public_client_config(
        self, message: PublicClientAuthConfigRequest
    ) -> PublicClientAuthConfigResponse:
        return self._auth.public_client_config()
