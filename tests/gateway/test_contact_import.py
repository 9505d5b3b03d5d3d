"""Contacts from a CSV file (bad rows by line, the rest imported), filters, and the CSV export."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from inbox.model import InboundMessage
from tests.gateway.test_uploads import channel_of_kind
from tests.harness import Gateway, start_gateway

FILE = (
    "Name,E-mail,Phone,Plan,Tags\r\n"
    "Carla Dias,carla@example.org,(11) 98765-0001,gold,vip; newsletter\r\n"
    "Bad Phone,bad@example.org,12,silver,\r\n"
    "No Address,,,gold,\r\n"
    "Dan,not-an-email,,gold,\r\n"
    '"Eva ""E"" Lima",eva@example.org,+55 11 98765-0002,"silver, yearly",\r\n'
    "Too,many,cells,here,x,y\r\n"
    "Writer,,+55 11 98765-0003,bronze,\r\n"
)
COLUMNS = {"Name": "name", "E-mail": "email", "Phone": "phone", "Plan": "attributes.plan", "Tags": "tags"}


async def _import(gw: Gateway, text: str, **extra: object) -> dict:
    status, result = await gw.api(
        "POST",
        "/contacts/import",
        json_body={"csv": text, "columns": COLUMNS, "default_region": "BR", **extra},
    )
    assert status == 200, result
    return dict(result)


async def test_a_csv_import_reports_bad_rows_by_line_and_imports_the_rest(
    tmp_path: Path, database_url: str | None
):
    gw = await start_gateway(tmp_path, database_url=database_url)
    try:
        # Someone who already wrote on WhatsApp: the import fills in that contact instead of a new one.
        wrote = await gw.container.pipeline.receive(
            InboundMessage(
                channel_id=await channel_of_kind(gw, "whatsapp"),
                provider_message_id="wamid.imp",
                sender="5511987650003",
                text="oi",
            )
        )
        result = await _import(gw, FILE)
        assert [(e["line"], e["field"]) for e in result["errors"]] == [
            (3, "phone"),
            (4, None),
            (5, "email"),
            (7, None),
        ]
        assert "not a possible phone number" in result["errors"][0]["message"]
        assert "6 cells" in result["errors"][3]["message"]
        assert (result["created"], result["updated"]) == (2, 1)

        status, page = await gw.api("GET", "/contacts?q=carla")
        [carla] = page["items"]
        assert (carla["name"], carla["email"], carla["phone"]) == (
            "Carla Dias",
            "carla@example.org",
            "+5511987650001",
        )
        assert {(i["kind"], i["address"]) for i in carla["identities"]} == {
            ("email", "carla@example.org"),
            ("whatsapp", "+5511987650001"),
        }
        assert carla["attributes"] == {"plan": "gold"} and [x["tag"] for x in carla["tags"]] == [
            "newsletter",
            "vip",
        ]
        _, conv = await gw.api("GET", f"/conversations/{wrote.conversation_id}")
        _, writer = await gw.api("GET", f"/contacts/{conv['contact_id']}")
        assert writer["name"] == "Writer" and writer["attributes"] == {"plan": "bronze"}

        # Importing the same file again creates nobody.
        again = await _import(gw, FILE)
        assert (again["created"], again["updated"]) == (0, 3)

        # Filters: tag, channel, attribute (equals and has).
        async def ids(query: str) -> set[str | None]:
            status, page = await gw.api("GET", f"/contacts?{query}")
            assert status == 200, page
            return {c["name"] for c in page["items"]}

        assert await ids("tag=VIP") == {"Carla Dias"}
        assert await ids("attribute=plan%3Dsilver,%20yearly") == {'Eva "E" Lima'}
        assert await ids("attribute=plan&channel=email") == {"Carla Dias", 'Eva "E" Lima'}
        status, err = await gw.api("GET", "/contacts?channel=fax")
        assert status == 422 and err["error"]["details"][0]["field"] == "channel"

        # The export is the filtered list as CSV, one column per attribute.
        response = await gw.http.get(
            f"{gw.base_url}/api/v1/contacts?format=csv&attribute=plan",
            headers={"Authorization": f"Bearer {gw.admin_token}"},
        )
        assert response.status == 200 and response.content_type == "text/csv"
        rows = list(csv.DictReader(io.StringIO(await response.text())))
        by_name = {r["name"]: r for r in rows}
        assert set(by_name) == {"Carla Dias", 'Eva "E" Lima', "Writer"}
        assert by_name["Carla Dias"]["attributes.plan"] == "gold"
        assert by_name["Carla Dias"]["tags"] == "newsletter; vip"
        assert by_name["Writer"]["identities"] == "whatsapp:+5511987650003"
        assert by_name['Eva "E" Lima']["phone"] == "'+5511987650002"  # a spreadsheet runs "+..." cells
    finally:
        await gw.close()


async def test_an_import_that_cannot_start_names_the_field_and_agents_may_not_import(gateway: Gateway):
    status, err = await gateway.api("POST", "/contacts/import", json_body={"csv": "\r\n"})
    assert status == 422 and err["error"]["details"][0]["field"] == "csv"
    status, err = await gateway.api(
        "POST",
        "/contacts/import",
        json_body={"csv": "Name,Email\r\nA,a@example.org\r\n", "columns": {"Name": "age"}},
    )
    assert status == 422 and err["error"]["details"][0]["field"] == "columns"
    _, agent = await gateway.user("importer@example.org")
    status, err = await gateway.api(
        "POST", "/contacts/import", json_body={"csv": "Name,Email\r\nA,a@example.org\r\n"}, token=agent
    )
    assert status == 403
