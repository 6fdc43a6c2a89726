"""Request and response models of /identity: corrections, reviews, the audit trail, pins."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from kasparro.api.schemas import PageMeta, SourceName, _Model

AssetIdField = Field(min_length=1, max_length=160, description="A canonical asset id.")
ReasonField = Field(
    min_length=1, max_length=1000, description="Why (required; kept in the audit trail)."
)
SourceAssetIdField = Field(min_length=1, max_length=200, description="The source's id.")
ReviewStatus = Literal["open", "accepted", "rejected", "curated"]
AuditAction = Literal["merge", "split", "pin", "accept", "reject"]


class MergeRequest(_Model):
    into: str = Field(min_length=1, max_length=160, description="The asset that stays.")
    asset_id: str = Field(
        min_length=1, max_length=160, description="The asset that joins `into` and goes."
    )
    reason: str = ReasonField


class SplitRequest(_Model):
    asset_id: str = AssetIdField
    source: SourceName
    source_asset_id: str = SourceAssetIdField
    to: str | None = Field(
        default=None,
        min_length=1,
        max_length=160,
        description="An existing asset to move the member to; default: a new asset.",
    )
    reason: str = ReasonField


class PinRequest(_Model):
    source: SourceName
    source_asset_id: str = SourceAssetIdField
    asset_id: str = AssetIdField
    reason: str = ReasonField


class AcceptRequest(_Model):
    asset_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=160,
        description="The asset it is; default: the review's best candidate.",
    )
    reason: str = ReasonField


class RejectRequest(_Model):
    reason: str = ReasonField


class CurationResult(_Model):
    """What a correction did: its audit row."""

    audit_id: int
    action: AuditAction
    asset_id: str = Field(description="Where the source assets are now.")
    before: dict[str, Any] = Field(description="The assets involved, before.")
    after: dict[str, Any] = Field(
        description="The assets after, the rows moved per table, and any asset removed "
        "(its id redirects)."
    )


class IdentityReview(_Model):
    source: str
    source_asset_id: str
    kept_as: str = Field(description="The asset created for it (where it is kept apart).")
    reason: str = Field(description="Why the resolver would not decide.")
    candidates: list[dict[str, Any]] = Field(description="The assets it might be, with scores.")
    run_id: str
    created_at: datetime
    status: ReviewStatus = Field(
        description="open; accepted (linked to a candidate), rejected (kept apart), curated "
        "(settled by a merge, split or pin)."
    )
    decided_by: str | None
    decided_at: datetime | None
    decided_asset_id: str | None = Field(description="Where the decision left it.")
    audit_id: int | None


class ReviewPage(_Model):
    data: list[IdentityReview] = Field(description="Newest first.")
    meta: PageMeta


class AuditEntry(_Model):
    id: int
    action: AuditAction
    actor: str = Field(description="`cli:<user>` or `api:<X-Actor>` (`api:admin-key` without).")
    reason: str
    at: datetime
    asset_id: str | None = Field(description="The asset the action left the source assets in.")
    other_asset_id: str | None = Field(description="The asset they came from, if another.")
    before: dict[str, Any]
    after: dict[str, Any]


class AuditPage(_Model):
    data: list[AuditEntry] = Field(description="Newest first.")
    meta: PageMeta


class Pin(_Model):
    source: str
    source_asset_id: str
    asset_id: str
    audit_id: int
    action: str | None
    actor: str | None
    at: datetime | None


class PinPage(_Model):
    data: list[Pin]
    meta: PageMeta
