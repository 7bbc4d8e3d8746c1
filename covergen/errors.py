"""Errors a user can hit. Each message is one line: what went wrong and how to fix it.

Bugs stay plain exceptions (with tracebacks); only `CovergenError`s are caught by the CLI.
"""

__all__ = [
    "CovergenError", "AudioLoadError", "AudioContentError", "OutputError", "OutputIsInputError", "PresetError",
    "ModelError", "SeparationError", "TransferError", "CoverCheckError", "GenreError", "ClusterError",
    "SynthError",
]


class CovergenError(Exception):
    """Base class for failures caused by input, configuration or environment.

    `exit_code` is what the CLI exits with: 1 for bad input or environment, 2 for a usage error.
    """

    exit_code = 1


class AudioLoadError(CovergenError):
    """The file is missing, unreadable, corrupt, truncated or not audio."""


class AudioContentError(CovergenError):
    """The audio loads but cannot be covered: silence, too short, too long."""


class OutputError(CovergenError):
    """The output path cannot be written."""


class OutputIsInputError(OutputError):
    """An output path is one of the command's inputs (same path, a symlink or a hard link to it).

    A usage error (exit code 2): writing there would destroy the user's file.
    """

    exit_code = 2


class PresetError(CovergenError):
    """Unknown preset or invalid preset file."""


class ModelError(CovergenError):
    """A model is unknown, missing, fails its checksum or cannot be loaded."""


class SeparationError(CovergenError):
    """Source separation cannot run with the requested separator."""


class TransferError(CovergenError):
    """Timbre transfer refused the input (not monophonic, not pitched)."""


class CoverCheckError(CovergenError):
    """The cover check cannot compare these files (too short, no beats)."""


class GenreError(CovergenError):
    """Genre classification or taste profile cannot be computed."""


class ClusterError(CovergenError):
    """`batch --cluster` cannot run: dask missing, scheduler unreachable, workers unfit."""


class SynthError(CovergenError):
    """The band cannot be rendered: fluidsynth or a General MIDI SoundFont is not installed."""
