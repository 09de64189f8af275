"""The words people receive: what changed, which of their points it answered, and thanks.

Plain language throughout: system jargon becomes common service names (the glossary), and
category codes become the names people recognise.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.feedback.domain.categories import CategoryNames
from services.feedback.domain.chain import ActionNode
from services.feedback.domain.glossary import Glossary

SUBJECT = "What changed because of what you told us"

_HOW_FAR = {
    "planned": "This change is planned.",
    "in_progress": "This change is now under way.",
    "done": "This change has now been made.",
}


@dataclass(frozen=True)
class Wording:
    glossary: Glossary
    categories: CategoryNames

    def what_changed(self, action: ActionNode, who: str = "you") -> list[str]:
        def name(text: str) -> str:
            return self.glossary.plain(text, sentence=False)

        return [
            (f"Because of what {who} and others said, the {name(action.service)} in "
             f"{name(action.place)} is making a change:"),
            "",
            f"    {_sentence(self.glossary.plain(action.description))}",
            "",
            _HOW_FAR[action.status],
            (f"It is part of the {name(action.framework)} "
             f"({_lower_first(name(action.framework_area))})."),
        ]

    def points(self, points: tuple[str, ...]) -> list[str]:
        if not points:
            return []
        return ["You told us about:", *(f"  - {self.categories.name(p)}"
                                        for p in self.categories.ordered(points)), ""]

    def email_body(self, action: ActionNode, points: tuple[str, ...], name: str | None) -> str:
        lines = [
            f"Hello {name}," if name else "Hello,",
            "",
            "Thank you for talking with us about mental health support.",
            "",
            *self.points(points),
            *self.what_changed(action),
            "",
            "Thank you. What you told us helped make this happen.",
            "",
            ("You do not need to reply. If you would rather not hear from us again, tell the "
             "community listener or peer worker you spoke with."),
        ]
        return "\n".join(lines) + "\n"

    def peer_brief(self, action: ActionNode, points: tuple[str, ...]) -> str:
        """What a peer worker tells the person in person; nothing that identifies them."""
        said = [self.categories.name(p) for p in self.categories.ordered(points)]
        lines = [
            ("Please tell this person, in person and kindly, what changed because of what "
             "they told us."),
            "",
            *(["They talked about:", *(f"  - {s}" for s in said), ""] if said else []),
            *self.what_changed(action, who="they"),
            "",
            "Please thank them: what they said helped make this happen.",
        ]
        return "\n".join(lines)


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def _lower_first(text: str) -> str:
    # "Access and engagement" reads better mid-sentence in lower case; acronyms stay as they are.
    head = text.split(" ", 1)[0]
    return text if head.isupper() and len(head) > 1 else text[:1].lower() + text[1:]
