"""An opioid request's daily dose in morphine milligram equivalents (``mappings/opioids.yaml``).

    MME/day = strength (mg) x units a day x the ingredient's factor      tablets, capsules, solutions
    MME/day = mcg/h x the factor                                         a fentanyl patch
    methadone: the factor of the band the daily milligrams fall in

The strength is the first one written after the drug's name ("Norco 10/325mg" -> 10 mg of hydrocodone;
"Duragesic 25 mcg/hr"), or the one a product's name gives (Tylenol #3: 30 mg of codeine). Units a day come
from the sig ("1 tab every 6 hours" -> 4) or from the quantity over the days of supply. Unknown when any
part is not stated: an unknown dose never counts as over a limit.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, model_validator

from adapter.lexicon import LEXICON, Lexicon
from adapter.tables import TableFile, mappings

__all__ = ["OPIOIDS", "OpioidTable", "mme_per_day"]

_STRENGTH = re.compile(
    r"(?P<mg>\d+(?:\.\d+)?)\s*(?:/\s*\d+(?:\.\d+)?\s*)?(?P<unit>mg|mcg)\b|(?P<combo>\d+(?:\.\d+)?)\s*/\s*\d+(?:\.\d+)?",
    re.IGNORECASE,
)


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Band(_Table):
    up_to: float | None
    factor: float = Field(gt=0)


class OpioidTable(_Table):
    oral: dict[str, float]
    transdermal: dict[str, float]
    methadone: list[Band] = Field(min_length=1)
    wean_above: float = Field(gt=0)
    #: The share of the daily dose one taper step takes off.
    taper_step: float = Field(gt=0, lt=1)
    long_term_weeks: float = Field(gt=0)
    named_strengths: dict[str, float]

    @model_validator(mode="after")
    def _known_opioids(self, info: ValidationInfo) -> OpioidTable:
        lexicon: Lexicon = (info.context or {})["lexicon"]
        opioids = set(lexicon.drugs.get("opioid", {}))
        unknown = (set(self.oral) | set(self.transdermal)) - opioids
        if unknown:
            raise ValueError(f"not opioids in the lexicon: {sorted(unknown)}")
        if self.methadone[-1].up_to is not None:
            raise ValueError("the last methadone band has no upper limit (up_to: null)")
        return self


OPIOIDS = TableFile("opioids.yaml", OpioidTable, reads={"lexicon": LEXICON})


def _strength(text: str, names: list[str], table: OpioidTable) -> tuple[float, str] | None:
    """(amount, "mg" or "mcg") of the first strength after the drug's name."""
    lowered = text.lower()
    for name, mg in table.named_strengths.items():
        if name in lowered:
            return mg, "mg"
    starts = [lowered.find(n) for n in names if n in lowered]
    found = _STRENGTH.search(lowered, min(starts) if starts else 0)
    if found is None:
        return None
    if found["combo"]:
        return float(found["combo"]), "mg"
    return float(found["mg"]), found["unit"].lower()


def mme_per_day(text: str, ingredient: str, *, doses_per_day: float | None, quantity: int | None,
                supply_days: float | None, table: OpioidTable | None = None) -> float | None:  # fmt: skip
    """The daily dose in MME of an opioid request, or None when its strength or frequency is not stated."""
    table = table or mappings()[OPIOIDS]
    names = [d.name for d in mappings()[LEXICON].drug_names if d.ingredient == ingredient]
    strength = _strength(text, names, table)
    if strength is None:
        return None
    amount, unit = strength
    if ingredient in table.transdermal and unit == "mcg":
        return round(amount * table.transdermal[ingredient], 1)
    units = doses_per_day or (quantity / supply_days if quantity and supply_days else None)
    if units is None or unit != "mg":
        return None
    daily = amount * units
    if ingredient == "methadone":
        factor = next(b.factor for b in table.methadone if b.up_to is None or daily <= b.up_to)
    elif ingredient in table.oral:
        factor = table.oral[ingredient]
    else:
        return None  # no factor in the table (buprenorphine): not converted
    return round(daily * factor, 1)
