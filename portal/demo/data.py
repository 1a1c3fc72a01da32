"""The demo's catalog and tenants: two products and two customers with realistic terms.

Times are relative to the moment of seeding (`term_offset_days` is where the
current term started, `term_end_in_days` where it ends), so the grant close
to renewal and the grant in grace stay that way whenever the demo runs.
`fleet_weight` is the share of simulated devices that use a grant; a weight
above the seat count is what makes some activations fail with
`seat_limit_reached`.
"""

from typing import Any

PRODUCTS: list[dict[str, Any]] = [
    {
        "code": "vectra-cad",
        "name": "Vectra CAD",
        "features": {
            "view": "Open and inspect drawings.",
            "edit": "Create and change drawings.",
            "export_step": "Export STEP and IGES files.",
            "render_gpu": "GPU-accelerated rendering.",
            "collab": "Real-time co-editing.",
            "sso": "Single sign-on with the company identity provider.",
        },
        "unlicensed_features": ["view"],
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": False,
            "required": ["ui", "updates"],
            "properties": {
                "ui": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["theme"],
                    "properties": {
                        "theme": {"enum": ["light", "dark", "system"]},
                        "units": {"enum": ["mm", "inch"]},
                        "autosave_minutes": {"type": "integer", "minimum": 1, "maximum": 60},
                    },
                },
                "updates": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "channel": {"enum": ["stable", "preview"]},
                        "check_hours": {"type": "integer", "minimum": 1, "maximum": 168},
                    },
                },
                "render": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "gpu": {"type": "boolean", "x-requires-entitlement": "render_gpu"},
                        "max_threads": {"type": "integer", "minimum": 1, "maximum": 128},
                    },
                },
                "telemetry": {
                    "enum": ["off", "basic", "full"],
                    "x-region-values": {"eu": ["off", "basic"]},
                },
                "license_server_proxy": {"type": "string", "x-secret": True},
            },
        },
        "defaults": {
            "ui": {"theme": "system", "units": "mm", "autosave_minutes": 10},
            "updates": {"channel": "stable", "check_hours": 24},
            "render": {"gpu": False, "max_threads": 8},
            "telemetry": "basic",
        },
    },
    {
        "code": "ledgerly",
        "name": "Ledgerly Desktop",
        "features": {
            "read": "Read ledgers and reports.",
            "post": "Post journal entries.",
            "multi_currency": "Ledgers in several currencies.",
            "audit_export": "Export audit trails.",
            "sso": "Single sign-on with the company identity provider.",
        },
        "unlicensed_features": ["read"],
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": False,
            "required": ["ui"],
            "properties": {
                "ui": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["theme"],
                    "properties": {
                        "theme": {"enum": ["light", "dark", "system"]},
                        "locale": {"type": "string", "pattern": "^[a-z]{2}(-[A-Z]{2})?$"},
                    },
                },
                "ledger": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "base_currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                        "multi_currency": {
                            "type": "boolean",
                            "x-requires-entitlement": "multi_currency",
                        },
                        "lock_period_days": {"type": "integer", "minimum": 0, "maximum": 90},
                    },
                },
                "telemetry": {"enum": ["off", "basic", "full"]},
            },
        },
        "defaults": {
            "ui": {"theme": "light", "locale": "en-US"},
            "ledger": {"base_currency": "USD", "multi_currency": False, "lock_period_days": 5},
            "telemetry": "basic",
        },
    },
]

# Role users per tenant: (username suffix, role group, first name).
ROLE_USERS: list[tuple[str, str, str]] = [
    ("procurement", "Procurement admin", "Priya"),
    ("it", "IT admin", "Ivan"),
    ("approver", "Approver", "Ada"),
    ("approver2", "Approver", "Omar"),
    ("auditor", "Auditor", "Aude"),
]

TENANTS: list[dict[str, Any]] = [
    {
        "slug": "acme",
        "name": "Acme Robotics",
        "region": "eu",
        "policies": [
            {
                "key": "enterprise",
                "name": "Vectra CAD Enterprise (annual)",
                "product_code": "vectra-cad",
                "seat_limit": 500,
                "devices_per_user": 3,
                "entitlements": ["view", "edit", "export_step", "render_gpu", "collab", "sso"],
                "term_days": 365,
                "renewal_cadence": "annual",
                "grace_days": 14,
                "offline_tolerance_hours": 168,
                "token_lifetime_hours": 24,
                "allowed_regions": ["eu"],
            },
            {
                "key": "contractors",
                "name": "Vectra CAD Contractors (quarterly)",
                "product_code": "vectra-cad",
                "seat_limit": 40,
                "devices_per_user": 1,
                "entitlements": ["view", "edit"],
                "term_days": 90,
                "renewal_cadence": "quarterly",
                "grace_days": 10,
                "offline_tolerance_hours": 72,
                "token_lifetime_hours": 12,
            },
        ],
        "grants": [
            {
                # Ends in 12 days: the renewal scan raises its request ahead of expiry.
                "label": "enterprise",
                "policy": "enterprise",
                "seats": 100,
                "term_offset_days": -353,
                "term_end_in_days": 12,
                "fleet_weight": 110,
            },
            {
                # Ended 4 days ago, 10 days of grace: clients decide `grace`.
                "label": "contractors",
                "policy": "contractors",
                "seats": 30,
                "term_offset_days": -94,
                "term_end_in_days": -4,
                "fleet_weight": 25,
            },
        ],
        "groups": {
            "design-studio": "Industrial designers; dark theme and GPU rendering.",
            "field-service": "Field engineers on laptops; imperial units.",
        },
        "overlay": {
            "product": "vectra-cad",
            "tenant": {"ui": {"autosave_minutes": 5}, "telemetry": "off"},
            "groups": [
                {
                    "group": "design-studio",
                    "position": 10,
                    "overlay": {"ui": {"theme": "dark"}, "render": {"gpu": True}},
                },
                {"group": "field-service", "position": 20, "overlay": {"ui": {"units": "inch"}}},
            ],
            # The release the demo rolls out to a 10% ring and then promotes.
            "next_tenant": {
                "ui": {"autosave_minutes": 3},
                "telemetry": "off",
                "updates": {"channel": "preview"},
            },
        },
    },
    {
        "slug": "globex",
        "name": "Globex Finance",
        "region": "us",
        "policies": [
            {
                "key": "standard",
                "name": "Ledgerly Standard (monthly)",
                "product_code": "ledgerly",
                "seat_limit": 200,
                "devices_per_user": 2,
                "entitlements": ["read", "post", "multi_currency", "sso"],
                "term_days": 30,
                "renewal_cadence": "monthly",
                "grace_days": 5,
                "offline_tolerance_hours": 48,
                "token_lifetime_hours": 8,
            },
            {
                "key": "auditors",
                "name": "Ledgerly Audit seats (annual)",
                "product_code": "ledgerly",
                "seat_limit": 20,
                "devices_per_user": 1,
                "entitlements": ["read", "audit_export"],
                "term_days": 365,
                "renewal_cadence": "annual",
                "grace_days": 30,
                "offline_tolerance_hours": 336,
                "token_lifetime_hours": 72,
            },
        ],
        "grants": [
            {
                "label": "standard",
                "policy": "standard",
                "seats": 60,
                "term_offset_days": -20,
                "term_end_in_days": 10,
                "fleet_weight": 70,
            },
            {
                "label": "auditors",
                "policy": "auditors",
                "seats": 10,
                "term_offset_days": -100,
                "term_end_in_days": 265,
                "fleet_weight": 8,
            },
        ],
        "groups": {
            "trading-floor": "Traders; dark theme and several currencies.",
            "back-office": "Accounting; long lock period.",
        },
        "overlay": {
            "product": "ledgerly",
            "tenant": {"ui": {"locale": "en-GB"}, "ledger": {"base_currency": "GBP"}},
            "groups": [
                {
                    "group": "trading-floor",
                    "position": 10,
                    "overlay": {"ui": {"theme": "dark"}, "ledger": {"multi_currency": True}},
                },
                {
                    "group": "back-office",
                    "position": 20,
                    "overlay": {"ledger": {"lock_period_days": 15}},
                },
            ],
            "next_tenant": {
                "ui": {"locale": "en-GB"},
                "ledger": {"base_currency": "GBP", "lock_period_days": 7},
            },
        },
    },
]
