"""Evidence: what the clinical text documents, each fact with a status and the words it rests on.

A fact is ``present`` (stated: "positive straight leg raise on the left"), ``absent`` (stated as absent:
"neurologically intact", "therapy has not helped") or ``unknown`` (not mentioned, or only mentioned in a
plan, a condition, about someone else or about another injury). Silence is never absence.

One NLP pass per text: spaCy's rule-based sentencizer, the lexicon's phrases (``mappings/lexicon.yaml``) as
targets, and medspacy's ConText with its default modifiers plus the lexicon's: negation, suspicion, history,
plans and requests, conditions and goals, the record's silence and utilization review quoted (unknown, never
absent), drugs stopped, other experiencers, pseudo-cues that mask a cue word ("not only"), and clause
boundaries that end a modifier's scope. What a sentence says of another injury, up to a ";" or a "but", counts
for none of this one's facts.

ConText runs on each sentence that holds a lexicon phrase, never on the whole text at once, so the pass is
linear in the text's length (a template of a hundred "No fever." lines costs a hundred small sentences). Each
mention also carries the treatments its clause, sentence or paragraph names, so improvement and relief are
credited to the treatment they follow. The pipeline is built once per process.
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import itertools
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from adapter.letters import _text
from adapter.letters._text import NUMBER, to_int
from adapter.lexicon import LEXICON, Lexicon
from adapter.model import TreatmentFact
from adapter.scan import Match, PatternSet, Scanner, searchable
from adapter.tables import mappings

if TYPE_CHECKING:
    from spacy.tokens import Doc

Status = Literal["present", "absent", "unknown"]
#: ConText categories the adapter reads (medspacy's defaults use the first four names too).
NEGATED, HISTORICAL, HYPOTHETICAL, FAMILY, POSSIBLE, OTHER_INJURY = (
    "NEGATED_EXISTENCE", "HISTORICAL", "HYPOTHETICAL", "FAMILY", "POSSIBLE_EXISTENCE", "OTHER_INJURY"
)  # fmt: skip
#: The lexicon's own categories: conditions and goals, the record's silence, drugs stopped; and a plan cue
#: after its phrase ("an MRI was requested"), which makes care planned but leaves a finding stated.
CONDITIONAL, RECORD, DISCONTINUED, REQUESTED = "CONDITIONAL", "RECORD", "DISCONTINUED", "REQUESTED"
#: In a reviewer's words: the record's reading (``RECORD``) where it denies, a statement where it does not.
REVIEWED = "REVIEWED"
#: Read from something else, not stated: improvement read from a fall in pain scores, which what the text says of
#: function itself outweighs ("pain 8 -> 6 with it, function no better").
INFERRED = "INFERRED"
#: Said not to be said ("it cannot be said that the trial failed"): an absence phrase withdrawn (``NEGATED``).
UNSAID = "UNSAID"
#: A phrase of the lexicon's ``stated``: it states its fact denied or not ("cannot lift at work" is work).
STATED = "STATED"
#: How many words an "it cannot be said that" reaches.
_UNSAID_REACH = 8
#: The lexicon's words for the present ("now", "currently"): they end the past's scope and a stop's ("previously
#: on tramadol, now on Norco").
CURRENT = "CURRENT"
#: A word that ties a phrase to something else (the lexicon's ``attach``: "with", "from", "after"): it ends every
#: cue's reach but another person's ("no relief from the ESI" leaves the ESI had; "her husband got relief from an
#: epidural": the epidural is his too).
TIED = "TIED"
#: A drug refilled or continued right beside its name, in its own part of the sentence (up to a ";"): taken,
#: whatever plan words the part holds ("Plan: refill Norco"), but not a drug started beside it ("Plan: start
#: meloxicam; continue tramadol", "a 10-day course of cyclobenzaprine, continue HEP").
CONTINUED = "CONTINUED"
#: How near (characters) before the drug a refill or "continue" stands ("continue gabapentin", "refill of Norco").
_NEAR = 24
#: How far before a fact's words a plan's word that keeps it may stand (characters).
_KEEPS_REACH = 30
#: How often a dose is taken, as a sig abbreviates it beside a drug ("bid", "qhs", "prn"), matched ignoring case.
_TIMES = r"(?:daily|nightly|bid|tid|qid|qd|qhs|hs|prn|q\d+h)"
#: The patient's taking a drug, told right after it: "in addition to the Naprosyn she takes daily", "the Lyrica he
#: currently takes", "the tapentadol she has taken since January".
_TAKEN_AFTER = re.compile(
    r"\s+(?:that\s+|which\s+)?(?:she|he|they|pt|the\s+patient)\s+"
    r"(?:(?:still\s+|currently\s+|now\s+)?(?:takes|is\s+taking|uses|has\s+taken\s+since|has\s+been\s+taking)"
    r"|(?:is\s+)?(?:still\s+|currently\s+|now\s+)?taking)\b",
    re.I,
)
#: A refill or "continue" right after the drug and its dose ("Norco 10/325 refilled", "gabapentin - continue"), or
#: the patient's taking it.
_CONTINUED_AFTER = re.compile(
    rf"[\s:,-]*(?:\d[\d./]*\s*(?:mg|mcg|%)?\s*)*(?:{_TIMES}\s*)*[\s:,-]*(?:refill(?:ed)?|continued?|to continue)\b"
    rf"|{_TAKEN_AFTER.pattern}"
    # a drug a condition says is still not working: "start Norco if tramadol continues to be ineffective"
    r"|\s+(?:continues\s+to\s+be|remains|is\s+still|stays)\s+(?:ineffective|insufficient|inadequate|not\s+effective)\b"
    # "Norco will be weaned", "the Norco, which will be tapered over 2 wks"
    r"|,?\s+(?:which\s+)?(?:will|is\s+to|are\s+to|to)\s+be\s+(?:tapered|weaned|reduced|cut\s+(?:back|down))\b",
    re.I,
)
#: A drug the words after it say is still taken, whenever it began: "switched to naproxen 500 mg bid in 2023, which
#: she still takes".
_STILL_AFTER = re.compile(
    r"(?:\s+[\w/.-]+){0,8}?,?\s+which\s+(?:he|she|they|the patient|pt)\s+(?:still\s+takes?|continues\s+to\s+take)\b",
    re.I,
)
#: A drug planned on what has not happened yet, the condition after it in its clause: "add naproxen if he flares",
#: "will consider Ultram if no better in 4 wks" (no plan until it does; a refill on a condition is still taken).
CONTINGENT = "CONTINGENT"
_CONTINGENT_AFTER = re.compile(
    r"[^.;,]{0,30}?\b(?:if|should|unless)\s+(?:(?:he|she|they|pt|the\s+patient|(?:the\s+|her\s+|his\s+)?(?:pain|symptoms|sx))\s+)?"
    r"(?:flares?|worsens?|persists?|recurs?|fails?|gets\s+worse|(?:is\s+|are\s+|remains?\s+)?no\s+better"
    r"|(?:does|do)\s+not\s+improve|doesn.t\s+improve|not\s+improved|no\s+(?:better|improvement|relief))\b",
    re.I,
)
#: A drug taken when something happened in a year gone by: "GI bleed in 2012 while on naproxen" (then, not now).
_WHILE_ON_THEN = re.compile(r"\b(?:19|20)\d\d\b[^.;]{0,60}?\bwhile\s+(?:on|taking)\s+(?:the\s+|his\s+|her\s+)?$", re.I)
#: A class of drugs as notes name it after taking one ("no opioids since", "has been off all NSAIDs").
_CLASS_NAMED = r"(?:opioids?|narcotics?|NSAIDs?|pain\s+(?:meds|medications?|pills))"
#: A drug the words after it say was stopped: "only ibuprofen, which he stopped due to stomach upset", "the Lyrica
#: did nothing for her and was d/c'd last month".
_STOPPED_AFTER = re.compile(
    r",?\s+(?:which|that)\s+(?:he|she|they|the patient|pt)\s+(?:has\s+|had\s+)?(?:since\s+)?"
    r"(?:stopped|discontinued|quit|d/c.?d|no longer takes)\b"
    r"|[^.;]{0,40}?\band\s+(?:was|were|has\s+been|had\s+been)\s+(?:stopped|discontinued|d/c.?d|weaned|tapered\s+off)\b"
    r"|\s+(?:was\s+|were\s+|has\s+been\s+)?(?:tapered|weaned)\s+off\b"  # "Gabapentin tapered off in May"
    r"|[^.;,]{0,60}?,\s+(?:then\s+)?(?:tapered|weaned)\s+off\b"  # "Took Norco after the ORIF, tapered off by 6/21"
    # "Gabapentin was titrated to 600 mg tid but stopped in March" (not "but stopped working")
    r"|[^.;]{0,40}?\bbut\s+(?:was\s+|were\s+)?(?:stopped|discontinued|d/c.?d)\b(?!\s+(?:working|helping))"
    r"|[^.;]{0,60}?,?\s+and\s+none\s+since\b"  # "took Percocet for two weeks after the ORIF and none since"
    # "Took Vicodin for a few days after a dental extraction in 2019, no opioids since"
    rf"|[^.;]{{0,60}}?,\s+no\s+(?:{_CLASS_NAMED}|anti-?inflammatories|meds|medications?)\s+since\b"
    # "took Percocet after the 2019 repair and has used no opioids since", "... but has been off all opioids since"
    rf"|[^.;]{{0,60}}?\s+(?:and|but)\s+(?:has|have)\s+(?:used|taken|had)\s+no\s+{_CLASS_NAMED}\s+since\b"
    rf"|[^.;]{{0,60}}?\s+but\s+(?:has|have)\s+been\s+off\s+(?:all\s+)?{_CLASS_NAMED}\b"
    r"|\s*-\s*(?:stopped|discontinued|d/c.?d)\b"  # "NSAIDs - stopped for GI upset"
    # "used naproxen until 2020, none since", "took tramadol until two months ago"; not a dose that changed ("twice a
    # day until last month, now three times a day")
    r"|(?:\s+[\w/.-]+){0,3}?\s+until\s+(?:(?:19|20)\d\d\b|last\s+(?:year|month|week|spring|summer|fall|winter)\b|"
    r"\w+\s+(?:days?|wks?|weeks?|months?|mos?|years?|yrs?)\s+ago\b)"
    r"(?![,;]?\s+(?:and\s+)?(?:is\s+)?now\s+(?:(?:takes|on|at)\s+)?(?:once|twice|\w+\s+times|\d+\s+tabs?)\b)"
    # "Gabapentin was switched to Lyrica at the last visit"
    r"|(?:\s+[\w/.-]+){0,3}?\s+(?:was|were|has\s+been|had\s+been)\s+(?:switched|changed|converted|transitioned)\s+(?:over\s+)?to\b",
    re.I,
)
#: A refill, "continue", or a taper or cut to come just before the drug (a drug to be tapered or cut down is taken
#: now: "will taper gabapentin once Lyrica is titrated", "Plan: wean Percocet over 4 weeks", "begin a taper of his
#: Norco", "goal: reduce her Norco use"; not one able to be tapered off, which is stopped).
_CONTINUED = re.compile(
    r"(?<!\bno )\brefill|\bcontinu(?:e|es|ed|ing)\b|\bcont\b\.?|\bremains on\b"
    r"|(?<!\bable to )(?<!\bno )\b(?:taper|wean)(?:ing)?\b"
    r"|\b(?:reduc(?:e|ing)|halv(?:e|ing)|cut(?:ting)?(?:\s+(?:back|down))?(?:\s+on)?)\b(?!\s+out\b)",
    re.I,
)
#: A refill or "continue" that heads a list of drugs, each with its dose, up to the drug ("continue Lyrica 75 mg
#: BID and Celebrex 200 mg qd"): the drugs after the first are continued too.
_CONTINUED_LIST = re.compile(
    r"(?:\brefill(?: of)?|\bcontinu(?:e|es|ed|ing))(?:\s+[\w-]+(?:\s+[\d./]+\s*(?:mg|mcg|%)?)?"
    rf"(?:\s+{_TIMES})*\s*(?:,|\band\b|&)){{1,3}}\s*\Z",
    re.I,
)
#: How far before the drug such a list may begin (characters).
_LIST_REACH = 90
#: A denied phrase said to be (not) documented: the record's silence ("No TENS trial is documented in the file",
#: "No cervical MRI on file", "No EMG/NCS report was included", "no GI history documented").
_DOCUMENTED_AFTER = re.compile(
    r"(?:/[\w-]+)*(?:\s+(?:stud(?:y|ies)|testing|tests?|films|scans?))?"  # "no EMG studies are on file"
    r"(?:\s+in\s+[\w/-]+)?"  # what a gain is in: "no objective gains in ROM or strength are documented"
    # the rest of a list, and whose: "No UDS, CURES report or opioid agreement for the patient is in the records"
    r"(?:(?:,|\s+or|\s+and|\s+nor)\s+[\w/-]+(?:\s+[\w/-]+){0,2}?){0,4}?"
    r"(?:\s+for\s+(?:the\s+)?(?:patient|claimant|pt|applicant))?"
    r"\s+(?:(?:reports?\s+)?(?:(?:is|are|was|were|has been|have been)\s+)?(?:clearly\s+)?(?:documented|specified)\b"
    r"|(?:reports?|records?|notes?|results?|logs?)\s+(?:is|are|was|were|has been|have been)\s+"
    r"(?:included|enclosed|attached|submitted|provided|available)\b"
    r"|(?:is\s+|are\s+)?(?:on|in\s+the)\s+(?:file|chart)\b"
    # "No imaging of the cervical spine is found in the submitted records"
    r"|(?:of\s+the(?:\s+[\w-]+){1,3}\s+)?(?:is|are|was|were)\s+(?:(?:found|seen|included)\s+)?(?:in|among)\s+the\s+"
    r"(?:submitted\s+|available\s+|medical\s+)?(?:records?|file|documentation)\b)",
    re.I,
)
#: The records as the subject of what follows: "the records describe no progressive neurologic deficit", "the
#: file contains no EMG/NCS report", "the records provided contain no UDS, CURES report or opioid agreement" (before
#: the phrase or before the denial of a list it ends).
_RECORDS_SAY = re.compile(
    r"\b(?:records?|chart|file)(?:\s+(?:reviewed|provided|submitted|available))?\s+"
    r"(?:describes?|shows?|mentions?|documents?|contains?|includes?)"
    r"(?:\s+no)?\s+$",
    re.I,
)
#: A study the records name as done though its report is missing ("the lumbar MRI referenced by the treating
#: physician", "the PTP refers to an abnormal MRI", "the PTP states a C-spine MRI was done 9/2024", "report to
#: follow"); not "the records do not state that a TENS trial was performed".
_REFERENCED = re.compile(
    r"\b(?:referenced|references|refers to|referred to|reportedly (?:done|performed|obtained)|reports? (?:is |are )?"
    r"to follow|(?:PTP|provider|physician|treater|surgeon|patient|claimant|pt|he|she) (?:states|reports|says|notes)"
    r"(?: that)? [^.;]{0,40}?\b(?:was|were) (?:done|performed|obtained))\b",
    re.I,
)
#: The word of a grant ("certified", "auth'd"), for the care granted and then had or never had.
_GRANTED_WORD = r"\b(?:certified|approved|authori[sz]ed|auth.?d)\b"
#: Care authorized and then had: "six sessions were certified in 11/2023 and attended", "was approved and has been
#: completed".
_ATTENDED_AFTER = re.compile(
    rf"{_GRANTED_WORD}[^.;]{{0,40}}?\b(?:and|,)\s+{_text.THEN_HAD}",
    re.I,
)
#: Care authorized and then never had: "the same facet injection was certified 11/2023 but never performed", "PT
#: was authorized in March but she has not yet started it", "approved by UR in January, yet the patient never attended".
_NEVER_HAD_AFTER = re.compile(
    rf"[^.;]{{0,50}}?{_GRANTED_WORD}[^.;]{{0,40}}?\b(?:but|though|yet)\b[^.;]{{0,30}}?"
    r"\b(?:never|not yet|has not|had not|did not)\s+(?:been\s+)?"
    r"(?:performed|administered|attended|started|begun|given|done)\b",
    re.I,
)
#: What the records hold of someone else ("the MRI referenced by the adjuster belongs to a different claimant").
_NOT_THEIRS = re.compile(
    r"\b(?:belongs?|belonged|pertains?|pertained) to (?:a |an )?(?:different|other|another) "
    r"(?:claimant|patient|person|worker|individual)\b",
    re.I,
)
#: A reviewer passing on what the patient or the treater said ("the claimant reported that the prior ESI did not
#: help", "gave no relief per the claimant's own report", "the treating physician documents that ..."): a
#: statement, not the record's silence.
_REPORTED = re.compile(
    r"\b(?:(?:claimant|patient|pt|injured worker|IW)\s+(?:has\s+)?(?:reported|reports|stated|states|says|said)"
    r"|reportedly|per\s+the\s+(?:claimant|patient|pt)(?:'s|s)?\s+(?:own\s+)?report|(?:treating\s+physician|treater|PTP|PR-2)"
    r"(?:\s+of\s+\S+)?\s+(?:documents|documented|reports|reported|notes|noted|states|stated)(?:\s+that)?)\b",
    re.I,
)
#: Words that say what follows "that" is untrue ("it is not true that she has had no therapy").
_UNTRUE = ("untrue", "false", "incorrect", "inaccurate", "wrong", "not true", "n't true", "not the case",
           "n't the case", "not accurate", "n't accurate")  # fmt: skip
#: The words before a request's indication ("requesting Mobic for R knee OA flare"), not a question it asks
#: ("EMG to evaluate for radiculopathy").
_INDICATION_BEFORE = re.compile(
    r"(?<!evaluate)(?<!evaluation)(?<!assess)(?<!screen)(?<!test)(?<!check)(?<!look)(?<!looking)(?<!r/o)"
    r"\s+for\s+(?:[\w/&-]+\s+){0,3}$",
    re.I,
)
#: An absence said to be untrue just before it ("it is not true that she has not returned to work", "it would be
#: wrong to say she hasn't tried a home program", "cannot say she has not improved"): presence.
_UNTRUE_BEFORE = re.compile(
    rf"\b(?:(?<!not\s)(?<!n't\s)(?:{'|'.join(_UNTRUE)})\s+that|(?:wrong|incorrect|inaccurate|unfair)\s+to\s+say(?:\s+that)?"
    r"|(?:cannot|can't|can\s+not)\s+say(?:\s+that)?"
    r"|(?:^|(?<=[.;:!?]\s))not\s+that)\b"
    r"(?:(?! - )[^.;:]){0,40}$",
    re.I,
)
#: A measure's change named as an aim earlier in its sentence, not one had: "Goal: increase flexion from 110 to 150
#: degrees", "Target: raise lumbar flexion from 40 to 70 degrees" ("goal met: ..." was had).
_AIMED_BEFORE = re.compile(
    r"\b(?:goals?|targets?|aims?|objectives?)\b(?!\s+(?:met|achieved|reached|attained)\b)[^.;]*$", re.I
)
#: A label's denial just after it ("Prior imaging: none", "ESI - none to date"): what the label names was not had.
_NONE_AFTER = re.compile(r"\s*(?::|\s-)\s*(?:none|n/a|not done)\b", re.I)
#: A phrase that denies what it names from inside ("EMG showed no evidence of radiculopathy"): negated, but a
#: study it names was still done.
DENIED_INSIDE = "DENIED_INSIDE"
#: A negation just before a phrase ("no prior MRI", "has not failed to help", "non-tender", "non-radicular"): a
#: study so denied was not done, a diagnosis not made; an absence so denied states presence.
DENIED_JUST_BEFORE = "DENIED_JUST_BEFORE"
#: The kinds of phrases read for what they stand for (``_anaphora``): a "none", the denial of the treatment named
#: before it; a drug stopped as "it", the stop of the drug named before it; "never tried one herself", the
#: denial, for the patient, of the treatment named before it (someone else's, often).
NONE, STOPPED_IT, NEVER_HAD_IT = "none", "stopped-it", "never-had-it"
#: What each of those kinds stands for: the mention kinds it looks back to.
_STANDS_FOR = {NONE: ("therapy",), STOPPED_IT: ("drug", "drugclass"), NEVER_HAD_IT: ("therapy", "drug", "drugclass")}
_DENIED_BEFORE = re.compile(
    # ("has not been without PT" denies nothing)
    r"(?:(?<!not been )(?<!never been )(?<!n't been )\b(?:no|not|never|without|n't)\s+"
    r"(?:(?:had|have|has|undergone|obtained|been|done|received|an?|any|the|prior|"
    r"previous|recent|further)\s+){0,3}|\bnon-)$",
    re.I,
)
#: What another person's sentence calls "the same" just before a shared finding ("a coworker hurt in the same
#: forklift collision"): the patient's too ...
_THE_SAME = re.compile(r"\bthe same (?:[\w-]+ ){0,2}$", re.I)
#: ... or just after it ("a co-worker struck by the same pallet jack").
_BY_THE_SAME = re.compile(r"\s+(?:by|in|from|off|with|on) the same\b", re.I)
#: What opens what an informant reports ("reports that ..."): the reported clause's own subject follows.
_THAT = re.compile(r"^[\s,:]*(?:that\s+)?", re.I)
#: A reported clause about its informant ("his wife says she herself signed a pain contract"): the informant's own.
_THEMSELVES = re.compile(r"(?:she|he|they)\s+(?:herself|himself|themselves)\b", re.I)
#: A pronoun set apart ("she herself", "for her own back") and the patient's own pronoun before a relative ("his").
_SELF_SET_APART = re.compile(r"\b(?P<who>she|he)\s+(?:herself|himself)\b", re.I)
_OWN_AFTER = re.compile(r"[^.;]{0,40}?\b(?:for|after|from|since) (?P<who>her|his) own\b", re.I)
_WHOSE = re.compile(r"\b(?P<who>his|her)\s+(?:[\w-]+\s+)?$", re.I)


def _relatives_own(
    text: str, offset: int, clause_start: int, match: Match, relatives: dict[str, re.Pattern[str]]
) -> bool:
    """Whether a phrase is said of a relative the sentence names before it, by a pronoun that sets someone apart:
    "his wife ...; she herself takes oxycodone", "Wife states she takes oxycodone for her own back", "her husband
    reports ...; he himself takes gabapentin". The pronoun of the patient's own gender ("his father died of a
    tumor; he himself reports no night pain") and one set apart in a clause of its own after a relative whose
    patient is not named ("Pt's brother had a fusion; he himself has had none") are the patient's. ``relatives``: the
    lexicon's relatives, by pronoun."""
    own = _OWN_AFTER.match(text, match.end())
    apart = _SELF_SET_APART.search(text, clause_start, match.start()) or own
    if apart is None:
        return False
    who = "she" if apart["who"].lower() in ("she", "her") else "he"
    named = relatives.get(who)  # a lexicon may name none
    relative = named.search(text, offset, match.start()) if named is not None else None
    if relative is None:
        return False
    whose = _WHOSE.search(text, max(offset, relative.start() - 20), relative.start())
    if whose is not None:
        return ("she" if whose["who"].lower() == "her" else "he") != who  # "his wife ... she herself"
    return own is not None or ";" not in text[relative.end() : match.start()]


#: A sentence that sets goals states none of what it names: "Goals: walk 30 minutes, cut Norco to 2 a day".
_GOALS = re.compile(
    r"\s*(?:(?:short|long)[- ]term |functional |treatment |therapy |PT )?(?:goals?|targets?|aims?|"
    r"objectives?)\b[^:.;]{0,30}:",
    re.I,
)
#: What a reviewer turned down is what was asked for, not what was done: "UR non-certified the EMG/NCV", "denied the
#: request for an MRI" (the reviewer's other words stand, ``reviewed``).
_DECIDED_ON = re.compile(
    r"\b(?:non-?certified|denied)\s+(?:the\s+|an?\s+)?"
    r"(?:(?:request(?:ed)?|RFA)\s+(?:for\s+)?(?:the\s+|an?\s+)?)?$",
    re.I,
)
#: What makes a drug not taken right where it is named: "opioid-free", "opioid-naive", "switched from naproxen to ...".
_FREE_OF = re.compile(r"[- ](?:free|naive|naïve)\b", re.I)
#: A drug never taken, named right after the words that say so ("has never been on gabapentin or Lyrica", "never
#: tried Cymbalta"): as good as stopped, for the class it belongs to.
_NEVER_TAKEN = re.compile(
    r"\bnever\s+(?:been\s+(?:on|prescribed)|taken|took|tried|trialed|used|had)\s+(?:any\s+)?"
    r"(?:[\w-]+(?:\s+\d+\s*mg)?\s*(?:,|\bor\b|\bnor\b|\band\b)\s*){0,3}$",
    re.I,
)
#: A drug a sentence opens "Off" and dates ("Off Norco since January.", "Off gabapentin x 3 months"): stopped; not
#: "8/10 off meds" (a pain score without the drug).
_OFF_BEFORE = re.compile(r"(?:^|[.;:]\s*)off\s+(?:of\s+)?(?:the\s+|her\s+|his\s+|all\s+)?$", re.I)
_OFF_SINCE = re.compile(r"\s+(?:since|as\s+of|for\s+(?:the\s+)?(?:past|last)|x\s*\d)\b", re.I)
_SWITCHED_FROM = re.compile(
    r"\b(?:switched|changed|transitioned|converted|moved)\s+(?:him\s+|her\s+)?(?:over\s+)?from\s+$", re.I
)
#: A phrase of absence that opens with its denial ("w/o sig improvement", "no change in").
_DENIAL = re.compile(r"(?:no|none|not|never|without|w/o)\b", re.I)
#: ... or with what the patient still cannot do ("still unable to sit through a movie").
_STILL_UNABLE = re.compile(r"(?:still|remains?|remained)\s+(?:cannot|can.t|could not|is unable to|unable to)\b", re.I)
#: A conjunction that opens a predicate of its own, just before a cue: what the cue says reaches forward only.
_NEW_PREDICATE = re.compile(r"\b(?:and|but)\s+$", re.I)
#: A phrase that is a clause of its own, its subject and its verb ("flexion remains limited to 90"), after the "and"
#: that joins it to the clause before: a denial in that clause does not reach it.
_OWN_CLAUSE = re.compile(r"[\w-]+(?: [\w-]+)? (?:is|are|was|were|remains|remained|stays|stayed)\b", re.I)
_AND_BEFORE = re.compile(r"\band (?:(?:the|her|his|their) )?(?:(?!no\b|not\b|never\b)[\w-]+ ){0,2}$", re.I)
#: A dash standing between words (not inside one, "x-ray"; "-" or "--") and before a clause of its own: a clause
#: boundary. Before a word or three that end there, or a verdict, it labels ("acupuncture - none.", "neuropathy -
#: excluded on NCS.", "CRPS RLE - excluded by pain mgmt"): no boundary.
_DASH = re.compile(
    r"(?: [-–—]| ?--)-* (?!(?:[\w/'-]+ ?){1,3}(?:[.;,)]|$)|(?:excluded|ruled out|resolved|negative|denied)\b)"
)
#: A drug named as what an effect is of, after a denial of the effect: "denies sedation on the GBP" denies the
#: sedation, not the drug.
_EFFECT_OF = re.compile(
    r"\b(?:sedation|sedated|drowsiness|drowsy|somnolence|constipation|nausea|dizziness|dizzy|GI upset|upset stomach|"
    r"side[- ]effects?|adverse (?:effects?|reactions?)|ADRs?|itching|rash|cognitive (?:changes|effects))\b"
    r"[^.;]{0,20}?\b(?:on|with|from|to|of)\s+(?:the\s+|his\s+|her\s+|their\s+)?"
    # or in a list of what the effect is of: "no sedation on current meds (tramadol 50 BID, meloxicam 15 daily)"
    r"(?:current\s+|present\s+)?(?:(?:meds|medications?|regimen)\s*\((?:[^()]{0,60}?,\s*)?)?$",
    re.I,
)


def _effect_denied(text: str, kind: str, denial: int, at: int) -> bool:
    """Whether a denial from ``denial`` is of an effect of the drug named at ``at`` (``_EFFECT_OF``)."""
    return kind in ("drug", "drugclass") and _EFFECT_OF.search(text, denial, at) is not None


#: An absence phrase that holds its own denial ("was not unremarkable"): presence.
_DOUBLE_INSIDE = re.compile(r"\bnot (?:(?:un|in|non-?)[a-z]{4,}|normal|negative|absent)", re.I)
#: A phrase stating presence in words of denial ("no aberrant behaviours", "UDS has never been inconsistent"): its
#: denial is its meaning, and a neighbour's ("no early refills and ...", "x-rays neg; cannot exclude an occult fx")
#: does not deny it again.
_SELF_DENIED = re.compile(
    r"\b(?:no|not|never|denies|denied|without|negative for|cannot|can.t|could not|unable to)\b", re.I
)
#: A relative named as what the patient does something with or for, just before the name ("can lift her grandchild
#: and go back to regular duty", "drives his daughter to school"): the patient's doing, not the relative's.
_DONE_FOR = re.compile(
    r"\b(?:lift(?:s|ed|ing)?|carr(?:y|ies|ied|ying)|pick(?:s|ed|ing)? up|hold(?:s|ing)?|held|play(?:s|ed|ing)? with|"
    r"car(?:e|es|ed|ing) for|look(?:s|ed|ing)? after|keep(?:s|ing)? up with|kept up with|drive(?:s)?|drove|driving|"
    r"walk(?:s|ed|ing)?|bath(?:e|es|ed|ing)|babysit(?:s|ting)?|hug(?:s|ged|ging)?|chas(?:e|es|ed|ing)|"
    r"dress(?:es|ed|ing)?|feed(?:s|ing)?|fed|visit(?:s|ed|ing)?|coach(?:es|ed|ing)?)\s+(?:up\s+)?(?:her|his|their|the|a|an|my)\s+"
    r"(?:[a-z-]+\s+)?$",
    re.I,
)
#: Mentions under these are not statements about this patient now (for any kind of phrase).
_NOT_STATED = frozenset({CONDITIONAL, FAMILY, OTHER_INJURY, RECORD})
#: A count of care stated as had, around its words: "the prior 8 ...", "completed 24 ...", "12 visits to date".
_HAD_COUNT = re.compile(r"\b(?:prior|previous|completed|already|to date|so far)\b", re.IGNORECASE)
#: Sentences longer than this are read in windows ending at a clause boundary (bounded ConText work).
_WINDOW = 600
_GROUP = "imr_targets"
# medspacy's matcher warns on every document that its (unused) token-pattern matcher is empty
warnings.filterwarnings("ignore", message=r"\[W036\]", category=UserWarning)
_QUOTE_MAX = 300


class Finding(BaseModel):
    """One fact's status and the words it rests on (the sentence, where it came from, the offsets of the
    phrase in that source's text)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fact: str
    status: Status
    quote: str | None = None
    source: str | None = None
    start: int | None = None
    end: int | None = None


class Text(NamedTuple):
    """A piece of clinical text and where it came from ("letter: clinical case summary",
    "DocumentReference/7", "ServiceRequest/3.note[0]")."""

    source: str
    text: str


@dataclass(frozen=True)
class Mention:
    """A lexicon phrase found in a text, with what ConText says about it."""

    kind: str  # finding, therapy, drug, drugclass or diagnosis
    name: str  # the fact, therapy or ingredient
    polarity: Literal["present", "absent"]
    modifiers: frozenset[str]
    sentence: str
    regions: frozenset[str]
    source: str
    start: int
    end: int
    #: The treatments the phrase's clause names, else its sentence's, else the paragraph's (attribution keys
    #: of the lexicon: a therapy's name, "drug:<class>", or a generic word's group).
    treatments: frozenset[str] = frozenset()
    #: Where the phrase stands in its text's turns: its sentence, and how many "but", "however" or "yet" come
    #: before it there (what follows a turn is the writer's last word: "the first gave no relief, but ...").
    turn: tuple[int, int] = (0, 0)
    #: The drugs the phrase itself names where they are not what it credits (``_NOT_ITS_OWN``).
    spares: frozenset[str] = frozenset()
    #: The sides (left, right) its clause names, where the clause names a limb's region.
    sides: frozenset[str] = frozenset()
    #: The phrase's own words ("Percocet", "the OxyContin": two names of one ingredient).
    said: str = ""

    @property
    def counts(self) -> bool:
        """Said of this patient now: not a condition, a goal, someone else's, another injury's or the record's
        silence."""
        return not self.modifiers & _NOT_STATED

    def finding(self, fact: str, status: Status) -> Finding:
        return Finding(fact=fact, status=status, quote=self.sentence, source=self.source, start=self.start,
                       end=self.end)  # fmt: skip


@dataclass(frozen=True)
class _Target:
    kind: str  # finding, therapy, drug, drugclass, diagnosis, none or stopped-it
    name: str
    polarity: Literal["present", "absent"]
    pattern: Scanner
    stated: bool = False  # a phrase that states its fact however its sentence turns it


@dataclass(frozen=True)
class _Pipeline:
    nlp: Any
    targets: list[_Target]
    #: Which of the targets RE2 searches occur in a text (by their index in ``targets``), asked a set of them at a
    #: time (``PatternSet``); the others are searched whole.
    occurring: PatternSet
    #: What a sentence says of another injury (up to a ";" or a "but") counts for none of this one's facts.
    other_injury: re.Pattern[str]
    #: A sentence whose subject is someone else ("Her sister has ...") is about someone else throughout.
    someone_else: re.Pattern[str]
    #: ... unless that someone only tells of the patient ("Her husband reports that she ...").
    informant: re.Pattern[str]
    #: The lexicon's relatives, by the pronoun that stands for them ("she": wife, mother, ...).
    relatives: dict[str, re.Pattern[str]]
    #: What a relative clause says of someone else is theirs: "a co-worker, who was admitted x3 days", "her son,
    #: who is homebound after a stroke" (group ``clause``; not "her husband, who reports ...").
    their_clause: re.Pattern[str]
    #: A phrase that itself speaks of the record ("no documented improvement"): the record's silence.
    record: re.Pattern[str]
    #: The functional measures' patterns ("ODI 42% -> 28%"), each with whether a fall in it is improvement.
    function_changes: list[tuple[re.Pattern[str], bool]]


_PIPELINES: dict[int, tuple[Lexicon, _Pipeline]] = {}


def _pipeline(lexicon: Lexicon) -> _Pipeline:
    """The NLP pipeline for a lexicon, built once per process (per lexicon object)."""
    cached = _PIPELINES.get(id(lexicon))
    if cached is None or cached[0] is not lexicon:
        _PIPELINES[id(lexicon)] = cached = (lexicon, _build(lexicon))
    return cached[1]


#: A phrase led by a sign, "(?:positive|\+) SLR", "(?:positive |\+ ?)SLR" or "(?:negative|-) Tinel": no word
#: boundary comes before the "+" of ", +SLR".
_SIGN_LED = re.compile(r"\(\?:[^()]*\|(?:\\\+|-)")


def _bounded(pattern: str) -> str:
    """A lexicon phrase as it is searched: from a word's beginning, unless a sign may lead it."""
    return f"(?:{pattern})" if _SIGN_LED.match(pattern) else rf"\b(?:{pattern})"


def _targets(lexicon: Lexicon) -> list[_Target]:
    """The lexicon's phrases as compiled patterns, one per fact and polarity, therapy, diagnosis group and drug
    class, and one for every drug name."""
    out: list[_Target] = []
    for fact, rule in lexicon.findings.items():  # one pass per fact and polarity: all its phrases at once
        polarities: tuple[tuple[Literal["present", "absent"], list[str], bool], ...] = (
            ("present", rule.present, False), ("absent", rule.absent, False), ("present", rule.stated, True)
        )  # fmt: skip
        for polarity, patterns, stated in polarities:
            # "{count}": a count in digits or words ("walks thirty-five minutes"). The phrases RE2 reads are searched
            # apart from the few with lookaround, so that those alone fall back to re, not all the fact's phrases.
            linear: list[str] = []
            looking: list[str] = []
            for phrase in (_bounded(p).replace("{count}", NUMBER) for p in patterns):
                (linear if Scanner(re.compile(phrase, re.I)).linear else looking).append(phrase)
            for phrases in (linear, looking):
                if phrases:
                    scanner = Scanner(re.compile("|".join(phrases), re.I))
                    out.append(_Target("finding", fact, polarity, scanner, stated))

    for therapy in lexicon.therapies:
        words = "|".join(therapy.words)
        out.append(_Target("therapy", therapy.name, "present", Scanner(re.compile(rf"\b(?:{words})\b", re.I))))
    out.append(_Target("drug", "", "present", Scanner(lexicon.drug_pattern)))
    for group, compiled in lexicon.diagnosis_patterns.items():
        out.append(_Target("diagnosis", group, "present", Scanner(compiled)))
    for drug_class, names in lexicon.class_words.items():
        pattern = re.compile(rf"\b(?:{'|'.join(names)})\b", re.I)
        out.append(_Target("drugclass", drug_class, "present", Scanner(pattern)))
    # "none" standing for a treatment ("none of the visits helped", "none effective": the care was had)
    worked = "effective|helpful|helped|worked|beneficial|successful|lasting|with|w/"
    none = rf"\bnone\b(?!\s+(?:of|but|other|except|since\s+(?:then|that)|{worked})\b)"
    out.append(_Target(NONE, "", "present", Scanner(re.compile(none, re.I))))
    # "it" standing for a drug stopped or never taken: "she never filled it", "stopped taking it", "declined them",
    # "has not taken any since"
    stopped_it = (
        r"\b(?:stopped(?: taking)?|(?:self[- ])?d/c.?d|"
        r"(?:never|not(?: yet)?|has not|have not|hasn't|haven't|did not|didn't) "
        r"(?:filled|started|take|took|taken|tried)|declined|refused|quit|"
        r"weaned (?:herself |himself )?off(?: of)?|discontinued|ran out of|disposed of)\s+"
        r"(?:it|them|any(?=\s+since\b|\s*[.;,]|$))\b"
        r"|\b(?:it|they) (?:was|were|has been|have been|had been) (?:stopped|discontinued|d/c.?d|held|tapered off)\b"
        # what it did before it was stopped: "but it caused weight gain and ankle edema and was stopped"
        r"|\b(?:it|they) (?:[\w-]+ ){1,8}?and (?:was|were|has been|have been|had been) "
        r"(?:stopped|discontinued|d/c.?d|held)\b"
    )
    out.append(_Target(STOPPED_IT, "", "present", Scanner(re.compile(stopped_it, re.I))))
    # "her husband had a TENS unit; she has never tried one herself", "... She has not had it herself", "six visits
    # were certified; she has not attended any of them"
    never_had_it = (
        r"\b(?:never|not(?: yet)?|hasn't|haven't)\s+(?:tried|trialed|trialled|had|used|received|taken|attended)\s+"
        r"(?:(?:one|either)\b(?:\s+(?:herself|himself|themselves|personally))?|(?:it|them)\s+(?:herself|himself|themselves|personally)\b"
        r"|any of (?:them|these|those)\b)"
    )
    out.append(_Target(NEVER_HAD_IT, "", "present", Scanner(re.compile(never_had_it, re.I))))
    return out


#: Cues no phrase list can name, as medspacy token patterns (ConTextRule arguments): a year marks the past ("a
#: fall in 2019"); a negation of a negative word is none ("not unremarkable", "not ineffective"), nor one said
#: to be untrue ("it is untrue that she is not taking opioids"); "no change in", "no progression of" say that
#: what follows persists.
_NEGATIVE_WORD = r"^(?:un|in|im|ir|non-?|dis)[a-z]{4,}$"
_CHANGE = ["change", "changes", "increase", "difference", "progression", "worsening", "reduction", "decrease"]
#: What a comparison sets a finding against: the other side, normal, or an earlier exam.
_COMPARED = (
    "r l right left contralateral other intact normal negative unremarkable symmetric full baseline "
    "last prior previous before intake initial earlier"
).split()


def _unsaid_denial(
    name: str, said: list[dict[str, Any]], denials: list[str]
) -> tuple[str, str, str, list[dict[str, Any]]]:
    """A denial its sentence refuses to make ("cannot say there are no deficits", "it is not true that she has had
    no therapy"): a pseudo-cue over the refusal and the denial, a few words apart."""
    return (
        f"{name} ... {' '.join(denials)}",
        "PSEUDO",
        "PSEUDO",
        [*said, {"IS_ALPHA": True, "OP": "{0,3}"}, {"LOWER": {"IN": denials}}],
    )


def _untrue(words: str) -> tuple[str, str, str, list[dict[str, Any]]]:
    """A negation said to be untrue ("it is untrue that she is not taking opioids"), its first word plain (checked
    in C at every token, where a list of words is checked through Python)."""
    said = [{"LOWER": word} for word in [*words.split(), "that"]]
    return _unsaid_denial(f"{words} that", said, ["not", "n't", "never", "no"])


_PATTERN_CUE_ARGS: list[tuple[str, str, str, list[dict[str, Any]]]] = [
    ("in <year>", HISTORICAL, "BIDIRECTIONAL", [{"LOWER": "in"}, {"TEXT": {"REGEX": r"^(?:19|20)\d\d$"}}]),
    ("not <negative word>", "PSEUDO", "PSEUDO",
     [{"LOWER": {"IN": ["not", "never"]}}, {"LOWER": "been", "OP": "?"}, {"LOWER": {"REGEX": _NEGATIVE_WORD}}]),
    ("<aux> not <negative word>", "PSEUDO", "PSEUDO",
     [{"LOWER": {"IN": ["is", "was", "are", "were", "been", "be"]}}, {"LOWER": {"IN": ["not", "never"]}},
      {"LOWER": {"REGEX": _NEGATIVE_WORD}}]),
    *(_untrue(words) for words in _UNTRUE),
    # a sentence that opens "Not that ..." says what follows is untrue, and denies nothing itself: "Not that she has
    # no GI history: ...", "Not that PT has failed to help - she is reaching overhead again"
    _unsaid_denial("Not that ...", [{"LOWER": "not", "IS_SENT_START": True}, {"LOWER": "that"}],
                   ["not", "n't", "never", "no"]),
    ("Not that", "PSEUDO", "PSEUDO", [{"LOWER": "not", "IS_SENT_START": True}, {"LOWER": "that"}]),
    # a denial of never having had it is no denial: "not PT-naive", "not injection naive"
    ("not <care>-naive", "PSEUDO", "PSEUDO",
     [{"LOWER": {"IN": ["not", "never"]}}, {"IS_ALPHA": True}, {"TEXT": "-", "OP": "?"}, {"LOWER": "naive"}]),
    # the same said other ways: "cannot say there are no neuro findings" (of a finding denied: "cannot say the PT
    # did not help" is read by its phrase), "it would be wrong to say he hasn't tried conservative care"
    _unsaid_denial("cannot say", [{"LOWER": {"IN": ["can", "ca"]}}, {"LOWER": {"IN": ["not", "n't"]}},
                                  {"LOWER": "say"}, {"LOWER": "that", "OP": "?"}], ["no"]),
    _unsaid_denial("wrong to say", [{"LOWER": {"IN": ["wrong", "incorrect", "inaccurate", "unfair"]}},
                                    {"LOWER": "to"}, {"LOWER": "say"}, {"LOWER": "that", "OP": "?"}],
                   ["no", "not", "n't", "never"]),
    # a comparison of measures is no differential ("lifts 20 lb vs 10 lb at intake", "30 min now vs 10", "DTR 1+ L
    # vs 2+ R", "DTR 1+ L Achilles vs 2+ R")
    ("<number> vs", "PSEUDO", "PSEUDO",
     [{"LIKE_NUM": True}, {"TEXT": {"IN": ["+", "-", "%"]}, "OP": "?"}, {"IS_ALPHA": True, "OP": "{0,2}"},
      {"LOWER": {"IN": ["vs", "vs.", "versus"]}}]),
    # so is one side's finding against the other's or against normal, which ends what reaches across it: "SLR
    # positive on the L vs negative on the R", "sensation decreased L L5 dermatome vs intact on the R"
    ("vs <the other side>", "TERMINATE", "TERMINATE",
     [{"LOWER": {"IN": ["vs", "vs.", "versus"]}},
      {"LOWER": "the", "OP": "?"}, {"LOWER": {"IN": _COMPARED}}]),
    ("vs <number>", "TERMINATE", "TERMINATE", [{"LOWER": {"IN": ["vs", "vs.", "versus"]}}, {"LIKE_NUM": True}]),
    # but a side with its spinal level is the other diagnosis of a differential: "? peripheral neuropathy vs L S1
    # radiculopathy" (the longer cue stands, the terminator within it does not)
    ("vs <side> <level>", POSSIBLE, "BIDIRECTIONAL",
     [{"LOWER": {"IN": ["vs", "vs.", "versus"]}}, {"LOWER": {"IN": ["l", "r", "left", "right"]}},
      {"TEXT": {"REGEX": r"^[CTLS]\d(?:-[CTLS]?\d)?$"}}]),
    # a finding graded after a comma is stated, whatever was denied before it: "X-ray: no fracture, mild OA"
    (", <grade>", "TERMINATE", "TERMINATE",
     [{"TEXT": ","}, {"LOWER": {"IN": ["mild", "moderate", "severe", "marked", "advanced"]}}]),
    ("no change in", "PSEUDO", "PSEUDO",
     [{"LOWER": {"IN": ["no", "without"]}}, {"LOWER": {"IN": ["significant", "appreciable", "meaningful"]}, "OP": "?"},
      {"LOWER": {"IN": _CHANGE}}, {"LOWER": {"IN": ["in", "of", "to", "on"]}}]),
]  # fmt: skip


#: A cue of several words opening with a negation also covers the auxiliary before it, so that it outlasts
#: "is not" / "was not" ("a medication list was not provided" is the record's silence, not a denial).
_AUXILIARIES = ["is", "was", "are", "were", "has", "have", "had", "does", "did", "do", "be", "been"]


def _with_auxiliaries(phrase: str, listed: Collection[str]) -> list[str]:
    """``phrase`` and, for one of several words opening with a negation, each auxiliary before it (literal
    phrases: medspacy's phrase matcher is cheap where token patterns are not) unless ``listed`` as a cue."""
    words = phrase.lower().split()
    if len(words) < 2 or words[0] not in ("not", "no", "never"):
        return [phrase]
    return [phrase, *(form for aux in _AUXILIARIES if (form := f"{aux} {phrase}").lower() not in listed)]


def _word_forms(pattern: list[dict[str, Any]]) -> list[list[dict[str, Any]]] | None:
    """A token pattern of words, word lists and optional words as the word sequences it matches (None where a
    token asks for more than its lowercase form): spaCy's matcher checks a plain word in C, a list or an
    optional token through Python, at every token of every sentence."""
    forms: list[list[dict[str, Any]]] = [[]]
    for token in pattern:
        lower, optional = token.get("LOWER"), token.get("OP")
        if set(token) - {"LOWER", "OP"} or optional not in (None, "?"):
            return None
        if isinstance(lower, dict) and set(lower) == {"IN"}:
            words = lower["IN"]
        elif isinstance(lower, str):
            words = [lower]
        else:
            return None
        grown = [[*form, {"LOWER": word}] for form in forms for word in words]
        forms = grown + forms if optional else grown
    return forms


def _plain(rules: list[Any]) -> list[Any]:
    """Cue rules with their token patterns as plain word sequences where they can be, each matching what its
    rule matched."""
    out = []
    for rule in rules:
        for form in (_word_forms(rule.pattern) if isinstance(rule.pattern, list) else None) or [rule.pattern]:
            out.append(copy.copy(rule))
            out[-1].pattern = form
    return out


def _words(rule: Any) -> str | None:
    """The words a phrase rule or a plain word sequence matches (None for a pattern of another kind)."""
    if rule.pattern is None:
        return str(rule.literal).lower()
    if all(set(token) == {"LOWER"} and isinstance(token["LOWER"], str) for token in rule.pattern):
        return " ".join(token["LOWER"] for token in rule.pattern)
    return None


def _build(lexicon: Lexicon) -> _Pipeline:
    """spaCy's sentencizer and medspacy's ConText with its default modifiers plus the lexicon's. Targets are
    found with the lexicon's own patterns (overlaps allowed: "foot drop" is a red flag and a neurologic
    finding) and handed to ConText as a span group."""
    import spacy
    from loguru import logger
    from medspacy.context import ConTextRule
    from spacy.util import compile_suffix_regex

    logger.disable("PyRuSH")  # imported by medspacy, not used here; keep its DEBUG lines away
    nlp = spacy.blank("en")
    # a side ending a sentence ends it ("DTR 1+ L vs 2+ R. MRI 5/24: ..."): English keeps a capital's period as an
    # initial's
    tokenizer: Any = nlp.tokenizer
    tokenizer.suffix_search = compile_suffix_regex([*(nlp.Defaults.suffixes or []), r"(?<=^[LR])\."]).search
    nlp.add_pipe("sentencizer")
    context: Any = nlp.add_pipe(
        "medspacy_context", config={"rules": None, "input_span_type": "group", "span_group_name": _GROUP}
    )
    cues = lexicon.assertion
    dropped = {phrase.lower() for phrase in cues.drop_default}
    groups = ((NEGATED, cues.negated), (POSSIBLE, cues.possible), (HISTORICAL, cues.historical),
              (HYPOTHETICAL, cues.hypothetical), (CONDITIONAL, cues.conditional), (RECORD, cues.record),
              (REVIEWED, cues.reviewed), (UNSAID, cues.unsaid),
              (DISCONTINUED, cues.discontinued), (FAMILY, cues.other_experiencer), (CURRENT, cues.current))  # fmt: skip
    listed = {c.phrase.lower() for _, group in groups for c in group} | {p.lower() for p in cues.pseudo}
    own = _plain(
        [ConTextRule(form, category, direction=c.direction.upper(), max_scope=c.reach,
                     allowed_types=set(c.of) if c.of else None)
         for category, group in groups for c in group for form in _with_auxiliaries(c.phrase, listed)]
        + [ConTextRule(word, "TERMINATE", direction="TERMINATE") for word in cues.terminate]
        + [ConTextRule(word, TIED, direction="PSEUDO") for word in cues.attach]
        + [ConTextRule(form, "PSEUDO", direction="PSEUDO")
           for phrase in cues.pseudo for form in _with_auxiliaries(phrase, listed)]
        + [ConTextRule(literal, category, direction=direction, pattern=pattern)
           for literal, category, direction, pattern in _PATTERN_CUE_ARGS]
    )  # fmt: skip
    # medspacy's own cues, but where the lexicon names the same words: one cue for a phrase, never two of
    # different kinds on the same words (which one won would be the matcher's arbitrary order)
    named = {_words(r) for r in own} - {None}
    defaults = _plain(
        [r for r in ConTextRule.from_json(context.DEFAULT_RULES_FILEPATH) if r.literal.lower() not in dropped]
    )
    rules = [r for r in defaults if _words(r) not in named] + own
    for rule in rules:  # (medspacy's own "terminating_types" setting reaches only its first rule of a kind)
        if rule.category in (HISTORICAL, DISCONTINUED):
            rule.terminated_by.add(CURRENT)
        if rule.category == NEGATED and rule.direction == "FORWARD":  # "neg for fx, possible occult scaphoid fx"
            rule.terminated_by.add(POSSIBLE)
        if rule.category == UNSAID:
            rule.max_scope = _UNSAID_REACH
        if rule.category != FAMILY and rule.direction not in ("TERMINATE", "PSEUDO"):
            rule.terminated_by.add(TIED)
        if rule.direction == "TERMINATE" or rule.category == TIED:
            # A terminator's scope is its own words (and one beside): medspacy cuts a cue's scope at a terminator
            # only where their scopes overlap, and does not count a scope lying wholly inside the other as
            # overlapping; with the sentence as every terminator's scope, once the farthest terminator had cut a
            # backward cue none nearer could ("1) ... 2) ... 3) Hx de Quervain's, resolved" denied item 1 and 2).
            rule.max_scope = 1
    context.add(rules)
    relatives = "|".join(re.escape(c.phrase) for c in cues.other_experiencer)
    # "Her sister has ...", "Two co-workers on her line had ..."
    who = r"his|her|their|the patient's|patient's|pt's|the pt's|a|an|two|three|several|some|many|both"
    someone = rf"(?:(?:{who})\s+)?(?:{relatives})s?\b"
    informing = "|".join(map(re.escape, cues.informing))
    targets = _targets(lexicon)
    return _Pipeline(
        nlp,
        targets,
        PatternSet({str(n): target.pattern.pattern for n, target in enumerate(targets) if target.pattern.linear}),
        re.compile("|".join(rf"\b{re.escape(c.phrase)}\b" for c in cues.other_injury), re.I),
        re.compile(rf"^{someone}", re.I),
        # "her husband reports that she ...", "his wife, a nurse, notes ...", "her daughter fills her pill box and
        # says she ...", "per his supervisor, he ..."
        re.compile(
            rf"^(?:(?:per|according to)\s+{someone}\s*,|{someone}(?:,[^,]{{1,40}},)?"
            rf"(?:\s+[a-z]+(?:\s+[a-z']+){{0,5}}\s+and)?\s+(?:{informing})\b)",
            re.I,
        ),
        {who: re.compile(rf"\b(?:{'|'.join(words)})\b", re.I) for who, words in cues.relatives.items()},
        re.compile(rf"\b{someone},?\s+(?P<clause>who\s+(?!(?:{informing})\b)[^,;.]*)", re.I),
        re.compile("|".join(rf"\b{re.escape(c.phrase)}\b" for c in cues.record), re.I),
        [(re.compile(p.replace("{count}", NUMBER), re.I), falls) for p, falls in lexicon.measures.function_changes],
    )


#: Texts whose mentions are kept (by source and digest): a patient's notes are analysed once, however many
#: of the patient's requests read them. Bounded, and holding digests rather than texts.
_MEMO_SIZE = 512
_memo: OrderedDict[tuple[int, str, bytes], list[Mention]] = OrderedDict()
_memo_lock = threading.Lock()


def _after_fork() -> None:
    """A forked worker process starts with its own free lock (another thread may have held it at the fork)."""
    global _memo_lock
    _memo_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


def mentions(texts: Sequence[Text], lexicon: Lexicon | None = None) -> list[Mention]:
    """Every lexicon phrase in the texts, with its ConText modifiers and sentence."""
    lexicon = lexicon or mappings()[LEXICON]
    found: list[Mention] = []
    for source, text in texts:
        if not text.strip():
            continue
        key = (id(lexicon), source, hashlib.blake2b(text.encode(), digest_size=16).digest())
        with _memo_lock:
            known = _memo.get(key)
            if known is not None:
                _memo.move_to_end(key)
        if known is None:
            known = _text_mentions(source, text, lexicon)
            with _memo_lock:
                _memo[key] = known
                while len(_memo) > _MEMO_SIZE:
                    _memo.popitem(last=False)
        found += known
    return found


def forget_texts() -> None:
    """Drop the mentions kept per text (a measurement of the cold path starts from here)."""
    with _memo_lock:
        _memo.clear()


#: What came of care named as had, or how much of it was had, just before it: "the outcome of the prior ESI", "the
#: response to her last L4-5 block", "no improvement with PT", "the number of prior chiropractic visits", "how many
#: acupuncture sessions" (what the record lacks, or what is denied, is the outcome or the count, not the care).
_NOT_HAD = r"(?:(?!(?:authorized|approved|certified|requested|additional|more|further)\b)[\w/-]+\s+)"
_OUTCOME_OF = re.compile(
    r"\b(?:outcome|results?|response|benefit|relief)\s+(?:of|to|from|after)\s+(?:the|her|his|this)\s+"
    r"(?:prior|previous|last|earlier|recent|single|only|first)\s+(?:[\w/-]+\s+){0,3}$"
    r"|\b(?:outcome|results?|response|gains?|improvement|progress)\s+(?:of|to|from|after|with|w/)\s+"
    r"(?:(?:the|her|his|that)\s+)?(?:[\w/-]+\s+){0,2}$"
    # "relief from the 3/2025 medial branch block", "pain scores before and after the 2/10 subacromial injection"
    r"|\b(?:relief|benefit)\s+(?:from|after)\s+(?:the|her|his)\s+(?:[\w/-]+\s+){0,2}$"
    r"|\bbefore\s+and\s+after\s+(?:the|her|his)\s+(?:[\w/-]+\s+){0,2}$"
    rf"|\b(?:number|#)\s+of\s+{_NOT_HAD}{{0,3}}$|\bhow\s+many\s+{_NOT_HAD}{{0,3}}$",
    re.I,
)
#: Care the question presupposes had: "whether the prior 8 PT visits improved function", "whether the 9/2023 facet
#: injection relieved any pain", "what the response to the 10 prior chiropractic visits was" (what is asked is what
#: came of it).
_ASKED_OF_HAD = re.compile(
    r"\b(?:whether|how\s+(?:much|well|long))\s+(?:the|her|his)\s+(?:prior|previous|last|earlier|initial|past|first|"
    r"\d{1,2}/\d{2,4})\s+"
    r"(?:[\w/-]+\s+){0,3}$"
    r"|\b(?:outcome|results?|response|benefit|relief)\s+(?:of|to|from|after)\s+(?:the|her|his)\s+\w+\s+"
    r"(?:prior|previous|earlier)\s+(?:[\w/-]+\s+){0,2}$"
    # "nor of how the claimant responded to the prior 10 PT sessions"
    r"|\bhow\s+(?:she|he|they|pt|the\s+(?:claimant|patient|injured\s+worker))\s+(?:responded|did|fared|progressed)\s+"
    r"(?:to|with|after|in)\s+(?:the|her|his)\s+(?:(?:prior|previous|last|earlier|initial|past)\s+)?(?:[\w/-]+\s+){0,3}$",
    re.I,
)
#: A course counted as the span of what did not change ("it had not changed at all over the 12 aquatic sessions",
#: "no better despite the 8 PT visits"), or the care a "nor" asks of ("Nor has PT been without benefit", "Nor is
#: chiropractic new to her"): the care was had; what is denied is of it.
_COUNTED_SPAN = re.compile(
    r"\b(?:over|during|throughout|across|despite|in\s+spite\s+of)\s+(?:the|her|his|all|all\s+the)\s+(?:\d+|[a-z]+)\s+"
    r"(?:(?:prior|previous|earlier)\s+)?$",
    re.I,
)
_NOR_ASKS = re.compile(
    r"\bnor\s+(?:has|have|had|is|was|were|did|does|do)\s+(?:the\s+|her\s+|his\s+|their\s+)?"
    r"(?:(?!(?:she|he|they|it|there|had|been|received|tried|undergone|done|gotten|any)\b)[\w/-]+\s+){0,2}$",
    re.I,
)
#: Care named between "neither" (or a "nor") and the effect denied of it ("neither the PT course nor 6 acupuncture
#: sessions brought her pain below 7/10"): the care was had; what it did is denied. Not "neither PT nor chiropractic
#: was tried".
_NEITHER_EFFECT = re.compile(
    r"(?:neither\b[^.;:]*?\b)?nor\b(?:(?!\b(?:was|were|is|are|tried|given|had|done|attempted|and|but)\b)[^.;:,]){0,60}?\b"
    r"(?:has |have |had |did |ever )?(?:brought|helped|relieved|eased|improved|changed|reduced|made|gave|provided|"
    r"worked|controlled|lowered|touched|moved|kept)\b",
    re.I,
)
#: A phrase that only names what it would state ("functional improvement", "gains"), and the record's silence on it
#: later in its clause, past what it names it of ("... from the prior 12 chiropractic visits was not documented").
_NAMED_ONLY = re.compile(r"(?:objective\s+)?(?:functional\s+)?(?:improvement|gains?|benefit|progress)s?$", re.I)
_UNRECORDED_AFTER = re.compile(
    r"[^.;:]{0,80}?\b(?:was|were|is|are|has been|have been)\s+not\s+(?:been\s+)?(?:objectively\s+)?"
    r"(?:quantified|documented|recorded|reported|described|measured|provided|noted)\b",
    re.I,
)
#: A phrase that says it is of now ("can now vacuum", "currently working"): no earlier time reaches it.
_NOW_INSIDE = re.compile(r"\b(?:now|currently)\b", re.I)
#: A phrase that denies itself ("no evidence of radiculopathy", "the MRI shows no disc herniation", "the home
#: exercise program has not been without benefit", "CURES has not been checked"); "cannot be ruled out" is a
#: suspicion.
_INNER_NEGATION = re.compile(
    r"\b(?:no|not|without) (?:any )?(?:evidence|signs?|findings?|indication) (?:of|for)\b"
    # ("UDS negative for illicit drugs", "UDS negative for opioids, as expected", "negative for all substances,
    # consistent": a screen done)
    r"|\bnegative for\b(?! illicit| non-?prescribed| all\b)(?![^.;]{0,30}\b(?:as expected|consistent(?! with))\b)"
    r"|(?<!\bbe )(?<!\bnot )(?<!\bnot been )\bruled out\b"  # ("fracture not ruled out" is a suspicion)
    r"|\bnot (?:consistent with|diagnostic of|indicative of|suggestive of)\b"
    # ("with no relief" is a failure's own words, no denial of it)
    r"|\b(?:shows?|showed|demonstrat\w*|reveal\w*|noted|with)\s+no\b(?!\s+(?:lasting\s+|significant\s+|meaningful\s+|"
    r"durable\s+|further\s+)?(?:relief|benefit|improvement|change|help|progress|gains?|difference|response)\b)"
    r"|\b(?:no|without) (?:an? |any )?(?:(?:canal|central|spinal) (?:or|and) )?(?:disc|nerve root|root|foraminal)\b"
    # ("the PT has not been without benefit" denies a failure; "the MRI is not without findings" denies nothing)
    r"|\bnot (?:been )?without (?:any |some )?(?:\w+ )?(?:benefit|improvement|relief|help|effect|success|gains?|change|"
    r"progress|results?)\b|\bnot been (?:checked|reviewed|done|performed|obtained|run)\b",
    re.I,
)
#: Words that credit what follows them: "improved after the injections", "better with medications".
#: Words that ascribe a change to something: credited to what they name even where the lexicon knows no treatment
#: there ("attributed to the work-conditioning program rather than to the TENS" credits nothing to the TENS).
_ASCRIBING = (
    r"(?:credited|attributed)(?: by [\w ]{1,25}?)? to|attributes? (?:it |them |this )?to|thanks to|owing to|because of"
    r"|credits|crediting"
    # "gains she dates to starting Cymbalta", "which she puts down to the weight loss"
    r"|dates? to|dated to|puts? (?:it |them |this )?down to"
    # "attributes her improved sitting to the acupuncture": what it credits follows the change (``_CREDITS``)
    r"|attributes|attributing"
)
_ASCRIBED = re.compile(_ASCRIBING, re.I)
_CREDITED_TO = re.compile(rf"\b(?:{_ASCRIBING}|after|since|with|from|following|followed|due to|in response to|through|"
                          rf"on|using|by)\b", re.I)  # fmt: skip
#: Facts whose phrase names the treatment it is about: "six PT visits were certified" approved physical therapy,
#: whatever else the sentence names.
_OWN_TREATMENT = frozenset({"earlier_approval"})
#: Facts whose phrase may name a drug it is not about: "cut her Norco from 6 a day to 3" (a phrase of less
#: medication) is improvement from whatever let her cut it, never from the Norco.
_NOT_ITS_OWN = frozenset({"functional_improvement"})
#: The words of less medication, that make a phrase of such a fact name a drug it is not about.
_LESS_OF = re.compile(
    r"\b(?:cut|cutting|reduc\w*|decreas\w*|dec|lower\w*|taper\w*|wean\w*|off|stop\w*|discontinu\w*|quit|fewer|less|"
    r"half|drop|dropped)\b",
    re.I,
)
#: The key of a treatment the lexicon does not know: no request's.
_ELSEWHERE = frozenset({"elsewhere"})
#: The key of the operations ("the January arthroscopy"), which may only date care named before them.
_SURGERY = frozenset({"surgery"})
#: A crediting word that looks back to what came before it: "after which", "following which".
_WHICH = re.compile(r"\s+which\b", re.I)
#: A change of something, named after a crediting word ("with a documented decrease in", "to the increase in").
_CHANGE_OF = r"\s+(?:an?\s+|the\s+)?(?:[a-z]+\s+)?(?:{})s?\s+(?:in|of)\b"
#: A change, not a treatment, after a crediting word: "with a decrease in", "with an improvement of".
_A_CHANGE = re.compile(
    _CHANGE_OF.format("decrease|increase|reduction|improvement|change|drop|rise|gain")
    # "with less Norco use", "with fewer pain pills"
    + r"|\s+(?:less|fewer|decreased|reduced|lower)\s+(?:[A-Za-z]+\s+)?"
    r"(?:use|intake|doses?|tablets?|pills?|medications?|meds)\b"
    # "with Norco cut in half", "with her tramadol reduced to one a day"
    r"|\s+(?:(?:her|his|the)\s+)?[A-Za-z]+\s+(?:cut|reduced|decreased|halved|tapered|lowered)\s+(?:in|by|to|back|down)\b",
    re.I,
)
#: Where the treatment credited ends: "from the home exercise program rather than the chiropractic visits".
_CONTRAST = re.compile(r"\b(?:rather than|instead of|not|but|and not)\b|[,;:]", re.I)
#: A change of a drug's dose up, credited all the same: "credited to the increase in her gabapentin dose".
_MORE_OF = re.compile(_CHANGE_OF.format("increase|rise"), re.I)
#: A crediting verb whose object is the change and what it credits follows "to": "she credits her return to work to",
#: "attributes her better sitting to" (``_ATTRIBUTES``: with no "to" after the change, it credits nothing itself).
_ATTRIBUTES = re.compile(r"attributes|attributing", re.I)
_CREDITS = re.compile(rf"credits|crediting|{_ATTRIBUTES.pattern}", re.I)
_TO = re.compile(r"\bto\b", re.I)
#: A relative clause whose phrase is about what stands before it: "rather than to PT, which did not change ...".
_RELATIVE = re.compile(r",\s*which\b", re.I)
#: A statement of its own beginning after a comma: ", she has also stopped ...", ", and she is down from ...".
_NEW_SUBJECT = re.compile(rf",\s+(?:and\s+)?(?:she|he|they)\b(?!\s+(?:{_ASCRIBING}))", re.I)
_CLAUSE = re.compile(r";|:|\b(?:but|however|although|though|whereas|except|while)\b", re.I)
#: Where a statement beside a phrase begins, after it in its clause: "pain is no better and her Norco use ...".
_BESIDE = re.compile(r",|\band\s+(?:her|his|their|the|she|he|they)\b", re.I)
#: Where a statement about another injury ends: "Was on tramadol for a non-industrial fracture; now takes Norco".
_STRETCH = re.compile(r";|\b(?:but|however|although|though|whereas|while)\b", re.I)
#: A turn in a sentence: what follows it outweighs what came before ("no relief from the first, but ...").
_TURN = re.compile(r"\b(?:but|however|yet)\b", re.I)


def _cuts(marks: re.Pattern[str], text: str, start: int, end: int) -> list[int]:
    """Where ``text[start:end]`` is cut into pieces: its ends, and after each of the ``marks``."""
    return [start, *(m.end() for m in marks.finditer(text, start, end)), end]


#: A sentence opened by a concession, up to the comma that ends it ("Although she denies weakness, the EHL is
#: 4/5"): no cue reaches across that comma.
_CONCESSION = re.compile(r"\s*(?:although|though|even though|while|whereas|except for|apart from|aside from|other than|"
                         r"despite|in spite of)\b[^,;:.]{1,120},", re.I)  # fmt: skip


def _closed_before(text: str, start: int, cue: int, target: int) -> bool:
    """Whether a cue at ``cue`` stands inside parentheses (opened after ``start``, the sentence's) that close before
    ``target``: a list's note in brackets speaks of its own item ("PT x12 (no improvement), naproxen (GI upset)":
    the "no" reaches no further)."""
    opened = text.rfind("(", start, cue)
    return opened >= 0 and text.find(")", opened, cue) < 0 and text.find(")", cue, target) >= 0


#: Where a list goes on to its next item.
_NEXT_ITEM = frozenset({",", "or", "nor"})


def _ties(doc: Any) -> list[tuple[int, int]]:
    """The token spans of the words that tie a phrase to something (``TIED``) in a ConText-read doc, in order."""
    return sorted(m.modifier_span for m in doc._.context_graph.modifiers if m.category == TIED)


def _tied_away(ties: list[tuple[int, int]], cue: Any, target: Any) -> bool:
    """Whether another person named after a tie ("because of her son's addiction") is kept from a phrase by a tie
    between them ("... and manages with ibuprofen"): only someone who is a clause's subject reaches past ties ("her
    husband got relief from an epidural")."""
    first, last = sorted((cue.modifier_span[0], target.start))
    return any(t < cue.modifier_span[0] for t, _ in ties) and any(first < t < last for t, _ in ties)


#: A list entry's own sig: a dose, a frequency, "(cont)".
_SIG = re.compile(rf"\d|\b{_TIMES}\b|\b(?:cont(?:inued|inues)?|as needed)\b", re.I)
_ENTRY_END = re.compile(r"[,;]")


def _entry_of_its_own(text: str, after: int, cue_at: int, drugs_at: list[int]) -> bool:
    """Whether a drug ending at ``after`` stands in a list entry of its own, with its sig, before another drug's
    entry that a stop cue at ``cue_at`` follows ("duloxetine 60 qd (cont), ibuprofen 400 PRN, gabapentin d/c'd
    2/2024": only gabapentin stopped; not "ibuprofen, gabapentin and Norco were discontinued")."""
    cut = _ENTRY_END.search(text, after, cue_at)
    return (
        cut is not None
        and _SIG.search(text, after, cut.start()) is not None
        and any(cut.start() < at < cue_at for at in drugs_at)
    )


#: How far a parenthesis reaches around a cue inside it (characters each way).
_PAREN_REACH = 80


#: How far before its parenthesis the phrase it is about may end (characters): "gabapentin 300 mg TID (".
_ASIDE_OF = 40


def _aside_of_another(text: str, cue_at: int, start: int, end: int) -> bool:
    """Whether a cue at ``cue_at`` stands in a parenthesis about another phrase than the one at ``start:end``: a cue
    there speaks of what the parenthesis follows, not the rest of its sentence ("gabapentin 300 mg (stopped 3/2025,
    dizziness), Naprosyn 500 mg BID": the Naprosyn is taken)."""
    opened = text.rfind("(", max(0, cue_at - _PAREN_REACH), cue_at)
    if opened < 0 or ")" in text[opened:cue_at]:
        return False
    closed = text.find(")", cue_at, cue_at + _PAREN_REACH)
    if closed < 0 or "(" in text[cue_at:closed]:
        return False
    return end <= opened - _ASIDE_OF or start > closed


def _list_negated(doc: Any, ties: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The token ranges a negation reaches again past a word that tied one item of its list to something ("no pain
    radiating to the legs, numbness after sitting, or incontinence": the scope of "no" ends at "after", and
    resumes at the next item). Only a list that offers alternatives ("or", "nor") is so read: a negation is
    distributed over a disjunction, while ", and ..." may begin a statement of its own. A range ends at the next
    cue that is not such a word, or at the end of the sentence (``ties``: the doc's ``_ties``)."""
    cues = doc._.context_graph.modifiers
    if not ties:
        return []
    others = sorted(m.modifier_span[0] for m in cues if m.modifier_span not in ties)
    out = []
    for cue in cues:
        if cue.category != NEGATED or cue.direction != "FORWARD" or cue.scope_span[1] not in {s for s, _ in ties}:
            continue
        stop = next((start for start in others if start > cue.scope_span[1]), len(doc))
        if not any(doc[n].lower_ in ("or", "nor") for n in range(cue.scope_span[1], stop)):
            continue
        at = cue.scope_span[1]
        while at < stop:  # from each tie to the next item stays tied; from there to the next tie, denied
            item = next((n + 1 for n in range(at, stop) if doc[n].lower_ in _NEXT_ITEM), stop)
            tie = next((s for s, _ in ties if item <= s < stop), stop)
            if item < tie:
                out.append((item, tie))
            at = tie + 1 if tie < stop else stop
    return out


def _across_colon(text: str, doc: Any, cue: tuple[int, int], offset: int, target: int) -> tuple[str, str] | None:
    """Where a colon stands between a cue and the phrase at ``target``: the sentence's words before the cue and the
    words between the cue and the colon (None where no colon stands between)."""
    start, end = doc[cue[0]].idx + offset, doc[cue[1] - 1].idx + len(doc[cue[1] - 1]) + offset
    colon = text.find(":", end, target)
    return None if colon < 0 else (text[offset:start], text[end:colon])


def _evidence_after_colon(text: str, doc: Any, cue: tuple[int, int], offset: int, target: int) -> bool:
    """Whether a suspicion names its object before a colon and the phrase at ``target`` follows the colon: what
    comes after is the evidence for it, stated ("Concern for a progressive deficit: quadriceps strength has
    fallen to 3/5"; "Impingement suspected: Neer positive"), unlike a list the cue heads ("Rule out: fracture")."""
    colon = _across_colon(text, doc, cue, offset, target)
    return colon is not None and bool(colon[1].strip() or colon[0].strip(" \t\n-*"))


#: What a denial may say before the colon of the list it heads ("Denies any of the following: ...").
_LIST_HEAD = re.compile(r"\W*(?:(?:any|all|of|the|these|those|following|below|listed|items?)\b\W*)*", re.IGNORECASE)


def _denial_before_colon(text: str, doc: Any, cue: tuple[int, int], offset: int, target: int) -> bool:
    """Whether a denial names its object before a colon and the phrase at ``target`` follows the colon: what comes
    after is the writer's next statement ("the injection failed to help: 70% relief for four months" denies
    nothing of the relief), unlike a list the denial heads ("Denies: numbness, tingling")."""
    colon = _across_colon(text, doc, cue, offset, target)
    return colon is not None and not _LIST_HEAD.fullmatch(colon[1])


def _within_absence(text: str, match: Match, absences: Sequence[tuple[int, int]]) -> bool:
    """Whether a statement of a finding begins inside a denial of it or lies within a longer statement of its
    absence, and so stands for none ("w/o sig improvement in pain or function": not "improvement in pain or
    function"; "still unable to lift her son or sit through a movie": not "sit through a movie"; "EMG/NCS: not yet
    done": not the heading "EMG/NCS:")."""
    start, end = match.start(), match.end()
    return any(
        (a < start < b and (_DENIAL.match(text, a) or _STILL_UNABLE.match(text, a)))
        or (a <= start and end <= b and b - a > end - start)
        for a, b in absences
    )


def _windows(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """A sentence as spans of at most ``_WINDOW`` characters, cut after a clause mark where one is near."""
    out = []
    while end - start > _WINDOW:
        cut = max(text.rfind(mark, start, start + _WINDOW) for mark in (";", ",", "\n", " "))
        cut = cut + 1 if cut > start else start + _WINDOW
        out.append((start, cut))
        start = cut
    out.append((start, end))
    return out


class _Treatments:
    """The treatments named in a text's clauses, sentences and paragraph, for crediting improvement."""

    def __init__(self, text: str, sentences: list[tuple[int, int]], lexicon: Lexicon, plain: bool):
        """``sentences``: the text's sentences as the bounded windows ConText reads; ``plain``: whether ``text``
        is the copy ``scan.searchable`` made."""
        self.text, self.sentences, self.plain = text, sentences, plain
        self.starts = [first for first, _ in sentences]
        self.patterns, self.generic = lexicon.attribution_set, frozenset(lexicon.attribution)
        self._named: dict[tuple[int, ...], frozenset[str]] = {}
        self._cuts: dict[int, list[int]] = {}

    def named(self, start: int, end: int, skip: tuple[int, int] = (0, 0)) -> frozenset[str]:
        """The treatments a stretch names, the phrase at ``skip`` left out: the specific ones, else the generic
        words ("the medications")."""
        key = (start, end, *skip)
        if key not in self._named:
            piece = self.text[start : max(start, skip[0])] + " " + self.text[max(start, skip[1]) : end]
            keys = self.patterns.names_in(piece, self.plain)
            specific = keys - self.generic
            self._named[key] = frozenset(specific or keys)
        return self._named[key]

    def drugs(self, start: int, end: int) -> frozenset[str]:
        """The drugs (or medication in general) a stretch names."""
        return frozenset(k for k in self.named(start, end) if k.startswith("drug:") or k == "medication")

    def clause(self, index: int, position: int) -> tuple[int, int]:
        """The clause of sentence ``index`` that holds ``position`` (cut after ";", ":", "but", "however", ...)."""
        if index not in self._cuts:
            first, last = self.sentences[index]
            self._cuts[index] = _cuts(_CLAUSE, self.text, first, last)
        cuts = self._cuts[index]
        at = max(bisect.bisect_right(cuts, position) - 1, 0)
        return cuts[at], cuts[min(at + 1, len(cuts) - 1)]

    def turn(self, position: int) -> tuple[int, int]:
        """The sentence holding ``position`` and the turns ("but", "however", "yet") before it in that sentence."""
        index = max(bisect.bisect_right(self.starts, position) - 1, 0)
        first = self.sentences[index][0] if self.sentences else 0
        return index, sum(1 for _ in _TURN.finditer(self.text, first, position))

    def of(self, start: int, end: int) -> frozenset[str]:
        """The treatments named around the phrase at ``start:end``: its clause's, else its sentence's, else the
        nearest of the two sentences before."""
        index = bisect.bisect_right(self.starts, start) - 1
        if index < 0:
            return frozenset()
        first, last = self.sentences[index]
        clause_start, clause_end = self.clause(index, start)
        # a new statement after the phrase credits nothing to it ("pain from 7/10 to 3/10, she has also stopped
        # using ibuprofen")
        subject = _NEW_SUBJECT.search(self.text, end, clause_end)
        for credited in _CREDITED_TO.finditer(self.text, clause_start, subject.start() if subject else clause_end):
            if start <= credited.start() < end:
                continue
            relative = _RELATIVE.search(self.text, credited.end(), start) if credited.end() <= start else None
            if relative:  # "credited to the gabapentin rather than to PT, which did not change her function"
                stops = [c.end() for c in _CONTRAST.finditer(self.text, credited.end(), relative.start())]
                antecedent = self.named(stops[-1] if stops else credited.end(), relative.start())
                if antecedent:
                    return antecedent
            ascribed = _ASCRIBED.fullmatch(credited[0])
            if credited.end() <= start and _CREDITS.fullmatch(credited[0]) and not self.named(credited.end(), start):
                to = _TO.search(self.text, end, clause_end)  # "she credits her return to work to the ESI": what it
                if to:  # credits follows the phrase (not "credits the ESI with her return to work")
                    reach = min(clause_end, to.end() + 60)
                    contrast = _CONTRAST.search(self.text, to.end(), reach)
                    return self.named(to.end(), contrast.start() if contrast else reach) or _ELSEWHERE
            if _ATTRIBUTES.fullmatch(credited[0]):
                continue  # "attributes none of this to the adjustments": read as the words around it have it
            if _A_CHANGE.match(self.text, credited.end()):
                if not ascribed:
                    continue  # "with a documented decrease in medication use" credits nothing
                # "credited to the increase in her gabapentin dose" credits the gabapentin; to less of a drug, not it
                if _MORE_OF.match(self.text, credited.end()):
                    return self.named(credited.end(), min(clause_end, credited.end() + 60)) or _ELSEWHERE
                return _ELSEWHERE
            if _WHICH.match(self.text, credited.end()):  # "8 PT visits were completed, after which she ..."
                named = self.named(first, credited.start())
                if named:
                    return named
                continue
            reach = min(clause_end, credited.end() + 60)  # "after the therapy course" credits the therapy
            if credited.end() <= start:  # what it credits stands before the phrase: "since October, no change in
                reach = min(reach, start)  # function or meds" credits nothing to the meds
            contrast = _CONTRAST.search(self.text, credited.end(), reach)
            named = self.named(credited.end(), contrast.start() if contrast else reach, (start, end))
            if named == _SURGERY and credited[0].lower() == "since" and self.named(clause_start, credited.start()):
                continue  # "twenty-four PT visits since the January arthroscopy": the operation dates the care
            if named:
                return named
            if ascribed:  # "attributed to the work-conditioning program rather than ..."
                return _ELSEWHERE
        # the phrase's own part of the clause: what a later "and ..." or ", ..." names is a statement beside it
        # ("pain is no better and her Norco use is unchanged" credits nothing to the Norco)
        beside = _BESIDE.search(self.text, end, clause_end)
        clause = self.named(clause_start, beside.start() if beside else clause_end, (start, end))
        if clause:
            return clause
        # what a later clause ascribes it to: "Returned to part-time work; she attributes this to the ESI rather
        # than the chiropractic"
        ascribed = _ASCRIBED.search(self.text, clause_end, last)
        if ascribed:
            reach = min(last, ascribed.end() + 60)
            contrast = _CONTRAST.search(self.text, ascribed.end(), reach)
            return self.named(ascribed.end(), contrast.start() if contrast else reach) or _ELSEWHERE
        sentence = self.named(first, last, (start, end))
        if sentence:
            return sentence
        for before in range(index - 1, max(index - 3, -1), -1):
            earlier = self.named(*self.sentences[before])
            if earlier:
                return earlier
        return frozenset()


#: A token that is a capitals' abbreviation with its full stop ("P&S.", the "C." of "N/V/C."): spaCy keeps the stop
#: in the token, so no sentence ends there.
_CAPITALS_STOP = re.compile(r"[A-Z&/]*[A-Z]\.")


def _sentences_mended(doc: Doc) -> Doc:
    """The sentences of ``doc`` also ended after a capitals' abbreviation followed by a capitalised word ("Denies
    N/V/C. TTD since DOI"; "not P&S. Completed 12 PT"), which spaCy's sentencizer reads as one sentence; and not
    ended at a query mark standing before what it queries ("burning L foot, ? peripheral neuropathy"), which it
    reads as a question's end."""
    for before, token in itertools.pairwise(doc):
        if _CAPITALS_STOP.fullmatch(before.text) and token.text[:1].isupper() and before.whitespace_:
            token.is_sent_start = True
        elif before.text == "?" and (before.i == 0 or doc[before.i - 1].whitespace_) and token.text[:1].islower():
            token.is_sent_start = False
    return doc


def _one_sentence(doc: Doc) -> Doc:
    """``doc`` read as one sentence."""
    for token in doc:
        token.is_sent_start = token.i == 0
    return doc


def _text_mentions(source: str, text: str, lexicon: Lexicon) -> list[Mention]:
    pipeline = _pipeline(lexicon)
    nlp = pipeline.nlp
    sentencizer, context = nlp.get_pipe("sentencizer"), nlp.get_pipe("medspacy_context")
    sentences = [(s.start_char, s.end_char) for s in _sentences_mended(sentencizer(nlp.make_doc(text))).sents]
    windows = [w for start, end in sentences for w in _windows(text, start, end)]
    starts = [start for start, _ in windows]
    by_window: dict[int, list[tuple[_Target, Match]]] = {}
    copy = searchable(text)  # the text as RE2 reads it, at the same offsets
    seen, plain = (text, False) if copy is None else (copy, True)
    occurring = pipeline.occurring.names_in(seen, plain)
    # a fact's phrases are searched in two parts (those RE2 reads, those with lookaround): of their matches, as of
    # one alternation's, the leftmost stands and what overlaps it does not ("no prior EMG in": not "EMG in" too)
    taken: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
    for n, target in enumerate(pipeline.targets):
        if target.pattern.linear and str(n) not in occurring:
            continue
        for match in target.pattern.finditer(seen, plain):
            key = (target.kind, target.name, target.polarity)
            if target.kind == "finding" and any(a < match.end() and match.start() < b for a, b in taken.get(key, ())):
                continue
            taken.setdefault(key, []).append((match.start(), match.end()))
            index = bisect.bisect_right(starts, match.start()) - 1
            if index >= 0 and match.end() <= windows[index][1]:
                by_window.setdefault(index, []).append((target, match))
    absences = {key[1]: spans for key, spans in taken.items() if key[0] == "finding" and key[2] == "absent"}
    for index, matches in by_window.items():
        by_window[index] = [
            (target, match) for target, match in matches
            if not (target.kind == "finding" and target.polarity == "present"
                    and _within_absence(seen, match, absences.get(target.name, ())))
        ]  # fmt: skip
    treatments = _Treatments(seen, windows, lexicon, plain)
    found: list[Mention] = []
    for index, matches in sorted(by_window.items()):
        offset, stop = windows[index]
        # a dash between words parts clauses as a semicolon does ("she hasn't tried - she did light duty"): read so
        # by ConText, at the same offsets (the quote keeps the dash); a window lies within one sentence
        doc = _one_sentence(nlp.make_doc(_DASH.sub(lambda dash: " ;".ljust(len(dash[0])), text[offset:stop])))
        spans, labels = [], []
        for target, match in matches:
            span = doc.char_span(
                match.start() - offset, match.end() - offset, label=target.kind, alignment_mode="expand"
            )
            if span is not None:
                spans.append(span)
                labels.append((target, match))
        doc.spans[_GROUP] = spans
        doc = context(doc)
        ties = _ties(doc)
        listed = _list_negated(doc, ties)
        concession = _CONCESSION.match(text, offset, stop)
        goals = _GOALS.match(text, offset, stop)
        sentence = text[offset:stop].strip()
        quote = sentence if len(sentence) <= _QUOTE_MAX else sentence[: _QUOTE_MAX - 1] + "…"
        # the stretches of the sentence (cut at ";" and "but", "however", ...) that speak of another injury
        elsewhere = [
            (first, last) for first, last in itertools.pairwise(_cuts(_STRETCH, text, offset, stop))
            if pipeline.other_injury.search(text, first, last)
        ]  # fmt: skip
        theirs = [found.span("clause") for found in pipeline.their_clause.finditer(text, offset, stop)]
        drugs_at = [match.start() for target, match in labels if target.kind == "drug"]
        for span, (target, match) in zip(doc.spans[_GROUP], labels, strict=True):
            name, phrase = target.name, text[match.start() : match.end()]
            if target.kind == "drug":
                name = lexicon.drug_by_name[phrase.lower()].ingredient
            modifiers = {OTHER_INJURY} if any(a <= match.start() < b for a, b in elsewhere) else set()
            clause_start, clause_end = treatments.clause(index, match.start())
            clause = text[clause_start:clause_end]
            stated = clause.strip()
            told = pipeline.informant.match(stated)
            if told:
                reported = _THAT.sub("", stated[told.end() :], count=1)
                if pipeline.someone_else.match(reported) or _THEMSELVES.match(reported):
                    told = None  # "Wife reports her brother did well with a TENS unit": the brother's, as told
            shared = (
                target.kind == "finding"
                and lexicon.findings[name].shared
                and (
                    _THE_SAME.search(text, max(offset, match.start() - 40), match.start()) is not None
                    or _BY_THE_SAME.match(text, match.end()) is not None
                )
            )
            if (
                (pipeline.someone_else.match(stated) and not told) or any(a <= match.start() < b for a, b in theirs)
            ) and not shared:  # "Her son takes gabapentin; ...", "her son, who is homebound"
                modifiers.add(FAMILY)
            if _NOT_THEIRS.search(clause) or _relatives_own(text, offset, clause_start, match, pipeline.relatives):
                modifiers.add(FAMILY)  # "the MRI in the file belongs to a different claimant"
            denied_at = match.start()  # where the phrase's denial begins ("no UDS, CURES report or agreement")
            for m in span._.modifiers:
                if (told or shared) and m.category == FAMILY:
                    continue  # "her husband reports that she ...": he tells, she has it; "in the same collision"
                if m.category == FAMILY and _tied_away(ties, m, span):
                    continue  # "refuses opioids because of her son's addiction and manages with ibuprofen": hers
                cue_at = doc[m.modifier_span[0]].idx + offset
                if m.category == FAMILY and _DONE_FOR.search(text, max(offset, cue_at - 60), cue_at):
                    continue  # "lifts her grandson and is back to 8-hr shifts": her lifting, her shifts
                if (
                    m.category == DISCONTINUED
                    and target.kind == "drug"
                    and cue_at >= match.end()
                    and _entry_of_its_own(text, match.end(), cue_at, drugs_at)
                ):
                    continue  # "ibuprofen 400 PRN, gabapentin d/c'd": the stop is gabapentin's
                if m.category == DISCONTINUED and _aside_of_another(text, cue_at, match.start(), match.end()):
                    continue  # "gabapentin (stopped 3/2025), Naprosyn BID": the stop is the gabapentin's
                if (
                    m.category == NEGATED
                    and target.polarity == "absent"
                    and (
                        "," in text[doc[m.modifier_span[1] - 1].idx + offset : match.start()]
                        or "," in text[match.end() : cue_at]
                    )
                ):
                    # "no numbness in the feet, monofilament intact", "sensation intact, ..., Spurling negative": a
                    # list's denial, not of a normal finding
                    continue
                if concession and (cue_at < concession.end()) != (match.start() < concession.end()):
                    continue
                if m.category == POSSIBLE and _evidence_after_colon(text, doc, m.modifier_span, offset, match.start()):
                    continue
                if m.direction == "FORWARD" and _closed_before(text, offset, cue_at, match.start()):
                    continue
                if (
                    m.category == NEGATED
                    and m.direction == "FORWARD"
                    and _denial_before_colon(text, doc, m.modifier_span, offset, match.start())
                ):
                    continue
                if (
                    m.category == NEGATED
                    and m.direction == "FORWARD"
                    and cue_at < match.start()
                    and _OWN_CLAUSE.match(text, match.start(), match.end())
                    and _AND_BEFORE.search(text, cue_at, match.start())
                ):
                    continue  # "cannot climb stairs and flexion remains limited to 90": a clause of its own
                if (
                    m.category == NEGATED
                    and m.direction == "BIDIRECTIONAL"
                    and m.modifier_span[0] >= span.end
                    and _NEW_PREDICATE.search(text, offset, cue_at)
                ):
                    continue  # "uses Aleve occasionally and has never been on opioids": the denial looks ahead
                if (
                    m.category == NEGATED
                    and target.kind == "finding"
                    and lexicon.findings[name].lasting
                    and _RESOLVED.search(doc[m.modifier_span[0] : m.modifier_span[1]].text)
                ):
                    continue  # "R CTR 2019, numbness resolved": the symptom resolved, the release stays done
                if m.category == NEGATED and target.polarity == "present" and _SELF_DENIED.search(phrase):
                    continue  # "no early refills and UDS has never been inconsistent": each denial is its own
                if m.category == NEGATED and _effect_denied(
                    text, target.kind, doc[m.modifier_span[1] - 1].idx + offset, match.start()
                ):
                    continue  # "denies sedation on the GBP": the effect denied, the drug taken
                if m.category == NEGATED and target.kind == "therapy":
                    effect = _NEITHER_EFFECT.match(text, cue_at)
                    if effect and match.end() <= effect.end():
                        continue  # "neither PT nor acupuncture helped": both were had
                if (
                    m.category in (HYPOTHETICAL, CONDITIONAL)
                    and target.kind == "finding"
                    and any(
                        re.search(kept, text[max(offset, match.start() - _KEEPS_REACH) : match.end()], re.I)
                        for kept in lexicon.findings[name].kept
                    )
                ):
                    continue  # "will stay on modified duty pending the MRI", "a repeat MRI": the plan keeps what is
                # a cue inside the phrase itself ("return" in "return to work") modifies nothing; one that only
                # begins in it ("is requested" after "MRI of the spine is") does
                if m.modifier_span[0] >= span.start and m.modifier_span[1] <= span.end:
                    continue
                backward = m.direction == "BACKWARD" and m.modifier_span[0] >= span.end
                modifiers.add(REQUESTED if m.category == HYPOTHETICAL and backward else m.category)
                if m.category == NEGATED:
                    denied_at = min(denied_at, cue_at)
            if goals:
                modifiers.add(CONDITIONAL)  # "Target for next visit: cut Norco to 2 a day"
            if name not in _OWN_TREATMENT and _DECIDED_ON.search(text, max(offset, match.start() - 50), match.start()):
                modifiers.add(HYPOTHETICAL)
            if target.kind in ("drug", "drugclass"):
                switched = _SWITCHED_FROM.search(text[max(0, match.start() - 40) : match.start()])
                never = target.kind == "drug" and _NEVER_TAKEN.search(
                    text, max(offset, match.start() - 60), match.start()
                )
                if (
                    _FREE_OF.match(text, match.end())
                    or switched
                    or never
                    or (
                        _OFF_BEFORE.search(text, max(0, match.start() - 16), match.start())
                        and _OFF_SINCE.match(text, match.end())
                    )
                    or _STOPPED_AFTER.match(text, match.end())
                ):
                    modifiers.add(NEGATED if target.kind == "drugclass" else DISCONTINUED)
                if _WHILE_ON_THEN.search(text, max(offset, match.start() - 60), match.start()):
                    modifiers.add(HISTORICAL)  # "GI bleed in 2012 while on naproxen"
                if _STILL_AFTER.match(text, match.end(), stop):
                    modifiers.discard(HISTORICAL)
                if _CONTINGENT_AFTER.match(text, match.end(), stop):
                    modifiers.add(CONTINGENT)
                part = max(text.rfind(";", offset, match.start()) + 1, offset)  # the drug's part of its sentence
                if (
                    _CONTINUED.search(text, max(part, match.start() - _NEAR), match.start())
                    or _CONTINUED_AFTER.match(text, match.end(), stop)
                    or _CONTINUED_LIST.search(text, max(part, match.start() - _LIST_REACH), match.start())
                ):
                    modifiers.add(CONTINUED)
            # "no numbness after sitting, weakness, or incontinence"; not "no problems with constipation or sedation
            # on Percocet" (the effect denied, the drug taken)
            reached = next((first for first, last in listed if first <= span.start and span.end <= last), None)
            if reached is not None and not _effect_denied(text, target.kind, doc[reached].idx + offset, match.start()):
                modifiers.add(NEGATED)
            if (
                target.kind == "diagnosis"
                and HYPOTHETICAL in modifiers
                and _INDICATION_BEFORE.search(text, max(offset, match.start() - 40), match.start())
            ):
                modifiers.discard(HYPOTHETICAL)  # "requesting Mobic for R knee OA": what a request is for is stated
            # a presence stated in words of denial, denied again, holds: "not without side effects"
            twice = target.polarity == "present" and _DENIAL.match(phrase) is not None
            if (
                (_DENIED_BEFORE.search(text, max(0, match.start() - 40), match.start()) and not twice)
                or (target.polarity == "present" and _NONE_AFTER.match(text, match.end()))
                or (
                    target.polarity == "absent"
                    and (
                        _DOUBLE_INSIDE.search(phrase)
                        or _UNTRUE_BEFORE.search(text, max(offset, match.start() - 80), match.start())
                    )
                )
            ):  # "has not failed to help", "no prior MRI", "Prior imaging: none", "not unremarkable"
                if target.kind == "therapy" and _UNTRUE_BEFORE.search(text, max(offset, match.start() - 80),
                                                                      match.start()):  # fmt: skip
                    modifiers -= {NEGATED, UNSAID}  # "it is not the case that the pt never had PT": he had it
                else:
                    modifiers.add(DENIED_JUST_BEFORE)
            # the regions of the phrase's own clause ("24 PT visits for the shoulder; none for the low back")
            regions = frozenset(lexicon.regions_in(seen[clause_start:clause_end], plain))
            sides = frozenset() if regions.isdisjoint(lexicon.sided_regions) else lexicon.sides_in(clause)
            if pipeline.record.search(phrase) or (
                (NEGATED in modifiers or target.polarity == "absent")
                and (
                    _DOCUMENTED_AFTER.match(text, match.end())
                    or any(_RECORDS_SAY.search(text, max(offset, at - 40), at) for at in {match.start(), denied_at})
                )
            ):
                modifiers.add(RECORD)  # "... in the records reviewed"; "No TENS trial is documented in the file"
            if target.polarity == "present" and _INNER_NEGATION.search(phrase):
                modifiers.add(DENIED_INSIDE)  # "EMG showed no evidence of radiculopathy": the phrase denies itself
            if _NAMED_ONLY.match(phrase) and _UNRECORDED_AFTER.match(text, match.end()):
                modifiers.add(RECORD)  # "functional gains from the prior 12 visits were not quantified"
            if (
                RECORD in modifiers
                and target.kind == "finding"
                and target.polarity == "present"
                and lexicon.findings[name].study
                and _REFERENCED.search(clause)
            ):
                modifiers.discard(RECORD)  # "the MRI report referenced by the PTP was not submitted": it was done
            if RECORD in modifiers and target.kind == "drug" and _TAKEN_AFTER.match(text, match.end()):
                modifiers.discard(RECORD)  # "the note does not address side effects of the tapentadol she takes"
            if target.kind == "therapy":  # care had, whatever is denied or asked of it
                before = max(0, match.start() - 80)
                if _OUTCOME_OF.search(text, before, match.start()):
                    modifiers -= {RECORD, NEGATED}  # "no information on the outcome of the prior ESI"
                if _ASKED_OF_HAD.search(text, before, match.start()):
                    modifiers -= {RECORD, NEGATED, CONDITIONAL}  # "not stated whether the prior PT helped"
                near = max(0, match.start() - 40)
                if _COUNTED_SPAN.search(text, near, match.start()) or _NOR_ASKS.search(text, near, match.start()):
                    modifiers -= {NEGATED}  # "not changed over the 12 PT sessions", "nor is chiropractic new to her"
                if _ATTENDED_AFTER.search(text, match.end(), clause_end):
                    modifiers.discard(REQUESTED)  # "acupuncture x6 was certified and has been completed"
                elif _NEVER_HAD_AFTER.match(text, match.end(), stop):
                    modifiers -= {REQUESTED, HYPOTHETICAL, REVIEWED}  # "approved by UR in 2023 but never given"
                    modifiers.add(NEGATED)
            if HISTORICAL in modifiers and _NOW_INSIDE.search(phrase):
                modifiers.discard(HISTORICAL)  # "two dozen sessions in 2023 and can now vacuum": said of now
            if UNSAID in modifiers:  # "it cannot be said that the trial failed": the absence withdrawn
                modifiers.discard(UNSAID)
                if target.polarity == "absent":
                    modifiers.add(NEGATED)
                elif target.kind == "therapy":  # "it's not that she hasn't responded to PT": the PT was had
                    modifiers.discard(NEGATED)
            if target.stated:
                modifiers.add(STATED)
            if REVIEWED in modifiers:  # "UR: 'has completed 24 PT sessions'" stands; "UR: 'no deficit'" is silence,
                modifiers.discard(REVIEWED)  # unless passed on from the patient ("the claimant reported no relief")
                if (modifiers & {NEGATED, DENIED_JUST_BEFORE, DENIED_INSIDE} or target.polarity == "absent") and (
                    RECORD in modifiers or not _REPORTED.search(text, clause_start, clause_end)
                ):
                    modifiers.add(RECORD)
            found.append(
                Mention(
                    kind=target.kind,
                    name=name,
                    polarity=target.polarity,
                    modifiers=frozenset(modifiers),
                    sentence=quote,
                    regions=regions,
                    sides=sides,
                    source=source,
                    start=match.start(),
                    end=match.end(),
                    treatments=(treatments.named(match.start(), match.end()) if name in _OWN_TREATMENT else None)
                    or treatments.of(match.start(), match.end()),
                    turn=treatments.turn(match.start()),
                    spares=treatments.drugs(match.start(), match.end())
                    if name in _NOT_ITS_OWN and _LESS_OF.search(phrase)
                    else frozenset(),
                    said=phrase,
                )
            )
    found += _measures(source, text, lexicon, pipeline, treatments)
    return _respared(_anaphora(found))


def _respared(found: list[Mention]) -> list[Mention]:
    """The mentions with a change credited only to drugs its sentence says were cut for it credited to what let
    them be cut: "VAS 8/10 -> 5/10 and Motrin decreased to PRN", "pain from 7 down to 4 and she has cut her
    Norco" (after acupuncture) are the acupuncture's, not the drug's."""
    sparing = [m for m in found if m.spares and m.treatments]
    if not sparing:
        return found
    out = []
    for m in found:
        cut = next((s for s in sparing if s is not m and s.source == m.source and s.sentence == m.sentence
                    and m.treatments and m.treatments <= s.spares), None)  # fmt: skip
        out.append(m if cut is None else replace(m, treatments=cut.treatments))
    return out


def _anaphora(found: list[Mention]) -> list[Mention]:
    """The mentions with each phrase that stands for something named before it in its sentence read for it:
    a "none" denies the treatment named last ("ten visits were authorized, but she has attended none"; "a course
    for the neck; none so far for the low back"), for the regions of its own clause if it names any; "stopped
    taking it", "never filled it", "declined them" stop the drug named last ("gabapentin was prescribed, but
    she never filled it")."""
    out = [m for m in found if m.kind not in _STANDS_FOR]
    for m in found:
        kinds = _STANDS_FOR.get(m.kind)
        if kinds is None:
            continue
        # a "never tried one herself" may look back to the sentence before ("Her son had acupuncture. She has
        # never tried it herself.")
        reach = (m.turn[0], m.turn[0] - 1) if m.kind == NEVER_HAD_IT else ()
        before = [n for n, t in enumerate(out) if t.kind in kinds and t.source == m.source and t.end <= m.start
                  and (t.sentence == m.sentence or t.turn[0] in reach)
                  and t.name != "*"]  # "it" is the drug, not the medication list naming it  # fmt: skip
        if not before:
            continue
        last = max(before, key=lambda n: out[n].end)
        if m.kind in (NONE, NEVER_HAD_IT):
            out.append(replace(out[last], modifiers=m.modifiers | {NEGATED}, regions=m.regions or out[last].regions,
                               sentence=m.sentence, start=m.start, end=m.end, treatments=frozenset()))  # fmt: skip
        else:
            out[last] = replace(out[last], modifiers=out[last].modifiers | {DISCONTINUED})
    return out


def _measures(source: str, text: str, lexicon: Lexicon, pipeline: _Pipeline, treatments: _Treatments) -> list[Mention]:
    """Pain scores before and after ("pain 8/10 -> 4/10"): a fall is pain relief, and improvement (inferred).
    Scores on and off medication ("8/10 without and 4/10 with medications"): lower on it is pain relief.
    Functional measures before and after ("ODI 42% -> 28%", "LEFS 38 -> 55"): a change for the better is
    functional improvement, stated."""
    out = []

    def mention(
        match: re.Match[str], fact: str, polarity: Literal["present", "absent"], *, inferred: bool = False
    ) -> Mention:
        sentence_start = text.rfind(".", max(0, match.start() - _WINDOW), match.start()) + 1
        start = sentence_start or match.start()
        stop = text.find(".", match.end(), match.end() + _WINDOW)
        sentence = text[start : stop + 1 if stop >= 0 else match.end()].strip()[:_QUOTE_MAX]
        modifiers = frozenset({INFERRED}) if inferred else frozenset()
        if _AIMED_BEFORE.search(text, sentence_start, match.start()):
            modifiers |= {HYPOTHETICAL}
        return Mention("finding", fact, polarity, modifiers, sentence, frozenset(), source, match.start(),
                       match.end(), treatments.of(match.start(), match.end()),
                       treatments.turn(match.start()))  # fmt: skip

    changes = (match for pattern in lexicon.measures.pain_change for match in re.finditer(pattern, text, re.I))
    for match in changes:
        before, after = to_int(match["before"]), to_int(match["after"])
        if before is None or after is None or before > 10 or after > 10:
            continue
        polarity: Literal["present", "absent"] = "present" if after < before else "absent"
        out.append(mention(match, "pain_relief", polarity))
        if polarity == "present":
            out.append(mention(match, "functional_improvement", polarity, inferred=True))
    for pattern in lexicon.measures.pain_on_off:
        for match in re.finditer(pattern, text, re.IGNORECASE):
            on, off = to_int(match["on"]), to_int(match["off"])
            if on is not None and off is not None and on <= 10 and off <= 10:
                out.append(mention(match, "pain_relief", "present" if on < off else "absent"))
    for measure, falls in pipeline.function_changes:
        for match in measure.finditer(text):
            before, after = to_int(match["before"]), to_int(match["after"])
            if before is None or after is None:
                continue
            better = (before - after if falls else after - before) >= lexicon.measures.meaningful_change * before > 0
            out.append(mention(match, "functional_improvement", "present" if better else "absent"))
    return out


def finding(
    fact: str,
    found: Sequence[Mention],
    lexicon: Lexicon | None = None,
    *,
    region: str | None = None,
    side: str | None = None,
    credit: frozenset[str] | None = None,
    past: bool = False,
) -> Finding:
    """A fact's status from the mentions: stated present, stated absent, or unknown (with the lexicon's rule
    for both at once). For a request about ``region`` (on ``side``), the finding's region rule says which
    mentions count; with ``credit`` (the request's treatment keys), a mention counts only when it names no
    treatment or one of them (improvement after acupuncture says nothing of physical therapy). With ``past``
    (care repeated on what the last one did: an injection), what a mention credits to the requested care counts
    however long ago ("an L5-S1 epidural in 2022 gave 60% relief")."""
    lexicon = lexicon or mappings()[LEXICON]
    rule = lexicon.findings[fact]
    # what is not said of this patient now, less what the fact holds stated all the same (the record's own words,
    # another injury's)
    stated_anyway = {RECORD} if rule.of_the_record else set()
    not_stated = _NOT_STATED - stated_anyway - ({OTHER_INJURY} if rule.any_injury else set())
    present: list[Mention] = []
    absent: list[Mention] = []
    credited_elsewhere = False  # a gain stated of other care outweighs one inferred of this care
    planned_anyway = rule.of_the_record or rule.planned  # what the record's or a plan's words state stands too
    for m in found:
        # what the record says of requests is no request itself ("a duplicate of the 2/3 request, which was approved")
        if m.kind != "finding" or m.name != fact or (HYPOTHETICAL in m.modifiers and not planned_anyway):
            continue
        if m.modifiers & not_stated:
            continue
        if region and not lexicon.bears_on(region, m.regions, rule.region, side, m.sides):
            continue
        if rule.study and m.polarity == "present":  # done whatever it found; "no prior MRI" says it was not
            if DENIED_JUST_BEFORE in m.modifiers:
                absent.append(m)
            elif REQUESTED not in m.modifiers and (rule.suspected or POSSIBLE not in m.modifiers):
                present.append(m)
            continue
        if rule.assessed and m.polarity == "present":  # asked about, whatever the answer
            present.append(m)
            continue
        if STATED in m.modifiers:  # "cannot finish a full shift" is work all the same
            if not m.modifiers & {POSSIBLE, REQUESTED}:
                present.append(m)
            continue
        if POSSIBLE in m.modifiers and not rule.suspected:
            continue
        if credit is not None and ((m.treatments and not m.treatments & credit) or m.spares & credit):
            credited_elsewhere |= m.polarity == "present" and not m.modifiers & {INFERRED, NEGATED, DENIED_JUST_BEFORE}
            continue
        if m.polarity == "absent":
            if DENIED_JUST_BEFORE in m.modifiers:  # denied twice ("not without benefit"), it holds
                present.append(m)
            elif NEGATED not in m.modifiers:  # an absence phrase carries its own negation
                absent.append(m)
        elif m.modifiers & {NEGATED, DENIED_INSIDE, DENIED_JUST_BEFORE}:  # "no history of cancer", "not unable to walk"
            absent.append(m)
        elif rule.history or HISTORICAL not in m.modifiers or (past and credit is not None and m.treatments & credit):
            present.append(m)
    # what is stated outweighs what is inferred ("pain 8 -> 5 on the patch; the gain in walking she credits to PT")
    if credited_elsewhere or any(INFERRED not in m.modifiers for m in [*present, *absent]):
        present = [m for m in present if INFERRED not in m.modifiers]
    if present and absent and rule.conflict == "unknown":
        last_word = _after_the_turn(present, absent)
        if last_word is not None:
            return _settled(fact, *last_word)
        return Finding(fact=fact, status="unknown", quote=f"{present[0].sentence} / {absent[0].sentence}",
                       source=present[0].source)  # fmt: skip
    return _settled(fact, present, absent)


def _after_turn_first(early: list[Mention], late: list[Mention]) -> bool:
    return max(m.turn for m in early) < min(m.turn for m in late)


def _after_the_turn(present: list[Mention], absent: list[Mention]) -> tuple[list[Mention], list[Mention]] | None:
    """Statements both ways in one sentence, all of one side after a turn that all of the other precedes ("the
    first injection gave no relief, but after the second her pain fell"): the side after the turn, as
    ``(present, absent)``; else None (the conflict stands)."""
    both = [*present, *absent]
    if len({(m.source, m.turn[0]) for m in both}) != 1:
        return None
    if _after_turn_first(absent, present):
        return present, []
    if _after_turn_first(present, absent):
        return [], absent
    return None


def _settled(fact: str, present: list[Mention], absent: list[Mention]) -> Finding:
    """Present on the first mention that states it, else absent on the first that denies it, else unknown."""
    if present:
        return present[0].finding(fact, "present")
    if absent:
        return absent[0].finding(fact, "absent")
    return Finding(fact=fact, status="unknown")


def therapy_finding(
    therapies: Collection[str],
    found: Sequence[Mention],
    *,
    region: str | None,
    side: str | None = None,
    fact: str,
    lexicon: Lexicon | None = None,
    denying: Collection[str] = (),
) -> Finding:
    """Whether earlier care of a kind is documented for this injury and region: a course given (present),
    stated as never given (absent: "has not had physical therapy"), or unknown. Plans, requests,
    recommendations, other people, other injuries and other body regions do not count. ``denying``: care named
    in general that counts only when denied ("no injections to date")."""
    lexicon = lexicon or mappings()[LEXICON]
    present: list[Mention] = []
    absent: list[Mention] = []
    for m in found:
        if m.kind != "therapy" or not m.counts:
            continue
        denied = NEGATED in m.modifiers  # "no injections to date"
        if m.name not in therapies and not (m.name in denying and denied):
            continue
        if region and not lexicon.bears_on(region, m.regions, lexicon.therapy_by_name[m.name].region, side, m.sides):
            continue
        if m.modifiers & {POSSIBLE, HYPOTHETICAL, REQUESTED}:
            continue
        if denied and re.search(rf"\bno (?:other|additional|more) {re.escape(m.said)}", m.sentence, re.I):
            continue  # "a single Kenalog injection last spring; no other injections": one was had
        (absent if denied else present).append(m)
    return _settled(fact, present, absent)


def _beside_count(found: Sequence[Mention], source: str, fact: TreatmentFact) -> list[Mention]:
    """The care mentions of the sentence a count was read in."""
    return [m for m in found if m.kind == "therapy" and m.source == source and fact.text in _text.collapse(m.sentence)]


def others_count(found: Sequence[Mention], source: str, fact: TreatmentFact) -> bool:
    """Whether a count is of someone else's care or another injury's, by the care its sentence names, that care
    itself where named ("his wife says 10 chiropractic sessions helped her own back"; "in 2019, for a non-industrial
    strain, she had 10 PT visits"; not "her daughter failed PT; she herself has done 2 of 8 visits")."""
    beside = _beside_count(found, source, fact)
    named = [m for m in beside if m.name == fact.therapy] or beside
    return bool(named) and all(m.modifiers & {FAMILY, OTHER_INJURY} for m in named)


def course_counted(
    therapies: Collection[str],
    found: Sequence[Mention],
    counts: Sequence[tuple[str, str, TreatmentFact]],
    *,
    region: str | None,
    side: str | None = None,
    lexicon: Lexicon | None = None,
) -> tuple[Finding, int] | None:
    """Earlier care of a kind read from a count of it stated as had, where no mention alone says it was given
    ("Sixteen sessions of PT were authorized; she has attended eleven"; "Two dozen PT visits were authorized and
    completed"): the finding and the count. ``counts``: (source, its text, a count ``treatment_history`` read
    there). The care named in the count's sentence must be this patient's, this injury's and this region's, and
    not denied nor the record's silence."""
    lexicon = lexicon or mappings()[LEXICON]
    for source, text, fact in counts:
        if fact.therapy not in therapies or not fact.count:
            continue
        there = _beside_count(found, source, fact)
        at = text.find(fact.text)
        # the record silent on what came of a course it counts as had: "no documentation of the outcome of the
        # prior 8 acupuncture treatments", "gains from the 12 chiropractic visits to date were not documented"
        had = at >= 0 and _HAD_COUNT.search(text, max(0, at - 16), at + len(fact.text) + 12) is not None
        if any(
            m.modifiers & (_NOT_STATED - ({RECORD} if had else set()) | {NEGATED, DENIED_JUST_BEFORE})
            or (
                region
                and not lexicon.bears_on(region, m.regions, lexicon.therapy_by_name[m.name].region, side, m.sides)
            )
            for m in there
        ):
            continue
        where = (at, at + len(fact.text)) if at >= 0 else (None, None)
        quote = there[0].sentence if there else fact.text
        found_course = Finding(fact="prior_same_therapy", status="present", quote=quote, source=source,
                               start=where[0], end=where[1])  # fmt: skip
        return found_course, fact.count
    return None


def diagnosed(group: str, found: Sequence[Mention], *, suspected: bool = False) -> bool:
    """Whether a diagnosis group is stated as the patient's: not negated, ruled out, planned to be looked for,
    someone else's or the record's silence, and not only suspected unless ``suspected`` (a history of it still
    counts, unless its sentence says it is over)."""
    # a diagnosis from another injury is still the patient's ("diabetic neuropathy, non-industrial")
    excluded = {NEGATED, DENIED_INSIDE, DENIED_JUST_BEFORE, HYPOTHETICAL, CONDITIONAL, FAMILY, RECORD} | (
        set() if suspected else {POSSIBLE}
    )
    return any(
        m.kind == "diagnosis" and m.name == group
        # a differential with its work-up to come is suspected ("neuropathy vs radiculopathy -- workup pending")
        and not m.modifiers & (excluded - ({HYPOTHETICAL} if suspected and POSSIBLE in m.modifiers else set()))
        and not (HISTORICAL in m.modifiers and _RESOLVED.search(m.sentence))
        for m in found
    )  # fmt: skip


#: What says a past state is over: a diagnosis ("h/o L CTS s/p release 2018, now asymptomatic" is no diagnosis now),
#: and the cues that cannot deny a lasting finding ("R CTR 2019, numbness resolved").
_RESOLVED = re.compile(r"\b(?:resolved|resolution|asymptomatic|recovered)\b", re.I)


#: A drug stopped and taken again: in use ("back on modified duty" resumes no drug; "will be resumed after the
#: procedure" is not yet).
_RESUMED = re.compile(
    r"(?<!\bnot )(?<!\bnever )(?<!\bnot been )(?<!\bbe )(?<!\bhave it )(?<!\bget it )(?<!\bwants it )\b"
    r"(?:resumed|restarted|back on(?!\s+(?:\w+\s+)?(?:duty|work|shifts?)\b))\b",
    re.I,
)


def drugs_in_use(found: Sequence[Mention]) -> list[Mention]:
    """Drug and drug-class mentions that say the drug is taken now: not negated, planned, requested, stopped,
    tried in the past or someone else's (a refill or a drug continued is taken)."""
    stopped = {NEGATED, HISTORICAL, DISCONTINUED, POSSIBLE}
    resumable = {DISCONTINUED, HISTORICAL}  # "held before surgery and resumed", "was on it years ago, restarted"
    planned = {HYPOTHETICAL, REQUESTED}
    # a drug continued on a condition is taken now ("if the UDS is consistent, continue Norco")
    kept = _NOT_STATED - {CONDITIONAL}
    # a drug its sentence says was stopped is not taken by the same name's other words there ("switched from Norco
    # to Percocet d/t inadequate relief w/ the Norco"), unless they say it is taken now ("currently", "continues")
    ended = {(m.source, m.sentence, m.said.lower()) for m in found
             if m.kind == "drug" and DISCONTINUED in m.modifiers and not m.modifiers & (planned | {CONDITIONAL})
             and not _RESUMED.search(m.sentence)}  # fmt: skip
    return [
        m for m in found
        if m.kind in ("drug", "drugclass") and (m.counts or (CONTINUED in m.modifiers and not m.modifiers & kept))
        and (not m.modifiers & stopped or (m.modifiers & stopped <= resumable and _RESUMED.search(m.sentence)))
        and (not m.modifiers & planned or CONTINUED in m.modifiers)
        and ((m.source, m.sentence, m.said.lower()) not in ended or m.modifiers & {CURRENT, CONTINUED})
    ]  # fmt: skip


def stopped_drugs(found: Sequence[Mention], taken: Sequence[Mention]) -> list[Mention]:
    """Drug mentions that say the patient has stopped taking the drug and are not among ``taken`` (the
    ``drugs_in_use`` of the same mentions: a drug stopped and resumed is taken)."""
    resumed = {id(m) for m in taken}
    return [
        m for m in found if m.kind == "drug" and m.counts and DISCONTINUED in m.modifiers and id(m) not in resumed
    ]  # fmt: skip


def drugs_planned(found: Sequence[Mention]) -> list[Mention]:
    """Drug mentions in a plan or request ("will start tramadol", "a trial of Norco is requested"), not one planned
    on a condition after it ("add naproxen if he flares")."""
    plans = {HYPOTHETICAL, REQUESTED, CONDITIONAL}
    not_planned = {NEGATED, FAMILY, OTHER_INJURY, RECORD, CONTINGENT}
    return [m for m in found if m.kind == "drug" and m.modifiers & plans and not m.modifiers & not_planned]
