"""The one shape of a user's bad request: a message for them and the HTTP status to answer with."""


class Problem(ValueError):
    """Raised by services for input the user can fix; webapp.errors turns it into a page or JSON."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status
