"""Certificates: the list a holder (or staff) may see, and each one's PDF."""

from typing import Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from certflow.services import certificates
from certflow.web.api.invoices import download
from certflow.web.deps import ActorDep, EngineDep
from certflow.web.json_bodies import JsonRoute

router = APIRouter(prefix="/api/certificates", tags=["certificates"], route_class=JsonRoute)


class Certificate(BaseModel):
    id: str
    holder: str
    register_number: str
    level: str
    specialisation: str | None
    status: str
    valid_from: str
    valid_until: str
    languages: list[str]


@router.get("")
def get_certificates(actor: ActorDep, engine: EngineDep,
                     holder: str | None = Query(default=None, max_length=100)
                     ) -> list[Certificate]:
    with engine.session() as session:
        return [Certificate.model_validate(c)
                for c in certificates.certificates_of(session, actor, holder)]


@router.get("/{certificate_id}/pdf", response_class=Response,
            responses={200: {"content": {"application/pdf": {}}}})
def get_certificate_pdf(certificate_id: str, actor: ActorDep, engine: EngineDep,
                        language: Literal["nl", "en"] | None = None) -> Response:
    with engine.session() as session:
        return download(certificates.certificate_document(session, actor, certificate_id,
                                                          language))
