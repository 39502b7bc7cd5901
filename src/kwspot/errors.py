"""One exception type for everything the user can fix, so the CLI can print one clear line."""


class KwspotError(Exception):
    """A problem with the user's input or setup (bad file, unknown model, missing data)."""


class AudioError(KwspotError):
    """An audio file that cannot be read as sound: missing, empty, truncated or not audio."""
