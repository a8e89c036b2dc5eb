"""The per-process objects every part of the app shares: settings, image store, registry, server."""
from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app

from registry.client import Registry
from webapp.imagestore import ImageStore
from webapp.serving import ModelServer


@dataclass
class Services:
    settings: dict
    store: ImageStore
    registry: Registry
    server: ModelServer

    @property
    def class_names(self) -> list[str]:
        return list(self.settings["classes"])


def init_services(app: Flask) -> Services:
    settings = app.config["MEDAL"]
    registry = Registry(app.config["MLFLOW_TRACKING_URI"], settings["model"]["name"],
                        app.config["MLFLOW_ARTIFACT_ROOT"], app.config["MODEL_CACHE"])
    found = Services(settings=settings, store=ImageStore(app.config["IMAGE_STORE"]), registry=registry,
                     server=ModelServer(registry, float(settings["serving"]["poll_seconds"])))
    app.extensions["medal"] = found
    return found


def services() -> Services:
    return current_app.extensions["medal"]
