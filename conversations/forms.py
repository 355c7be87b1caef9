"""The conversation settings form; its limits come from realtime/options.py."""
from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import VoicePreferences
from .realtime import options
from .realtime.options import Preferences

# The presets' titles, marked here for translation because options.py has no Django imports.
PRESET_TITLES = [_("Friendly assistant"), _("Language tutor"), _("Interview practice"), _("Concise expert")]

EAGERNESS_CHOICES = [
    ("auto", _("Automatic")),
    ("low", _("Low: lets me finish long thoughts")),
    ("medium", _("Medium")),
    ("high", _("High: answers as soon as I pause")),
]
TRANSCRIPTION_CHOICES = [(m, m) for m in options.TRANSCRIPTION_MODELS]  # OpenAI; Azure gets its deployment
LANGUAGE_CHOICES = [("", _("Any (follow me)"))] + [
    ("en", _("English")),
    ("es", _("Spanish")),
    ("de", _("German")),
    ("fr", _("French")),
    ("it", _("Italian")),
    ("pt", _("Portuguese")),
    ("nl", _("Dutch")),
    ("pl", _("Polish")),
    ("ja", _("Japanese")),
    ("zh", _("Chinese")),
]


def _number(kind: type[forms.Field], bounds: tuple[float, float], label: Any, help_text: Any = "", **kwargs: Any) -> forms.Field:
    low, high = bounds
    return kind(
        label=label,
        min_value=low,
        max_value=high,
        help_text=help_text,
        widget=forms.NumberInput(attrs={"min": low, "max": high, **kwargs.pop("attrs", {})}),
        **kwargs,
    )


class PreferencesForm(forms.Form):
    """Validate a user's conversation settings for the configured dialect."""

    voice = forms.ChoiceField(label=_("Voice"), help_text=_("Fixed once the assistant has spoken in a conversation."))
    instructions = forms.CharField(
        label=_("Instructions"),
        required=False,
        max_length=options.INSTRUCTIONS_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=_("Who the assistant should be and how it should answer."),
    )
    turn_detection = forms.ChoiceField(label=_("Taking turns"), choices=VoicePreferences.TurnDetection.choices)
    vad_threshold = _number(
        forms.FloatField, options.VAD_THRESHOLD, _("Speech threshold"),
        _("Higher ignores more background noise; lower hears quiet voices."), attrs={"step": 0.05},
    )
    silence_duration_ms = _number(
        forms.IntegerField, options.SILENCE_DURATION_MS, _("Silence before answering (ms)"), attrs={"step": 50}
    )
    prefix_padding_ms = _number(
        forms.IntegerField, options.PREFIX_PADDING_MS, _("Audio kept before speech starts (ms)"), attrs={"step": 50}
    )
    eagerness = forms.ChoiceField(label=_("Eagerness"), choices=EAGERNESS_CHOICES)
    transcription_model = forms.ChoiceField(label=_("Transcription model"), choices=TRANSCRIPTION_CHOICES)
    language = forms.ChoiceField(
        label=_("Conversation language"),
        choices=LANGUAGE_CHOICES,
        required=False,
        help_text=_("Transcribes you in this language and asks the assistant to answer in it."),
    )
    noise_reduction = forms.ChoiceField(
        label=_("Noise reduction"),
        choices=VoicePreferences.NoiseReduction.choices,
        help_text=_("Choose far field when you use loudspeakers, so the assistant hears itself less."),
    )
    speed = _number(forms.FloatField, options.SPEED, _("Speaking speed"), attrs={"step": 0.05})
    max_response_tokens = _number(
        forms.IntegerField, options.MAX_RESPONSE_TOKENS, _("Longest answer (tokens)"),
        _("Leave empty for no limit."), required=False,
    )
    temperature = _number(
        forms.FloatField, options.TEMPERATURE, _("Creativity (temperature)"), attrs={"step": 0.05}
    )
    # A checkbox: absent from a submitted form means off, as browsers send nothing for an unticked box.
    record = forms.BooleanField(
        label=_("Record conversations"),
        required=False,
        help_text=_(
            "Both sides are recorded so you can play them back from the history. Turning this off stops new "
            "recordings; existing ones stay until you delete them."
        ),
    )

    # Ticked: the assistant may call that tool. Stored the other way round (tools_disabled), so a tool the
    # site adds later is on until the user turns it off.
    tools = forms.MultipleChoiceField(
        label=_("Tools the assistant may use"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("While you talk, the assistant may use these. Remembering searches only your own conversations."),
    )

    def __init__(
        self,
        *args: Any,
        dialect: str,
        transcription_models: tuple[str, ...] = options.TRANSCRIPTION_MODELS,
        tools: Sequence[tuple[str, str]] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.dialect = dialect
        if tools:
            self.fields["tools"].choices = list(tools)
        else:
            # The site has no tool on: nothing to choose.
            del self.fields["tools"]
        self.fields["voice"].choices = [(v, v.capitalize()) for v in options.voices_for(dialect)]
        # On Azure the only choice is the configured transcription deployment; none means transcription is off.
        self.transcription_off = not transcription_models
        if self.transcription_off:
            del self.fields["transcription_model"]
        else:
            self.fields["transcription_model"].choices = [(m, m) for m in transcription_models]
        if not options.has_temperature(dialect):
            # GA models have no temperature: hide the field rather than ignore what was typed.
            del self.fields["temperature"]

    @classmethod
    def for_preferences(
        cls,
        prefs: Preferences,
        *,
        dialect: str,
        transcription_models: tuple[str, ...] = options.TRANSCRIPTION_MODELS,
        tools: Sequence[tuple[str, str]] = (),
    ) -> PreferencesForm:
        """An unbound form showing the saved preferences."""
        initial = dataclasses.asdict(prefs)
        initial["tools"] = [name for name, _label in tools if name not in prefs.tools_disabled]
        return cls(initial=initial, dialect=dialect, transcription_models=transcription_models, tools=tools)

    def to_preferences(self, current: Preferences) -> Preferences:
        """The validated preferences; fields this dialect hides keep their current values."""
        data = {k: v for k, v in self.cleaned_data.items() if k in self.fields}
        if "tools" in data:
            offered = {name for name, _label in self.fields["tools"].choices}
            # Names the form did not offer (a tool the site turned off for now) keep the user's choice.
            kept = {name for name in current.tools_disabled if name not in offered}
            data["tools_disabled"] = tuple(sorted(kept | (offered - set(data.pop("tools")))))
        return current.with_changes(**data)

    def error_dict(self) -> dict[str, list[str]]:
        """Errors as plain messages per field, for the JSON answer."""
        return {field: [e["message"] for e in errors] for field, errors in self.errors.get_json_data().items()}


class HistoryFilterForm(forms.Form):
    """The history page's search and date range (`?q=…&from=YYYY-MM-DD&to=YYYY-MM-DD`), from the query string."""

    q = forms.CharField(label=_("Search"), required=False, max_length=200)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # "from" is a Python keyword, so these two cannot be class attributes.
        for name, label in (("from", _("From")), ("to", _("To"))):
            self.fields[name] = forms.DateField(
                label=label,
                required=False,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
            )

    def clean(self) -> dict[str, Any]:
        """Refuse a range that ends before it starts."""
        cleaned = super().clean()
        start, end = cleaned.get("from"), cleaned.get("to")
        if start and end and start > end:
            raise forms.ValidationError(_("The start date is after the end date."), code="reversed_range")
        return cleaned

    @property
    def filtering(self) -> bool:
        """Whether a search or a date narrows the list (valid forms only)."""
        data = self.cleaned_data
        return bool(data.get("q", "").strip() or data.get("from") or data.get("to"))


class RenameForm(forms.Form):
    """A conversation's new title."""

    title = forms.CharField(label=_("Title"), max_length=200)


class DeleteAllDataForm(forms.Form):
    """Deleting everything is confirmed by typing one's own username."""

    username = forms.CharField(label=_("Type your username to confirm"), max_length=150)

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user

    def clean_username(self) -> str:
        """Only the signed-in user's own username confirms."""
        value = self.cleaned_data["username"].strip()
        if value != self.user.get_username():
            raise forms.ValidationError(_("That is not your username; nothing was deleted."))
        return value


class UsageRangeForm(forms.Form):
    """The usage dashboard's days (`?from=YYYY-MM-DD&to=YYYY-MM-DD`): the last 30 by default, at most a year."""

    DEFAULT_DAYS = 30
    MAX_DAYS = 366

    def __init__(self, *args: Any, today: datetime.date, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.today = today
        start = today - datetime.timedelta(days=self.DEFAULT_DAYS - 1)
        # "from" is a Python keyword, so these two cannot be class attributes.
        for name, label, initial in (("from", _("From"), start), ("to", _("To"), today)):
            self.fields[name] = forms.DateField(
                label=label,
                required=False,
                initial=initial,
                widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
                error_messages={"invalid": _("Enter a date as YYYY-MM-DD.")},
            )

    def clean(self) -> dict[str, Any]:
        """Fill a missing end with today and a missing start with 30 days before the end; refuse bad ranges."""
        cleaned = super().clean()
        if self.errors:
            return cleaned
        end = cleaned.get("to") or self.today
        start = cleaned.get("from") or end - datetime.timedelta(days=self.DEFAULT_DAYS - 1)
        if start > end:
            raise forms.ValidationError(_("The start date is after the end date."), code="reversed_range")
        if (end - start).days + 1 > self.MAX_DAYS:
            raise forms.ValidationError(
                _("Choose at most %(days)d days.") % {"days": self.MAX_DAYS}, code="range_too_long")
        cleaned["from"], cleaned["to"] = start, end
        return cleaned
