"""The chat assistant beside each prediction."""
from flask import Blueprint

bp = Blueprint("assistant", __name__)
