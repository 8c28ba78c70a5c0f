"""Connectors: the built-in ones and the tenant's own, drafts published as versions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response, status

from casedesk.activities import connectors
from casedesk.api import API_V1
from casedesk.api.deps import PrincipalDep, UnitOfWorkDep
from casedesk.api.routing import ApiRoute, document_body, read_document
from casedesk.api.schemas.connections import (
    ActionOut,
    ConnectionShapeOut,
    ConnectorDetail,
    ConnectorPublished,
    ConnectorSummary,
    ConnectorVersionDetail,
    ConnectorVersionOut,
    ProblemOut,
    SecretFieldOut,
    TriggerOut,
)
from casedesk.domain.identity.roles import Role
from casedesk.integrations.catalogue import builtin, builtin_manifests
from casedesk.integrations.manifests import ConnectorManifest, parse_manifest
from casedesk.kit.errors import InvalidInput, NotFound
from casedesk.kit.values import INT32_MAX
from casedesk.store.models import Connector
from casedesk.store.unit_of_work import UnitOfWork

router = APIRouter(prefix=f"{API_V1}/connectors", tags=["connectors"], route_class=ApiRoute)
VersionNumber = Annotated[int, Path(ge=1, le=INT32_MAX)]


def _summary_of_builtin(manifest: ConnectorManifest) -> dict[str, Any]:
    return {
        "id": manifest.id,
        "name": manifest.name,
        "description": manifest.description,
        "builtin": True,
        "auth": manifest.auth.type,
        "latest_version": manifest.version,
        "versions": [ConnectorVersionOut(version=manifest.version, published_at=None)],
    }


async def _summary_of_own(
    uow: UnitOfWork, connector: Connector
) -> tuple[dict[str, Any], ConnectorManifest | None]:
    versions = await uow.connectors.versions(connector.id)
    latest = next((v for v in versions if v.version == connector.latest_version), None)
    manifest = None if latest is None else parse_manifest(latest.manifest)
    summary = {
        "id": connector.code,
        "name": manifest.name if manifest else connector.name,
        "description": manifest.description if manifest else "",
        "builtin": False,
        "auth": manifest.auth.type if manifest else "none",
        "latest_version": connector.latest_version,
        "versions": [
            ConnectorVersionOut(version=v.version, published_at=v.published_at) for v in versions
        ],
    }
    return summary, manifest


def _parts(manifest: ConnectorManifest | None) -> dict[str, Any]:
    if manifest is None:
        return dict.fromkeys(("manifest", "connection")) | {
            "triggers": [],
            "actions": [],
            "enrichers": [],
        }
    shape = manifest.connection
    return {
        "manifest": manifest.model_dump(mode="json", by_alias=True, exclude_none=True),
        "connection": ConnectionShapeOut(
            settings=shape.settings,
            secrets=[SecretFieldOut(name=s.name, title=s.title) for s in shape.secrets],
            testable=shape.test is not None,
        ),
        "triggers": [
            TriggerOut(
                name=name,
                title=trigger.title,
                kind=trigger.kind,
                settings=trigger.settings,
                enricher=trigger.enricher,
            )
            for name, trigger in manifest.triggers.items()
        ],
        "actions": [
            ActionOut(name=name, title=action.title, input=action.input)
            for name, action in manifest.actions.items()
        ],
        "enrichers": list(manifest.enrichers),
    }


async def _detail(uow: UnitOfWork, code: str) -> ConnectorDetail:
    shipped = builtin(code)
    if shipped is not None:
        return ConnectorDetail(
            **_summary_of_builtin(shipped), **_parts(shipped), draft=None, draft_problems=[]
        )
    connector = await connectors.connector_by_code(uow, code)
    summary, manifest = await _summary_of_own(uow, connector)
    problems = connectors.problem_details(connectors.connector_problems(connector.draft))
    return ConnectorDetail(
        **summary,
        **_parts(manifest),
        draft=connector.draft,
        draft_problems=[ProblemOut(field=p["field"], message=p["message"]) for p in problems],
    )


@router.get("", response_model=list[ConnectorSummary], summary="Built-in and own connectors")
async def list_connectors(uow: UnitOfWorkDep) -> list[ConnectorSummary]:
    found = [ConnectorSummary(**_summary_of_builtin(m)) for m in builtin_manifests().values()]
    for connector in await uow.connectors.all():
        summary, _ = await _summary_of_own(uow, connector)
        found.append(ConnectorSummary(**summary))
    return found


@router.post(
    "",
    response_model=ConnectorDetail,
    summary="Create one of the tenant's own connectors, or replace its draft (admins)",
    description="The body is a connector manifest, as JSON (`application/json`) or YAML "
    "(`application/yaml`, `text/yaml`). The draft is saved even when it is invalid; "
    "`draft_problems` lists what publishing it would refuse.",
    openapi_extra=document_body("a connector manifest"),
)
async def save_connector(
    request: Request, principal: PrincipalDep, uow: UnitOfWorkDep
) -> ConnectorDetail:
    principal.require(Role.ADMIN, "editing a connector")
    document = await read_document(request)
    if not isinstance(document, dict):
        raise InvalidInput("a manifest is an object (a mapping)", field="body")
    connector = await connectors.save_connector_draft(uow, principal, document)
    return await _detail(uow, connector.code)


@router.get("/{code}", response_model=ConnectorDetail)
async def read_connector(code: str, uow: UnitOfWorkDep) -> ConnectorDetail:
    return await _detail(uow, code)


@router.post(
    "/{code}/publish",
    response_model=ConnectorPublished,
    status_code=status.HTTP_201_CREATED,
    summary="Validate the draft and publish it as the next immutable version (admins)",
    description="201 with the new version; 200 with the latest version and `unchanged: true`"
    " when the draft is that version already (nothing is published). A draft with problems is"
    " one 422 listing each with its path.",
    responses={200: {"model": ConnectorPublished, "description": "the draft was published"}},
)
async def publish_connector(
    code: str, principal: PrincipalDep, uow: UnitOfWorkDep, response: Response
) -> ConnectorPublished:
    published = await connectors.publish_connector(uow, principal, code)
    if published.unchanged:
        response.status_code = status.HTTP_200_OK
    version = published.version
    return ConnectorPublished(
        version=version.version,
        published_at=version.published_at,
        manifest=version.manifest,
        unchanged=published.unchanged,
    )


@router.get("/{code}/versions/{version}", response_model=ConnectorVersionDetail)
async def read_connector_version(
    code: str, version: VersionNumber, uow: UnitOfWorkDep
) -> ConnectorVersionDetail:
    shipped = builtin(code)
    if shipped is not None:
        if version != shipped.version:
            raise NotFound(f"built-in connector {code!r} ships version {shipped.version}")
        manifest = shipped.model_dump(mode="json", by_alias=True, exclude_none=True)
        return ConnectorVersionDetail(version=version, published_at=None, manifest=manifest)
    connector = await connectors.connector_by_code(uow, code)
    found = await uow.connectors.version(connector.id, version)
    if found is None:
        raise NotFound(f"connector {code!r} has no version {version}")
    return ConnectorVersionDetail(
        version=found.version, published_at=found.published_at, manifest=found.manifest
    )
