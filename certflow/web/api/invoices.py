"""Invoices: one as JSON, its PDF, its UBL e-invoice (staff, or the customer on it)."""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel

from certflow.services.billing import views
from certflow.services.documents import Document
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api/invoices", tags=["invoices"], route_class=JsonRoute)
InvoiceNumber = Annotated[str, Path(min_length=1, max_length=20)]


class InvoiceLine(BaseModel):
    position: int
    product: str
    description: str
    quantity: int
    unit_price: str
    vat_inclusive: bool
    unit_net: str
    vat_rate: str
    vat_category: str
    line_net: str


class Invoice(BaseModel):
    """Amounts are decimal strings in euros ("786.50"); dates ISO."""

    number: str
    kind: str
    status: str
    customer: str
    customer_name: str
    customer_address: dict[str, Any]
    issue_date: str | None
    supply_date: str | None
    due_date: str | None
    description: str
    reference: str
    currency: str
    net_total: str
    vat_total: str
    gross_total: str
    amount_received: str
    payment_reference: str
    paid_at: str | None
    credits_invoice_number: str | None
    lines: list[InvoiceLine]


def download(document: Document) -> Response:
    return Response(document.content, media_type=document.media_type,
                    headers={"Content-Disposition": f'inline; filename="{document.filename}"'})


@router.get("/{number}")
def get_invoice(actor: ActorDep, engine: EngineDep, number: InvoiceNumber) -> Invoice:
    with engine.session() as session:
        return Invoice.model_validate(views.invoice_view(session, actor, number))


@router.get("/{number}/pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def get_invoice_pdf(actor: ActorDep, engine: EngineDep, number: InvoiceNumber) -> Response:
    with engine.session() as session:
        return download(views.invoice_document(session, actor, number, "pdf"))


@router.get("/{number}/ubl", response_class=Response,
            responses={200: {"content": {"application/xml": {}}}})
def get_invoice_ubl(actor: ActorDep, engine: EngineDep, number: InvoiceNumber) -> Response:
    with engine.session() as session:
        return download(views.invoice_document(session, actor, number, "ubl"))
