"""The class catalogue: which classes doctors label with, in the model's output order.

config.yaml seeds it; `add` appends a class (the next fine-tune grows the model's head), `rename`
maps a class explicitly (stored labels keep their text; training and the gate read the new name),
and a class that labels use is never removed."""

from __future__ import annotations

import re

from flask import g
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError

from webapp import audit
from webapp.errors import Problem
from webapp.extensions import db
from webapp.models import ClassAlias, GoldItem, Image, Label, LabelClass, User

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")
PROTECTED = 2  # a classifier needs two classes at least


class ClassError(Problem):
    """A class change that cannot be done as asked."""


def _seed(configured: list[str]) -> None:
    """The first use on a new database writes the configured classes; later config edits do not
    reorder a running deployment's classes (the models' outputs follow this order). A savepoint
    keeps the caller's unfinished work out of it: that is committed only when the caller commits."""
    if db.session.execute(db.select(func.count()).select_from(LabelClass)).scalar_one():
        return
    clean = not (db.session.new or db.session.dirty or db.session.deleted)
    try:
        with db.session.begin_nested():
            for position, name in enumerate(configured):
                db.session.add(LabelClass(name=name, display=_display(name), position=position))
    except IntegrityError:  # another process seeded them a moment ago
        return
    if clean:
        db.session.commit()


def current(configured: list[str]) -> list[str]:
    """The classes in output order (cached for the request or job; changes clear the cache)."""
    if "medal_classes" not in g:
        _seed(configured)
        g.medal_classes = list(db.session.execute(db.select(LabelClass.name).order_by(LabelClass.position)).scalars())
    return list(g.medal_classes)


def displays(configured: list[str]) -> dict[str, str]:
    current(configured)
    return dict(db.session.execute(db.select(LabelClass.name, LabelClass.display)).all())


def display(name: str) -> str:
    """What a person reads for a class: its display name ("Bacterial pneumonia"), on pages, reports,
    FHIR display text, chat and charts. The identifier stays in the API and the data. A renamed class
    reads as its new name's display; a name the catalogue never had reads as its own words."""
    if "medal_displays" not in g:
        from webapp.services import services

        g.medal_displays = displays(services().settings.class_names)
    found: dict[str, str] = g.medal_displays
    return found.get(name) or found.get(canonical(name)) or _display(name)


def aliases() -> dict[str, str]:
    """old name -> current name, following chains of renames."""
    found = dict(db.session.execute(db.select(ClassAlias.old_name, ClassAlias.new_name)).all())
    resolved = {}
    for old in found:
        name, seen = old, set()
        while name in found and name not in seen:
            seen.add(name)
            name = found[name]
        resolved[old] = name
    return resolved


def canonical(label: str, renamed: dict[str, str] | None = None) -> str:
    renamed = aliases() if renamed is None else renamed
    return renamed.get(label, label)


def resolve(label: str, known: list[str]) -> str | None:
    """The class a label given by name means now: a current class as it is, a renamed class's old
    name as the class it became (as stored labels are read), None when it names neither."""
    if label in known:
        return label
    renamed = canonical(label)
    return renamed if renamed in known else None


def _display(name: str) -> str:
    """A configured identifier's default display name: bacterial_pneumonia -> Bacterial pneumonia."""
    return name.replace("_", " ").capitalize()


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME.match(name):
        raise ClassError(
            f"{name!r} is not a class name: use lower-case letters, digits, '_' or '-', "
            "starting with a letter, at most 60 characters (e.g. covid_19)."
        )
    return name


def _audit(user: User | None, reason: str, details: dict) -> None:
    audit.record(audit.Kind.CLASS, user, reason=reason, details=details)


def _forget() -> None:
    g.pop("medal_classes", None)
    g.pop("medal_displays", None)


def add(name: str, configured: list[str], user: User | None = None, display: str | None = None) -> LabelClass:
    name = _check_name(name)
    display = (display or "").strip() or _display(name)
    if len(display) > 80:
        raise ClassError("The display name must be at most 80 characters.")
    known = current(configured)
    if name in known:
        raise ClassError(f"{name} is already a class.", 409)
    if name in aliases():
        raise ClassError(f"{name} was renamed to {aliases()[name]}; pick another name.", 409)
    position = (db.session.execute(db.select(func.max(LabelClass.position))).scalar_one() or 0) + 1
    row = LabelClass(name=name, display=display, position=position, created_by_id=user.id if user else None)
    db.session.add(row)
    _audit(user, f"class {name} added", {"action": "add", "class": name, "display": display})
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise ClassError(f"{name} is already a class.", 409) from None
    _forget()
    return row


def rename(old: str, new: str, configured: list[str], user: User | None = None) -> LabelClass:
    new = _check_name(new)
    row = db.session.get(LabelClass, old) if old in current(configured) else None
    if row is None:
        raise ClassError(f"No class {old!r}; classes: {', '.join(current(configured))}.", 404)
    if new in current(configured):
        raise ClassError(f"{new} is already a class.", 409)
    # the primary key changes: a new row in the same position, the old one gone, and the alias
    replacement = LabelClass(
        name=new,
        display=_display(new) if row.display == _display(old) else row.display,
        position=row.position,
        created_by_id=row.created_by_id,
        created_at=row.created_at,
    )
    db.session.delete(row)
    db.session.flush()
    db.session.add(replacement)
    db.session.execute(db.update(ClassAlias).where(ClassAlias.new_name == old).values(new_name=new))
    db.session.merge(ClassAlias(old_name=old, new_name=new))
    _audit(user, f"class {old} renamed to {new}", {"action": "rename", "from": old, "to": new})
    db.session.commit()
    _forget()
    return replacement


def usage(name: str) -> int:
    """Labels, gold labels and imported labels that name the class (or an old name of it)."""
    names = [name] + [old for old, new in aliases().items() if new == name]
    return sum(
        db.session.execute(query).scalar_one()
        for query in (
            db.select(func.count(Label.id)).where(Label.label.in_(names)),
            db.select(func.count(GoldItem.image_id)).where(GoldItem.final_label.in_(names)),
            db.select(func.count(Image.id)).where(Image.reference_label.in_(names)),
        )
    )


def remove(name: str, configured: list[str], user: User | None = None) -> None:
    known = current(configured)
    if name not in known:
        raise ClassError(f"No class {name!r}; classes: {', '.join(known)}.", 404)
    used = usage(name)
    if used:
        raise ClassError(
            f"{name} is used by {used} label(s); it cannot be removed. Rename it instead "
            f"(`medal classes rename {name} NEW`).",
            409,
        )
    if len(known) <= PROTECTED:
        raise ClassError("A classifier needs at least two classes.", 409)
    db.session.delete(db.session.get(LabelClass, name))
    _audit(user, f"class {name} removed", {"action": "remove", "class": name})
    db.session.commit()
    _forget()
