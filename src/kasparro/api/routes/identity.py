"""/identity: correct canonical identity (admin only) and read reviews, the audit trail, pins.

The corrections are the CLI's (`kasparro identity merge|split|pin|reviews accept|reject`),
through the same functions, each in one serialized write transaction with its audit row.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from sqlalchemy.engine import Connection, Engine

from kasparro.api.errors import ProblemError, problem_responses
from kasparro.api.identity_schemas import (
    AcceptRequest,
    AuditAction,
    AuditPage,
    CurationResult,
    MergeRequest,
    PinPage,
    PinRequest,
    RejectRequest,
    ReviewPage,
    ReviewStatus,
    SplitRequest,
)
from kasparro.api.inputs import NO_CONTROL
from kasparro.api.queries import identity as queries
from kasparro.api.routes import EngineDep, Limit, Offset, SettingsDep, WriteEngineDep, page_meta
from kasparro.api.routes.etl import require_admin
from kasparro.api.schemas import SourceName
from kasparro.config import Settings
from kasparro.db.engine import write_transaction
from kasparro.identity import curation
from kasparro.identity.curation import CurationError, Outcome, Who
from kasparro.logging import get_logger

router = APIRouter(tags=["identity"])
log = get_logger(__name__)

WRITE_ERRORS = problem_responses(400, 401, 403, 404, 409, 422, 429, 500, 503)
READ_ERRORS = problem_responses(422, 429, 500, 503)

ActorHeader = Annotated[
    str | None,
    Header(
        alias="X-Actor",
        description="Who is acting, for the audit trail (1-64 letters, digits, spaces and "
        "`._@+-`); recorded as `api:<name>`, or `api:admin-key` without it.",
    ),
]
ReviewSource = Annotated[SourceName, Path(description="The reviewed source asset's source.")]
ReviewId = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=NO_CONTROL, description="Its id at the source."),
]


def _who(actor: str | None, reason: str) -> Who:
    try:
        name = curation.check_actor(actor) if actor is not None else "admin-key"
    except CurationError as exc:
        raise ProblemError(
            400, f"invalid header `X-Actor`: {exc}", slug="invalid-actor", param="X-Actor"
        ) from None
    try:
        reason = curation.check_reason(reason)
    except CurationError as exc:
        raise ProblemError(400, str(exc), slug="invalid-reason", param="reason") from None
    return Who(actor=f"api:{name}", reason=reason, at=datetime.now(UTC))


def _apply(
    engine: Engine, settings: Settings, who: Who, operation: Callable[[Connection], Outcome]
) -> CurationResult:
    try:
        with write_transaction(engine) as conn:
            outcome = operation(conn)
    except CurationError as exc:
        slug = {404: "not-found", 409: "identity-conflict"}.get(exc.status, "invalid-correction")
        raise ProblemError(exc.status, str(exc), slug=slug) from None
    curation.refresh_consensus(engine, settings, outcome)
    log.info(
        "identity_corrected",
        action=outcome.action,
        audit_id=outcome.audit_id,
        asset_id=outcome.asset_id,
        actor=who.actor,
    )
    return CurationResult(
        audit_id=outcome.audit_id,
        action=outcome.action,
        asset_id=outcome.asset_id,
        before=outcome.before,
        after=outcome.after,
    )


ADMIN = [Depends(require_admin)]


@router.post(
    "/identity/merge",
    response_model=CurationResult,
    summary="Merge two assets",
    dependencies=ADMIN,
    responses=WRITE_ERRORS,
)
def merge(
    engine: WriteEngineDep, settings: SettingsDep, body: MergeRequest, actor: ActorHeader = None
) -> CurationResult:
    """Every member of `asset_id` joins `into`, with its latest values and history, in one
    transaction; `asset_id` is removed and answers 308 to `into` from then on. 409 if both hold
    an asset of the same source (split one out first); 404 for an unknown asset."""
    who = _who(actor, body.reason)
    return _apply(
        engine, settings, who, lambda conn: curation.merge(conn, body.into, body.asset_id, who)
    )


@router.post(
    "/identity/split",
    response_model=CurationResult,
    summary="Split a member out",
    dependencies=ADMIN,
    responses=WRITE_ERRORS,
)
def split(
    engine: WriteEngineDep, settings: SettingsDep, body: SplitRequest, actor: ActorHeader = None
) -> CurationResult:
    """The member leaves `asset_id`, with its history, for a new asset (or `to`), and is pinned
    there so the ETL never puts it back. 409 if it is the only member, or `to` holds an asset of
    its source already."""
    who = _who(actor, body.reason)
    key = (body.source, body.source_asset_id)
    return _apply(
        engine,
        settings,
        who,
        lambda conn: curation.split(conn, body.asset_id, key, who, to=body.to),
    )


@router.post(
    "/identity/pin",
    response_model=CurationResult,
    summary="Pin a source asset",
    dependencies=ADMIN,
    responses=WRITE_ERRORS,
)
def pin(
    engine: WriteEngineDep, settings: SettingsDep, body: PinRequest, actor: ActorHeader = None
) -> CurationResult:
    """The source asset is `asset_id`: moved there now with its history if it is loaded, and
    linked there when it first loads (pins come before the resolver and the crosswalk file).
    409 if `asset_id` holds another asset of that source."""
    who = _who(actor, body.reason)
    key = (body.source, body.source_asset_id)
    return _apply(engine, settings, who, lambda conn: curation.pin(conn, key, body.asset_id, who))


@router.post(
    "/identity/reviews/{source}/{source_asset_id}/accept",
    response_model=CurationResult,
    summary="Accept a review: link it to a candidate",
    dependencies=ADMIN,
    responses=WRITE_ERRORS,
)
def accept_review(
    engine: WriteEngineDep,
    settings: SettingsDep,
    source: ReviewSource,
    source_asset_id: ReviewId,
    body: AcceptRequest,
    actor: ActorHeader = None,
) -> CurationResult:
    """The source asset is the review's best candidate (or `asset_id`): it moves there with its
    history and is pinned; the asset created for it goes if left empty. 409 if decided already."""
    who = _who(actor, body.reason)
    key = (source, source_asset_id)
    return _apply(
        engine,
        settings,
        who,
        lambda conn: curation.accept_review(conn, key, who, asset_id=body.asset_id),
    )


@router.post(
    "/identity/reviews/{source}/{source_asset_id}/reject",
    response_model=CurationResult,
    summary="Reject a review: keep it apart",
    dependencies=ADMIN,
    responses=WRITE_ERRORS,
)
def reject_review(
    engine: WriteEngineDep,
    settings: SettingsDep,
    source: ReviewSource,
    source_asset_id: ReviewId,
    body: RejectRequest,
    actor: ActorHeader = None,
) -> CurationResult:
    """The source asset is none of the candidates: it stays in its own asset, pinned there."""
    who = _who(actor, body.reason)
    key = (source, source_asset_id)
    return _apply(engine, settings, who, lambda conn: curation.reject_review(conn, key, who))


@router.get(
    "/identity/reviews",
    response_model=ReviewPage,
    summary="Identity reviews",
    responses=READ_ERRORS,
)
def list_reviews(
    request: Request,
    engine: EngineDep,
    status: Annotated[
        ReviewStatus | None, Query(description="Only this status; default: open.")
    ] = "open",
    all_statuses: Annotated[
        bool, Query(alias="all", description="Every status (overrides `status`).")
    ] = False,
    source: Annotated[SourceName | None, Query(description="Only this source.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ReviewPage:
    """Source assets the resolver would not decide on, kept apart, with their candidates."""
    with engine.connect() as conn:
        rows, total = queries.reviews_page(
            conn,
            status=None if all_statuses else status,
            source=source,
            limit=limit,
            offset=offset,
        )
    return ReviewPage.model_validate(
        {"data": rows, "meta": page_meta(request, len(rows), total, limit, offset)}
    )


@router.get(
    "/identity/audit",
    response_model=AuditPage,
    summary="The identity audit trail",
    responses=READ_ERRORS,
)
def list_audit(
    request: Request,
    engine: EngineDep,
    asset_id: Annotated[
        str | None,
        Query(
            max_length=160, pattern=NO_CONTROL, description="Actions on this asset (either side)."
        ),
    ] = None,
    action: Annotated[AuditAction | None, Query(description="Only this action.")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> AuditPage:
    """Every correction, newest first: who, when, why, and the assets before and after."""
    with engine.connect() as conn:
        rows, total = queries.audit_page(
            conn, asset_id=asset_id, action=action, limit=limit, offset=offset
        )
    return AuditPage.model_validate(
        {"data": rows, "meta": page_meta(request, len(rows), total, limit, offset)}
    )


@router.get(
    "/identity/pins", response_model=PinPage, summary="Pinned source assets", responses=READ_ERRORS
)
def list_pins(
    request: Request,
    engine: EngineDep,
    asset_id: Annotated[
        str | None, Query(max_length=160, pattern=NO_CONTROL, description="Pins to this asset.")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> PinPage:
    """The persisted crosswalk: each source asset a person placed, with the audit row."""
    with engine.connect() as conn:
        rows, total = queries.pins_page(conn, asset_id=asset_id, limit=limit, offset=offset)
    return PinPage.model_validate(
        {"data": rows, "meta": page_meta(request, len(rows), total, limit, offset)}
    )
