"""Errors of the origin. Each one that can reach an HTTP client carries the status to answer with
(``cadenza.web.json_errors`` renders them).

CadenzaError                  (cadenza.errors)
└── OriginError               500  anything the origin reports that it cannot serve
    ├── Unauthorized          401  no API key, or one the catalog does not know
    ├── Forbidden             403  the key's label does not own the track; admin API disabled
    ├── NotFound              404  no such label, track or version in the catalog
    ├── BadInput              400  a request body or query the origin cannot accept
    ├── BodyTooLarge          413  a JSON body over its byte limit
    ├── Conflict              409  contradicts the catalog (``missing`` names objects not uploaded)
    │   └── LabelExists       409  a label of that name exists already
    ├── CatalogUnavailable    503  the catalog's database is unreachable or busy past its wait
    └── StorageError          503  the object store failed (disk, S3 endpoint, bucket)
        ├── ObjectNotFound    404  no object under that key
        ├── ObjectTooLarge    413  a put went over its byte limit; nothing was stored
        ├── ContentMismatch   409  a put's bytes differ from the size and SHA-256 it promised
        └── InvalidKey        400  a key that is not a safe relative path (see validate_key)
"""

from collections.abc import Iterable
from typing import Any

from cadenza.errors import CadenzaError


class OriginError(CadenzaError):
    """A failure inside the origin; ``status`` is the HTTP status a handler answers with."""

    status = 500


class Unauthorized(OriginError):
    status = 401


class Forbidden(OriginError):
    status = 403


class NotFound(OriginError):
    status = 404


class BadInput(OriginError):
    status = 400


class BodyTooLarge(OriginError):
    status = 413


class Conflict(OriginError):
    """The request contradicts what the catalog holds; ``missing`` names objects not uploaded."""

    status = 409

    def __init__(self, message: str, missing: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.missing = list(missing)

    def details(self) -> dict[str, Any]:
        return {"missing": self.missing}


class LabelExists(Conflict):
    pass


class CatalogUnavailable(OriginError):
    """The catalog's database server failed or kept a writer waiting too long; retry later."""

    status = 503


class StorageError(OriginError):
    """The object store could not do what was asked; retrying later may work."""

    status = 503


class ObjectNotFound(StorageError):
    status = 404


class ObjectTooLarge(StorageError):
    status = 413


class ContentMismatch(StorageError):
    """The bytes of a put are not the ones expected; nothing was stored, the key is untouched."""

    status = 409


class InvalidKey(StorageError):
    status = 400
