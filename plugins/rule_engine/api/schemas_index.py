"""The answer of the API's root, ``GET /api/v1/``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ApiIndex(BaseModel):
    """What this API is, who you are, and absolute links to its docs, schema and collections."""

    model_config = ConfigDict(extra="forbid")

    name: str
    version: str = Field(description="the API's version (the `v1` of the path)")
    description: str
    username: str = Field(description="who you are signed in as (your Airflow username)")
    docs: str = Field(description="the interactive docs (Swagger UI)")
    openapi: str = Field(description="the OpenAPI schema")
    collections: dict[str, str] = Field(
        description="each resource collection and its URL: rules, templates, reports, logs, memberships, "
        "catalog, me, health"
    )
    events: str = Field(description="where applications push changes (POST only)")
