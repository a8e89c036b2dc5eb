"""The approvals page's forms."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, IntegerField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional


class DecisionForm(FlaskForm):
    decision = HiddenField(validators=[AnyOf(["approve", "reject"])])
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=2000)])
    override = BooleanField("Override the failed gate")


class RollbackForm(FlaskForm):
    reason = TextAreaField("Reason", validators=[DataRequired(), Length(max=2000)])
    expected_champion = IntegerField(validators=[Optional()])  # the champion the engineer saw
