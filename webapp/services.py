"""The per-process objects every part of the app shares: settings, image store, registry, server."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from registry.client import Registry
from webapp.config import Settings
from webapp.inference.serving import ModelServer
from webapp.upload.imagestore import ImageStore


@dataclass
class Services:
    settings: Settings
    store: ImageStore
    registry: Registry
    server: ModelServer

    @property
    def class_names(self) -> list[str]:
        """The classes doctors label with now: config.yaml's, plus those added at run time."""
        from webapp.classes import catalog

        return catalog.current(self.settings.class_names)


def init_services(app: Flask, settings: Settings) -> Services:
    registry = Registry(
        app.config["MLFLOW_TRACKING_URI"],
        settings.model.name,
        app.config["MLFLOW_ARTIFACT_ROOT"],
        app.config["MODEL_CACHE"],
    )
    found = Services(
        settings=settings,
        store=ImageStore(app.config["IMAGE_STORE"]),
        registry=registry,
        server=ModelServer(registry, settings.serving.poll_seconds, settings.inference.engine),
    )
    app.extensions["medal"] = found
    return found


def services() -> Services:
    return current_app.extensions["medal"]
