"""One exception type for everything the user can fix, so the CLI can print one clear line."""


class KwspotError(Exception):
    """A problem with the user's input or setup (bad file, unknown model, missing data)."""


class AudioError(KwspotError):
    """An audio file that cannot be read as sound: missing, empty, truncated or not audio."""


class TrainingInterrupted(KwspotError):
    """Ctrl-C or SIGTERM stopped a training run at a step boundary, its state saved. Callers
    that run several jobs stop there too, instead of going on to the next job."""
