"""Entry point: `python -m hotline_classifier.main` (or `hotline-classifier`)."""

from __future__ import annotations

import faust

from hotline.clock import SystemClock
from hotline.logging import configure_logging, get_logger
from hotline.settings import redacted
from hotline_classifier.app import Classifier
from hotline_classifier.engine import TriageEngine
from hotline_classifier.settings import ClassifierSettings

log = get_logger(__name__)


def main() -> None:
    settings = ClassifierSettings()
    configure_logging("classifier", settings.log_level, settings.log_json)
    engine = TriageEngine.load(settings.model_dir, settings.gazetteer_file)
    log.info(
        "starting classifier",
        extra={"settings": redacted(settings), "model_version": engine.model_version},
    )
    classifier = Classifier(settings, engine, SystemClock())
    # faust's worker owns the event loop and handles SIGTERM/SIGINT gracefully; it keeps our
    # masked JSON logging instead of installing its own handlers.
    worker = faust.Worker(
        classifier.app,
        loglevel=settings.log_level.lower(),
        override_logging=False,
        quiet=True,
    )
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
