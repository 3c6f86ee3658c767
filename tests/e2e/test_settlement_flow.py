"""The issue's acceptance scenario in a real browser: a project admin creates a cross-project
settlement, finds a ticket through the autocomplete and links it, uploads a PDF and previews it,
sends the settlement (the ticket freezes: lock banner, edit refused), moves the frozen ticket on
the Kanban board, reverts to draft (the ticket unfreezes), sends again and shares it; the customer
confirms acceptance in a browser context of their own. Screenshots of the main pages are saved
for the README along the way."""

import io
import re
from datetime import date, timedelta

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from settlements.models import Settlement, SettlementAcceptance
from tests.e2e.conftest import expect, login, make_user, screenshot
from tests.factories import ProjectFactory, grant
from tickets import services as ticket_services
from tickets.choices import TicketStatus
from tickets.models import Ticket

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PERIOD_START = date.today().replace(day=1) - timedelta(days=31)
PERIOD_END = date.today()
SETTLEMENT_NAME = "Autumn support, platform and webshop"


def protocol_pdf() -> bytes:
    """A real one-page PDF, so the preview has something to show."""
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    pdf.setFont("Helvetica-Bold", 20)
    pdf.drawString(72, 760, "Acceptance protocol")
    pdf.setFont("Helvetica", 12)
    pdf.drawString(72, 730, "Monolynx platform and Acme webshop: work accepted as delivered.")
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


@pytest.fixture
def office(transactional_db):
    """Two projects with budgets and an Owner of both who logs the work; a Member of both."""
    mnx = ProjectFactory(key="MNX", name="Monolynx platform", budget_hours=40, budget_amount=60000,
                         budget_currency="NOK")
    acme = ProjectFactory(key="ACME", name="Acme webshop", budget_hours=10)
    owner, member = make_user("olivia", first_name="Olivia"), make_user("maria", first_name="Maria")
    for project in (mnx, acme):
        grant(owner, project, "owner")
        grant(member, project, "member")
    titles = {mnx: ["Login fails with SSO", "Export invoices as CSV", "Upgrade Django"],
              acme: ["Checkout page", "Payment provider"]}
    for project, names in titles.items():
        for index, title in enumerate(names):
            ticket = ticket_services.ticket_create(actor=owner, project=project, title=title, assignee=member,
                                                   status=TicketStatus.TODO)
            for days in (3, 10):
                ticket_services.time_entry_create(actor=member, ticket=ticket, minutes=60 * (index + 2),
                                                  work_date=PERIOD_END - timedelta(days=days))
    return {"mnx": mnx, "acme": acme, "owner": owner, "member": member}


def _accept_dialogs(page) -> list[str]:
    """Accept every confirmation and keep its question, to check what the user was asked."""
    questions: list[str] = []

    def accept(dialog):
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    return questions


def _create_settlement(page, office) -> Settlement:
    page.goto("/dashboard/settlements/")
    page.locator("#new-settlement").click()
    page.get_by_label("Name").fill(SETTLEMENT_NAME)
    page.get_by_label("Period start").fill(PERIOD_START.isoformat())
    page.get_by_label("Period end").fill(PERIOD_END.isoformat())
    page.get_by_label("Projects").select_option([str(office["mnx"].pk), str(office["acme"].pk)])
    page.get_by_label("Notes").fill("Monthly support.\n\n- **SSO** incident\n- Checkout fixes")
    page.get_by_role("button", name="Create settlement").click()
    expect(page).to_have_url(re.compile(r"/dashboard/settlements/\d+/$"))
    settlement = Settlement.objects.get(name=SETTLEMENT_NAME)
    assert sorted(settlement.projects.values_list("key", flat=True)) == ["ACME", "MNX"]
    return settlement


def _link_through_autocomplete(page, query: str, key: str) -> None:
    search = page.locator("#ticket-search")
    search.fill("")
    search.press_sequentially(query, delay=30)
    result = page.locator(f'#ticket-search-results li[data-ticket="{key}"]')
    expect(result).to_be_visible()
    result.get_by_role("button", name=f"Link {key}").click()
    expect(page.locator(f'#linked-tickets tr[data-ticket="{key}"]')).to_be_visible()


def _upload_and_preview(page, tmp_path) -> None:
    pdf = tmp_path / "acceptance-protocol.pdf"
    pdf.write_bytes(protocol_pdf())
    page.locator("#upload-file").set_input_files(pdf)
    page.locator("#upload-category").select_option("acceptance_protocol")
    page.get_by_role("button", name="Upload").click()
    row = page.locator('#attachments tr[data-attachment="acceptance-protocol.pdf"]')
    expect(row).to_be_visible()
    page.get_by_role("button", name="Preview acceptance-protocol.pdf").click()
    frame = page.locator("iframe#attachment-preview-frame")
    expect(frame).to_be_visible()
    preview = page.request.get(frame.get_attribute("src"))
    assert preview.status == 200 and preview.headers["content-type"] == "application/pdf"
    assert preview.headers["content-disposition"].startswith("inline")
    assert preview.body().startswith(b"%PDF")
    # Chromium's PDF viewer draws into the frame (dark around the page) under the policies the
    # preview carries; waiting for it also keeps the screenshot from catching a blank frame.
    assert _eventually(lambda: _corner_is_dark(frame.screenshot()), seconds=10), "the PDF viewer drew nothing"


def _corner_is_dark(png: bytes) -> bool:
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("L")
    return image.getpixel((5, image.height - 5)) < 128


def _eventually(check, *, seconds: float) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.25)
    return False


def _transition(page, button: str, status: str) -> None:
    page.get_by_role("button", name=button, exact=True).click()
    expect(page.locator("#settlement-status")).to_contain_text(status)


def _check_frozen_ticket(page, settlement: Settlement) -> None:
    page.goto("/dashboard/tickets/MNX-1/")
    banner = page.locator(".lock-banner")
    expect(banner).to_contain_text(settlement.display_number)
    expect(banner.get_by_role("link", name=settlement.display_number)).to_have_attribute(
        "href", f"/dashboard/settlements/{settlement.pk}/")
    expect(page.locator("#add-time-form")).to_have_count(0)
    screenshot(page, "ticket-frozen")
    refusal = page.goto("/dashboard/tickets/MNX-1/edit/")
    assert refusal.status == 403 and refusal.headers["x-error-code"] == "ticket_frozen"
    expect(page.get_by_role("alert")).to_contain_text(f"frozen: it belongs to settlement {settlement.display_number}")


def _drag_on_the_board(page) -> None:
    page.goto("/dashboard/projects/MNX/board/")
    card = page.locator('article.ticket-card[data-ticket="MNX-1"]')
    done = page.locator('section.column[data-status="done"]')
    card.drag_to(done)
    expect(done.locator('article.ticket-card[data-ticket="MNX-1"]')).to_be_visible()
    # The card moves at once; the save is still on its way while the card is aria-busy, and a
    # reload before it answers would cancel it.
    expect(card).not_to_have_attribute("aria-busy", "true")
    expect(page.locator("#messages .alert-error")).to_have_count(0)
    page.reload()  # saved, not just moved on the screen
    expect(page.locator('section.column[data-status="done"] article[data-ticket="MNX-1"]')).to_be_visible()
    assert Ticket.objects.get(project__key="MNX", number=1).status == TicketStatus.DONE
    screenshot(page, "kanban")


def _share_and_accept(page, browser, live_server, settlement: Settlement) -> None:
    page.get_by_role("button", name="Create share link").click()
    url = page.locator("#share-link-url").input_value()
    assert url.startswith(f"{live_server.url}/s/")
    customer = browser.new_context(base_url=live_server.url)  # no cookies: not logged in
    try:
        customer_page = customer.new_page()
        response = customer_page.goto(url)
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "noindex" in response.headers["x-robots-tag"]
        expect(customer_page.get_by_role("heading", name=re.compile(settlement.display_number))).to_be_visible()
        expect(customer_page.locator("#tickets")).to_contain_text("MNX-1")
        expect(customer_page.locator('a[href^="/dashboard/"], a[href^="/admin/"]')).to_have_count(0)
        customer_page.get_by_label("Your name").fill("Kari Nordmann")
        customer_page.get_by_role("button", name="Confirm acceptance").click()
        expect(customer_page.locator("#acceptance-recorded")).to_contain_text("Kari Nordmann")
        screenshot(customer_page, "customer-page")
    finally:
        customer.close()
    assert SettlementAcceptance.objects.get(settlement=settlement).accepted_by_name == "Kari Nordmann"


def test_settlement_from_creation_to_customer_acceptance(page, browser, live_server, office, tmp_path):
    questions = _accept_dialogs(page)
    login(page, live_server, "olivia")
    settlement = _create_settlement(page, office)

    _link_through_autocomplete(page, "MNX-1", "MNX-1")
    _link_through_autocomplete(page, "checkout", "ACME-1")  # by title, in the second project
    _upload_and_preview(page, tmp_path)
    screenshot(page, "settlement-detail")

    _transition(page, "Send", "Sent")
    _check_frozen_ticket(page, settlement)
    _drag_on_the_board(page)

    page.goto(f"/dashboard/settlements/{settlement.pk}/")
    _transition(page, "Revert to draft", "Draft")
    assert any("unfreeze" in question for question in questions), questions
    page.goto("/dashboard/tickets/MNX-1/")
    expect(page.locator(".lock-banner")).to_have_count(0)
    assert page.goto("/dashboard/tickets/MNX-1/edit/").status == 200

    page.goto(f"/dashboard/settlements/{settlement.pk}/")
    _transition(page, "Send", "Sent")
    _share_and_accept(page, browser, live_server, settlement)
    page.goto("/dashboard/settlements/")
    expect(page.locator(f'#settlement-table tr[data-settlement="{settlement.display_number}"]')).to_be_visible()
    screenshot(page, "settlements")


def test_main_pages_for_the_readme(page, live_server, office):
    login(page, live_server, "olivia")
    for path, name in [("/dashboard/", "my-work"), ("/dashboard/projects/", "projects"),
                       ("/dashboard/projects/MNX/", "project-budget"), ("/dashboard/tickets/", "tickets")]:
        page.goto(path)
        expect(page.locator("main h1")).to_be_visible()
        screenshot(page, name)


def test_a_member_sees_no_settlement_ui_anywhere(page, browser, live_server, office):
    """Maria (Member: tickets only) on every page she can open, with MNX-1 frozen by a sent
    settlement: no menu entry, no section, no banner, no settlement number, no link."""
    owner = office["owner"]
    from settlements import services as settlement_services

    settlement = settlement_services.settlement_create(actor=owner, name="Hidden from members",
                                                       period_start=PERIOD_START, period_end=PERIOD_END,
                                                       projects=[office["mnx"]])
    ticket = Ticket.objects.get(project__key="MNX", number=1)
    settlement_services.settlement_link_ticket(actor=owner, settlement=settlement, ticket=ticket)
    settlement_services.settlement_transition(actor=owner, settlement=settlement, status="sent")

    login(page, live_server, "maria")
    for path in ["/dashboard/", "/dashboard/projects/", "/dashboard/projects/MNX/", "/dashboard/projects/MNX/board/",
                 "/dashboard/tickets/", "/dashboard/tickets/MNX-1/", "/dashboard/profile/"]:
        page.goto(path)
        main_text = page.locator("body").inner_text().replace("Settlements & Billing", "")
        assert "settlement" not in main_text.lower(), path
        assert settlement.display_number not in page.content(), path
        expect(page.locator('a[href*="/settlements/"], a[href*="/rozliczenia/"]')).to_have_count(0)
    assert page.goto(f"/dashboard/settlements/{settlement.pk}/").status == 404
