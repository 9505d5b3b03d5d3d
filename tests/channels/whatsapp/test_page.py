"""The phones page in headless Chromium: a contact writes, the agent answers, the ticks move."""

from __future__ import annotations

from playwright.async_api import FilePayload, Page, expect

from inbox.outbox import Draft

from .test_webhook import PNG


async def test_contact_writes_from_the_page_agent_replies_and_the_ticks_go_sent_delivered_read(
    world, page: Page
):
    stream = await world.gw.stream()
    await stream.ready()
    await page.goto(f"{world.public_url}/simulator/")
    await page.get_by_label("Phone number").fill("+55 11 98765-0100")
    await page.get_by_label("Name").fill("Bia Lima")
    await page.get_by_role("button", name="Add phone").click()
    await expect(page.locator("#chat-name")).to_have_text("Bia Lima")

    await page.get_by_role("textbox", name="Message").fill("Oi! Meu pedido não chegou.")
    await page.get_by_role("button", name="Send").click()

    # The agent sees it live on the stream and over the API.
    created = await stream.next(lambda e: e["type"] == "message.created")
    assert created["data"]["message"]["text"] == "Oi! Meu pedido não chegou."
    conversation_id = created["conversation_id"]
    status, conv = await world.gw.api("GET", f"/conversations/{conversation_id}")
    status, contact = await world.gw.api("GET", f"/contacts/{conv['contact_id']}")
    assert contact["name"] == "Bia Lima" and contact["phone"] == "+5511987650100"
    mine = page.locator("#messages .msg.in")
    await expect(mine).to_have_attribute("data-status", "delivered")  # ✔✔: the business has it

    # The phone goes offline, so the reply can only be "sent" (✔) for now.
    await page.get_by_label("online").uncheck()
    await world.until(lambda: not world.sim.contacts["5511987650100"].online)
    status, reply = await world.gw.api(
        "POST", f"/conversations/{conversation_id}/messages", json_body={"text": "Oi Bia! Vou verificar."}
    )
    assert status == 201
    theirs = page.locator("#messages .msg.out")
    await expect(theirs).to_have_attribute("data-status", "sent")
    await expect(theirs.locator(".ticks")).to_have_text("✔")
    await expect(theirs.locator(".text")).to_have_text("Oi Bia! Vou verificar.")

    await page.get_by_label("online").check()  # ✔✔ delivered
    await expect(theirs).to_have_attribute("data-status", "delivered")
    await expect(theirs.locator(".ticks")).to_have_text("✔✔")
    await expect(theirs.locator(".ticks")).not_to_have_class("ticks read")

    await page.get_by_role("button", name="Mark read").click()  # blue ✔✔ read
    await expect(theirs).to_have_attribute("data-status", "read")
    await expect(theirs.locator(".ticks")).to_have_class("ticks read")

    # And the gateway got every status by signed webhook.
    read = await stream.next(
        lambda e: (
            e["type"] == "message.updated"
            and e["data"]["message"]["id"] == reply["id"]
            and e["data"]["message"]["status"] == "read"
        )
    )
    assert (
        read["data"]["message"]["provider_message_id"]
        == world.sim.thread(world.business.phone_number_id, "5511987650100")[-1].wamid
    )


async def test_button_taps_and_an_image_from_the_page(world, page: Page):
    sent, _ = await world.contact_writes("+5511987650200", content={"body": "hi"}, name="Caio")
    conversation_id, _ = await world.conversation_of(sent.wamid)
    stream = await world.gw.stream()
    await stream.ready()
    await world.gw.container.outbox.submit(
        Draft(conversation_id, text="Did it arrive?", buttons=("Yes", "No"))
    )
    # The demo registered the simulator's approved templates with the gateway.
    status, sale = await world.gw.api(
        "POST",
        f"/conversations/{conversation_id}/messages",
        json_body={"template": {"name": "spring_sale", "language": "en_US", "params": ["20%"]}},
    )
    assert status == 201 and sale["status"] == "queued", sale
    await page.goto(f"{world.public_url}/simulator/#5511987650200")
    await page.get_by_role("button", name="Yes").click()
    tap = await stream.next(
        lambda e: e["type"] == "message.created" and e["data"]["message"]["kind"] == "incoming"
    )
    assert (tap["data"]["message"]["content_type"], tap["data"]["message"]["text"]) == ("interactive", "Yes")

    await page.get_by_role("button", name="Stop promotions").click()
    stop = await stream.next(
        lambda e: e["type"] == "message.created" and e["data"]["message"]["kind"] == "incoming"
    )
    assert (stop["data"]["message"]["content_type"], stop["data"]["message"]["text"]) == (
        "button",
        "Stop promotions",
    )

    await page.get_by_role("textbox", name="Message").fill("this one")
    await page.locator("#image").set_input_files(
        files=FilePayload(name="parcel.png", mimeType="image/png", buffer=PNG)
    )
    image = await stream.next(
        lambda e: e["type"] == "message.created" and e["data"]["message"]["kind"] == "incoming"
    )
    assert image["data"]["message"]["content_type"] == "image"
    assert image["data"]["message"]["text"] == "this one"
    [attachment] = image["data"]["message"]["attachments"]
    assert await world.gw.container.media.get(attachment["media_key"]) == PNG
    await expect(page.locator("#messages .msg.in img")).to_have_count(1)
