"""The OAuth2 flows themselves: token requests (httpx), device flow, PKCE, external command.

Every function raises only `AuthenticationError` subclasses with one-line messages that never
contain a secret or a token; every wait is bounded.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import shlex
import sys
import time
import webbrowser
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import anyio
import httpx

from .._exceptions import (
    AuthenticationError,
    InvalidCredentialsError,
    IssuerUnreachableError,
    MissingScopeError,
    TokenExpiredError,
)
from ._token_cache import Token

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def stderr_prompt(message: str) -> None:
    """Where interactive flows tell the user what to do, unless the caller passes its own."""
    print(message, file=sys.stderr, flush=True)  # noqa: T201 - the user must see the code to sign in


@dataclass(frozen=True)
class Issuer:
    """What the flows need to know about the authorization server."""

    token_endpoint: str
    device_endpoint: str = ""
    authorization_endpoint: str = ""
    redirect_uri: str = ""


class TokenRequester:
    """Posts to the issuer's endpoints with one bounded timeout; maps failures to auth errors."""

    def __init__(self, *, timeout: float, verify: Any = True) -> None:
        self._http = httpx.AsyncClient(timeout=timeout, verify=verify, follow_redirects=False)
        self._timeout = timeout

    async def aclose(self) -> None:
        await self._http.aclose()

    async def post(
        self, url: str, form: Mapping[str, str], *, basic: tuple[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """POST a form; (status, JSON body). Connection failures become `IssuerUnreachableError`."""
        headers = {"Accept": "application/json", "Cache-Control": "no-cache"}
        if basic is not None:
            # RFC 6749 §2.3.1: both parts form-urlencoded before base64 (as flytekit does).
            raw = f"{quote(basic[0], safe='')}:{quote(basic[1], safe='')}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        try:
            response = await self._http.post(url, data=dict(form), headers=headers)
        except httpx.TimeoutException:
            raise IssuerUnreachableError(
                f"the OAuth2 issuer at {_origin(url)} did not answer within {self._timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise IssuerUnreachableError(
                f"cannot reach the OAuth2 issuer at {_origin(url)}: {reason}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code >= 500 or response.status_code == 404:
                raise IssuerUnreachableError(
                    f"the OAuth2 issuer at {_origin(url)} answered HTTP {response.status_code}, not a token"
                )
            body = {"error": f"http_{response.status_code}"}
        return response.status_code, body

    async def token(
        self,
        url: str,
        form: Mapping[str, str],
        *,
        basic: tuple[str, str] | None = None,
        previous_refresh: str = "",
    ) -> Token:
        status, body = await self.post(url, form, basic=basic)
        if status == 200 and isinstance(body.get("access_token"), str):
            return Token.from_response(body, previous_refresh)
        raise token_error(body, url)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def token_error(body: Mapping[str, Any], url: str) -> AuthenticationError:
    """The error for an RFC 6749 §5.2 error answer (the description is the server's, never ours)."""
    error = str(body.get("error") or "unknown_error")
    description = (
        str(body.get("error_description") or "").splitlines()[0][:200]
        if body.get("error_description")
        else ""
    )
    detail = f"{error}{': ' + description if description else ''}"
    where = _origin(url)
    if error == "invalid_client" or error == "unauthorized_client":
        return InvalidCredentialsError(
            f"the OAuth2 issuer at {where} refused the client id or secret ({detail}); "
            "check admin.clientId and the client secret"
        )
    if error == "invalid_scope":
        return MissingScopeError(
            f"the OAuth2 issuer at {where} refused the scopes ({detail}); check admin.scopes"
        )
    if error in ("invalid_grant", "expired_token"):
        return TokenExpiredError(f"the OAuth2 issuer at {where} refused to renew the token ({detail})")
    if error == "access_denied":
        return InvalidCredentialsError(f"sign-in was denied at {where} ({detail})")
    return AuthenticationError(f"the OAuth2 issuer at {where} refused the request ({detail})")


# -------------------------------------------------------------------- the flows


async def client_credentials(
    requester: TokenRequester,
    issuer: Issuer,
    client_id: str,
    secret: str,
    scopes: tuple[str, ...],
    audience: str,
) -> Token:
    form = {"grant_type": "client_credentials"}
    if scopes:
        form["scope"] = " ".join(scopes)
    if audience:
        form["audience"] = audience
    return await requester.token(issuer.token_endpoint, form, basic=(client_id, secret))


async def refresh(requester: TokenRequester, issuer: Issuer, client_id: str, refresh_token: str) -> Token:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": client_id}
    return await requester.token(issuer.token_endpoint, form, previous_refresh=refresh_token)


async def device_flow(
    requester: TokenRequester,
    issuer: Issuer,
    client_id: str,
    scopes: tuple[str, ...],
    audience: str,
    prompt: Callable[[str], None],
) -> Token:
    """RFC 8628: ask for a code, tell the user where to enter it, poll until approved or expired."""
    if not issuer.device_endpoint:
        raise AuthenticationError(
            "the OAuth2 issuer has no device authorization endpoint; use another admin.authType"
        )
    form = {"client_id": client_id}
    if scopes:
        form["scope"] = " ".join(scopes)
    if audience:
        form["audience"] = audience
    status, body = await requester.post(issuer.device_endpoint, form)
    if status != 200 or not isinstance(body.get("device_code"), str):
        raise token_error(body, issuer.device_endpoint)
    uri = str(body.get("verification_uri_complete") or body.get("verification_uri") or "")
    prompt(
        f"To sign in, open {body.get('verification_uri') or uri} and enter the code {body.get('user_code')}"
    )
    interval = max(float(body.get("interval") or 5), 0.2)
    deadline = time.monotonic() + float(body.get("expires_in") or 600)
    poll = {"grant_type": DEVICE_GRANT, "device_code": str(body["device_code"]), "client_id": client_id}
    while time.monotonic() < deadline:
        await anyio.sleep(interval)
        status, answer = await requester.post(issuer.token_endpoint, poll)
        if status == 200 and isinstance(answer.get("access_token"), str):
            return Token.from_response(answer)
        error = answer.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error == "expired_token":
            break
        raise token_error(answer, issuer.token_endpoint)
    raise TokenExpiredError("the device code expired before the sign-in was approved; try again")


async def pkce_flow(
    requester: TokenRequester,
    issuer: Issuer,
    client_id: str,
    scopes: tuple[str, ...],
    audience: str,
    prompt: Callable[[str], None],
    *,
    sign_in_seconds: float = 300.0,
) -> Token:
    """Authorization code with PKCE: a loopback listener receives the redirect; a browser is opened
    only when stdin is a terminal (otherwise the URL is printed for the user to open)."""
    if not issuer.authorization_endpoint:
        raise AuthenticationError(
            "the OAuth2 issuer has no authorization endpoint; use another admin.authType"
        )
    redirect = urlsplit(issuer.redirect_uri or "http://localhost:53593/callback")
    host = redirect.hostname or "localhost"
    if host not in ("localhost", "127.0.0.1", "::1"):
        raise AuthenticationError(f"the redirect URI {issuer.redirect_uri} is not a loopback address")
    verifier = secrets.token_urlsafe(64)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    state = secrets.token_urlsafe(16)
    received: dict[str, str] = {}
    done = anyio.Event()
    try:
        listener = await anyio.create_tcp_listener(
            local_host="127.0.0.1" if host != "::1" else "::1", local_port=redirect.port or 80
        )
    except OSError as exc:
        raise AuthenticationError(
            f"cannot listen for the sign-in redirect on {redirect.netloc}: {exc.strerror or exc}"
        ) from None
    redirect_uri = f"{redirect.scheme}://{redirect.netloc}{redirect.path}"
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(scopes),
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if audience:
        params["audience"] = audience
    url = f"{issuer.authorization_endpoint}?{urlencode(params)}"

    async def handle(stream: Any) -> None:
        async with stream:
            request = b""
            with anyio.move_on_after(10):
                while b"\r\n\r\n" not in request and len(request) < 65536:
                    chunk = await stream.receive()
                    if not chunk:
                        break
                    request += chunk
            target = request.split(b" ", 2)[1].decode("latin-1") if request.count(b" ") >= 2 else "/"
            query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
            ok = query.get("state") == state and ("code" in query or "error" in query)
            text = "Signed in; you can close this window." if ok and "code" in query else "Sign-in failed."
            body = text.encode()
            await stream.send(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            if ok and not done.is_set():
                received.update(query)
                done.set()

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, handle)
        prompt(f"To sign in, open {url}")
        if sys.stdin.isatty():
            webbrowser.open(url)
        with anyio.move_on_after(sign_in_seconds):
            await done.wait()
        tg.cancel_scope.cancel()
    if not done.is_set():
        raise TokenExpiredError(f"no sign-in arrived within {sign_in_seconds:g} s; try again")
    if "error" in received:
        raise token_error(received, issuer.authorization_endpoint)
    form = {
        "grant_type": "authorization_code",
        "code": received["code"],
        "redirect_uri": redirect_uri,
        "client_id": client_id,
        "code_verifier": verifier,
    }
    return await requester.token(issuer.token_endpoint, form)


async def external_command(command: tuple[str, ...], *, time_limit: float) -> Token:
    """Run `admin.command`; its stdout (stripped) is the access token."""
    name = command[0] if command else ""
    try:
        with anyio.fail_after(time_limit):
            result = await anyio.run_process(list(command), check=False)
    except TimeoutError:
        raise AuthenticationError(f"admin.command {name} did not finish within {time_limit:g} s") from None
    except OSError as exc:
        raise AuthenticationError(
            f"cannot run admin.command {shlex.quote(name)}: {exc.strerror or exc}"
        ) from None
    if result.returncode != 0:
        raise InvalidCredentialsError(f"admin.command {name} failed with exit status {result.returncode}")
    token = result.stdout.decode(errors="replace").strip()
    if not token or any(c.isspace() for c in token):
        raise AuthenticationError(f"admin.command {name} did not print a token on stdout")
    return Token(access_token=token)
