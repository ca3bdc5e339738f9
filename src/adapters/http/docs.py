"""The API's documentation page: Swagger UI served from an installed package, never a CDN."""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

ASSETS = "/static/swagger-ui"


def swagger_ui() -> SwaggerRenderPlugin:
    """`/schema` renders with the bundled Swagger UI: it works offline and behind a firewall."""
    return SwaggerRenderPlugin(
        js_url=f"{ASSETS}/swagger-ui-bundle.js",
        css_url=f"{ASSETS}/swagger-ui.css",
        standalone_preset_js_url=f"{ASSETS}/swagger-ui-standalone-preset.js",
        favicon=f'<link rel="icon" type="image/png" href="{ASSETS}/favicon-32x32.png">',
    )


def swagger_ui_assets() -> ControllerRouterHandler:
    return create_static_files_router(
        path=ASSETS,
        directories=[Path(swagger_ui_bundle.swagger_ui_path)],
        include_in_schema=False,
    )
