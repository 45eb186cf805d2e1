"""Errors of the encoding pipeline.

cadenza.errors.InputError
└── MasterError             one master cannot be encoded (unreadable, truncated, unsupported)
    └── EncodeError         ffmpeg failed or produced output that does not check out
cadenza.errors.ConfigError
└── LadderError             the ladder file is unusable
"""

from cadenza.errors import ConfigError, InputError


class MasterError(InputError):
    """A master file is unusable; the message says why and what to do."""


class EncodeError(MasterError):
    """ffmpeg failed on a master that probed fine."""


class LadderError(ConfigError):
    """The ladder configuration is invalid."""


class UploadError(InputError):
    """A track encoded fine but could not be uploaded to or published on the origin."""
