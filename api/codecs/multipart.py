"""multipart/form-data object uploads (NMS §6.1.5, Appendix D.1/D.2): a ``root-fields`` part
(JSON or XML ``object``) and an optional ``attachments`` part (multipart/mixed)."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, MIMEPart
from email.parser import BytesParser

#: quote characters around part names (the spec's own examples use typographic quotes)
_QUOTES = "\"'\u201c\u201d"


class MultipartError(ValueError):
    """The upload is not the multipart/form-data the NMS API describes."""


@dataclass(frozen=True)
class Upload:
    root_type: str
    root_body: bytes
    texts: list[str]
    other_types: list[str]


def parse_upload(content_type: str, data: bytes) -> Upload:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=policy.HTTP).parsebytes(head + data)
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise MultipartError("a multipart/form-data body with a boundary")
    root: MIMEPart | None = None
    texts: list[str] = []
    others: list[str] = []
    for part in message.iter_parts():
        name = (part.get_param("name", header="content-disposition") or "")
        name = str(name).strip(_QUOTES)
        if name == "root-fields":
            root = part
        elif name == "attachments":
            for attachment in part.iter_parts() if part.is_multipart() else [part]:
                if attachment.get_content_type() == "text/plain":
                    texts.append(str(attachment.get_content()).strip())
                else:
                    others.append(attachment.get_content_type())
    if root is None:
        raise MultipartError("a part named root-fields")
    payload = root.get_payload(decode=True)
    if not isinstance(payload, bytes):
        raise MultipartError("a root-fields part with a body")
    return Upload(root.get_content_type(), payload, texts, others)
