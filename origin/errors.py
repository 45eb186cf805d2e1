"""Errors of the origin. Each one that can reach an HTTP client carries the status to answer with.

CadenzaError                  (cadenza.errors)
└── OriginError               500  anything the origin reports that it cannot serve
    └── StorageError          503  the object store failed (disk, S3 endpoint, bucket)
        ├── ObjectNotFound    404  no object under that key
        ├── ObjectTooLarge    413  a put went over its byte limit; nothing was stored
        └── InvalidKey        400  a key that is not a safe relative path (see validate_key)
"""

from cadenza.errors import CadenzaError


class OriginError(CadenzaError):
    """A failure inside the origin; ``status`` is the HTTP status a handler answers with."""

    status = 500


class StorageError(OriginError):
    """The object store could not do what was asked; retrying later may work."""

    status = 503


class ObjectNotFound(StorageError):
    status = 404


class ObjectTooLarge(StorageError):
    status = 413


class InvalidKey(StorageError):
    status = 400
