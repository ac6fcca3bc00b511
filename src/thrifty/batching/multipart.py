"""Read a ``multipart/form-data`` body (file uploads) with the standard library.

The openai SDK uploads files as multipart; Starlette's form parser needs the
``python-multipart`` package, which nothing else here uses, so the stdlib MIME parser
reads the few fields a file upload has.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP


@dataclass(frozen=True, slots=True)
class FormField:
    name: str
    value: bytes
    filename: str | None = None


def parse_form(content_type: str, body: bytes) -> dict[str, FormField]:
    """The fields of a multipart body by name; raises ValueError when it is not one."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in (
        content_type
    ):
        raise ValueError("expected a multipart/form-data body with a boundary")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message: Message = BytesParser(policy=HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise ValueError("the multipart body could not be parsed")
    fields: dict[str, FormField] = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        if not name:
            continue
        payload = part.get_payload(decode=True) or b""
        fields[str(name)] = FormField(str(name), payload, part.get_filename())
    return fields
