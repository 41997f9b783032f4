"""The review UI: blueprint ``bp`` (reviewers' queue and review pages, engineers' pages) and its set-up."""

from review_ui.setup import init_app
from review_ui.views import bp

__all__ = ["bp", "init_app"]
