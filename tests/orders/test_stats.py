"""Stats under concurrency and a property test: any sequence of order records and status
changes leaves the stored stats equal to a recomputation from scratch."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patron.auth.principal import Role
from patron.kit.money import format_amount
from tests.conftest import ApiKeyFactory, create_customer

ORDER_STATUSES = ["PLACED", "PAID", "FULFILLED", "CANCELLED", "REFUNDED"]
APPOINTMENT_STATUSES = ["BOOKED", "COMPLETED", "CANCELLED", "NO_SHOW"]
COUNTED = {"PLACED", "PAID", "FULFILLED"}
REALISED = {"PAID", "FULFILLED"}


async def test_parallel_recordings_for_one_customer_are_exact(
    client: httpx.AsyncClient, api_key_headers: ApiKeyFactory, tenant: str
) -> None:
    admin = await api_key_headers(Role.ADMIN, tenant)
    service = await api_key_headers(Role.SERVICE, tenant)
    customer = await create_customer(client, admin, first_name="Busy")
    url = f"/api/v1/customers/{customer['id']}/orders"

    async def post(body: dict[str, Any]) -> int:
        return (await client.post(url, json=body, headers=service)).status_code

    # 20 distinct orders and, at the same time, the same order id recorded 5 times
    bodies = [{"order_id": f"P{i}", "total": "1.25", "status": "PAID"} for i in range(20)]
    bodies += [{"order_id": "same", "total": "10.00"} for _ in range(5)]
    codes = await asyncio.gather(*(post(b) for b in bodies))
    assert sorted(codes) == [200] * 4 + [201] * 21
    stats = (await client.get(f"/api/v1/customers/{customer['id']}/stats", headers=admin)).json()
    assert (stats["total_orders"], stats["total_spent"], stats["lifetime_value"]) == (
        21,
        "35.00",
        "25.00",
    )


def _expected(orders: dict[str, dict[str, Any]], appointments: dict[str, dict[str, Any]]) -> Any:
    """Stats recomputed from scratch in plain Python (the test's own oracle)."""
    main = [o for o in orders.values() if o["status"] in COUNTED and o["currency"] == "USD"]
    spent = sum((o["total"] for o in main), Decimal(0))
    realised = sum((o["total"] for o in main if o["status"] in REALISED), Decimal(0))
    dates: list[date] = [o["placed_at"].astimezone(UTC).date() for o in main]
    others: dict[str, list[dict[str, Any]]] = {}
    for o in orders.values():
        if o["status"] in COUNTED and o["currency"] != "USD":
            others.setdefault(o["currency"], []).append(o)
    booked = [a["starts_at"] for a in appointments.values() if a["status"] != "CANCELLED"]
    return {
        "currency": "USD",
        "total_orders": len(main),
        "total_spent": format_amount(spent, "USD"),
        "average_order_value": format_amount(spent / len(main) if main else 0, "USD"),
        "lifetime_value": format_amount(realised, "USD"),
        "first_order_date": min(dates).isoformat() if dates else None,
        "last_order_date": max(dates).isoformat() if dates else None,
        "total_appointments": len(booked),
        "last_appointment_date": max(booked).astimezone(UTC).date().isoformat() if booked else None,
        "other_currencies": [
            {
                "currency": cur,
                "total_orders": len(items),
                "total_spent": format_amount(sum((i["total"] for i in items), Decimal(0)), cur),
                "lifetime_value": format_amount(
                    sum((i["total"] for i in items if i["status"] in REALISED), Decimal(0)), cur
                ),
                "first_order_date": min(i["placed_at"] for i in items)
                .astimezone(UTC)
                .date()
                .isoformat(),
                "last_order_date": max(i["placed_at"] for i in items)
                .astimezone(UTC)
                .date()
                .isoformat(),
            }
            for cur, items in sorted(others.items())
        ],
    }


# local times at +05:00 whose UTC date can be the day before: dates must be UTC dates
PLUS_FIVE = timezone(timedelta(hours=5))
ids = st.sampled_from(["a", "b", "c", "d"])
moments = st.builds(
    lambda days, hours: datetime(2026, 1, 1, tzinfo=PLUS_FIVE) + timedelta(days=days, hours=hours),
    st.integers(min_value=0, max_value=400),
    st.integers(min_value=0, max_value=23),
)
steps = st.lists(
    st.one_of(
        # record an order (create, or full update of an existing id)
        st.fixed_dictionaries(
            {
                "kind": st.just("order"),
                "id": ids,
                "total": st.decimals(min_value=0, max_value=10_000, places=2),
                "currency": st.sampled_from(["USD", "USD", "EUR"]),
                "status": st.sampled_from(ORDER_STATUSES),
                "at": moments,
            }
        ),
        # change only the status of an order (422 when the id is new: no total)
        st.fixed_dictionaries(
            {"kind": st.just("order"), "id": ids, "status": st.sampled_from(ORDER_STATUSES)}
        ),
        # record an appointment, or change its status
        st.fixed_dictionaries(
            {
                "kind": st.just("appointment"),
                "id": ids,
                "status": st.sampled_from(APPOINTMENT_STATUSES),
                "at": moments,
            }
        ),
        st.fixed_dictionaries(
            {
                "kind": st.just("appointment"),
                "id": ids,
                "status": st.sampled_from(APPOINTMENT_STATUSES),
            }
        ),
    ),
    min_size=1,
    max_size=10,
)


def _request(step: dict[str, Any], prefix: str) -> tuple[str, dict[str, Any]]:
    """The path suffix and body of one step."""
    if step["kind"] == "order":
        body: dict[str, Any] = {"order_id": prefix + step["id"], "status": step["status"]}
        if "total" in step:
            body.update(
                total=str(step["total"]),
                currency=step["currency"],
                placed_at=step["at"].isoformat(),
            )
        return "orders", body
    body = {"appointment_id": prefix + step["id"], "status": step["status"]}
    if "at" in step:
        body.update(service="Visit", starts_at=step["at"].isoformat())
    return "appointments", body


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=steps)
async def test_any_sequence_gives_the_stats_of_a_recomputation(
    client: httpx.AsyncClient,
    api_key_headers: ApiKeyFactory,
    tenant: str,
    steps: list[dict[str, Any]],
) -> None:
    # each example gets its own customer and ids, so examples never see each other's rows
    admin = await api_key_headers(Role.ADMIN, tenant)
    service = await api_key_headers(Role.SERVICE, tenant)
    customer = await create_customer(client, admin, first_name="Prop")
    base = f"/api/v1/customers/{customer['id']}"
    prefix = uuid.uuid4().hex[:8]
    model: dict[str, dict[str, dict[str, Any]]] = {"order": {}, "appointment": {}}
    for step in steps:
        path, body = _request(step, prefix)
        response = await client.post(f"{base}/{path}", json=body, headers=service)
        known = model[step["kind"]]
        full = "at" in step
        if not full and step["id"] not in known:
            assert response.status_code == 422, response.text  # a new id needs its fields
            continue
        assert response.status_code == (200 if step["id"] in known else 201), response.text
        if full:
            known[step["id"]] = {
                "status": step["status"],
                "placed_at": step["at"],
                "starts_at": step["at"],
                "total": step.get("total"),
                "currency": step.get("currency"),
            }
        else:
            known[step["id"]]["status"] = step["status"]
    stats = (await client.get(f"{base}/stats", headers=admin)).json()
    expected = _expected(model["order"], model["appointment"])
    fields = (
        "currency",
        "total_orders",
        "total_spent",
        "lifetime_value",
        "first_order_date",
        "last_order_date",
    )
    stats["other_currencies"] = [{k: o[k] for k in fields} for o in stats["other_currencies"]]
    assert stats == expected
