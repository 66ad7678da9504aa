"""Lexicons to expand templates over (``perturbations.expand``), each with where it came from.

They are small on purpose: a capability in ``specs/`` runs at most 40 cases. Every entry is written with the space
that precedes it in running text removed; a template writes the space."""

from __future__ import annotations

# Hand-picked by the maintainers (no external list): common given names, four from each of five regions of origin
# (English-speaking, Hispanic, West African, South Asian, East Asian), half of them female.
FIRST_NAMES = (
    "James", "Emily", "Oliver", "Grace",
    "Carlos", "Sofia", "Diego", "Lucia",
    "Kwame", "Amara", "Chidi", "Ngozi",
    "Arjun", "Priya", "Rahul", "Ananya",
    "Wei", "Mei", "Hiroshi", "Yuki",
)  # fmt: skip

# Capitals of UN member states, one per continent and a few more (a fact, not a sample).
CITIES = ("London", "Paris", "Nairobi", "Lima", "Tokyo", "Canberra", "Cairo", "Ottawa", "Delhi", "Madrid")

# Professions, starting with the document's own answers for Shakespeare (writer, poet, playwright, actor).
PROFESSIONS = ("writer", "poet", "playwright", "actor", "teacher", "doctor", "farmer", "lawyer", "painter", "singer")

# Playwrights of the European canon, surname only as the document writes "Shakespeare": hand-picked.
PLAYWRIGHTS = (
    "Marlowe",
    "Jonson",
    "Molière",
    "Racine",
    "Ibsen",
    "Chekhov",
    "Goethe",
    "Schiller",
    "Sophocles",
    "Euripides",
)

SOURCES = {
    "FIRST_NAMES": "hand-picked: four common given names from each of five regions of origin, half female",
    "CITIES": "capitals of UN member states",
    "PROFESSIONS": "the document's answers for Shakespeare, then common professions (hand-picked)",
    "PLAYWRIGHTS": "playwrights of the European canon, surnames (hand-picked)",
}
