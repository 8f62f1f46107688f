"""Classifier settings (env prefix CLASSIFIER_), built once in main() and passed down."""

from __future__ import annotations

import tempfile
from pathlib import Path

from pydantic_settings import SettingsConfigDict

from hotline.settings import HotlineSettings


class ClassifierSettings(HotlineSettings):
    model_config = SettingsConfigDict(env_prefix="CLASSIFIER_", extra="ignore", frozen=True)

    service_name: str = "classifier"
    host: str = "127.0.0.1"
    port: int = 8002
    group_id: str = "hotline-classifier"
    model_dir: Path | None = None
    """Trained model directory; default: the artefact packaged with the service."""
    gazetteer_file: Path | None = None
    """Gazetteer YAML (a ConfigMap in Kubernetes); default: the packaged Thừa Thiên Huế one."""
    batch_size: int = 500
    batch_within_s: float = 0.02
    """How long the agent waits to fill a batch: bounds the latency a batch adds."""
    publish_timeout_s: float = 10.0
    data_dir: Path = Path(tempfile.gettempdir()) / "hotline-faust"
    """Where faust keeps its app directory (tiny: the table store is in memory). Outside the
    working directory so a run never litters the checkout; /tmp is an emptyDir in Kubernetes."""

    @property
    def app_id(self) -> str:
        """Faust app id = consumer group; namespaced so test stacks never share offsets."""
        suffix = f"-{self.topic_namespace}" if self.topic_namespace else ""
        return f"{self.group_id}{suffix}"
