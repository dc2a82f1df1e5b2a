"""`sandbox --auth`: FlyteAdmin-like OAuth2 server, checked over real gRPC and HTTP on loopback."""

from __future__ import annotations

import anyio
import httpx
import pytest
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status

from asyncrun._proto.flyteidl import admin
from asyncrun._proto.flyteidl.service import AdminServiceStub, AuthMetadataServiceStub

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def _token(issuer: str, **form: str) -> httpx.Response:
    async with httpx.AsyncClient() as http:
        return await http.post(f"{issuer}/oauth2/token", data=form)


async def _list_projects(auth_sandbox, metadata: dict[str, str] | None) -> admin.Projects:
    host, port = auth_sandbox.info.host, auth_sandbox.info.port
    channel = Channel(host, port)
    try:
        return await AdminServiceStub(channel).list_projects(admin.ProjectListRequest(), metadata=metadata)
    finally:
        channel.close()


async def test_discovery_answers_without_a_token(auth_sandbox) -> None:
    channel = Channel(auth_sandbox.info.host, auth_sandbox.info.port)
    try:
        stub = AuthMetadataServiceStub(channel)
        meta = await stub.get_o_auth_2_metadata()
        public = await stub.get_public_client_config()
    finally:
        channel.close()
    issuer = auth_sandbox.info.auth_issuer
    assert meta.issuer == issuer and meta.token_endpoint == f"{issuer}/oauth2/token"
    assert meta.device_authorization_endpoint == f"{issuer}/oauth2/device/code"
    assert "client_credentials" in meta.grant_types_supported
    assert public.client_id == "flytectl" and set(public.scopes) == {"all", "offline"}
    assert public.authorization_metadata_key == "authorization"


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        (None, "no authorization metadata"),
        ({"authorization": "Basic abc"}, "not a bearer token"),
        ({"authorization": "Bearer made-up"}, "unknown or revoked"),
    ],
)
async def test_calls_without_a_valid_token_are_unauthenticated(auth_sandbox, metadata, message) -> None:
    with pytest.raises(GRPCError) as info:
        await _list_projects(auth_sandbox, metadata)
    assert info.value.status is Status.UNAUTHENTICATED  # never UNKNOWN
    assert message in (info.value.message or "")


async def test_client_credentials_token_works_until_it_expires(auth_sandbox) -> None:
    auth_sandbox.auth.token_lifetime = 1.0
    info = auth_sandbox.info
    response = await _token(
        info.auth_issuer,
        grant_type="client_credentials",
        client_id=info.auth_client_id,
        client_secret=auth_sandbox.secret,
        scope="all",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expires_in"] == 1.0 and "refresh_token" not in body
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    await _list_projects(auth_sandbox, bearer)
    await _list_projects(auth_sandbox, {"flyte-authorization": bearer["authorization"]})
    await anyio.sleep(1.2)
    with pytest.raises(GRPCError) as expired:
        await _list_projects(auth_sandbox, bearer)
    assert expired.value.status is Status.UNAUTHENTICATED and "expired" in (expired.value.message or "")


async def test_wrong_secret_and_missing_scope(auth_sandbox) -> None:
    info = auth_sandbox.info
    wrong = await _token(
        info.auth_issuer, grant_type="client_credentials", client_id=info.auth_client_id, client_secret="nope"
    )
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    narrow = await _token(
        info.auth_issuer,
        grant_type="client_credentials",
        client_id=info.auth_client_id,
        client_secret=auth_sandbox.secret,
        scope="offline",
    )
    assert narrow.status_code == 200
    with pytest.raises(GRPCError) as denied:
        await _list_projects(auth_sandbox, {"authorization": f"Bearer {narrow.json()['access_token']}"})
    assert denied.value.status is Status.UNAUTHENTICATED
    assert "required scope" in (denied.value.message or "")
    unknown = await _token(
        info.auth_issuer,
        grant_type="client_credentials",
        client_id=info.auth_client_id,
        client_secret=auth_sandbox.secret,
        scope="admin",
    )
    assert unknown.status_code == 400 and unknown.json()["error"] == "invalid_scope"


async def test_device_code_is_pending_until_approved_then_refreshable(auth_sandbox) -> None:
    issuer = auth_sandbox.info.auth_issuer
    async with httpx.AsyncClient() as http:
        code = (await http.post(f"{issuer}/oauth2/device/code", data={"client_id": "flytectl"})).json()
        assert code["verification_uri"] == f"{issuer}/oauth2/device/verify" and code["interval"] >= 1
        poll = {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": code["device_code"],
            "client_id": "flytectl",
        }
        pending = await http.post(f"{issuer}/oauth2/token", data=poll)
        assert pending.status_code == 400 and pending.json()["error"] == "authorization_pending"
        wrong = await http.post(f"{issuer}/oauth2/device/verify", data={"user_code": "ZZZZ-ZZZZ"})
        assert wrong.status_code == 404
        ok = await http.post(f"{issuer}/oauth2/device/verify", data={"user_code": code["user_code"]})
        assert ok.status_code == 200
        granted = await http.post(f"{issuer}/oauth2/token", data=poll)
        assert granted.status_code == 200
        body = granted.json()
        again = await http.post(f"{issuer}/oauth2/token", data=poll)  # a device code is used once
        assert again.status_code == 400
        renewed = await http.post(
            f"{issuer}/oauth2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": body["refresh_token"],
                "client_id": "flytectl",
            },
        )
    assert renewed.status_code == 200 and renewed.json()["access_token"] != body["access_token"]
    await _list_projects(auth_sandbox, {"authorization": f"Bearer {renewed.json()['access_token']}"})


async def test_denied_device_code(auth_sandbox) -> None:
    issuer = auth_sandbox.info.auth_issuer
    async with httpx.AsyncClient() as http:
        code = (await http.post(f"{issuer}/oauth2/device/code", data={"client_id": "flytectl"})).json()
        await http.post(
            f"{issuer}/oauth2/device/verify", data={"user_code": code["user_code"], "action": "deny"}
        )
        answer = await http.post(
            f"{issuer}/oauth2/token",
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
                "device_code": code["device_code"],
                "client_id": "flytectl",
            },
        )
    assert answer.json()["error"] == "access_denied"


async def test_sandbox_without_auth_needs_no_token(sandbox) -> None:
    channel = Channel(sandbox.host, sandbox.port)
    try:
        projects = await AdminServiceStub(channel).list_projects(admin.ProjectListRequest())
    finally:
        channel.close()
    assert projects is not None and sandbox.auth_issuer == ""


async def test_reprs_hide_the_secret(auth_sandbox) -> None:
    assert auth_sandbox.secret not in repr(auth_sandbox.info)
    assert auth_sandbox.secret not in repr(auth_sandbox.auth)
